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
 * as a UFFD_CHILD_CALL step; it installs its own SIGBUS handler for the loop and restores the fork child's. */
#include "uffd_harness.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef __NR_userfaultfd
#define __NR_userfaultfd 323
#endif

static sigjmp_buf loop_jmp;

static void loop_on_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
	siglongjmp(loop_jmp, 1);
}

/* Per process (the fork child's copies): sigsetjmp may clobber the loop function's non-volatile locals. */
static int loop_uffd = -1;
static uint64_t loop_missing, loop_wp, loop_page;
static int loop_steps;

static int64_t loop_ioctl(unsigned long req, void *arg)
{
	int r;
	do
		r = ioctl(loop_uffd, req, arg);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

static int64_t child_sigbus_loop(uint64_t addr, uint64_t len, int32_t arg, uint64_t *value)
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
	/* The COPY source: a page whose first word is the handler's tag (HandlerPolicy.CopyTag), the rest zero. */
	void *src = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (src == MAP_FAILED)
		return -errno;

	struct sigaction sa, old;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = loop_on_sigbus;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &old);
	loop_missing = loop_wp = 0;
	r = 0;
	for (loop_page = 0; loop_page < len / page; loop_page++) {
		loop_steps = 1;
		if (sigsetjmp(loop_jmp, 1) != 0) {
			uint64_t at = addr + loop_page * page;
			if (loop_steps == 1) {
				/* A MISSING request: COPY (MODE_WP with wp), then retry. */
				loop_steps = 2;
				loop_missing++;
				*(uint64_t *)src = UFFD_CHILD_SIGBUS_TAG_BASE + (mapping << 8) + loop_page;
				struct uffdio_copy c = { .dst = at, .src = (uint64_t)(uintptr_t)src, .len = page, .mode = wp ? UFFDIO_COPY_MODE_WP : 0 };
				if ((r = loop_ioctl(UFFDIO_COPY, &c)) < 0)
					break;
			} else if (loop_steps == 2 && wp) {
				/* A WP request (the write back): un-protect, then retry. */
				loop_steps = 3;
				loop_wp++;
				struct uffdio_writeprotect w = { .range = { at, page }, .mode = 0 };
				if ((r = loop_ioctl(UFFDIO_WRITEPROTECT, &w)) < 0)
					break;
			} else {
				/* upstream's "Signal repeated" */
				r = -EPROTO;
				break;
			}
		}
		volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)(addr + loop_page * page);
		uint64_t count = *p;
		if (count != UFFD_CHILD_SIGBUS_TAG_BASE + (mapping << 8) + loop_page) {
			/* upstream's "memory corruption" */
			r = -EIO;
			break;
		}
		*p = count; /* the write back: a WP SIGBUS when the page is protected */
	}
	sigaction(SIGBUS, &old, NULL);
	munmap(src, page);
	/* The uffd stays open (and the range registered) until the child exits, as upstream's until the test ends. */
	*value = r < 0 ? loop_page : (loop_missing | (loop_wp << 32));
	return r;
}

uint64_t uffd_child_sigbus_fn(void) { return (uint64_t)(uintptr_t)&child_sigbus_loop; }
