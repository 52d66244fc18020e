/* uffd_internal.h — helpers shared by the shim's own sources; not part of the exported ABI. */
#ifndef UFFD_INTERNAL_H
#define UFFD_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <time.h>

/* An absolute deadline timeout_ms from now on the given clock, for pthread_cond_timedwait (whose
 * condition variable must use the same clock). */
static inline struct timespec uffd_deadline_after(clockid_t clock, int timeout_ms)
{
	struct timespec dl;
	clock_gettime(clock, &dl);
	dl.tv_sec += timeout_ms / 1000;
	dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	return dl;
}

/* A worker's lock and its condition variable on CLOCK_MONOTONIC (what uffd_wait_done waits with). */
static inline void uffd_sync_init(pthread_mutex_t *lock, pthread_cond_t *cond)
{
	pthread_condattr_t ca;
	pthread_mutex_init(lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(cond, &ca);
	pthread_condattr_destroy(&ca);
}

/* Starts a worker thread with a small stack (256 KiB: the workers run short native loops). 0 or an errno. */
static inline int uffd_thread_start(pthread_t *thread, void *(*main)(void *), void *arg)
{
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	int r = pthread_create(thread, &attr, main, arg);
	pthread_attr_destroy(&attr);
	return r;
}

/* A worker thread's end, as its joiner sees it: waits under lock until the thread sets *done and
 * signals cond, at most timeout_ms (negative: no bound; cond must use CLOCK_MONOTONIC). Returns
 * *done as read under the lock (timeout_ms 0: just reads it). */
static inline int uffd_wait_done(pthread_mutex_t *lock, pthread_cond_t *cond, const int *done, int timeout_ms)
{
	struct timespec dl = uffd_deadline_after(CLOCK_MONOTONIC, timeout_ms < 0 ? 0 : timeout_ms);
	int rc = 0;
	pthread_mutex_lock(lock);
	while (!*done && rc == 0 && timeout_ms != 0)
		rc = timeout_ms < 0 ? pthread_cond_wait(cond, lock) : pthread_cond_timedwait(cond, lock, &dl);
	int r = *done;
	pthread_mutex_unlock(lock);
	return r;
}

/* Frees a worker's thread and sync objects once it is done: -EBUSY (nothing freed) while it still runs. */
static inline int uffd_thread_reap(pthread_mutex_t *lock, pthread_cond_t *cond, const int *done, pthread_t thread)
{
	if (!uffd_wait_done(lock, cond, done, 0))
		return -EBUSY;
	if (thread)
		pthread_join(thread, NULL);
	pthread_cond_destroy(cond);
	pthread_mutex_destroy(lock);
	return 0;
}

#endif /* UFFD_INTERNAL_H */
