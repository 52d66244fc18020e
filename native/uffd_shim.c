/* uffd_shim.c — syscalls and ioctls; each returns >= 0 or -errno, EINTR retried inside. */

#include "uffd_shim.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef __NR_userfaultfd
#define __NR_userfaultfd 323 /* x86-64 */
#endif

/* One ioctl with the EINTR rule: retry while interrupted, hand back -errno. */
static int xioctl(int fd, unsigned long req, void *arg)
{
	int r;
	do {
		r = ioctl(fd, req, arg);
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

int uffd_shim_abi_version(void) { return UFFD_SHIM_ABI_VERSION; }

int uffd_open_syscall(int flags)
{
	long r;
	do {
		r = syscall(__NR_userfaultfd, flags);
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : (int)r;
}

int uffd_open_device(const char *path, int flags, int *stage)
{
	int dev, fd;
	if (stage)
		*stage = 1;
	do {
		dev = open(path ? path : "/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	} while (dev < 0 && errno == EINTR);
	if (dev < 0)
		return -errno;
	if (stage)
		*stage = 2;
	/* The flags travel by value as the ioctl's third argument (§1.1). */
	do {
		fd = ioctl(dev, USERFAULTFD_IOC_NEW, flags);
	} while (fd < 0 && errno == EINTR);
	fd = fd < 0 ? -errno : fd;
	close(dev);
	return fd;
}

int uffd_api(int fd, struct uffdio_api *api) { return xioctl(fd, UFFDIO_API, api); }
int uffd_register(int fd, struct uffdio_register *reg) { return xioctl(fd, UFFDIO_REGISTER, reg); }
int uffd_unregister(int fd, struct uffdio_range *range) { return xioctl(fd, UFFDIO_UNREGISTER, range); }
int uffd_wake(int fd, struct uffdio_range *range) { return xioctl(fd, UFFDIO_WAKE, range); }
int uffd_copy(int fd, struct uffdio_copy *copy) { return xioctl(fd, UFFDIO_COPY, copy); }
int uffd_zeropage(int fd, struct uffdio_zeropage *zp) { return xioctl(fd, UFFDIO_ZEROPAGE, zp); }
int uffd_writeprotect(int fd, struct uffdio_writeprotect *wp) { return xioctl(fd, UFFDIO_WRITEPROTECT, wp); }
int uffd_continue(int fd, struct uffdio_continue *cont) { return xioctl(fd, UFFDIO_CONTINUE, cont); }
int uffd_poison(int fd, struct uffdio_poison *poison) { return xioctl(fd, UFFDIO_POISON, poison); }
int uffd_move(int fd, struct uffdio_move *move) { return xioctl(fd, UFFDIO_MOVE, move); }
int uffd_ioctl_raw(int fd, uint64_t request, void *arg) { return xioctl(fd, (unsigned long)request, arg); }

int uffd_read_msgs(int fd, struct uffd_msg *buf, int max)
{
	ssize_t n;
	if (max <= 0)
		return -EINVAL;
	do {
		n = read(fd, buf, (size_t)max * sizeof(*buf));
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n % (ssize_t)sizeof(*buf))
		return -EPROTO; /* "lost alignment": never happens unless the ABI is wrong */
	return (int)(n / (ssize_t)sizeof(*buf));
}

int uffd_poll(int fd, int stopfd, int timeout_ms)
{
	struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = stopfd, .events = POLLIN } };
	int n = stopfd >= 0 ? 2 : 1, r, mask = 0;
	/* A signal to the waiting thread interrupts poll() whatever SA_RESTART says (signal(7)): retry,
	 * with what is left of the timeout, so a signal storm can neither end the wait with an error nor
	 * stretch a bounded wait without end. */
	struct timespec t0, t1;
	if (timeout_ms > 0)
		clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		r = poll(p, (nfds_t)n, timeout_ms);
		if (r >= 0 || errno != EINTR)
			break;
		if (timeout_ms > 0) {
			clock_gettime(CLOCK_MONOTONIC, &t1);
			int64_t spent = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
			if (spent >= timeout_ms) {
				r = 0;
				break;
			}
			timeout_ms -= (int)spent;
			t0 = t1;
		}
	}
	if (r < 0)
		return -errno;
	if (p[0].revents & POLLIN)
		mask |= UFFD_POLL_READABLE;
	if (p[0].revents & POLLHUP)
		mask |= UFFD_POLL_HUP;
	if (p[0].revents & (POLLERR | POLLNVAL))
		mask |= UFFD_POLL_ERR;
	if (n == 2 && (p[1].revents & (POLLIN | POLLHUP | POLLERR)))
		mask |= UFFD_POLL_STOP;
	return mask;
}

int uffd_eventfd(int nonblocking)
{
	int fd = eventfd(0, EFD_CLOEXEC | (nonblocking ? EFD_NONBLOCK : 0));
	return fd < 0 ? -errno : fd;
}

int uffd_eventfd_signal(int efd)
{
	uint64_t one = 1;
	ssize_t r;
	do {
		r = write(efd, &one, sizeof(one));
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

int uffd_eventfd_drain(int efd)
{
	uint64_t v;
	ssize_t r;
	do {
		r = read(efd, &v, sizeof(v));
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : (int)(v > 0x7fffffff ? 0x7fffffff : v);
}

int uffd_close(int fd)
{
	/* close() is not retried on EINTR: on Linux the fd is released whatever close returns. */
	return close(fd) < 0 ? -errno : 0;
}

int uffd_pagemap_scan(int pagemap_fd, struct pm_scan_arg *arg) { return xioctl(pagemap_fd, PAGEMAP_SCAN, arg); }

int uffd_gettid(void) { return (int)syscall(SYS_gettid); }

int uffd_pin_thread(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	if (cpu < 0) {
		long n = sysconf(_SC_NPROCESSORS_CONF);
		for (long i = 0; i < n && i < CPU_SETSIZE; i++)
			CPU_SET((int)i, &set);
	} else {
		CPU_SET(cpu, &set);
	}
	return sched_setaffinity(0, sizeof(set), &set) < 0 ? -errno : 0;
}
