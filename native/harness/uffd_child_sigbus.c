/* uffd_child_sigbus.c — upstream's sigbus loop (uffd-unit-tests.c faulting_process(1, wp)) in a fork child.
 *
 * Upstream runs it in the test process: register the area MISSING (|WP) on a uffd with FEATURE_SIGBUS, then for
 * each page sigsetjmp, read (SIGBUS: COPY the page, MODE_WP with wp, and retry; a second SIGBUS on the same page
 * before the write is "Signal repeated"), compare, write the value back (with wp: a second SIGBUS, un-protect,
 * retry). A SIGBUS in the .NET host would end it, so here a fork child runs the loop on a uffd of its *own*: the
 * child is forked while no VMA is registered (nothing to hand over, §3.5), opens the uffd, registers the range it
 * inherited and COPYs through that uffd, which fills its own mm (mfill works on ctx->mm).
 *
 * Async-signal-safe (raw syscalls, static storage): it runs in a fork child of the multi-threaded .NET process,
 * as a UFFD_CHILD_CALL step. The loop itself is ../uffd_inline.h's, which the C reproducer inlines too. */
#include "uffd_harness.h"

#define UFFD_INLINE_SIGBUS_LOOP
#include "../uffd_inline.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef __NR_userfaultfd
#define __NR_userfaultfd 323
#endif

/* The child's own uffd: per process (the fork child's copy). */
static int loop_uffd = -1;

static int64_t loop_ioctl(unsigned long req, void *arg)
{
	int r;
	do
		r = ioctl(loop_uffd, req, arg);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

static int64_t loop_copy(uint64_t dst, uint64_t src, uint64_t len, int wp)
{
	struct uffdio_copy c = { .dst = dst, .src = src, .len = len, .mode = wp ? UFFDIO_COPY_MODE_WP : 0 };
	return loop_ioctl(UFFDIO_COPY, &c);
}

static int64_t loop_unprotect(uint64_t start, uint64_t len)
{
	struct uffdio_writeprotect w = { .range = { start, len }, .mode = 0 };
	return loop_ioctl(UFFDIO_WRITEPROTECT, &w);
}

int64_t uffd_child_sigbus_loop(uint64_t addr, uint64_t len, int32_t arg, uint64_t *value)
{
	const int wp = arg & UFFD_CHILD_SIGBUS_WP;
	const uint64_t page = (arg & UFFD_CHILD_SIGBUS_HUGE) ? (2UL << 20) : 4096;
	const uint64_t mapping = ((uint32_t)arg >> 8) & 0xff;
	uint64_t features = UFFD_FEATURE_SIGBUS | (wp ? UFFD_FEATURE_PAGEFAULT_FLAG_WP : 0) | ((arg & UFFD_CHILD_SIGBUS_WP_FILE) ? UFFD_FEATURE_WP_HUGETLBFS_SHMEM : 0);
	long fd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 && (errno == EPERM || errno == ENOSYS)) {
		int first = errno, stage;
		fd = uffd_open_device(NULL, O_CLOEXEC | O_NONBLOCK, &stage);
		if (fd < 0)
			return -first;
	}
	if (fd < 0)
		return -errno;
	loop_uffd = (int)fd;
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	if (loop_ioctl(UFFDIO_API, &api) < 0)
		return -errno;
	struct uffdio_register reg = { .range = { addr, len }, .mode = UFFDIO_REGISTER_MODE_MISSING | (wp ? UFFDIO_REGISTER_MODE_WP : 0) };
	int64_t r = loop_ioctl(UFFDIO_REGISTER, &reg);
	if (r < 0)
		return r;
	const struct uffd_sigbus_loop loop = {
		.addr = addr,
		.pages = len / page,
		.page_size = page,
		.first_tag = UFFD_CHILD_SIGBUS_TAG_BASE + (mapping << 8),
		.wp = wp,
		.copy = loop_copy,
		.unprotect = loop_unprotect,
	};
	/* The uffd stays open (and the range registered) until the child exits, as upstream's until the test ends. */
	return uffd_sigbus_loop_run(&loop, value);
}
