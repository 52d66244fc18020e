/* uffd_inline.h — the signal code that the shim's fork helper and access workers, the harness's fork-child steps
 * and the standalone C reproducer all run, written once.
 *
 * The reproducer is one .c file that includes no header of ours: Reproducer.Runtime() writes this file into it in
 * place of its #include line. So everything here is static, needs libc and nothing else (no uapi header, no shim
 * header: the sigbus loop's ioctls come from its caller) and is async-signal-safe (it runs in fork children of
 * multi-threaded processes: raw syscalls, static storage, no malloc). Each part beyond uffd_catch_signal is compiled
 * only where its macro is defined before the #include, so no file carries a static it does not use:
 *   UFFD_INLINE_CHILD_SIGBUS  a fork child's SIGBUS catcher for its accesses;
 *   UFFD_INLINE_SIGBUS_LOOP   upstream's sigbus loop (uffd-unit-tests.c faulting_process(1, wp)). */
#ifndef UFFD_INLINE_H
#define UFFD_INLINE_H

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

/* sigaction(sig) with an empty mask and SA_SIGINFO | flags; old (NULL: not wanted) gets the previous action. */
static inline int uffd_catch_signal(int sig, void (*action)(int, siginfo_t *, void *), int flags, struct sigaction *old)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = action;
	sa.sa_flags = SA_SIGINFO | flags;
	sigemptyset(&sa.sa_mask);
	return sigaction(sig, &sa, old);
}

#ifdef UFFD_INLINE_CHILD_SIGBUS
/* A fork child runs each access under sigsetjmp(uffd_child_jmp, 1). A SIGBUS (FEATURE_SIGBUS, a POISON marker, a
 * released range: reference §1.5) counts itself, keeps its si_code and jumps back, so the access reports it and
 * the child goes on. SA_NODEFER: the child's next access may raise the next SIGBUS. */
static sigjmp_buf uffd_child_jmp;
static volatile sig_atomic_t uffd_child_sigbus, uffd_child_si_code;

static void uffd_child_on_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	uffd_child_sigbus++;
	uffd_child_si_code = si ? si->si_code : 0;
	siglongjmp(uffd_child_jmp, 1);
}

static inline void uffd_child_catch_sigbus(void)
{
	uffd_catch_signal(SIGBUS, uffd_child_on_sigbus, SA_NODEFER, NULL);
}
#endif /* UFFD_INLINE_CHILD_SIGBUS */

#ifdef UFFD_INLINE_SIGBUS_LOOP
/* Upstream's sigbus loop over a range registered MISSING (|WP) on a uffd with FEATURE_SIGBUS, which the caller
 * opened: per page sigsetjmp, read (SIGBUS: COPY a page whose first word is the expected tag, MODE_WP with wp, and
 * retry; a second SIGBUS before the write back is upstream's "Signal repeated"), compare ("memory corruption"),
 * write the word back (with wp a second SIGBUS: un-protect, retry). */
struct uffd_sigbus_loop {
	uint64_t addr;
	uint64_t pages;
	uint64_t page_size;
	/* Page i's first word must read first_tag + i (the handler's CopyTag, which COPY puts there). */
	uint64_t first_tag;
	int wp;
	/* UFFDIO_COPY (MODE_WP when wp) and UFFDIO_WRITEPROTECT(mode 0) on the loop's uffd: 0 or -errno. */
	int64_t (*copy)(uint64_t dst, uint64_t src, uint64_t len, int wp);
	int64_t (*unprotect)(uint64_t start, uint64_t len);
};

static sigjmp_buf uffd_loop_jmp;

static void uffd_loop_on_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
	siglongjmp(uffd_loop_jmp, 1);
}

/* Outside the frame sigsetjmp saves: siglongjmp leaves the loop function's non-volatile locals indeterminate. */
static uint64_t uffd_loop_missing, uffd_loop_wp, uffd_loop_page;
static int uffd_loop_steps;
static int64_t uffd_loop_ret;

/* Returns 0 with *value = MISSING signals | WP signals << 32, or -errno of an ioctl, -EPROTO for a repeated signal,
 * -EIO for a wrong word (then *value = the page). The loop's SIGBUS handler replaces the caller's while it runs. */
static int64_t uffd_sigbus_loop_run(const struct uffd_sigbus_loop *l, uint64_t *value)
{
	void *src = mmap(NULL, l->page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (src == MAP_FAILED)
		return -errno;
	struct sigaction old;
	uffd_catch_signal(SIGBUS, uffd_loop_on_sigbus, SA_NODEFER, &old);
	uffd_loop_missing = uffd_loop_wp = 0;
	uffd_loop_ret = 0;
	for (uffd_loop_page = 0; uffd_loop_page < l->pages; uffd_loop_page++) {
		const uint64_t at = l->addr + uffd_loop_page * l->page_size, tag = l->first_tag + uffd_loop_page;
		uffd_loop_steps = 1;
		if (sigsetjmp(uffd_loop_jmp, 1) != 0) {
			if (uffd_loop_steps == 1) {
				/* A MISSING request: COPY (MODE_WP with wp), then retry. */
				uffd_loop_steps = 2;
				uffd_loop_missing++;
				memcpy(src, &tag, sizeof(tag));
				if ((uffd_loop_ret = l->copy(at, (uint64_t)(uintptr_t)src, l->page_size, l->wp)) < 0)
					break;
			} else if (uffd_loop_steps == 2 && l->wp) {
				/* A WP request (the write back): un-protect, then retry. */
				uffd_loop_steps = 3;
				uffd_loop_wp++;
				if ((uffd_loop_ret = l->unprotect(at, l->page_size)) < 0)
					break;
			} else {
				uffd_loop_ret = -EPROTO;
				break;
			}
		}
		volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)at;
		uint64_t word = *p;
		if (word != tag) {
			uffd_loop_ret = -EIO;
			break;
		}
		*p = word; /* the write back: a WP SIGBUS when the page is protected */
	}
	sigaction(SIGBUS, &old, NULL);
	munmap(src, l->page_size);
	*value = uffd_loop_ret < 0 ? uffd_loop_page : (uffd_loop_missing | (uffd_loop_wp << 32));
	return uffd_loop_ret;
}
#endif /* UFFD_INLINE_SIGBUS_LOOP */

#endif /* UFFD_INLINE_H */
