/* uffd_loop.c — the native twin of the managed FaultServer (the benchmark's yardstick), plus the
 * measurement helpers (the histogram, toucher threads, content verification). Part of
 * libuffdharness.so, never of the binding's libuffdshim.so: it calls the shim's wait step
 * (uffd_wait.c) and ioctl wrappers through the shim's exported ABI.
 *
 * The algorithm is described in uffd_harness.h ("the native twin loop"); the managed loop
 * (src/UffdNative/Serving/FaultServer.cs) follows it step for step so that `uffdnative bench`
 * compares two implementations of one design, not two designs. */

#include "uffd_harness.h"
#include "../uffd_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096ULL
#define WORDS_PER_PAGE 512ULL

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- histogram ------------------------------------------------------------------------------- */

int uffd_hist_index(uint64_t v)
{
	if (v < 128)
		return (int)v;
	int msb = 63 - __builtin_clzll(v);
	int s = msb - 6;
	int idx = s * 64 + (int)(v >> s);
	return idx < UFFD_HIST_BUCKETS ? idx : UFFD_HIST_BUCKETS - 1;
}

void uffd_hist_record(struct uffd_hist *h, uint64_t v)
{
	h->buckets[uffd_hist_index(v)]++;
	h->count++;
	h->sum += v;
	if (v > h->max)
		h->max = v;
}

/* ---- the loop -------------------------------------------------------------------------------- */

struct pending {
	uint64_t addr;
	int64_t t0;
	int32_t kind;
	int32_t reserved;
};

struct uffd_loop {
	struct uffd_loop_config cfg;
	pthread_t thread;
	int stopfd;
	_Atomic int stop;
	_Atomic int done;
	struct uffd_loop_stats st;
	struct uffd_msg *msgs;
	struct pending *work;
	int nwork, capwork;
	uint64_t *removed;   /* pages of the range a REMOVE event dropped: served as zero */
	uint64_t *saved;     /* WP_SNAPSHOT: pages already copied */
	uint64_t range_pages;
	int stopping;        /* 1 once the loop decided to end */
};

static inline int bit_get(const uint64_t *b, uint64_t i) { return (int)((b[i >> 6] >> (i & 63)) & 1); }
static inline void bit_set(uint64_t *b, uint64_t i) { b[i >> 6] |= 1ULL << (i & 63); }
static inline void bit_clear(uint64_t *b, uint64_t i) { b[i >> 6] &= ~(1ULL << (i & 63)); }

static void loop_fail(struct uffd_loop *L, int reason, int err, int op)
{
	if (L->st.exit_reason == UFFD_LOOP_RUNNING) {
		L->st.exit_reason = reason;
		L->st.error = err;
		L->st.error_op = op;
	}
	L->stopping = 1;
}

static int in_range(const struct uffd_loop *L, uint64_t addr)
{
	return addr >= L->cfg.range_start && addr - L->cfg.range_start < L->cfg.range_len;
}

static void on_event(struct uffd_loop *L, const struct uffd_msg *m)
{
	switch (m->event) {
	case UFFD_EVENT_FORK:
		/* The native twin does not serve children: close the child's uffd (its ranges become
		 * ordinary memory in the child). */
		L->st.events[UFFD_EV_FORK]++;
		close((int)m->arg.fork.ufd);
		break;
	case UFFD_EVENT_REMAP:
		L->st.events[UFFD_EV_REMAP]++;
		/* The served range moves with the mapping when the move covers its start. */
		if (m->arg.remap.from <= L->cfg.range_start && L->cfg.range_start - m->arg.remap.from < m->arg.remap.len)
			L->cfg.range_start = m->arg.remap.to + (L->cfg.range_start - m->arg.remap.from);
		break;
	case UFFD_EVENT_REMOVE:
		L->st.events[UFFD_EV_REMOVE]++;
		for (uint64_t a = m->arg.remove.start & ~(PAGE - 1); a < m->arg.remove.end; a += PAGE)
			if (in_range(L, a))
				bit_set(L->removed, (a - L->cfg.range_start) / PAGE);
		break;
	case UFFD_EVENT_UNMAP:
		L->st.events[UFFD_EV_UNMAP]++;
		/* Forget the range when it is unmapped from its start; a tail unmap shortens it. */
		if (m->arg.remove.start <= L->cfg.range_start && m->arg.remove.end > L->cfg.range_start)
			L->cfg.range_len = 0;
		else if (in_range(L, m->arg.remove.start))
			L->cfg.range_len = m->arg.remove.start - L->cfg.range_start;
		break;
	default:
		loop_fail(L, UFFD_LOOP_EXIT_ERROR, EPROTO, UFFD_LOOP_OP_EVENT);
	}
}

/* The fault kind each policy serves; a message of another kind is -ENOSYS. */
static int policy_kind(int policy)
{
	switch (policy) {
	case UFFD_POLICY_MISSING_COPY:
	case UFFD_POLICY_READ_AHEAD:
	case UFFD_POLICY_MISSING_ZERO:
		return UFFD_KIND_MISSING;
	case UFFD_POLICY_WP_SNAPSHOT:
	case UFFD_POLICY_WP_UNPROTECT:
		return UFFD_KIND_WP;
	case UFFD_POLICY_MINOR_CONTINUE:
		return UFFD_KIND_MINOR;
	default:
		return -1;
	}
}

/* UFFDIO_ZEROPAGE over [pos, pos+len): the MISSING-zero policy, and a removed run under MISSING-copy. */
static int zeropage(struct uffd_loop *L, uint64_t pos, uint64_t len, int dontwake, int64_t *bytes)
{
	struct uffdio_zeropage z = { .range = { pos, len }, .mode = dontwake ? UFFDIO_ZEROPAGE_MODE_DONTWAKE : 0 };
	L->st.resolve_ioctls++;
	int r = uffd_zeropage(L->cfg.uffd, &z);
	*bytes = z.zeropage > 0 ? z.zeropage : 0;
	return r;
}

/* One ioctl (or a policy step) over [pos, pos+len). Returns 0 or -errno; *bytes = progress. */
static int resolve(struct uffd_loop *L, int kind, uint64_t pos, uint64_t len, int dontwake, int64_t *bytes)
{
	const struct uffd_loop_config *c = &L->cfg;
	int r;
	*bytes = 0;
	if (kind != policy_kind(c->policy))
		return -ENOSYS;
	switch (c->policy) {
	case UFFD_POLICY_MISSING_COPY:
	case UFFD_POLICY_READ_AHEAD: {
		if (!in_range(L, pos))
			return -ENOENT;
		uint64_t first = (pos - c->range_start) / PAGE, n = len / PAGE, k = 1;
		int zero = bit_get(L->removed, first);
		while (k < n && bit_get(L->removed, first + k) == zero)
			k++;
		if (zero) {
			r = zeropage(L, pos, k * PAGE, dontwake, bytes);
			/* The marks stay: REMOVE is delivered before the zap, so a page zero-filled between the
			 * two is zapped again and must be zero-filled again, not copied (FaultPolicy.ZeroRemoved). */
			L->st.zero_pages += (uint64_t)*bytes / PAGE;
			return r;
		}
		uint64_t want = k * PAGE;
		if (c->policy == UFFD_POLICY_READ_AHEAD && k == n) {
			/* The faulting run plus up to read_ahead pages, inside the range and before a removed page. */
			uint64_t last = c->range_len / PAGE, e = first + k;
			while (e < last && e - (first + k) < c->read_ahead && !bit_get(L->removed, e))
				e++;
			want = (e - first) * PAGE;
		}
		struct uffdio_copy cp = { .dst = pos, .src = c->source + (pos - c->range_start), .len = want, .mode = dontwake ? UFFDIO_COPY_MODE_DONTWAKE : 0 };
		L->st.resolve_ioctls++;
		r = uffd_copy(c->uffd, &cp);
		*bytes = cp.copy > 0 ? cp.copy : 0;
		return r;
	}
	case UFFD_POLICY_MISSING_ZERO:
		return zeropage(L, pos, len, dontwake, bytes);
	case UFFD_POLICY_WP_SNAPSHOT:
		if (!in_range(L, pos))
			return -ENOENT;
		for (uint64_t a = pos; a < pos + len && in_range(L, a); a += PAGE) {
			uint64_t i = (a - c->range_start) / PAGE;
			if (!bit_get(L->saved, i)) {
				memcpy((void *)(uintptr_t)(c->snapshot + (a - c->range_start)), (const void *)(uintptr_t)a, PAGE);
				bit_set(L->saved, i);
				L->st.snapshot_pages++;
			}
		}
		/* fall through: then unprotect */
		__attribute__((fallthrough));
	case UFFD_POLICY_WP_UNPROTECT: {
		struct uffdio_writeprotect w = { .range = { pos, len }, .mode = dontwake ? UFFDIO_WRITEPROTECT_MODE_DONTWAKE : 0 };
		L->st.resolve_ioctls++;
		r = uffd_writeprotect(c->uffd, &w);
		*bytes = r == 0 ? (int64_t)len : 0;
		return r;
	}
	case UFFD_POLICY_MINOR_CONTINUE: {
		struct uffdio_continue cn = { .range = { pos, len }, .mode = dontwake ? UFFDIO_CONTINUE_MODE_DONTWAKE : 0 };
		L->st.resolve_ioctls++;
		r = uffd_continue(c->uffd, &cn);
		*bytes = cn.mapped > 0 ? cn.mapped : 0;
		return r;
	}
	default:
		return -ENOSYS;
	}
}

static void wake(struct uffd_loop *L, uint64_t start, uint64_t len)
{
	struct uffdio_range w = { start, len };
	L->st.wake_ioctls++;
	int r = uffd_wake(L->cfg.uffd, &w);
	if (r < 0)
		loop_fail(L, UFFD_LOOP_EXIT_ERROR, -r, UFFD_LOOP_OP_WAKE);
}

/* Resolves one run [start, end) of work[first, last). Returns 1 when resolved or dropped, 0 when
 * (part of) it was deferred — then *defer_from is the first address still to do. */
static int resolve_run(struct uffd_loop *L, int kind, uint64_t start, uint64_t end, uint64_t *defer_from)
{
	uint64_t pos = start;
	int dontwake = 0, need_wake = 0, enomem = 0;
	L->st.runs++;
	while (pos < end) {
		int64_t bytes;
		int r = resolve(L, kind, pos, end - pos, dontwake, &bytes);
		if (bytes > 0) {
			uint64_t done = (uint64_t)bytes;
			if (pos + done > end)
				done = end - pos; /* read-ahead went past the run: those pages are not faults */
			L->st.pages_resolved += (uint64_t)bytes / PAGE;
			if (r < 0)
				L->st.partial++;
			if (dontwake)
				need_wake = 1;
			pos += done;
			dontwake = 1;
			continue;
		}
		if (r == 0) {
			/* No progress and no error: a policy with nothing to do for this page. */
			pos += PAGE;
			dontwake = 1;
			continue;
		}
		switch (-r) {
		case EEXIST:
			L->st.eexist++;
			need_wake = 1;
			pos += PAGE;
			dontwake = 1;
			continue;
		case EAGAIN:
			L->st.eagain++;
			if (need_wake && pos > start)
				wake(L, start, pos - start);
			*defer_from = pos;
			return 0;
		case ENOENT:
			L->st.enoent++;
			wake(L, start, end - start);
			return 1;
		case ESRCH:
			loop_fail(L, UFFD_LOOP_EXIT_OWNER_GONE, -r, UFFD_LOOP_OP_RESOLVE);
			return 1;
		case ENOMEM:
			if (enomem < UFFD_ENOMEM_RETRIES) {
				struct timespec ts = { 0, (1L << enomem) * 1000000L };
				enomem++;
				nanosleep(&ts, NULL);
				continue;
			}
			loop_fail(L, UFFD_LOOP_EXIT_ALLOC_FAILURE, ENOMEM, UFFD_LOOP_OP_RESOLVE);
			return 1;
		case ENOSYS:
			loop_fail(L, UFFD_LOOP_EXIT_ERROR, EINVAL, UFFD_LOOP_OP_NO_POLICY);
			return 1;
		default:
			loop_fail(L, UFFD_LOOP_EXIT_ERROR, -r, UFFD_LOOP_OP_RESOLVE);
			return 1;
		}
	}
	if (need_wake)
		wake(L, start, end - start);
	return 1;
}

static void resolve_pending(struct uffd_loop *L)
{
	struct pending *w = L->work;
	int n = L->nwork, keep = 0;
	/* Insertion sort by (address, kind): batches are small, and usually already in order. */
	for (int i = 1; i < n; i++) {
		struct pending x = w[i];
		int j = i - 1;
		while (j >= 0 && (w[j].addr > x.addr || (w[j].addr == x.addr && w[j].kind > x.kind))) {
			w[j + 1] = w[j];
			j--;
		}
		w[j + 1] = x;
	}
	int i = 0;
	while (i < n && !L->stopping) {
		uint64_t start = w[i].addr, end = start + PAGE;
		int kind = w[i].kind, j = i + 1;
		while (j < n && w[j].kind == kind && (w[j].addr == end - PAGE || w[j].addr == end)) {
			if (w[j].addr == end)
				end += PAGE;
			j++;
		}
		uint64_t defer_from = end;
		int ok = resolve_run(L, kind, start, end, &defer_from);
		int64_t t = now_ns();
		for (int k = i; k < j; k++) {
			if (!ok && w[k].addr >= defer_from)
				w[keep++] = w[k];
			else
				uffd_hist_record(&L->st.service, (uint64_t)(t - w[k].t0));
		}
		i = j;
	}
	L->nwork = keep;
	if ((uint64_t)keep > L->st.deferred_max)
		L->st.deferred_max = (uint64_t)keep;
}

static int push_fault(struct uffd_loop *L, const struct uffd_msg *m, int64_t t0)
{
	if (L->nwork == L->capwork) {
		int cap = L->capwork * 2;
		struct pending *p = realloc(L->work, (size_t)cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		L->work = p;
		L->capwork = cap;
	}
	uint64_t f = m->arg.pagefault.flags;
	int kind = (f & UFFD_PAGEFAULT_FLAG_WP) ? UFFD_KIND_WP : (f & UFFD_PAGEFAULT_FLAG_MINOR) ? UFFD_KIND_MINOR : UFFD_KIND_MISSING;
	L->st.faults[kind]++;
	struct pending *p = &L->work[L->nwork++];
	p->addr = m->arg.pagefault.address & ~(PAGE - 1);
	p->t0 = t0;
	p->kind = kind;
	return 0;
}

static void *loop_main(void *arg)
{
	struct uffd_loop *L = arg;
	struct uffd_thread_usage u0, u1;
	if (L->cfg.cpu >= 0)
		uffd_pin_thread(L->cfg.cpu);
	uffd_thread_usage(&u0);
	L->st.state = 1;
	int drained = 0;
	while (!L->stopping) {
		int stop = atomic_load_explicit(&L->stop, memory_order_relaxed);
		int mask = 0;
		/* After a stop request: one last non-blocking pass serves what is already pending. */
		int timeout = stop ? 0 : (L->nwork > 0 ? L->cfg.retry_ms : -1);
		int n = uffd_loop_wait(L->cfg.uffd, L->stopfd, timeout, L->msgs, L->cfg.max_msgs, &L->st, &mask);
		if (n < 0) {
			loop_fail(L, UFFD_LOOP_EXIT_ERROR, -n, UFFD_LOOP_OP_READ);
			break;
		}
		if (n > 0) {
			int64_t t0 = now_ns();
			for (int i = 0; i < n; i++) {
				if (L->msgs[i].event == UFFD_EVENT_PAGEFAULT) {
					if (push_fault(L, &L->msgs[i], t0) < 0)
						loop_fail(L, UFFD_LOOP_EXIT_ERROR, ENOMEM, UFFD_LOOP_OP_READ);
				} else {
					on_event(L, &L->msgs[i]);
				}
			}
		}
		if (L->nwork > 0 && !L->stopping)
			resolve_pending(L);
		if (L->stopping)
			break;
		if (stop && (n == 0 || ++drained > 64)) {
			loop_fail(L, UFFD_LOOP_EXIT_STOPPED, 0, 0);
			break;
		}
		if (mask & UFFD_POLL_STOP)
			atomic_store(&L->stop, 1);
		if (n == 0 && (mask & (UFFD_POLL_HUP | UFFD_WAIT_EOF))) {
			loop_fail(L, UFFD_LOOP_EXIT_EOF, 0, 0);
			break;
		}
		if (mask & UFFD_POLL_ERR) {
			loop_fail(L, UFFD_LOOP_EXIT_ERROR, EBADF, UFFD_LOOP_OP_POLL);
			break;
		}
	}
	/* Closing the uffd wakes every thread still blocked on it; they then fault normally. */
	close(L->cfg.uffd);
	uffd_thread_usage(&u1);
	L->st.loop_utime_ns = u1.utime_ns - u0.utime_ns;
	L->st.loop_stime_ns = u1.stime_ns - u0.stime_ns;
	L->st.loop_vcsw = u1.vcsw - u0.vcsw;
	L->st.loop_ivcsw = u1.ivcsw - u0.ivcsw;
	atomic_thread_fence(memory_order_release);
	L->st.state = 2;
	atomic_store(&L->done, 1);
	return NULL;
}

/* What uffd_loop_start allocated: freed on its failure path and by uffd_loop_free. */
static void loop_release(struct uffd_loop *L)
{
	if (L->stopfd >= 0)
		close(L->stopfd);
	free(L->msgs);
	free(L->work);
	free(L->removed);
	free(L->saved);
	free(L);
}

void *uffd_loop_start(const struct uffd_loop_config *cfg, int *err)
{
	struct uffd_loop *L;
	*err = 0;
	if (cfg->max_msgs < 1 || cfg->max_msgs > 1024 || cfg->policy < UFFD_POLICY_MISSING_COPY || cfg->policy > UFFD_POLICY_ASYNC ||
	    (cfg->range_start | cfg->range_len) & (PAGE - 1)) {
		*err = -EINVAL;
		return NULL;
	}
	L = calloc(1, sizeof(*L));
	if (!L) {
		*err = -ENOMEM;
		return NULL;
	}
	L->cfg = *cfg;
	if (L->cfg.retry_ms <= 0)
		L->cfg.retry_ms = 1;
	L->range_pages = cfg->range_len / PAGE;
	L->capwork = 256;
	L->msgs = calloc((size_t)cfg->max_msgs, sizeof(struct uffd_msg));
	L->work = calloc((size_t)L->capwork, sizeof(struct pending));
	L->removed = calloc((size_t)(L->range_pages / 64 + 1), sizeof(uint64_t));
	L->saved = calloc((size_t)(L->range_pages / 64 + 1), sizeof(uint64_t));
	L->stopfd = uffd_eventfd(1);
	if (!L->msgs || !L->work || !L->removed || !L->saved || L->stopfd < 0) {
		*err = L->stopfd < 0 ? L->stopfd : -ENOMEM;
		goto fail;
	}
	int r = uffd_thread_start(&L->thread, loop_main, L);
	if (r != 0) {
		*err = -r;
		goto fail;
	}
	pthread_setname_np(L->thread, "uffd-native-lp"); /* findable by name (tests signal it) */
	return L;
fail:
	loop_release(L);
	return NULL;
}

int uffd_loop_stats(void *loop, struct uffd_loop_stats *out)
{
	struct uffd_loop *L = loop;
	memcpy(out, &L->st, sizeof(*out));
	return 0;
}

int uffd_loop_stop(void *loop, int timeout_ms)
{
	struct uffd_loop *L = loop;
	atomic_store(&L->stop, 1);
	uffd_eventfd_signal(L->stopfd);
	int64_t deadline = timeout_ms < 0 ? 0 : now_ns() + (int64_t)timeout_ms * 1000000LL;
	while (!atomic_load(&L->done)) {
		if (timeout_ms >= 0 && now_ns() >= deadline)
			return -ETIMEDOUT;
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	if (L->thread) {
		pthread_join(L->thread, NULL);
		L->thread = 0;
	}
	return 0;
}

int uffd_loop_free(void *loop)
{
	struct uffd_loop *L = loop;
	if (!atomic_load(&L->done))
		return -EBUSY;
	if (L->thread)
		pthread_join(L->thread, NULL);
	loop_release(L);
	return 0;
}

/* ---- touchers -------------------------------------------------------------------------------- */

struct uffd_toucher {
	struct uffd_touch_config cfg;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int go;
	int done;
	_Atomic uint64_t progress;
	struct uffd_touch_result res;
};

static void *toucher_main(void *arg)
{
	struct uffd_toucher *t = arg;
	const struct uffd_touch_config *c = &t->cfg;
	struct uffd_thread_usage u0, u1;
	if (c->cpu >= 0)
		uffd_pin_thread(c->cpu);
	pthread_mutex_lock(&t->lock);
	while (!t->go)
		pthread_cond_wait(&t->cond, &t->lock);
	pthread_mutex_unlock(&t->lock);
	uffd_thread_usage(&u0);
	uint64_t sum = 0;
	int64_t start = now_ns(), prev = start;
	for (uint64_t k = 0; k < c->pages; k++) {
		uint64_t i = c->first_page + k;
		volatile uint64_t *w = (volatile uint64_t *)(uintptr_t)(c->addr + k * PAGE) + (i % WORDS_PER_PAGE);
		if (c->mode == UFFD_TOUCH_WRITE)
			*w = uffd_pattern_word(c->seed, i);
		else
			sum += *w;
		int64_t t1 = now_ns();
		uffd_hist_record(&t->res.latency, (uint64_t)(t1 - prev));
		prev = t1;
		atomic_store_explicit(&t->progress, k + 1, memory_order_relaxed);
	}
	uffd_thread_usage(&u1);
	t->res.start_ns = start;
	t->res.end_ns = prev;
	t->res.pages = c->pages;
	t->res.checksum = sum;
	t->res.usage.utime_ns = u1.utime_ns - u0.utime_ns;
	t->res.usage.stime_ns = u1.stime_ns - u0.stime_ns;
	t->res.usage.vcsw = u1.vcsw - u0.vcsw;
	t->res.usage.ivcsw = u1.ivcsw - u0.ivcsw;
	t->res.usage.minflt = u1.minflt - u0.minflt;
	t->res.usage.majflt = u1.majflt - u0.majflt;
	pthread_mutex_lock(&t->lock);
	t->done = 1;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

void *uffd_toucher_start(const struct uffd_touch_config *cfg)
{
	struct uffd_toucher *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->cfg = *cfg;
	uffd_sync_init(&t->lock, &t->cond);
	if (uffd_thread_start(&t->thread, toucher_main, t) != 0) {
		free(t);
		return NULL;
	}
	return t;
}

int uffd_toucher_go(void *toucher)
{
	struct uffd_toucher *t = toucher;
	pthread_mutex_lock(&t->lock);
	t->go = 1;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

uint64_t uffd_toucher_progress(void *toucher) { return atomic_load(&((struct uffd_toucher *)toucher)->progress); }

int uffd_toucher_join(void *toucher, int timeout_ms, struct uffd_touch_result *out)
{
	struct uffd_toucher *t = toucher;
	if (!uffd_wait_done(&t->lock, &t->cond, &t->done, timeout_ms))
		return -ETIMEDOUT;
	if (t->thread) {
		pthread_join(t->thread, NULL);
		t->thread = 0;
	}
	if (out)
		memcpy(out, &t->res, sizeof(*out));
	return 0;
}

int uffd_toucher_free(void *toucher)
{
	struct uffd_toucher *t = toucher;
	int r = uffd_thread_reap(&t->lock, &t->cond, &t->done, t->thread);
	if (r == 0)
		free(t);
	return r;
}

/* ---- verification ---------------------------------------------------------------------------- */

int64_t uffd_verify_pages(const struct uffd_verify_spec *s, uint64_t *got, uint64_t *word)
{
	for (uint64_t i = 0; i < s->pages; i++) {
		const uint64_t *p = (const uint64_t *)(uintptr_t)(s->addr + i * PAGE);
		uint64_t tw = i % WORDS_PER_PAGE;
		for (uint64_t w = 0; w < WORDS_PER_PAGE; w++) {
			uint64_t want;
			if (s->touched && w == tw)
				want = uffd_pattern_word(s->touch_seed, i);
			else
				want = s->base == UFFD_VERIFY_PATTERN ? uffd_pattern_word(s->base_seed, i * WORDS_PER_PAGE + w) : 0;
			if (p[w] != want) {
				if (got)
					*got = p[w];
				if (word)
					*word = w;
				return (int64_t)i;
			}
		}
	}
	return -1;
}
