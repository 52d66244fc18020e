/* uffd_signals.c — a signal storm for the tests: a thread that sends a signal, at a high rate, to every
 * thread of this process whose name (/proc/self/task/TID/comm) is the one given, so that the fault
 * loops (managed FaultServer threads and the native twin loop) are interrupted while they wait in
 * poll() and while they resolve (ioctls, copies). The signal gets a handler that only counts (no
 * SA_RESTART: every interruptible syscall it lands in returns EINTR, the case the shim must retry). */

#include "uffd_harness.h"
#include "../uffd_inline.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define STORM_MAX_TIDS 64

static atomic_long handled;

static void on_storm_signal(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
	atomic_fetch_add_explicit(&handled, 1, memory_order_relaxed);
}

struct storm {
	pthread_t thread;
	char comm[32];
	int sig;
	int period_us;
	atomic_int stop;
	int64_t sent;
	int64_t targets;
};

static int find_tids(const char *comm, int *tids, int max)
{
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return 0;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < max) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		char path[300], name[64];
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		FILE *f = fopen(path, "re");
		if (!f)
			continue;
		if (fgets(name, sizeof(name), f)) {
			name[strcspn(name, "\n")] = 0;
			if (strcmp(name, comm) == 0)
				tids[n++] = atoi(e->d_name);
		}
		fclose(f);
	}
	closedir(d);
	return n;
}

static void *storm_main(void *arg)
{
	struct storm *s = arg;
	int tids[STORM_MAX_TIDS], n = 0;
	pid_t pid = getpid();
	struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)s->period_us * 1000 };
	for (long i = 0; !atomic_load(&s->stop); i++) {
		if (n == 0 || i % 4096 == 0) {
			n = find_tids(s->comm, tids, STORM_MAX_TIDS);
			if (n > s->targets)
				s->targets = n;
		}
		for (int k = 0; k < n; k++)
			if (syscall(SYS_tgkill, pid, tids[k], s->sig) == 0)
				s->sent++;
			else if (errno == ESRCH)
				n = 0; /* a thread ended: look again */
		if (s->period_us > 0)
			nanosleep(&ts, NULL);
	}
	return NULL;
}

void *uffd_signal_storm_start(const char *comm, int period_us)
{
	struct storm *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	snprintf(s->comm, sizeof(s->comm), "%s", comm);
	s->sig = SIGRTMIN + 6; /* the runtime uses SIGRTMIN itself; glibc reserves the first two */
	s->period_us = period_us;
	if (uffd_catch_signal(s->sig, on_storm_signal, 0 /* no SA_RESTART */, NULL) < 0 || pthread_create(&s->thread, NULL, storm_main, s) != 0) {
		free(s);
		return NULL;
	}
	return s;
}

int64_t uffd_signal_storm_stop(void *storm, int64_t *handled_out, int64_t *targets_out)
{
	struct storm *s = storm;
	atomic_store(&s->stop, 1);
	pthread_join(s->thread, NULL);
	int64_t sent = s->sent;
	if (handled_out)
		*handled_out = atomic_load(&handled);
	if (targets_out)
		*targets_out = s->targets;
	free(s);
	return sent;
}
