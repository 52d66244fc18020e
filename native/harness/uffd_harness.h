/* uffd_harness.h — the ABI of libuffdharness.so: native code only the harness and the tests use (the
 * native twin loop, toucher threads, content verification, soak touchers). It is never part of the
 * binding's package. It builds on the shim's ABI (uffd_shim.h: the wait step, the statistics struct,
 * the ioctl wrappers, the pattern) and links against libuffdshim.so.
 *
 * Every export returns >= 0 or -errno like the shim's. The harness's managed declarations
 * (src/UffdNative.Harness/Native) check their layout against uffd_harness_layout_* at first use. */
#ifndef UFFD_HARNESS_H
#define UFFD_HARNESS_H

#include "../uffd_shim.h"

#define UFFD_HARNESS_EXPORT __attribute__((visibility("default")))

/* Bumped whenever a signature below changes; the harness refuses a library of another version. */
#define UFFD_HARNESS_ABI_VERSION 2

/* ================================ uffd_harness_layout.c ======================================= */

UFFD_HARNESS_EXPORT int uffd_harness_abi_version(void);
UFFD_HARNESS_EXPORT int uffd_harness_layout_count(void);
UFFD_HARNESS_EXPORT int uffd_harness_layout_get(int index, const char **name, int64_t *value);

/* ============================ uffd_loop.c: the native twin loop =============================== */
/*
 * The managed FaultServer (src/UffdNative/Serving) and this loop run the same algorithm, so both can
 * be measured side by side in one process:
 *   - wait: a non-blocking read first (messages that arrived while resolving cost no poll), then
 *     poll(uffd, stop eventfd) and read again, many messages per read into a reused buffer;
 *   - events are applied before the faults of the same read (REMOVE may arrive after a fault it
 *     causally precedes); faults are sorted, de-duplicated and coalesced into runs of contiguous
 *     pages of one kind, and each run is resolved with one ioctl that wakes it. When a run needs
 *     several ioctls (partial progress, EEXIST inside, chunked sources) the later ones use DONTWAKE
 *     and the run is woken once at the end;
 *   - errno rules: EEXIST -> wake anyway; EAGAIN without progress -> read pending events, defer,
 *     retry with a bounded poll timeout; ENOENT -> range gone, wake and drop; ESRCH -> the
 *     owner is gone, stop cleanly; ENOMEM -> an allocation failure: UFFD_ENOMEM_RETRIES retries with
 *     backoff, then stop (UFFD_LOOP_EXIT_ALLOC_FAILURE); read()==0 or POLLHUP -> stop; anything else -> stop with the
 *     cause. Either way the loop closes the uffd when it ends, so no faulting thread stays blocked.
 * Statistics (struct uffd_loop_stats) are written by the loop thread only and may be copied by any
 * thread at any time; each field is one aligned 64-bit word.
 */

/* The histogram of struct uffd_hist (uffd_shim.h), computed in C (a test compares it with the
 * managed LatencyHistogram). */
UFFD_HARNESS_EXPORT int uffd_hist_index(uint64_t value);
UFFD_HARNESS_EXPORT void uffd_hist_record(struct uffd_hist *h, uint64_t value);

/* The native loop's policies (the managed ones of the same name). It serves one range with one
 * policy, handles every event like the managed loop (REMAP moves the range, REMOVE marks pages to be
 * served as zero, UNMAP forgets) except FORK, whose child uffd it always closes (the managed server
 * can also serve it). */
#define UFFD_POLICY_MISSING_COPY 1   /* COPY from source + offset */
#define UFFD_POLICY_MISSING_ZERO 2   /* ZEROPAGE */
#define UFFD_POLICY_WP_UNPROTECT 3   /* WRITEPROTECT(0) */
#define UFFD_POLICY_WP_SNAPSHOT 4    /* copy the page to snapshot + offset, then WRITEPROTECT(0) */
#define UFFD_POLICY_MINOR_CONTINUE 5 /* CONTINUE */
#define UFFD_POLICY_READ_AHEAD 6     /* COPY of the faulting run plus read_ahead pages */
#define UFFD_POLICY_ASYNC 7          /* WP_ASYNC: no fault should ever arrive; one is an error */


struct uffd_loop_config {
	int32_t uffd;         /* non-blocking; owned by the loop from uffd_loop_start on (closed at its end) */
	int32_t policy;       /* UFFD_POLICY_* */
	int32_t cpu;          /* pin the loop thread (< 0: not pinned) */
	int32_t max_msgs;     /* messages per read (1..1024) */
	int32_t retry_ms;     /* poll timeout while faults are deferred */
	int32_t reserved;
	uint64_t range_start; /* the served range (moved by REMAP, forgotten by UNMAP) */
	uint64_t range_len;
	uint64_t source;      /* MISSING_COPY/READ_AHEAD: address of the source bytes of range_start */
	uint64_t snapshot;    /* WP_SNAPSHOT: store for range_len bytes */
	uint64_t read_ahead;  /* READ_AHEAD: extra pages per fault */
};

/* Starts the loop thread. NULL on failure (*err = -errno); the uffd is then not taken. */
UFFD_HARNESS_EXPORT void *uffd_loop_start(const struct uffd_loop_config *cfg, int *err);
/* Copies the statistics (any time, from any thread). */
UFFD_HARNESS_EXPORT int uffd_loop_stats(void *loop, struct uffd_loop_stats *out);
/* Requests a stop and waits up to timeout_ms (< 0: forever) for the thread. 0 when it ended
 * (stats final), -ETIMEDOUT otherwise. */
UFFD_HARNESS_EXPORT int uffd_loop_stop(void *loop, int timeout_ms);
/* Frees an ended loop; -EBUSY (and nothing freed) while its thread runs. */
UFFD_HARNESS_EXPORT int uffd_loop_free(void *loop);

/* A native toucher thread for measurements: touches one word of every page of [addr, addr+len) in
 * order, recording each touch's latency. It starts when released (uffd_toucher_go), so several
 * touchers and a loop begin together. */
#define UFFD_TOUCH_READ 1  /* reads word (i % 512) of page i */
#define UFFD_TOUCH_WRITE 2 /* writes word (i % 512) of page i := uffd_pattern_word(seed, i) */
struct uffd_touch_config {
	uint64_t addr;
	uint64_t pages;
	uint64_t first_page; /* region index i of the page at addr */
	uint64_t seed;
	int32_t mode;        /* UFFD_TOUCH_* */
	int32_t cpu;         /* < 0: not pinned */
};
struct uffd_touch_result {
	int64_t start_ns;    /* CLOCK_MONOTONIC */
	int64_t end_ns;
	uint64_t pages;
	uint64_t checksum;   /* sum of the words read */
	struct uffd_thread_usage usage;
	struct uffd_hist latency;
};
UFFD_HARNESS_EXPORT void *uffd_toucher_start(const struct uffd_touch_config *cfg);
UFFD_HARNESS_EXPORT int uffd_toucher_go(void *toucher);
UFFD_HARNESS_EXPORT uint64_t uffd_toucher_progress(void *toucher);
/* 0 when finished (result copied), -ETIMEDOUT otherwise. */
UFFD_HARNESS_EXPORT int uffd_toucher_join(void *toucher, int timeout_ms, struct uffd_touch_result *out);
/* -EBUSY (nothing freed) while the thread runs. */
UFFD_HARNESS_EXPORT int uffd_toucher_free(void *toucher);

/* Verifies pages [0, pages) at addr: word w of page i is pattern(base_seed, i*512 + w) (base
 * UFFD_VERIFY_PATTERN) or 0 (UFFD_VERIFY_ZERO), except that with touched != 0 word (i % 512) is
 * pattern(touch_seed, i). Returns -1 when every page matches, else the first bad page index
 * (*got = the word found, *word = its index in the page). Never call it on memory a fault could block. */
#define UFFD_VERIFY_ZERO 0
#define UFFD_VERIFY_PATTERN 1
struct uffd_verify_spec {
	uint64_t addr;
	uint64_t pages;
	uint64_t base_seed;
	uint64_t touch_seed;
	int32_t base;     /* UFFD_VERIFY_* */
	int32_t touched;
};
UFFD_HARNESS_EXPORT int64_t uffd_verify_pages(const struct uffd_verify_spec *spec, uint64_t *got, uint64_t *word);

/* ============================ uffd_soak.c: soak toucher threads =============================== */
/*
 * Native touchers for `uffdnative soak`: page p of every region belongs to thread p % threads; the
 * owner writes unique stamps into word (p % 512) and verifies whole pages (the other words hold the
 * region's base content, or zero once legally discarded). Discards go through uffd_soak_advise,
 * which brackets the madvise with a per-page sequence count; moves (mremap) happen under the
 * region's write lock (uffd_soak_lock). See the file's header for the exact rules.
 */
#define UFFD_SOAK_MAX_REGIONS 8
#define UFFD_SOAK_MAX_THREADS 64

struct uffd_soak_region_config {
	uint64_t addr;      /* where the region is mapped now */
	uint64_t pages;
	uint64_t seed;      /* base pattern seed (base == UFFD_VERIFY_PATTERN) */
	int32_t base;       /* UFFD_VERIFY_ZERO or UFFD_VERIFY_PATTERN */
	int32_t may_remove; /* discards (REMOVE events) may zero a page */
	int32_t weight;     /* share of the random ops */
	int32_t write_pct;  /* percentage of random ops that write a stamp */
};

struct uffd_soak_config {
	int32_t threads;
	int32_t regions;
	uint64_t seed;
	struct uffd_soak_region_config region[UFFD_SOAK_MAX_REGIONS];
};

#define UFFD_SOAK_RUNNING 0
#define UFFD_SOAK_PARKED 1
#define UFFD_SOAK_DONE 2

#define UFFD_SOAK_SWEEP_READ 0  /* verify every owned page */
#define UFFD_SOAK_SWEEP_WRITE 1 /* stamp every owned page */

#define UFFD_SOAK_LOST 1
#define UFFD_SOAK_CORRUPT 2

struct uffd_soak_thread_stats {
	uint64_t ops;          /* accesses made */
	uint64_t reads;        /* page reads (including retried ones) */
	uint64_t writes;       /* stamps written */
	uint64_t verified;     /* pages whose content was verified */
	uint64_t inconclusive; /* verifications abandoned because discards kept racing them */
	uint64_t lost;         /* stamps that vanished with no discard since they were written */
	uint64_t corrupt;      /* any other content that is not what the rules allow */
	uint64_t sweep_pages;  /* pages covered by sweeps */
	int64_t op_start_ns;   /* CLOCK_MONOTONIC start of the access in progress, 0 when none */
	uint64_t op_addr;      /* its address */
	int32_t state;         /* UFFD_SOAK_RUNNING / PARKED / DONE */
	int32_t tid;
};

struct uffd_soak_failure {
	int32_t kind;   /* UFFD_SOAK_LOST / UFFD_SOAK_CORRUPT */
	int32_t region;
	int32_t thread;
	int32_t reserved;
	uint64_t page;
	uint64_t word;
	uint64_t got;
	uint64_t expected;
};

/* Starts the threads parked; NULL on failure (*err = -errno). */
UFFD_HARNESS_EXPORT void *uffd_soak_start(const struct uffd_soak_config *cfg, int *err);
/* Lets the threads run (and resumes them after a pause). */
UFFD_HARNESS_EXPORT int uffd_soak_go(void *soak);
/* Parks every thread between accesses; 0 when all are parked, -ETIMEDOUT otherwise (one is blocked). */
UFFD_HARNESS_EXPORT int uffd_soak_pause(void *soak, int timeout_ms);
/* Requests a sweep (regions in mask, each with its UFFD_SOAK_SWEEP_* kind) before the threads go on
 * with random ops; returns its generation. uffd_soak_sweeps_done counts threads that finished it. */
UFFD_HARNESS_EXPORT int uffd_soak_sweep(void *soak, uint32_t mask, const int32_t *kinds);
UFFD_HARNESS_EXPORT int uffd_soak_sweeps_done(void *soak, uint32_t gen);
/* Stops and joins the threads; -ETIMEDOUT when one is still inside an access. */
UFFD_HARNESS_EXPORT int uffd_soak_stop(void *soak, int timeout_ms);
UFFD_HARNESS_EXPORT int uffd_soak_thread_stats(void *soak, int index, struct uffd_soak_thread_stats *out);
/* 1 and the thread's first failure, or 0 when it had none. */
UFFD_HARNESS_EXPORT int uffd_soak_failure(void *soak, int index, struct uffd_soak_failure *out);
UFFD_HARNESS_EXPORT int64_t uffd_soak_now_ns(void);
UFFD_HARNESS_EXPORT uint64_t uffd_soak_region_addr(void *soak, int region);
/* The region's lock: touchers hold it shared around each access; a mover takes it exclusively. */
UFFD_HARNESS_EXPORT int uffd_soak_lock(void *soak, int region, int write);
UFFD_HARNESS_EXPORT int uffd_soak_unlock(void *soak, int region);
/* After a move (under the exclusive lock): where the region is now. */
UFFD_HARNESS_EXPORT int uffd_soak_set_base(void *soak, int region, uint64_t addr);
/* madvise(advice) over pages [first, first+count) under the shared lock; with discards != 0 each
 * page's sequence count is odd for the duration (the content may be zeroed). */
UFFD_HARNESS_EXPORT int uffd_soak_advise(void *soak, int region, uint64_t first, uint64_t count, int advice, int discards);
/* -EBUSY while a thread runs. */
UFFD_HARNESS_EXPORT int uffd_soak_free(void *soak);

/* ================================ uffd_signals.c: signal storms ============================= */

/* Starts a thread sending SIGRTMIN+6 every period_us to each thread of this process named comm (its
 * /proc/self/task/TID/comm), with a counting handler installed without SA_RESTART. NULL on failure. */
UFFD_HARNESS_EXPORT void *uffd_signal_storm_start(const char *comm, int period_us);
/* Stops and frees the storm: the signals sent; handled_out: how many the handler counted (process-wide,
 * cumulative); targets_out: the most threads found by that name at once. */
UFFD_HARNESS_EXPORT int64_t uffd_signal_storm_stop(void *storm, int64_t *handled_out, int64_t *targets_out);

/* ============================ uffd_pin.c: io_uring long-term pins ================================ */
/*
 * A writable FOLL_LONGTERM pin of [addr, addr+len) by registering it as an io_uring fixed buffer
 * (io_uring_setup + IORING_REGISTER_BUFFERS, raw syscalls). uffd_pin returns the ring fd (the pin's
 * handle) or -errno, and in *stage which call failed. The pin faults every page in as a kernel-mode
 * write first (uffd messages included: the calling thread blocks until they are resolved).
 * uffd_unpin unregisters the buffers (unpinning them) and closes the ring.
 * In a fork child (UFFD_CHILD_CALL, uffd_child_fn_of below): UFFD_CHILD_FN_PIN pins addr, len (value <- stage);
 * UFFD_CHILD_FN_UNPIN_ALL unregisters every ring that child pinned (value <- how many). */
#define UFFD_PIN_STAGE_SETUP 1    /* io_uring_setup failed: io_uring unavailable */
#define UFFD_PIN_STAGE_REGISTER 2 /* IORING_REGISTER_BUFFERS failed: the pages could not be pinned */
#define UFFD_PIN_CHILD_MAX 16

UFFD_HARNESS_EXPORT int uffd_pin(uint64_t addr, uint64_t len, int *stage);
UFFD_HARNESS_EXPORT int uffd_unpin(int ring);

/* ============================ uffd_child_vm.c: a fork child's mremap and madvise ================== */
/*
 * The fork child's own address space changes, as upstream's faulting_process makes them in its child
 * (uffd-unit-tests.c, the events cases):
 *   UFFD_CHILD_FN_MREMAP   mremap(addr, len, len, MAYMOVE|FIXED, addr + arg * 4096): arg is the destination's
 *                          signed distance from addr in 4 KiB pages; value <- the new address.
 *   UFFD_CHILD_FN_MADVISE  madvise(addr, len, arg).
 * Both block while a uffd event they raise (REMAP, REMOVE) is unread, like any caller (reference §1.6). */

/* ============================ uffd_child_sigbus.c: upstream's sigbus loop in a fork child ========== */
/*
 * UFFD_CHILD_FN_SIGBUS_LOOP runs upstream's sigbus loop
 * (uffd-unit-tests.c faulting_process(1, wp)) over [addr, addr+len) in a fork child, on a uffd of the child's own
 * with FEATURE_SIGBUS: register MISSING (|WP with UFFD_CHILD_SIGBUS_WP), then per page read (SIGBUS: COPY a page
 * whose first word is UFFD_CHILD_SIGBUS_TAG_BASE + (mapping << 8) + page — HandlerPolicy.CopyTag, the mapping index
 * in arg bits 8..15 — MODE_WP with wp, retry), check the word, write it back (with wp a SIGBUS: un-protect, retry).
 * arg: UFFD_CHILD_SIGBUS_WP, UFFD_CHILD_SIGBUS_WP_FILE (ask WP_HUGETLBFS_SHMEM too), UFFD_CHILD_SIGBUS_HUGE (2 MiB
 * pages). Returns 0 with value = MISSING signals | WP signals << 32, or -errno of the open, API, REGISTER or an
 * ioctl of the loop, -EPROTO for a repeated signal, -EIO for a wrong word (value = the page). */
#define UFFD_CHILD_SIGBUS_WP 1
#define UFFD_CHILD_SIGBUS_WP_FILE 2
#define UFFD_CHILD_SIGBUS_HUGE 4
#define UFFD_CHILD_SIGBUS_TAG_BASE 0xC0000

/* ============================ uffd_child_fn.c: the harness's UFFD_CHILD_CALL steps =================== */
/*
 * uffd_child_fn_of gives the uffd_child_fn (an UFFD_CHILD_CALL op's value) for one of the steps above, 0 for an
 * unknown one. The functions themselves are internal to this library. */
#define UFFD_CHILD_FN_PIN 0
#define UFFD_CHILD_FN_UNPIN_ALL 1
#define UFFD_CHILD_FN_MREMAP 2
#define UFFD_CHILD_FN_MADVISE 3
#define UFFD_CHILD_FN_SIGBUS_LOOP 4

UFFD_HARNESS_EXPORT uint64_t uffd_child_fn_of(int which);

int64_t uffd_child_pin(uint64_t addr, uint64_t len, int32_t arg, uint64_t *value);
int64_t uffd_child_unpin_all(uint64_t addr, uint64_t len, int32_t arg, uint64_t *value);
int64_t uffd_child_mremap(uint64_t addr, uint64_t len, int32_t arg, uint64_t *value);
int64_t uffd_child_madvise(uint64_t addr, uint64_t len, int32_t arg, uint64_t *value);
int64_t uffd_child_sigbus_loop(uint64_t addr, uint64_t len, int32_t arg, uint64_t *value);

#endif /* UFFD_HARNESS_H */
