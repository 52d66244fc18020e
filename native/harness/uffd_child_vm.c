/* uffd_child_vm.c — a fork child's own mremap and madvise (UFFD_CHILD_CALL steps), for the events
 * selftest cases: upstream's faulting_process (uffd-unit-tests.c) runs in the forked child, mremaps the
 * registered area over another one and releases it there, so the REMAP and REMOVE events arrive on the
 * child's uffd context (the one the FORK event handed over), never on the parent's.
 *
 * Async-signal-safe (raw syscalls only): they run in a fork child of the multi-threaded .NET process. */
#include "uffd_harness.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>

int64_t uffd_child_mremap(uint64_t addr, uint64_t len, int32_t arg, uint64_t *value)
{
	uint64_t to = addr + (uint64_t)((int64_t)arg * 4096);
	void *p = mremap((void *)(uintptr_t)addr, (size_t)len, (size_t)len, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)(uintptr_t)to);
	if (p == MAP_FAILED)
		return -errno;
	*value = (uint64_t)(uintptr_t)p;
	return 0;
}

int64_t uffd_child_madvise(uint64_t addr, uint64_t len, int32_t arg, uint64_t *value)
{
	(void)value;
	return madvise((void *)(uintptr_t)addr, (size_t)len, arg) < 0 ? -errno : 0;
}
