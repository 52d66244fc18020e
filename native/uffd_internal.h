/* uffd_internal.h — helpers shared by the shim's own sources; not part of the exported ABI. */
#ifndef UFFD_INTERNAL_H
#define UFFD_INTERNAL_H

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

#endif /* UFFD_INTERNAL_H */
