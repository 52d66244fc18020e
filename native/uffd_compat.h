/*
 * uffd_compat.h — every userfaultfd / pagemap uapi constant and struct through Linux 6.18 that
 * older system headers lack (Debian 12 ships 6.1 headers, Ubuntu 22.04 ships 5.15).
 *
 * Each block is keyed on a macro that the kernel header introduced together with the struct, so a
 * newer header wins and an older one is completed. Built with -DUFFD_COMPAT_NO_SYSTEM_UAPI the file
 * includes no kernel uapi header at all and supplies everything itself; `make compat-check` builds
 * both ways, so the shim compiles against any header from "none" to 6.18.
 *
 * The _Static_asserts at the end pin the x86-64 ABI (reference docs/kernel-reference.md §1.4, §1.5, §1.7):
 * whichever header supplied a struct, its size and offsets must be the kernel's.
 */
#ifndef UFFD_COMPAT_H
#define UFFD_COMPAT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>

#ifndef UFFD_COMPAT_NO_SYSTEM_UAPI
#include <linux/types.h>
#include <linux/userfaultfd.h>
#include <linux/fs.h>
#else
/* The kernel's own spellings (asm-generic/int-ll64.h), so a system header that pulls them in anyway
 * (sys/stat.h brings linux/stat.h for statx) redeclares the same types. */
typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef long long __s64;
#endif

/* ---- 4.3: the base API (the whole header is missing in NO_SYSTEM_UAPI mode) ---------------- */
#ifndef _LINUX_USERFAULTFD_H
#define _LINUX_USERFAULTFD_H
#define UFFD_API ((__u64)0xAA)
#define _UFFDIO_REGISTER (0x00)
#define _UFFDIO_UNREGISTER (0x01)
#define _UFFDIO_WAKE (0x02)
#define _UFFDIO_COPY (0x03)
#define _UFFDIO_ZEROPAGE (0x04)
#define _UFFDIO_API (0x3F)
#define UFFDIO 0xAA

struct uffd_msg {
	__u8 event;
	__u8 reserved1;
	__u16 reserved2;
	__u32 reserved3;
	union {
		struct {
			__u64 flags;
			__u64 address;
			union {
				__u32 ptid;
			} feat;
		} pagefault;
		struct {
			__u32 ufd;
		} fork;
		struct {
			__u64 from;
			__u64 to;
			__u64 len;
		} remap;
		struct {
			__u64 start;
			__u64 end;
		} remove;
		struct {
			__u64 reserved1;
			__u64 reserved2;
			__u64 reserved3;
		} reserved;
	} arg;
} __attribute__((packed));

#define UFFD_EVENT_PAGEFAULT 0x12
#define UFFD_EVENT_FORK 0x13
#define UFFD_EVENT_REMAP 0x14
#define UFFD_EVENT_REMOVE 0x15
#define UFFD_EVENT_UNMAP 0x16
#define UFFD_PAGEFAULT_FLAG_WRITE (1 << 0)

struct uffdio_api {
	__u64 api;
	__u64 features;
	__u64 ioctls;
};

struct uffdio_range {
	__u64 start;
	__u64 len;
};

struct uffdio_register {
	struct uffdio_range range;
	__u64 mode;
	__u64 ioctls;
};
#define UFFDIO_REGISTER_MODE_MISSING ((__u64)1 << 0)

struct uffdio_copy {
	__u64 dst;
	__u64 src;
	__u64 len;
	__u64 mode;
	__s64 copy;
};
#define UFFDIO_COPY_MODE_DONTWAKE ((__u64)1 << 0)

struct uffdio_zeropage {
	struct uffdio_range range;
	__u64 mode;
	__s64 zeropage;
};
#define UFFDIO_ZEROPAGE_MODE_DONTWAKE ((__u64)1 << 0)

#define UFFDIO_API _IOWR(UFFDIO, _UFFDIO_API, struct uffdio_api)
#define UFFDIO_REGISTER _IOWR(UFFDIO, _UFFDIO_REGISTER, struct uffdio_register)
/* _IOR, not _IOW: a historical mistake the kernel keeps for ABI stability. */
#define UFFDIO_UNREGISTER _IOR(UFFDIO, _UFFDIO_UNREGISTER, struct uffdio_range)
#define UFFDIO_WAKE _IOR(UFFDIO, _UFFDIO_WAKE, struct uffdio_range)
#define UFFDIO_COPY _IOWR(UFFDIO, _UFFDIO_COPY, struct uffdio_copy)
#define UFFDIO_ZEROPAGE _IOWR(UFFDIO, _UFFDIO_ZEROPAGE, struct uffdio_zeropage)
#endif /* base API */

/* ---- message flags added after 4.3 ---------------------------------------------------------- */
#ifndef UFFD_PAGEFAULT_FLAG_WP
#define UFFD_PAGEFAULT_FLAG_WP (1 << 1) /* 5.7 */
#endif
#ifndef UFFD_PAGEFAULT_FLAG_MINOR
#define UFFD_PAGEFAULT_FLAG_MINOR (1 << 2) /* 5.13 */
#endif

/* ---- feature bits 0..16 (§1.2) --------------------------------------------------------------- */
#ifndef UFFD_FEATURE_PAGEFAULT_FLAG_WP
#define UFFD_FEATURE_PAGEFAULT_FLAG_WP (1 << 0)
#endif
#ifndef UFFD_FEATURE_EVENT_FORK
#define UFFD_FEATURE_EVENT_FORK (1 << 1)
#endif
#ifndef UFFD_FEATURE_EVENT_REMAP
#define UFFD_FEATURE_EVENT_REMAP (1 << 2)
#endif
#ifndef UFFD_FEATURE_EVENT_REMOVE
#define UFFD_FEATURE_EVENT_REMOVE (1 << 3)
#endif
#ifndef UFFD_FEATURE_MISSING_HUGETLBFS
#define UFFD_FEATURE_MISSING_HUGETLBFS (1 << 4)
#endif
#ifndef UFFD_FEATURE_MISSING_SHMEM
#define UFFD_FEATURE_MISSING_SHMEM (1 << 5)
#endif
#ifndef UFFD_FEATURE_EVENT_UNMAP
#define UFFD_FEATURE_EVENT_UNMAP (1 << 6)
#endif
#ifndef UFFD_FEATURE_SIGBUS
#define UFFD_FEATURE_SIGBUS (1 << 7)
#endif
#ifndef UFFD_FEATURE_THREAD_ID
#define UFFD_FEATURE_THREAD_ID (1 << 8)
#endif
#ifndef UFFD_FEATURE_MINOR_HUGETLBFS
#define UFFD_FEATURE_MINOR_HUGETLBFS (1 << 9)
#endif
#ifndef UFFD_FEATURE_MINOR_SHMEM
#define UFFD_FEATURE_MINOR_SHMEM (1 << 10)
#endif
#ifndef UFFD_FEATURE_EXACT_ADDRESS
#define UFFD_FEATURE_EXACT_ADDRESS (1 << 11)
#endif
#ifndef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
#define UFFD_FEATURE_WP_HUGETLBFS_SHMEM (1 << 12)
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON (1 << 14)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1 << 16)
#endif
/* 7.3: read-write protection (the RWP series); named so a probe can report them, not used by the shim */
#ifndef UFFD_FEATURE_RWP
#define UFFD_FEATURE_RWP (1 << 17)
#endif
#ifndef UFFD_FEATURE_RWP_ASYNC
#define UFFD_FEATURE_RWP_ASYNC (1 << 18)
#endif

/* ---- register modes, ioctl numbers of later ioctls ------------------------------------------- */
#ifndef UFFDIO_REGISTER_MODE_WP
#define UFFDIO_REGISTER_MODE_WP ((__u64)1 << 1) /* 5.7 */
#endif
#ifndef UFFDIO_REGISTER_MODE_MINOR
#define UFFDIO_REGISTER_MODE_MINOR ((__u64)1 << 2) /* 5.13 */
#endif
#ifndef _UFFDIO_MOVE
#define _UFFDIO_MOVE (0x05)
#endif
#ifndef _UFFDIO_WRITEPROTECT
#define _UFFDIO_WRITEPROTECT (0x06)
#endif
#ifndef _UFFDIO_CONTINUE
#define _UFFDIO_CONTINUE (0x07)
#endif
#ifndef _UFFDIO_POISON
#define _UFFDIO_POISON (0x08)
#endif
#ifndef _UFFDIO_RWPROTECT
#define _UFFDIO_RWPROTECT (0x09) /* 7.3 */
#endif
#ifndef _UFFDIO_SET_MODE
#define _UFFDIO_SET_MODE (0x0A) /* 7.3 */
#endif

#ifndef UFFDIO_COPY_MODE_WP
#define UFFDIO_COPY_MODE_WP ((__u64)1 << 1) /* 5.7 */
#endif

/* 5.7: UFFDIO_WRITEPROTECT */
#ifndef UFFDIO_WRITEPROTECT_MODE_WP
struct uffdio_writeprotect {
	struct uffdio_range range;
	__u64 mode;
};
#define UFFDIO_WRITEPROTECT_MODE_WP ((__u64)1 << 0)
#define UFFDIO_WRITEPROTECT_MODE_DONTWAKE ((__u64)1 << 1)
#endif
#ifndef UFFDIO_WRITEPROTECT
#define UFFDIO_WRITEPROTECT _IOWR(UFFDIO, _UFFDIO_WRITEPROTECT, struct uffdio_writeprotect)
#endif

/* 5.13: UFFDIO_CONTINUE; 6.4: its MODE_WP */
#ifndef UFFDIO_CONTINUE_MODE_DONTWAKE
struct uffdio_continue {
	struct uffdio_range range;
	__u64 mode;
	__s64 mapped;
};
#define UFFDIO_CONTINUE_MODE_DONTWAKE ((__u64)1 << 0)
#endif
#ifndef UFFDIO_CONTINUE_MODE_WP
#define UFFDIO_CONTINUE_MODE_WP ((__u64)1 << 1)
#endif
#ifndef UFFDIO_CONTINUE
#define UFFDIO_CONTINUE _IOWR(UFFDIO, _UFFDIO_CONTINUE, struct uffdio_continue)
#endif

/* 6.6: UFFDIO_POISON */
#ifndef UFFDIO_POISON_MODE_DONTWAKE
struct uffdio_poison {
	struct uffdio_range range;
	__u64 mode;
	__s64 updated;
};
#define UFFDIO_POISON_MODE_DONTWAKE ((__u64)1 << 0)
#endif
#ifndef UFFDIO_POISON
#define UFFDIO_POISON _IOWR(UFFDIO, _UFFDIO_POISON, struct uffdio_poison)
#endif

/* 6.8: UFFDIO_MOVE */
#ifndef UFFDIO_MOVE_MODE_DONTWAKE
struct uffdio_move {
	__u64 dst;
	__u64 src;
	__u64 len;
	__u64 mode;
	__s64 move;
};
#define UFFDIO_MOVE_MODE_DONTWAKE ((__u64)1 << 0)
#define UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES ((__u64)1 << 1)
#endif
#ifndef UFFDIO_MOVE
#define UFFDIO_MOVE _IOWR(UFFDIO, _UFFDIO_MOVE, struct uffdio_move)
#endif

/* 6.1: /dev/userfaultfd; 5.11: user-mode-only */
#ifndef USERFAULTFD_IOC
#define USERFAULTFD_IOC 0xAA
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(USERFAULTFD_IOC, 0x00)
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

/* ---- 6.7: PAGEMAP_SCAN (linux/fs.h) ----------------------------------------------------------- */
#ifndef PAGEMAP_SCAN
struct page_region {
	__u64 start;
	__u64 end;
	__u64 categories;
};

struct pm_scan_arg {
	__u64 size;
	__u64 flags;
	__u64 start;
	__u64 end;
	__u64 walk_end;
	__u64 vec;
	__u64 vec_len;
	__u64 max_pages;
	__u64 category_inverted;
	__u64 category_mask;
	__u64 category_anyof_mask;
	__u64 return_mask;
};

#define PAGE_IS_WPALLOWED (1 << 0)
#define PAGE_IS_WRITTEN (1 << 1)
#define PAGE_IS_FILE (1 << 2)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_SWAPPED (1 << 4)
#define PAGE_IS_PFNZERO (1 << 5)
#define PAGE_IS_HUGE (1 << 6)
#define PAGE_IS_SOFT_DIRTY (1 << 7)
#define PM_SCAN_WP_MATCHING (1 << 0)
#define PM_SCAN_CHECK_WPASYNC (1 << 1)
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#endif
#ifndef PAGE_IS_GUARD
#define PAGE_IS_GUARD (1 << 8) /* ~6.15 */
#endif

/* ---- pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst, §1.7) ---------------------- */
#define UFFD_PM_PFN_MASK ((1ULL << 55) - 1)
#define UFFD_PM_SOFT_DIRTY (1ULL << 55)
#define UFFD_PM_MMAP_EXCLUSIVE (1ULL << 56)
#define UFFD_PM_UFFD_WP (1ULL << 57)
#define UFFD_PM_GUARD_REGION (1ULL << 58)
#define UFFD_PM_FILE (1ULL << 61)
#define UFFD_PM_SWAP (1ULL << 62)
#define UFFD_PM_PRESENT (1ULL << 63)

/* ---- ABI pins (x86-64) ------------------------------------------------------------------------ */
_Static_assert(sizeof(struct uffd_msg) == 32, "uffd_msg");
_Static_assert(offsetof(struct uffd_msg, event) == 0, "uffd_msg.event");
_Static_assert(offsetof(struct uffd_msg, arg.pagefault.flags) == 8, "pagefault.flags");
_Static_assert(offsetof(struct uffd_msg, arg.pagefault.address) == 16, "pagefault.address");
_Static_assert(offsetof(struct uffd_msg, arg.pagefault.feat.ptid) == 24, "pagefault.ptid");
_Static_assert(offsetof(struct uffd_msg, arg.fork.ufd) == 8, "fork.ufd");
_Static_assert(offsetof(struct uffd_msg, arg.remap.from) == 8, "remap.from");
_Static_assert(offsetof(struct uffd_msg, arg.remap.to) == 16, "remap.to");
_Static_assert(offsetof(struct uffd_msg, arg.remap.len) == 24, "remap.len");
_Static_assert(offsetof(struct uffd_msg, arg.remove.start) == 8, "remove.start");
_Static_assert(offsetof(struct uffd_msg, arg.remove.end) == 16, "remove.end");
_Static_assert(sizeof(struct uffdio_api) == 24, "uffdio_api");
_Static_assert(sizeof(struct uffdio_range) == 16, "uffdio_range");
_Static_assert(sizeof(struct uffdio_register) == 32, "uffdio_register");
_Static_assert(offsetof(struct uffdio_register, mode) == 16, "uffdio_register.mode");
_Static_assert(offsetof(struct uffdio_register, ioctls) == 24, "uffdio_register.ioctls");
_Static_assert(sizeof(struct uffdio_copy) == 40, "uffdio_copy");
_Static_assert(offsetof(struct uffdio_copy, copy) == 32, "uffdio_copy.copy");
_Static_assert(sizeof(struct uffdio_zeropage) == 32, "uffdio_zeropage");
_Static_assert(offsetof(struct uffdio_zeropage, zeropage) == 24, "uffdio_zeropage.zeropage");
_Static_assert(sizeof(struct uffdio_writeprotect) == 24, "uffdio_writeprotect");
_Static_assert(sizeof(struct uffdio_continue) == 32, "uffdio_continue");
_Static_assert(offsetof(struct uffdio_continue, mapped) == 24, "uffdio_continue.mapped");
_Static_assert(sizeof(struct uffdio_poison) == 32, "uffdio_poison");
_Static_assert(offsetof(struct uffdio_poison, updated) == 24, "uffdio_poison.updated");
_Static_assert(sizeof(struct uffdio_move) == 40, "uffdio_move");
_Static_assert(offsetof(struct uffdio_move, move) == 32, "uffdio_move.move");
_Static_assert(sizeof(struct pm_scan_arg) == 96, "pm_scan_arg");
_Static_assert(offsetof(struct pm_scan_arg, return_mask) == 88, "pm_scan_arg.return_mask");
_Static_assert(sizeof(struct page_region) == 24, "page_region");
_Static_assert(UFFDIO_API == 0xC018AA3F, "UFFDIO_API number");
_Static_assert(UFFDIO_REGISTER == 0xC020AA00, "UFFDIO_REGISTER number");
_Static_assert(UFFDIO_UNREGISTER == 0x8010AA01, "UFFDIO_UNREGISTER number");
_Static_assert(UFFDIO_WAKE == 0x8010AA02, "UFFDIO_WAKE number");
_Static_assert(UFFDIO_COPY == 0xC028AA03, "UFFDIO_COPY number");
_Static_assert(UFFDIO_ZEROPAGE == 0xC020AA04, "UFFDIO_ZEROPAGE number");
_Static_assert(UFFDIO_MOVE == 0xC028AA05, "UFFDIO_MOVE number");
_Static_assert(UFFDIO_WRITEPROTECT == 0xC018AA06, "UFFDIO_WRITEPROTECT number");
_Static_assert(UFFDIO_CONTINUE == 0xC020AA07, "UFFDIO_CONTINUE number");
_Static_assert(UFFDIO_POISON == 0xC020AA08, "UFFDIO_POISON number");
_Static_assert(USERFAULTFD_IOC_NEW == 0xAA00, "USERFAULTFD_IOC_NEW number");
_Static_assert(PAGEMAP_SCAN == 0xC0606610, "PAGEMAP_SCAN number");

#endif /* UFFD_COMPAT_H */
