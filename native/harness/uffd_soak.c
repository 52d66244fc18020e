/* uffd_soak.c — the native toucher threads of `uffdnative soak`.
 *
 * Every access to registered memory happens here (ARCHITECTURE.md rule 2). Each page of each region
 * has exactly one owner thread (page p of any region belongs to thread p % threads), so a page's
 * stamp word is written by one thread only and every expectation is exact:
 *   - word (p % 512) of page p is the stamp slot: the owner writes a unique non-zero stamp there;
 *   - every other word w holds the region's base content: pattern(seed, p * 512 + w), or 0 for a
 *     zero-base region — or 0 throughout once the page was legally discarded (a REMOVE event: the
 *     server then serves it as zero).
 * Discards are made by other threads through uffd_soak_advise, which brackets each madvise with a
 * per-page sequence count (odd while in flight). A read that saw the count change is inconclusive
 * and retried; a stamp that vanished although no discard happened since it was written is LOST;
 * anything else unexpected is CORRUPT. The first failure of each thread is recorded in detail.
 *
 * mremap moves a region under the region's write lock (touchers hold the read lock around each
 * access), so no access ever uses a stale address. */

#include "uffd_harness.h"
#include "../uffd_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096ULL
#define WORDS 512ULL

_Static_assert(sizeof(struct uffd_soak_region_config) == 40, "uffd_soak_region_config layout");
_Static_assert(sizeof(struct uffd_soak_config) == 16 + 40 * UFFD_SOAK_MAX_REGIONS, "uffd_soak_config layout");
_Static_assert(sizeof(struct uffd_soak_thread_stats) == 88, "uffd_soak_thread_stats layout");
_Static_assert(sizeof(struct uffd_soak_failure) == 48, "uffd_soak_failure layout");

struct soak_region {
	struct uffd_soak_region_config cfg;
	_Atomic uint64_t base;
	_Atomic uint32_t *seq;   /* per page: discard sequence count, odd while a discard is in flight */
	uint64_t *stamp;         /* per page: the owner's last stamp (0: none expected) */
	uint32_t *stamp_seq;     /* per page: seq when that stamp was written */
	pthread_rwlock_t lock;
};

struct soak_thread {
	struct uffd_soak *s;
	int index;
	pthread_t thread;
	uint64_t rng;
	uint64_t stamp_counter;
	_Atomic uint64_t ops, reads, writes, verified, inconclusive, lost, corrupt, sweep_pages;
	_Atomic int64_t op_start_ns;
	_Atomic uint64_t op_addr;
	_Atomic int32_t state;
	_Atomic int32_t tid;
	_Atomic uint32_t sweep_gen_done;
	struct uffd_soak_failure failure;
	_Atomic int has_failure;
};

struct uffd_soak {
	struct uffd_soak_config cfg;
	struct soak_region regions[UFFD_SOAK_MAX_REGIONS];
	struct soak_thread *threads;
	int total_weight;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int go, pause, stop;
	int parked;
	uint32_t sweep_gen;      /* bumped by uffd_soak_sweep */
	uint32_t sweep_mask;     /* regions the next sweep covers */
	int32_t sweep_kind[UFFD_SOAK_MAX_REGIONS];
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint64_t next_rand(uint64_t *x)
{
	/* xorshift64* */
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 2685821657736338717ULL;
}

static uint64_t base_word(const struct soak_region *r, uint64_t page, uint64_t w)
{
	return r->cfg.base == UFFD_VERIFY_PATTERN ? uffd_pattern_word(r->cfg.seed, page * WORDS + w) : 0;
}

static void record_failure(struct soak_thread *t, int kind, int region, uint64_t page, uint64_t word, uint64_t got, uint64_t expected)
{
	if (atomic_exchange(&t->has_failure, 1))
		return;
	t->failure.kind = kind;
	t->failure.region = region;
	t->failure.page = page;
	t->failure.word = word;
	t->failure.got = got;
	t->failure.expected = expected;
	t->failure.thread = t->index;
}

/* Owned pages of thread t in a region: t, t + T, t + 2T, ... */
static uint64_t owned_count(const struct uffd_soak *s, const struct soak_region *r, int t)
{
	uint64_t T = (uint64_t)s->cfg.threads;
	return r->cfg.pages > (uint64_t)t ? (r->cfg.pages - (uint64_t)t + T - 1) / T : 0;
}

static void op_begin(struct soak_thread *t, uint64_t addr)
{
	atomic_store(&t->op_addr, addr);
	atomic_store(&t->op_start_ns, now_ns());
}

static void op_end(struct soak_thread *t)
{
	atomic_store(&t->op_start_ns, 0);
	atomic_fetch_add(&t->ops, 1);
}

static void do_write(struct soak_thread *t, int ri, uint64_t page)
{
	struct soak_region *r = &t->s->regions[ri];
	uint64_t v = (1ULL << 63) | ((uint64_t)(t->index + 1) << 44) | (++t->stamp_counter & ((1ULL << 44) - 1));
	pthread_rwlock_rdlock(&r->lock);
	uint64_t addr = atomic_load(&r->base) + page * PAGE;
	uint32_t q = atomic_load_explicit(&r->seq[page], memory_order_acquire);
	op_begin(t, addr);
	*(volatile uint64_t *)(uintptr_t)(addr + (page % WORDS) * 8) = v;
	op_end(t);
	pthread_rwlock_unlock(&r->lock);
	r->stamp[page] = v;
	r->stamp_seq[page] = q;
	atomic_fetch_add(&t->writes, 1);
}

/* 1 verified, 0 inconclusive (a discard raced the read), -1 failure (recorded). */
static int verify_once(struct soak_thread *t, int ri, uint64_t page, uint64_t *buf)
{
	struct soak_region *r = &t->s->regions[ri];
	pthread_rwlock_rdlock(&r->lock);
	uint64_t addr = atomic_load(&r->base) + page * PAGE;
	uint32_t q0 = atomic_load_explicit(&r->seq[page], memory_order_acquire);
	op_begin(t, addr);
	const volatile uint64_t *p = (const volatile uint64_t *)(uintptr_t)addr;
	for (uint64_t w = 0; w < WORDS; w++)
		buf[w] = p[w];
	op_end(t);
	atomic_thread_fence(memory_order_acquire);
	uint32_t q1 = atomic_load_explicit(&r->seq[page], memory_order_acquire);
	pthread_rwlock_unlock(&r->lock);
	atomic_fetch_add(&t->reads, 1);
	if (q0 != q1 || (q0 & 1))
		return 0;

	uint64_t slot = page % WORDS;
	/* Base words: all intact, or (once a discard happened) all zero. */
	int intact = 1, zero = 1;
	uint64_t bad_w = 0, bad_v = 0;
	for (uint64_t w = 0; w < WORDS; w++) {
		if (w == slot)
			continue;
		uint64_t e = base_word(r, page, w);
		if (buf[w] != e && intact) {
			intact = 0;
			bad_w = w;
			bad_v = buf[w];
		}
		if (buf[w] != 0)
			zero = 0;
	}
	int zeroed = !intact && zero;
	if (!intact && !(zeroed && r->cfg.may_remove && q1 > 0)) {
		record_failure(t, UFFD_SOAK_CORRUPT, ri, page, bad_w, bad_v, base_word(r, page, bad_w));
		atomic_fetch_add(&t->corrupt, 1);
		return -1;
	}
	uint64_t s = buf[slot], want = r->stamp[page];
	uint64_t untouched = zeroed ? 0 : base_word(r, page, slot);
	if (want != 0) {
		if (s == want)
			return 1;
		int discarded_since = r->cfg.may_remove && (q1 != r->stamp_seq[page] || (r->stamp_seq[page] & 1));
		if (discarded_since && s == 0) {
			r->stamp[page] = 0; /* legally discarded: nothing expected any more */
			return 1;
		}
		int is_lost = s == untouched || s == 0 || (s >> 63) != 0;
		record_failure(t, is_lost ? UFFD_SOAK_LOST : UFFD_SOAK_CORRUPT, ri, page, slot, s, want);
		atomic_fetch_add(is_lost ? &t->lost : &t->corrupt, 1);
		return -1;
	}
	if (s != untouched) {
		record_failure(t, UFFD_SOAK_CORRUPT, ri, page, slot, s, untouched);
		atomic_fetch_add(&t->corrupt, 1);
		return -1;
	}
	return 1;
}

static void do_verify(struct soak_thread *t, int ri, uint64_t page, uint64_t *buf)
{
	for (int attempt = 0; attempt < 4; attempt++) {
		int v = verify_once(t, ri, page, buf);
		if (v != 0) {
			if (v > 0)
				atomic_fetch_add(&t->verified, 1);
			return;
		}
	}
	atomic_fetch_add(&t->inconclusive, 1);
}

static int wait_turn(struct soak_thread *t, uint32_t *sweep_gen, uint32_t *mask, int32_t *kinds)
{
	struct uffd_soak *s = t->s;
	pthread_mutex_lock(&s->mu);
	if (s->pause || !s->go) {
		atomic_store(&t->state, UFFD_SOAK_PARKED);
		s->parked++;
		pthread_cond_broadcast(&s->cv);
		while ((s->pause || !s->go) && !s->stop)
			pthread_cond_wait(&s->cv, &s->mu);
		s->parked--;
		atomic_store(&t->state, UFFD_SOAK_RUNNING);
	}
	int stop = s->stop;
	*sweep_gen = s->sweep_gen;
	*mask = s->sweep_mask;
	memcpy(kinds, s->sweep_kind, sizeof(s->sweep_kind));
	pthread_mutex_unlock(&s->mu);
	return stop;
}

static void *soak_main(void *arg)
{
	struct soak_thread *t = arg;
	struct uffd_soak *s = t->s;
	uint64_t *buf = malloc(PAGE);
	uint32_t done_gen = 0, gen, mask;
	int32_t kinds[UFFD_SOAK_MAX_REGIONS];
	uint64_t T = (uint64_t)s->cfg.threads;
	atomic_store(&t->tid, (int32_t)syscall(SYS_gettid));
	if (!buf) {
		atomic_store(&t->state, UFFD_SOAK_DONE);
		return NULL;
	}
	for (;;) {
		if (wait_turn(t, &gen, &mask, kinds))
			break;
		if (gen != done_gen) {
			/* A sweep: every owned page of each selected region once, in order. */
			for (int ri = 0; ri < s->cfg.regions; ri++) {
				if (!(mask & (1u << ri)))
					continue;
				uint64_t n = owned_count(s, &s->regions[ri], t->index);
				for (uint64_t k = 0; k < n; k++) {
					uint64_t page = (uint64_t)t->index + k * T;
					if (kinds[ri] == UFFD_SOAK_SWEEP_WRITE)
						do_write(t, ri, page);
					else
						do_verify(t, ri, page, buf);
					atomic_fetch_add(&t->sweep_pages, 1);
				}
			}
			done_gen = gen;
			atomic_store(&t->sweep_gen_done, gen);
			continue;
		}
		/* A burst of random ops between checks of the control state. */
		for (int i = 0; i < 64; i++) {
			uint64_t x = next_rand(&t->rng);
			int pick = (int)(x % (uint64_t)s->total_weight), ri = 0;
			while (pick >= s->regions[ri].cfg.weight) {
				pick -= s->regions[ri].cfg.weight;
				ri++;
			}
			struct soak_region *r = &s->regions[ri];
			uint64_t n = owned_count(s, r, t->index);
			if (n == 0)
				continue;
			uint64_t page = (uint64_t)t->index + ((x >> 20) % n) * T;
			if ((int)((x >> 8) % 100) < r->cfg.write_pct)
				do_write(t, ri, page);
			else
				do_verify(t, ri, page, buf);
		}
	}
	free(buf);
	atomic_store(&t->state, UFFD_SOAK_DONE);
	return NULL;
}

void *uffd_soak_start(const struct uffd_soak_config *cfg, int *err)
{
	*err = 0;
	if (cfg->threads < 1 || cfg->threads > UFFD_SOAK_MAX_THREADS || cfg->regions < 1 || cfg->regions > UFFD_SOAK_MAX_REGIONS) {
		*err = -EINVAL;
		return NULL;
	}
	struct uffd_soak *s = calloc(1, sizeof(*s));
	if (!s) {
		*err = -ENOMEM;
		return NULL;
	}
	s->cfg = *cfg;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	for (int i = 0; i < cfg->regions; i++) {
		struct soak_region *r = &s->regions[i];
		pthread_rwlockattr_t a;
		r->cfg = cfg->region[i];
		if (r->cfg.weight < 0 || r->cfg.pages == 0) {
			*err = -EINVAL;
			goto fail;
		}
		atomic_store(&r->base, r->cfg.addr);
		r->seq = calloc(r->cfg.pages, sizeof(*r->seq));
		r->stamp = calloc(r->cfg.pages, sizeof(*r->stamp));
		r->stamp_seq = calloc(r->cfg.pages, sizeof(*r->stamp_seq));
		if (!r->seq || !r->stamp || !r->stamp_seq) {
			*err = -ENOMEM;
			goto fail;
		}
		pthread_rwlockattr_init(&a);
		/* The mover must not starve behind a stream of touchers. */
		pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		pthread_rwlock_init(&r->lock, &a);
		pthread_rwlockattr_destroy(&a);
		s->total_weight += r->cfg.weight;
	}
	if (s->total_weight <= 0) {
		*err = -EINVAL;
		goto fail;
	}
	s->threads = calloc((size_t)cfg->threads, sizeof(*s->threads));
	if (!s->threads) {
		*err = -ENOMEM;
		goto fail;
	}
	for (int i = 0; i < cfg->threads; i++) {
		struct soak_thread *t = &s->threads[i];
		t->s = s;
		t->index = i;
		t->rng = (cfg->seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1))) | 1;
		atomic_store(&t->state, UFFD_SOAK_RUNNING);
		int rc = uffd_thread_start(&t->thread, soak_main, t);
		if (rc != 0) {
			/* Stop the ones already started, then fail. */
			pthread_mutex_lock(&s->mu);
			s->stop = 1;
			pthread_cond_broadcast(&s->cv);
			pthread_mutex_unlock(&s->mu);
			for (int j = 0; j < i; j++)
				pthread_join(s->threads[j].thread, NULL);
			*err = -rc;
			goto fail;
		}
	}
	return s;
fail:
	for (int i = 0; i < cfg->regions; i++) {
		free(s->regions[i].seq);
		free(s->regions[i].stamp);
		free(s->regions[i].stamp_seq);
	}
	free(s->threads);
	free(s);
	return NULL;
}

int uffd_soak_go(void *soak)
{
	struct uffd_soak *s = soak;
	pthread_mutex_lock(&s->mu);
	s->go = 1;
	s->pause = 0;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return 0;
}

int uffd_soak_pause(void *soak, int timeout_ms)
{
	struct uffd_soak *s = soak;
	struct timespec dl = uffd_deadline_after(CLOCK_REALTIME, timeout_ms);
	int rc = 0;
	pthread_mutex_lock(&s->mu);
	s->pause = 1;
	while (s->parked < s->cfg.threads && rc == 0)
		rc = pthread_cond_timedwait(&s->cv, &s->mu, &dl);
	int parked = s->parked;
	pthread_mutex_unlock(&s->mu);
	return parked == s->cfg.threads ? 0 : -ETIMEDOUT;
}

int uffd_soak_sweep(void *soak, uint32_t mask, const int32_t *kinds)
{
	struct uffd_soak *s = soak;
	pthread_mutex_lock(&s->mu);
	s->sweep_mask = mask;
	memcpy(s->sweep_kind, kinds, sizeof(s->sweep_kind));
	int gen = (int)++s->sweep_gen;
	pthread_mutex_unlock(&s->mu);
	return gen;
}

int uffd_soak_sweeps_done(void *soak, uint32_t gen)
{
	struct uffd_soak *s = soak;
	int n = 0;
	for (int i = 0; i < s->cfg.threads; i++)
		if (atomic_load(&s->threads[i].sweep_gen_done) == gen)
			n++;
	return n;
}

int uffd_soak_stop(void *soak, int timeout_ms)
{
	struct uffd_soak *s = soak;
	pthread_mutex_lock(&s->mu);
	s->stop = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	int64_t deadline = now_ns() + (int64_t)timeout_ms * 1000000LL;
	for (int i = 0; i < s->cfg.threads; i++) {
		while (atomic_load(&s->threads[i].state) != UFFD_SOAK_DONE) {
			if (now_ns() > deadline)
				return -ETIMEDOUT;
			struct timespec ts = { 0, 1000000 };
			nanosleep(&ts, NULL);
		}
	}
	for (int i = 0; i < s->cfg.threads; i++)
		if (s->threads[i].thread) {
			pthread_join(s->threads[i].thread, NULL);
			s->threads[i].thread = 0;
		}
	return 0;
}

int uffd_soak_thread_stats(void *soak, int index, struct uffd_soak_thread_stats *out)
{
	struct uffd_soak *s = soak;
	if (index < 0 || index >= s->cfg.threads)
		return -EINVAL;
	struct soak_thread *t = &s->threads[index];
	out->ops = atomic_load(&t->ops);
	out->reads = atomic_load(&t->reads);
	out->writes = atomic_load(&t->writes);
	out->verified = atomic_load(&t->verified);
	out->inconclusive = atomic_load(&t->inconclusive);
	out->lost = atomic_load(&t->lost);
	out->corrupt = atomic_load(&t->corrupt);
	out->sweep_pages = atomic_load(&t->sweep_pages);
	out->op_start_ns = atomic_load(&t->op_start_ns);
	out->op_addr = atomic_load(&t->op_addr);
	out->state = atomic_load(&t->state);
	out->tid = atomic_load(&t->tid);
	return 0;
}

int uffd_soak_failure(void *soak, int index, struct uffd_soak_failure *out)
{
	struct uffd_soak *s = soak;
	if (index < 0 || index >= s->cfg.threads)
		return -EINVAL;
	if (!atomic_load(&s->threads[index].has_failure))
		return 0;
	*out = s->threads[index].failure;
	return 1;
}

int64_t uffd_soak_now_ns(void) { return now_ns(); }

uint64_t uffd_soak_region_addr(void *soak, int region)
{
	struct uffd_soak *s = soak;
	return atomic_load(&s->regions[region].base);
}

int uffd_soak_lock(void *soak, int region, int write)
{
	struct uffd_soak *s = soak;
	return write ? -pthread_rwlock_wrlock(&s->regions[region].lock) : -pthread_rwlock_rdlock(&s->regions[region].lock);
}

int uffd_soak_unlock(void *soak, int region)
{
	struct uffd_soak *s = soak;
	return -pthread_rwlock_unlock(&s->regions[region].lock);
}

int uffd_soak_set_base(void *soak, int region, uint64_t addr)
{
	struct uffd_soak *s = soak;
	atomic_store(&s->regions[region].base, addr);
	return 0;
}

int uffd_soak_advise(void *soak, int region, uint64_t first, uint64_t count, int advice, int discards)
{
	struct uffd_soak *s = soak;
	struct soak_region *r = &s->regions[region];
	if (first >= r->cfg.pages || count == 0 || count > r->cfg.pages - first)
		return -EINVAL;
	pthread_rwlock_rdlock(&r->lock);
	if (discards)
		for (uint64_t p = first; p < first + count; p++)
			atomic_fetch_add_explicit(&r->seq[p], 1, memory_order_acq_rel);
	int rc = madvise((void *)(uintptr_t)(atomic_load(&r->base) + first * PAGE), count * PAGE, advice) < 0 ? -errno : 0;
	if (discards)
		for (uint64_t p = first; p < first + count; p++)
			atomic_fetch_add_explicit(&r->seq[p], 1, memory_order_acq_rel);
	pthread_rwlock_unlock(&r->lock);
	return rc;
}

int uffd_soak_free(void *soak)
{
	struct uffd_soak *s = soak;
	for (int i = 0; i < s->cfg.threads; i++)
		if (atomic_load(&s->threads[i].state) != UFFD_SOAK_DONE)
			return -EBUSY;
	for (int i = 0; i < s->cfg.threads; i++)
		if (s->threads[i].thread)
			pthread_join(s->threads[i].thread, NULL);
	for (int i = 0; i < s->cfg.regions; i++) {
		pthread_rwlock_destroy(&s->regions[i].lock);
		free(s->regions[i].seq);
		free(s->regions[i].stamp);
		free(s->regions[i].stamp_seq);
	}
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s->threads);
	free(s);
	return 0;
}
