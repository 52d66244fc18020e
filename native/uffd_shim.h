/*
 * uffd_shim.h — the whole ABI of libuffdshim.so. Every exported function is prefixed uffd_.
 *
 * Conventions (the managed side relies on them):
 *   - a function returns >= 0 on success or -errno on failure; errno itself is never the channel;
 *   - EINTR is retried inside, except where a caller-visible timeout would otherwise be exceeded;
 *   - kernel structs are passed by pointer exactly as the kernel defines them (uffd_compat.h), so the
 *     kernel's output fields (copy/zeropage/mapped/updated/move, ioctls, features) reach the caller
 *     untouched — they are signed where the kernel's are (reference §0.7, userfaultfd-rs PR #91);
 *   - nothing here allocates on a hot path; the fork helper's child uses only syscalls.
 */
#ifndef UFFD_SHIM_H
#define UFFD_SHIM_H

#include <stdint.h>
#include "uffd_compat.h"

#define UFFD_SHIM_EXPORT __attribute__((visibility("default")))

/* Bumped whenever a signature below changes; the binding refuses a shim of another version. */
#define UFFD_SHIM_ABI_VERSION 1

/* ================================ uffd_shim.c: fds and ioctls ================================ */

UFFD_SHIM_EXPORT int uffd_shim_abi_version(void);

/* userfaultfd(2). flags: O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY. Returns the fd or -errno. */
UFFD_SHIM_EXPORT int uffd_open_syscall(int flags);
/* open(path or "/dev/userfaultfd", O_RDWR|O_CLOEXEC) then ioctl(USERFAULTFD_IOC_NEW, flags).
 * *stage is 1 when open() failed and 2 when the ioctl failed. Returns the fd or -errno. */
UFFD_SHIM_EXPORT int uffd_open_device(const char *path, int flags, int *stage);

UFFD_SHIM_EXPORT int uffd_api(int fd, struct uffdio_api *api);
UFFD_SHIM_EXPORT int uffd_register(int fd, struct uffdio_register *reg);
UFFD_SHIM_EXPORT int uffd_unregister(int fd, struct uffdio_range *range);
UFFD_SHIM_EXPORT int uffd_wake(int fd, struct uffdio_range *range);
UFFD_SHIM_EXPORT int uffd_copy(int fd, struct uffdio_copy *copy);
UFFD_SHIM_EXPORT int uffd_zeropage(int fd, struct uffdio_zeropage *zp);
UFFD_SHIM_EXPORT int uffd_writeprotect(int fd, struct uffdio_writeprotect *wp);
UFFD_SHIM_EXPORT int uffd_continue(int fd, struct uffdio_continue *cont);
UFFD_SHIM_EXPORT int uffd_poison(int fd, struct uffdio_poison *poison);
UFFD_SHIM_EXPORT int uffd_move(int fd, struct uffdio_move *move);
/* Any request number, for probing what a kernel does with an ioctl it may not know. */
UFFD_SHIM_EXPORT int uffd_ioctl_raw(int fd, uint64_t request, void *arg);

/* Reads up to max messages in one read(2). Returns the count (>= 1), 0 at end of file,
 * -EAGAIN when nothing is pending on a non-blocking fd, -EPROTO on a short (non-multiple of 32) read. */
UFFD_SHIM_EXPORT int uffd_read_msgs(int fd, struct uffd_msg *buf, int max);

/* Polls the uffd (POLLIN) and optionally a stop fd (stopfd < 0: none). Returns a mask of
 * UFFD_POLL_* (0 on timeout) or -errno. A blocking uffd always reports POLLERR (§1.5). */
#define UFFD_POLL_READABLE 1
#define UFFD_POLL_STOP 2
#define UFFD_POLL_HUP 4
#define UFFD_POLL_ERR 8
UFFD_SHIM_EXPORT int uffd_poll(int fd, int stopfd, int timeout_ms);

/* eventfd helpers for the stop channel. */
UFFD_SHIM_EXPORT int uffd_eventfd(int nonblocking);
UFFD_SHIM_EXPORT int uffd_eventfd_signal(int efd);
UFFD_SHIM_EXPORT int uffd_eventfd_drain(int efd);
UFFD_SHIM_EXPORT int uffd_close(int fd);

/* PAGEMAP_SCAN (6.7+) on an open /proc/<pid>/pagemap fd. Returns the region count or -errno. */
UFFD_SHIM_EXPORT int uffd_pagemap_scan(int pagemap_fd, struct pm_scan_arg *arg);

UFFD_SHIM_EXPORT int uffd_gettid(void);
/* Pins the calling thread to one CPU (cpu < 0: all CPUs). */
UFFD_SHIM_EXPORT int uffd_pin_thread(int cpu);

/* ================================ uffd_layout.c: the layout table ============================= */

/* Entries are (name, value): "sizeof(struct)", "offsetof(struct.field)", ioctl numbers and every
 * constant the binding mirrors. The binding compares its own values by name on first use. */
UFFD_SHIM_EXPORT int uffd_layout_count(void);
UFFD_SHIM_EXPORT int uffd_layout_get(int index, const char **name, int64_t *value);

/* ============================ uffd_access.c: faulting accessors =============================== */
/*
 * Every access to memory that may be uffd-registered goes through these functions: a managed
 * thread blocked in a uffd fault would stall the GC for the whole process (reference
 * userspace-anchors.md §B.6). A P/Invoke puts the thread in preemptive mode; the fault then only
 * blocks this thread.
 */

/* The content pattern: word i of a buffer filled with seed s. */
UFFD_SHIM_EXPORT uint64_t uffd_pattern_word(uint64_t seed, uint64_t index);
/* Fills an ordinary (never registered) buffer with the pattern, words first_index.. onwards. */
UFFD_SHIM_EXPORT void uffd_pattern_fill(void *buf, uint64_t len, uint64_t seed, uint64_t first_index);

enum uffd_access_kind {
	UFFD_ACC_READ64 = 1,       /* value <- *(u64*)addr */
	UFFD_ACC_WRITE64 = 2,      /* *(u64*)addr = value */
	UFFD_ACC_FILL = 3,         /* pattern(seed=value) over [addr, addr+len) */
	UFFD_ACC_VERIFY = 4,       /* ret = 0 or (first mismatching byte offset + 1) */
	UFFD_ACC_TOUCH_READ = 5,   /* read one word every stride bytes */
	UFFD_ACC_TOUCH_WRITE = 6,  /* write value at every stride bytes */
	UFFD_ACC_KERNEL_WRITE = 7, /* read(2) from a pipe holding len bytes of value into addr: a kernel-mode write */
	UFFD_ACC_KERNEL_READ = 8,  /* write(2) len bytes from addr into a pipe: a kernel-mode read */
};

struct uffd_access_op {
	int32_t kind;
	int32_t reserved;
	uint64_t addr;
	uint64_t len;
	uint64_t value;
	uint64_t stride;
};

struct uffd_access_result {
	int64_t ret;        /* >= 0 success (op-specific), -errno */
	uint64_t value;     /* value read */
	int64_t elapsed_ns; /* CLOCK_MONOTONIC time the op took */
};

/* Runs ops on the calling thread. Returns 0 or the first negative ret. */
UFFD_SHIM_EXPORT int uffd_access_run(const struct uffd_access_op *ops, int nops, struct uffd_access_result *results);

/* A native worker thread that runs ops (copied) once. cpu < 0: not pinned. NULL on failure. */
UFFD_SHIM_EXPORT void *uffd_worker_start(const struct uffd_access_op *ops, int nops, int cpu);
/* The worker's kernel thread id (waits until the thread has published it). */
UFFD_SHIM_EXPORT int uffd_worker_tid(void *worker);
/* Number of ops completed so far (never blocks). */
UFFD_SHIM_EXPORT int uffd_worker_progress(void *worker);
/* Waits up to timeout_ms (< 0: forever) for the worker to finish. 0 when done (results copied to
 * results[0..nops)), -ETIMEDOUT otherwise. */
UFFD_SHIM_EXPORT int uffd_worker_join(void *worker, int timeout_ms, struct uffd_access_result *results);
/* Sends a signal to the worker thread (it counts deliveries of SIGUSR1 and continues). */
UFFD_SHIM_EXPORT int uffd_worker_signal(void *worker, int sig);
UFFD_SHIM_EXPORT int uffd_worker_signal_count(void *worker);
/* Frees a joined worker. Returns -EBUSY if it has not finished (the handle is then leaked on
 * purpose: freeing it would let the thread write into freed memory). */
UFFD_SHIM_EXPORT int uffd_worker_free(void *worker);

/* ============================ uffd_fork.c: the native fork helper ============================= */
/*
 * The .NET process is multi-threaded, so a forked child may inherit a held runtime or malloc lock:
 * the child runs only this file's code (syscalls and stack buffers), reports each op's result
 * through a pipe as it goes, and ends with _exit. .NET code never runs in the child.
 * With UFFD_FEATURE_EVENT_FORK, fork() blocks until the FORK message is read, so uffd_fork_start
 * must not run on the thread that reads the uffd.
 */
enum uffd_child_kind {
	UFFD_CHILD_READ64 = 1,     /* value <- *(u64*)addr; a SIGBUS is caught and reported */
	UFFD_CHILD_WRITE64 = 2,    /* *(u64*)addr = value */
	UFFD_CHILD_PAGEMAP = 3,    /* value <- this child's own /proc/self/pagemap entry for addr */
	UFFD_CHILD_VERIFY = 4,     /* ret = 0 or mismatch offset + 1, pattern seed = value */
	UFFD_CHILD_FILL = 5,       /* pattern fill with seed = value */
	UFFD_CHILD_WAIT_PARENT = 6,/* blocks until uffd_fork_release() */
	UFFD_CHILD_UFFD_OPEN = 7,  /* opens a uffd (flags = arg, features = value) in the child; ret = fd */
	UFFD_CHILD_MMAP_ANON = 8,  /* mmap len bytes private anonymous; value <- address */
	UFFD_CHILD_REGISTER = 9,   /* registers the last mapping on the child's uffd, mode = arg; value <- ioctls */
	UFFD_CHILD_SEND_UFFD = 10, /* sends the child's uffd and the last mapping's address to the parent */
	UFFD_CHILD_TOUCH_WRITE = 11,/* writes value at every stride (arg) bytes of [addr, addr+len) */
	UFFD_CHILD_EXIT = 12,      /* _exit(arg) now */
	UFFD_CHILD_MMAP_FILL = 13, /* like MMAP_ANON, then fills it with pattern seed = value */
};

struct uffd_child_op {
	int32_t kind;
	int32_t arg;
	uint64_t addr;
	uint64_t len;
	uint64_t value;
};

struct uffd_child_result {
	int32_t index;    /* op index */
	int32_t sigbus;   /* number of SIGBUS caught during the op */
	int32_t si_code;  /* si_code of the last SIGBUS */
	int32_t reserved;
	int64_t ret;      /* >= 0 or -errno */
	uint64_t value;
};

/* Forks; the child runs ops and _exits. Returns an opaque handle or NULL (*err = -errno). */
UFFD_SHIM_EXPORT void *uffd_fork_start(const struct uffd_child_op *ops, int nops, int *err);
UFFD_SHIM_EXPORT int uffd_fork_pid(void *child);
/* Next result record, waiting up to timeout_ms. 1 = got one, 0 = the child finished (EOF),
 * -ETIMEDOUT, or -errno. */
UFFD_SHIM_EXPORT int uffd_fork_next(void *child, int timeout_ms, struct uffd_child_result *res);
/* Receives the fd sent by UFFD_CHILD_SEND_UFFD. Returns the fd (owned by the caller) or -errno. */
UFFD_SHIM_EXPORT int uffd_fork_recv_fd(void *child, int timeout_ms, uint64_t *addr);
/* Lets a child parked in UFFD_CHILD_WAIT_PARENT continue. */
UFFD_SHIM_EXPORT int uffd_fork_release(void *child);
/* Waits for the child to exit; kills it (SIGKILL) after timeout_ms. Returns the wait status
 * (as waitpid) or -errno; -ETIMEDOUT when it had to be killed. Frees the handle. */
UFFD_SHIM_EXPORT int uffd_fork_finish(void *child, int timeout_ms, int *status);

/* ============================ uffd_loop.c: the native twin loop =============================== */
/* (declared by the serving engine, issue 3) */

#endif /* UFFD_SHIM_H */
