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
/* An eventfd (non-blocking, close-on-exec, owned by the worker) that becomes readable when the
 * worker has finished: poll it together with the uffd instead of polling the uffd on a timer. */
UFFD_SHIM_EXPORT int uffd_worker_done_fd(void *worker);
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
	UFFD_CHILD_CALL = 14,      /* ret <- fn(addr, len, arg, &value) with fn = (uffd_child_fn)value: a function
	                            * of a library the parent loaded (the harness's io_uring pin), run in the child.
	                            * It must be async-signal-safe: raw syscalls and static storage only. */
};

/* The function an UFFD_CHILD_CALL op runs: returns >= 0 or -errno, may set *value. */
typedef int64_t (*uffd_child_fn)(uint64_t addr, uint64_t len, int32_t arg, uint64_t *value);

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

/* ============================ uffd_wait.c: what every fault loop shares ======================= */
/*
 * The managed FaultServer (src/UffdNative/Serving) writes these statistics and waits with
 * uffd_loop_wait; the harness's native twin loop (native/harness, libuffdharness.so) writes the same
 * struct, so one reader serves both. The loop algorithm itself is described in
 * native/harness/uffd_harness.h.
 */

/* Log-linear latency histogram: values below 128 have their own bucket, above that 64 buckets per
 * power of two (relative error <= 1/64), up to 2^41 ns; larger values go into the last bucket.
 * index(v) = s * 64 + (v >> s) with s = max(0, msb(v) - 6). */
#define UFFD_HIST_BUCKETS 2304
struct uffd_hist {
	uint64_t count;
	uint64_t sum;
	uint64_t max;
	uint64_t buckets[UFFD_HIST_BUCKETS];
};

/* Fault kinds (index into uffd_loop_stats.faults) and event kinds (index into .events). */
#define UFFD_KIND_MISSING 0
#define UFFD_KIND_WP 1
#define UFFD_KIND_MINOR 2
#define UFFD_EV_FORK 0
#define UFFD_EV_REMAP 1
#define UFFD_EV_REMOVE 2
#define UFFD_EV_UNMAP 3

/* Why a loop ended (uffd_loop_stats.exit_reason). */
#define UFFD_LOOP_RUNNING 0
#define UFFD_LOOP_EXIT_STOPPED 1      /* stop was requested */
#define UFFD_LOOP_EXIT_OWNER_GONE 2   /* ESRCH: the process owning the memory exited */
#define UFFD_LOOP_EXIT_EOF 3          /* read() returned 0 or poll reported POLLHUP */
#define UFFD_LOOP_EXIT_ERROR 4        /* an unrecoverable error: error/error_op say which */
#define UFFD_LOOP_EXIT_ALLOC_FAILURE 5 /* ENOMEM from a fill, still after UFFD_ENOMEM_RETRIES retries */
/* ENOMEM from a fill ioctl is an allocation failure (the folio or its memcg charge), never the owner's
 * exit (that is ESRCH, from mmget_not_zero): a loop retries the step this many times, sleeping 1, 2, 4,
 * ... ms between tries, then ends with UFFD_LOOP_EXIT_ALLOC_FAILURE. */
#define UFFD_ENOMEM_RETRIES 5

/* Where an error happened (uffd_loop_stats.error_op). */
#define UFFD_LOOP_OP_READ 1
#define UFFD_LOOP_OP_POLL 2
#define UFFD_LOOP_OP_RESOLVE 3
#define UFFD_LOOP_OP_WAKE 4
#define UFFD_LOOP_OP_POLICY 5   /* the policy failed (managed: it threw) */
#define UFFD_LOOP_OP_EVENT 6
#define UFFD_LOOP_OP_NO_POLICY 7 /* a fault of a kind no policy serves */

struct uffd_loop_stats {
	uint64_t faults[3];        /* page-fault messages by kind (UFFD_KIND_*) */
	uint64_t events[4];        /* non-cooperative events by kind (UFFD_EV_*) */
	uint64_t messages;         /* messages read */
	uint64_t reads;            /* read() calls */
	uint64_t polls;            /* poll() calls */
	uint64_t batches;          /* reads that returned at least one message */
	uint64_t max_batch;        /* most messages in one read */
	uint64_t runs;             /* contiguous runs resolved */
	uint64_t resolve_ioctls;   /* COPY/ZEROPAGE/WRITEPROTECT/CONTINUE calls */
	uint64_t wake_ioctls;      /* explicit UFFDIO_WAKE calls */
	uint64_t pages_resolved;   /* pages the loop installed, unprotected or continued */
	uint64_t eexist;           /* resolutions answered EEXIST (another path won: woken anyway) */
	uint64_t eagain;           /* resolutions deferred on EAGAIN without progress */
	uint64_t partial;          /* resolutions with partial progress */
	uint64_t enoent;           /* resolutions answered ENOENT (range gone): woken and dropped */
	uint64_t deferred_max;     /* most faults deferred at once */
	uint64_t snapshot_pages;   /* pages copied to a snapshot store */
	uint64_t zero_pages;       /* pages served as zero because a REMOVE event covered them */
	int64_t loop_utime_ns;     /* the loop thread's CPU time and context switches (set at exit) */
	int64_t loop_stime_ns;
	int64_t loop_vcsw;
	int64_t loop_ivcsw;
	int32_t state;             /* 0 created, 1 running, 2 exited */
	int32_t exit_reason;       /* UFFD_LOOP_EXIT_* */
	int32_t error;             /* errno of the failure, or 0 */
	int32_t error_op;          /* UFFD_LOOP_OP_* */
	struct uffd_hist service;  /* per fault: ns from the read that returned it to its resolution */
};

/* What uffd_loop_wait reports besides the message count (UFFD_POLL_* bits plus these). */
#define UFFD_WAIT_EOF 16

/* One wait of the loop: read (non-blocking) first; when nothing is pending and timeout_ms != 0,
 * poll the uffd and stopfd and read again. Returns the number of messages (> 0), 0 when none (then
 * *mask says why: UFFD_POLL_STOP, UFFD_POLL_HUP, UFFD_POLL_ERR, UFFD_WAIT_EOF, or nothing on a
 * timeout), or -errno. Counts reads/polls/messages/batches into stats (may be NULL). */
UFFD_SHIM_EXPORT int uffd_loop_wait(int fd, int stopfd, int timeout_ms, struct uffd_msg *buf, int max, struct uffd_loop_stats *stats, int *mask);

struct uffd_thread_usage {
	int64_t utime_ns;
	int64_t stime_ns;
	int64_t vcsw; /* voluntary context switches */
	int64_t ivcsw;
	int64_t minflt; /* page faults the kernel resolved without I/O (uffd faults count too) */
	int64_t majflt;
};
/* getrusage(RUSAGE_THREAD) of the calling thread. */
UFFD_SHIM_EXPORT int uffd_thread_usage(struct uffd_thread_usage *u);

/* pidfd_open(pid, 0) (5.3+): readable once the process has exited. Returns the fd or -errno. */
UFFD_SHIM_EXPORT int uffd_pidfd_open(int pid);

/* memcpy between ordinary memory and a WP-registered page (the snapshot copy of WpSnapshot): a read
 * of a write-protected page never produces a uffd message, but managed code must still never touch
 * registered memory (ARCHITECTURE.md rule 2), so the copy happens here. */
UFFD_SHIM_EXPORT void uffd_copy_memory(void *dst, const void *src, uint64_t len);

/* ============================ uffd_external.c: handing a uffd to another process ============== */
/*
 * The external handler protocol (src/UffdNative/Serving/External) runs over a Unix stream socket:
 * length-prefixed JSON frames, the first of which carries the uffd (and any memfds) as SCM_RIGHTS.
 * These are its native pieces; the framing and the JSON are managed.
 */
#define UFFD_SOCK_MAX_FDS 16

/* socket(AF_UNIX, SOCK_STREAM) bound to path and listening. Returns the fd or -errno (EADDRINUSE when
 * the path exists: the caller decides whether a stale socket file may be removed). */
UFFD_SHIM_EXPORT int uffd_sock_listen(const char *path, int backlog);
/* Waits up to timeout_ms (< 0: forever) for a connection. Returns the connected fd, -ETIMEDOUT or -errno. */
UFFD_SHIM_EXPORT int uffd_sock_accept(int listen_fd, int timeout_ms);
UFFD_SHIM_EXPORT int uffd_sock_connect(const char *path);
/* Sends all len bytes; the nfds descriptors (<= UFFD_SOCK_MAX_FDS) ride with the first byte. */
UFFD_SHIM_EXPORT int uffd_sock_send(int sock, const void *buf, int len, const int *fds, int nfds);
/* One recvmsg of up to len bytes after waiting up to timeout_ms (< 0: no wait). Returns the byte count
 * (0 at end of file), -ETIMEDOUT or -errno; descriptors received are stored in fds (*nfds of them,
 * close-on-exec; any beyond maxfds are closed). */
UFFD_SHIM_EXPORT int uffd_sock_recv(int sock, void *buf, int len, int *fds, int maxfds, int *nfds, int timeout_ms);
struct uffd_peer_cred {
	int32_t pid;
	int32_t uid;
	int32_t gid;
};
/* SO_PEERCRED: the process at the other end (as of connect/listen). */
UFFD_SHIM_EXPORT int uffd_sock_peer(int sock, struct uffd_peer_cred *out);
UFFD_SHIM_EXPORT int uffd_sock_shutdown(int sock);
/* pidfd_send_signal(2) (5.1+). */
UFFD_SHIM_EXPORT int uffd_pidfd_send_signal(int pidfd, int sig);
/* tgkill(2): a signal to one thread of a process (a fault message's ptid with THREAD_ID). */
UFFD_SHIM_EXPORT int uffd_tgkill(int tgid, int tid, int sig);
/* process_vm_readv of [remote, remote+len) of pid into local. Returns the bytes read (a short count
 * when part of the range could not be read) or -errno. Never call it on memory registered MISSING or
 * MINOR with a uffd the caller itself serves: the read would fault on the caller's own loop. */
UFFD_SHIM_EXPORT int64_t uffd_process_read(int pid, void *local, uint64_t remote, uint64_t len);


/* ---- serving another process safely (uffdnative serve, docs/security.md) ----------------------- */

/* Like uffd_sock_listen, but the socket file gets mode (e.g. 0600) before the socket listens: a
 * connect() in between is refused (not listening yet), so no client ever reaches it under a mode the
 * umask chose. */
UFFD_SHIM_EXPORT int uffd_sock_listen_mode(const char *path, int backlog, int mode);
/* uffd_sock_send with a bound: every byte must leave within timeout_ms (< 0: no bound), or -ETIMEDOUT
 * (a peer that never reads cannot hold the sender). After a timeout the stream is unusable. */
UFFD_SHIM_EXPORT int uffd_sock_send_timed(int sock, const void *buf, int len, const int *fds, int nfds, int timeout_ms);
/* SO_PEERPIDFD (6.5+): a pidfd of the peer process as of connect(), race-free. -ENOPROTOOPT before 6.5. */
UFFD_SHIM_EXPORT int uffd_sock_peer_pidfd(int sock);
/* 1 when fd is a listening AF_UNIX stream socket (a descriptor systemd passed), 0 when not, or -errno. */
UFFD_SHIM_EXPORT int uffd_sock_is_unix_listener(int fd);

/* What the kernel says about a descriptor or a path: fstat/lstat, fstatfs, F_GET_SEALS, F_GETFL. */
struct uffd_file_info {
	uint32_t mode;     /* st_mode */
	uint32_t uid;
	uint32_t gid;
	int32_t seals;     /* F_GET_SEALS, or -errno (EINVAL: not a memfd/shmem file) */
	int64_t size;
	uint64_t dev;
	uint64_t ino;
	int64_t fs_type;   /* statfs f_type (TMPFS_MAGIC 0x01021994, HUGETLBFS_MAGIC 0x958458f6, ...) */
	int32_t fl;        /* F_GETFL (O_NONBLOCK, O_ACCMODE) */
	int32_t pad;
};
UFFD_SHIM_EXPORT int uffd_fd_info(int fd, struct uffd_file_info *out);
/* lstat (follow = 0) or stat of a path, fs_type 0, seals -EINVAL, fl 0. */
UFFD_SHIM_EXPORT int uffd_path_info(const char *path, int follow, struct uffd_file_info *out);
/* The target of /proc/self/fd/FD ("anon_inode:[userfaultfd]", "pipe:[123]", "/memfd:x (deleted)", ...),
 * NUL-terminated in buf. Returns its length or -errno. */
UFFD_SHIM_EXPORT int uffd_fd_link(int fd, char *buf, int len);
/* A directory opened O_PATH|O_DIRECTORY|O_CLOEXEC (no symlink at the last component). */
UFFD_SHIM_EXPORT int uffd_open_dir(const char *path);
/* openat2(dirfd, path, O_RDONLY|O_NONBLOCK|O_NOCTTY|O_CLOEXEC, RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|
 * RESOLVE_NO_MAGICLINKS) (5.6+): a file strictly beneath dirfd, opened without ever blocking (a FIFO
 * opens at once) and without following any symlink. Returns the fd or -errno (EXDEV: escapes, ELOOP: a
 * symlink, ENOSYS: no openat2). */
UFFD_SHIM_EXPORT int uffd_open_beneath(int dirfd, const char *path);
/* The lock beside a socket path: open(O_CREAT|O_RDWR|O_NOFOLLOW|O_CLOEXEC, 0600) + flock(LOCK_EX|LOCK_NB),
 * checked to be still the file at path (a holder that removed it between open and flock is detected and
 * the open retried). Returns the fd, -EWOULDBLOCK when another process holds it, or -errno. */
UFFD_SHIM_EXPORT int uffd_lock_path(const char *path);
/* pidfd of the parent if it is still parent_pid, watched to end with it: -ESRCH when it is gone. */
UFFD_SHIM_EXPORT int uffd_parent_pidfd(int parent_pid);
/* poll(pidfd, 0): 1 when the process has exited, 0 when it runs, or -errno. */
UFFD_SHIM_EXPORT int uffd_pidfd_exited(int pidfd);

#endif /* UFFD_SHIM_H */
