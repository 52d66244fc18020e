/* uffd_wait.c — the steps every fault loop shares: one wait (read, then poll and read again), the
 * calling thread's CPU usage, pidfd_open, and a native copy out of a write-protected page. The
 * managed FaultServer and the external handler's failing loop use them; so does the native twin loop
 * of the harness (native/harness/uffd_loop.c), which links against this library. */

#include "uffd_shim.h"

#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif

int uffd_loop_wait(int fd, int stopfd, int timeout_ms, struct uffd_msg *buf, int max, struct uffd_loop_stats *st, int *mask)
{
	*mask = 0;
	int n = uffd_read_msgs(fd, buf, max);
	if (st)
		st->reads++;
	if (n == -EAGAIN && timeout_ms != 0) {
		int m = uffd_poll(fd, stopfd, timeout_ms);
		if (st)
			st->polls++;
		if (m < 0)
			return m;
		*mask = m;
		if (!(m & UFFD_POLL_READABLE))
			return 0;
		n = uffd_read_msgs(fd, buf, max);
		if (st)
			st->reads++;
	}
	if (n > 0) {
		if (st) {
			st->messages += (uint64_t)n;
			st->batches++;
			if ((uint64_t)n > st->max_batch)
				st->max_batch = (uint64_t)n;
		}
		return n;
	}
	if (n == 0) {
		*mask |= UFFD_WAIT_EOF;
		return 0;
	}
	return n == -EAGAIN ? 0 : n;
}

int uffd_thread_usage(struct uffd_thread_usage *u)
{
	struct rusage ru;
	if (getrusage(RUSAGE_THREAD, &ru) < 0)
		return -errno;
	u->utime_ns = (int64_t)ru.ru_utime.tv_sec * 1000000000LL + (int64_t)ru.ru_utime.tv_usec * 1000LL;
	u->stime_ns = (int64_t)ru.ru_stime.tv_sec * 1000000000LL + (int64_t)ru.ru_stime.tv_usec * 1000LL;
	u->vcsw = ru.ru_nvcsw;
	u->ivcsw = ru.ru_nivcsw;
	u->minflt = ru.ru_minflt;
	u->majflt = ru.ru_majflt;
	return 0;
}

int uffd_pidfd_open(int pid)
{
	long r = syscall(__NR_pidfd_open, pid, 0);
	return r < 0 ? -errno : (int)r;
}

void uffd_copy_memory(void *dst, const void *src, uint64_t len) { memcpy(dst, src, len); }
