/* uffd_access.c — faulting accessors and native worker threads.
 *
 * Every load or store that may hit uffd-registered memory happens here, never in managed code
 * (ARCHITECTURE.md rule 2). A worker thread lets a caller cause a fault and observe it (the uffd
 * message, fdinfo "pending") without blocking itself. */

#include "uffd_shim.h"
#include "uffd_internal.h"
#include "uffd_inline.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

uint64_t uffd_pattern_word(uint64_t seed, uint64_t index)
{
	/* splitmix64 of (seed, index): never all-zero pages, so a zero-fill is told from a copy. */
	uint64_t z = seed * 0x9E3779B97F4A7C15ULL + index + 0x632BE59BD9B4E019ULL;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

void uffd_pattern_fill(void *buf, uint64_t len, uint64_t seed, uint64_t first_index)
{
	uint64_t *w = buf;
	for (uint64_t i = 0; i < len / 8; i++)
		w[i] = uffd_pattern_word(seed, first_index + i);
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Moves len bytes through a pipe so that the kernel, not user code, touches addr. */
static int64_t kernel_copy(uint64_t addr, uint64_t len, uint64_t value, int kernel_writes)
{
	int p[2];
	int64_t ret;
	uint64_t buf[512];
	if (len == 0 || len > sizeof(buf))
		return -EINVAL;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	if (kernel_writes) {
		for (size_t i = 0; i < sizeof(buf) / 8; i++)
			buf[i] = value;
		if (write(p[1], buf, len) != (ssize_t)len) {
			ret = -errno;
			goto out;
		}
		do {
			ret = read(p[0], (void *)(uintptr_t)addr, len);
		} while (ret < 0 && errno == EINTR);
	} else {
		do {
			ret = write(p[1], (const void *)(uintptr_t)addr, len);
		} while (ret < 0 && errno == EINTR);
	}
	if (ret < 0)
		ret = -errno;
out:
	close(p[0]);
	close(p[1]);
	return ret;
}

static void run_one(const struct uffd_access_op *op, struct uffd_access_result *res)
{
	volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)op->addr;
	uint64_t stride = op->stride ? op->stride : 4096;
	int64_t t0 = now_ns();
	res->ret = 0;
	res->value = 0;
	switch (op->kind) {
	case UFFD_ACC_READ64:
		res->value = *p;
		break;
	case UFFD_ACC_WRITE64:
		*p = op->value;
		break;
	case UFFD_ACC_FILL:
		for (uint64_t i = 0; i < op->len / 8; i++)
			p[i] = uffd_pattern_word(op->value, i);
		break;
	case UFFD_ACC_VERIFY:
		for (uint64_t i = 0; i < op->len / 8; i++) {
			uint64_t got = p[i];
			if (got != uffd_pattern_word(op->value, i)) {
				res->ret = (int64_t)(i * 8 + 1);
				res->value = got;
				break;
			}
		}
		break;
	case UFFD_ACC_TOUCH_READ: {
		uint64_t sum = 0;
		for (uint64_t off = 0; off < op->len; off += stride)
			sum += *(volatile uint64_t *)(uintptr_t)(op->addr + off);
		res->value = sum;
		break;
	}
	case UFFD_ACC_TOUCH_WRITE:
		for (uint64_t off = 0; off < op->len; off += stride)
			*(volatile uint64_t *)(uintptr_t)(op->addr + off) = op->value;
		break;
	case UFFD_ACC_KERNEL_WRITE:
		res->ret = kernel_copy(op->addr, op->len, op->value, 1);
		break;
	case UFFD_ACC_KERNEL_READ:
		res->ret = kernel_copy(op->addr, op->len, 0, 0);
		break;
	default:
		res->ret = -EINVAL;
	}
	res->elapsed_ns = now_ns() - t0;
}

int uffd_access_run(const struct uffd_access_op *ops, int nops, struct uffd_access_result *results)
{
	int first = 0;
	for (int i = 0; i < nops; i++) {
		run_one(&ops[i], &results[i]);
		if (results[i].ret < 0 && first == 0)
			first = (int)results[i].ret;
	}
	return first;
}

/* ---- workers --------------------------------------------------------------------------------- */

#define MAX_SIG_SLOTS 64
static struct {
	_Atomic int tid;
	_Atomic int count;
} sig_slots[MAX_SIG_SLOTS];
static pthread_once_t sig_once = PTHREAD_ONCE_INIT;

static void on_sigusr1(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
	int tid = (int)syscall(SYS_gettid);
	for (int i = 0; i < MAX_SIG_SLOTS; i++)
		if (atomic_load(&sig_slots[i].tid) == tid) {
			atomic_fetch_add(&sig_slots[i].count, 1);
			return;
		}
}

static void install_sigusr1(void)
{
	uffd_catch_signal(SIGUSR1, on_sigusr1, SA_RESTART, NULL);
}

struct uffd_worker {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int nops;
	int cpu;
	_Atomic int tid;
	_Atomic int progress;
	int done;
	int done_fd; /* eventfd, readable once done is set: a waiter polls it beside the uffd */
	int slot;
	struct uffd_access_op *ops;
	struct uffd_access_result *results;
};

/* Only SIGUSR1 (the harness's signal op, counted above) and the synchronous signals of the access itself reach an
 * access worker. A user-mode fault waits interruptibly (reference §1.5): any process-directed signal the kernel picks
 * this thread for (SIGCHLD of a fork child, SIGINT, the runtime's) would wake it and re-run the access — after an
 * UNREGISTER that cleared its wp bit the write then completes, a wake no scenario asked for. */
static void block_async_signals(void)
{
	sigset_t set;
	sigfillset(&set);
	sigdelset(&set, SIGUSR1);
	sigdelset(&set, SIGBUS);
	sigdelset(&set, SIGSEGV);
	sigdelset(&set, SIGILL);
	sigdelset(&set, SIGFPE);
	sigdelset(&set, SIGTRAP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static void *worker_main(void *arg)
{
	struct uffd_worker *w = arg;
	block_async_signals();
	if (w->cpu >= 0)
		uffd_pin_thread(w->cpu);
	pthread_mutex_lock(&w->lock);
	atomic_store(&w->tid, (int)syscall(SYS_gettid));
	if (w->slot >= 0)
		atomic_store(&sig_slots[w->slot].tid, atomic_load(&w->tid));
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	for (int i = 0; i < w->nops; i++) {
		run_one(&w->ops[i], &w->results[i]);
		atomic_fetch_add(&w->progress, 1);
	}
	pthread_mutex_lock(&w->lock);
	w->done = 1;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	uint64_t one = 1;
	(void)!write(w->done_fd, &one, sizeof(one));
	return NULL;
}

void *uffd_worker_start(const struct uffd_access_op *ops, int nops, int cpu)
{
	struct uffd_worker *w;
	if (nops <= 0)
		return NULL;
	pthread_once(&sig_once, install_sigusr1);
	w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->done_fd < 0) {
		free(w);
		return NULL;
	}
	w->ops = calloc((size_t)nops, sizeof(*ops));
	w->results = calloc((size_t)nops, sizeof(*w->results));
	if (!w->ops || !w->results)
		goto fail;
	memcpy(w->ops, ops, (size_t)nops * sizeof(*ops));
	w->nops = nops;
	w->cpu = cpu;
	w->slot = -1;
	for (int i = 0; i < MAX_SIG_SLOTS; i++) {
		int expected = 0;
		/* -1 marks a claimed slot until the thread publishes its tid. */
		if (atomic_compare_exchange_strong(&sig_slots[i].tid, &expected, -1)) {
			atomic_store(&sig_slots[i].count, 0);
			w->slot = i;
			break;
		}
	}
	uffd_sync_init(&w->lock, &w->cond);
	if (uffd_thread_start(&w->thread, worker_main, w) != 0) {
		if (w->slot >= 0)
			atomic_store(&sig_slots[w->slot].tid, 0);
		goto fail;
	}
	return w;
fail:
	close(w->done_fd);
	free(w->ops);
	free(w->results);
	free(w);
	return NULL;
}

int uffd_worker_done_fd(void *worker) { return ((struct uffd_worker *)worker)->done_fd; }

int uffd_worker_tid(void *worker)
{
	struct uffd_worker *w = worker;
	pthread_mutex_lock(&w->lock);
	while (atomic_load(&w->tid) == 0)
		pthread_cond_wait(&w->cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
	return atomic_load(&w->tid);
}

int uffd_worker_progress(void *worker) { return atomic_load(&((struct uffd_worker *)worker)->progress); }

int uffd_worker_join(void *worker, int timeout_ms, struct uffd_access_result *results)
{
	struct uffd_worker *w = worker;
	if (!uffd_wait_done(&w->lock, &w->cond, &w->done, timeout_ms))
		return -ETIMEDOUT;
	pthread_join(w->thread, NULL);
	w->thread = 0;
	if (results)
		memcpy(results, w->results, (size_t)w->nops * sizeof(*results));
	return 0;
}

int uffd_worker_signal(void *worker, int sig)
{
	struct uffd_worker *w = worker;
	int tid = uffd_worker_tid(w);
	return syscall(SYS_tgkill, getpid(), tid, sig) < 0 ? -errno : 0;
}

int uffd_worker_signal_count(void *worker)
{
	struct uffd_worker *w = worker;
	return w->slot >= 0 ? atomic_load(&sig_slots[w->slot].count) : 0;
}

int uffd_worker_free(void *worker)
{
	struct uffd_worker *w = worker;
	int r = uffd_thread_reap(&w->lock, &w->cond, &w->done, w->thread);
	if (r != 0)
		return r;
	if (w->slot >= 0)
		atomic_store(&sig_slots[w->slot].tid, 0);
	close(w->done_fd);
	free(w->ops);
	free(w->results);
	free(w);
	return 0;
}
