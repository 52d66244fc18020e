/* uffd_pin.c — a real long-term pin of user pages: io_uring fixed buffers, through raw syscalls (no
 * liburing), for the selftest cases wp-fork-pin and wp-fork-pin-with-event (upstream pins with
 * /sys/kernel/debug/gup_test, which needs CONFIG_GUP_TEST and debugfs: absent from distribution kernels).
 *
 * What the pin does (kernel sources as of 6.18):
 *  - IORING_REGISTER_BUFFERS: io_sqe_buffer_register (io_uring/rsrc.c) -> io_pin_pages (io_uring/memmap.c)
 *    -> pin_user_pages_fast(FOLL_WRITE | FOLL_LONGTERM). The pin is *writable*; it sets MMF_HAS_PINNED on
 *    the mm (mm_set_has_pinned_flag, mm/gup.c) and holds a GUP_PIN_COUNTING_BIAS reference on each folio
 *    until IORING_UNREGISTER_BUFFERS (io_buffer_unmap -> unpin_user_folio) or the ring's teardown.
 *  - FOLL_WRITE on a read-only PTE: gup_fast_pte_range gives up (pte_access_permitted), the slow path's
 *    follow_page_pte refuses (can_follow_write_pte) and faultin_page faults with FAULT_FLAG_WRITE, i.e. a
 *    kernel-mode write fault: on a uffd-wp PTE do_wp_page calls handle_userfault(VM_UFFD_WP) (message
 *    flags WRITE|WP, the pinning thread blocks in io_uring_register until the handler resolves it); on a
 *    none PTE of a MISSING VMA a MISSING fault; otherwise the usual write fault (do_anonymous_page, CoW of
 *    a shared or zero page, do_shared_fault). So a writable pin of a write-protected page un-protects it
 *    first (through the handler): to keep a pinned page write-protected the pin must come *before*
 *    UFFDIO_WRITEPROTECT (which does not look at pins). Upstream's gup_test pin is read-only (no
 *    FOLL_WRITE) and is taken after the protect; on a page shared by fork it unshares instead
 *    (gup_must_unshare -> FAULT_FLAG_UNSHARE -> wp_page_copy, which keeps the uffd-wp bit): no R/O
 *    long-term pin is reachable from user space, so the child's pin here is a CoW write fault.
 *  - fork of a pinned private anonymous page: folio_try_dup_anon_rmap_pte fails for a maybe-DMA-pinned
 *    folio in an mm with MMF_HAS_PINNED (folio_needs_cow_for_dma), and copy_present_page gives the child a
 *    copy at once (the "early CoW"), writable, with uffd-wp only when userfaultfd_pte_wp(dst_vma, src) —
 *    the child's VMA is WP-registered only with EVENT_FORK; the parent keeps its (still exclusive) page
 *    and its wp bit. hugetlb does the same (copy_hugetlb_page_range -> hugetlb_install_folio). Page-cache
 *    pages are never copied early.
 *
 * Every function is async-signal-safe (raw syscalls, static storage, no malloc): the child-side ones run
 * in a fork child of the multi-threaded .NET process (uffd_fork.c's UFFD_CHILD_CALL). */
#include "uffd_harness.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#endif
#ifndef __NR_io_uring_register
#define __NR_io_uring_register 427
#endif
/* include/uapi/linux/io_uring.h (5.1+); the header may be missing or older than the kernel. */
#define PIN_IORING_REGISTER_BUFFERS 0
#define PIN_IORING_UNREGISTER_BUFFERS 1

/* struct io_uring_params is 120 bytes (5.1+: later fields took the reserved space); zeroed = defaults. */
struct pin_uring_params {
	uint32_t words[30];
};

int uffd_pin(uint64_t addr, uint64_t len, int *stage)
{
	struct pin_uring_params p;
	memset(&p, 0, sizeof(p));
	if (stage)
		*stage = UFFD_PIN_STAGE_SETUP;
	long fd = syscall(__NR_io_uring_setup, 1, &p);
	if (fd < 0)
		return -errno;
	if (stage)
		*stage = UFFD_PIN_STAGE_REGISTER;
	struct iovec iov = { .iov_base = (void *)(uintptr_t)addr, .iov_len = (size_t)len };
	long r;
	do {
		r = syscall(__NR_io_uring_register, (int)fd, PIN_IORING_REGISTER_BUFFERS, &iov, 1);
	} while (r < 0 && errno == EINTR);
	if (r < 0) {
		int e = errno;
		close((int)fd);
		return -e;
	}
	if (stage)
		*stage = 0;
	return (int)fd;
}

int uffd_unpin(int ring)
{
	long r;
	do {
		r = syscall(__NR_io_uring_register, ring, PIN_IORING_UNREGISTER_BUFFERS, NULL, 0);
	} while (r < 0 && errno == EINTR);
	int e = r < 0 ? errno : 0;
	close(ring);
	return -e;
}

/* ---- the fork child's side (UFFD_CHILD_CALL) ------------------------------------------------------ */

/* Per process: in a fork child these are the child's own copies. */
static int child_rings[UFFD_PIN_CHILD_MAX];
static int child_nrings;

int64_t uffd_child_pin(uint64_t addr, uint64_t len, int32_t arg, uint64_t *value)
{
	(void)arg;
	if (child_nrings >= UFFD_PIN_CHILD_MAX)
		return -EMFILE;
	int stage = 0;
	int fd = uffd_pin(addr, len, &stage);
	*value = (uint64_t)stage;
	if (fd < 0)
		return fd;
	child_rings[child_nrings++] = fd;
	return 0;
}

int64_t uffd_child_unpin_all(uint64_t addr, uint64_t len, int32_t arg, uint64_t *value)
{
	(void)addr;
	(void)len;
	(void)arg;
	int64_t first = 0;
	*value = (uint64_t)child_nrings;
	while (child_nrings > 0) {
		int r = uffd_unpin(child_rings[--child_nrings]);
		if (r < 0 && first == 0)
			first = r;
	}
	return first;
}
