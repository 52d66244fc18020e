/* uffd_external.c — what handing a uffd to another process needs natively: Unix stream sockets that
 * carry file descriptors (SCM_RIGHTS), the peer's credentials, signals through a pidfd, and reads of
 * another process's memory (a handler snapshotting anonymous memory it cannot map).
 * Conventions as everywhere in the shim: >= 0 or -errno, EINTR retried inside. */

#include "uffd_shim.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef __NR_pidfd_send_signal
#define __NR_pidfd_send_signal 424
#endif

_Static_assert(sizeof(struct uffd_peer_cred) == 12, "uffd_peer_cred is three int32");

static int make_addr(const char *path, struct sockaddr_un *sa, socklen_t *len)
{
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, n);
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	return 0;
}

int uffd_sock_listen(const char *path, int backlog)
{
	struct sockaddr_un sa;
	socklen_t len;
	int r = make_addr(path, &sa, &len);
	if (r < 0)
		return r;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, len) < 0 || listen(fd, backlog) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

static int wait_fd(int fd, short events, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		r = poll(&p, 1, timeout_ms);
		if (r >= 0 || errno != EINTR)
			break;
		if (timeout_ms > 0) {
			clock_gettime(CLOCK_MONOTONIC, &t1);
			int spent = (int)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
			if (spent >= timeout_ms)
				return -ETIMEDOUT;
			timeout_ms -= spent;
			t0 = t1;
		}
	}
	if (r < 0)
		return -errno;
	return r == 0 ? -ETIMEDOUT : 0;
}

int uffd_sock_accept(int lfd, int timeout_ms)
{
	int r = wait_fd(lfd, POLLIN, timeout_ms);
	if (r < 0)
		return r;
	do {
		r = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

int uffd_sock_connect(const char *path)
{
	struct sockaddr_un sa;
	socklen_t len;
	int r = make_addr(path, &sa, &len);
	if (r < 0)
		return r;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	do {
		r = connect(fd, (struct sockaddr *)&sa, len);
	} while (r < 0 && errno == EINTR);
	if (r < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int uffd_sock_send(int sock, const void *buf, int len, const int *fds, int nfds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * UFFD_SOCK_MAX_FDS)];
	const char *p = buf;
	int done = 0;
	if (len < 0 || nfds < 0 || nfds > UFFD_SOCK_MAX_FDS || (nfds > 0 && len == 0))
		return -EINVAL;
	while (done < len) {
		struct iovec iov = { .iov_base = (void *)(p + done), .iov_len = (size_t)(len - done) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		if (done == 0 && nfds > 0) {
			/* The descriptors ride with the first byte of the frame. */
			memset(cbuf, 0, sizeof(cbuf));
			mh.msg_control = cbuf;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
			struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
			memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
		}
		ssize_t n;
		do {
			n = sendmsg(sock, &mh, MSG_NOSIGNAL);
		} while (n < 0 && errno == EINTR);
		if (n < 0)
			return -errno;
		done += (int)n;
	}
	return 0;
}

int uffd_sock_recv(int sock, void *buf, int len, int *fds, int maxfds, int *nfds, int timeout_ms)
{
	char cbuf[CMSG_SPACE(sizeof(int) * UFFD_SOCK_MAX_FDS)];
	*nfds = 0;
	if (len <= 0 || maxfds < 0 || maxfds > UFFD_SOCK_MAX_FDS)
		return -EINVAL;
	if (timeout_ms >= 0) {
		int r = wait_fd(sock, POLLIN, timeout_ms);
		if (r < 0)
			return r;
	}
	struct iovec iov = { .iov_base = buf, .iov_len = (size_t)len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	ssize_t n;
	do {
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < count; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + (size_t)i * sizeof(int), sizeof(int));
			if (*nfds < maxfds)
				fds[(*nfds)++] = fd;
			else
				close(fd); /* more than the caller can take: never leak them */
		}
	}
	if (mh.msg_flags & MSG_CTRUNC) {
		for (int i = 0; i < *nfds; i++)
			close(fds[i]);
		*nfds = 0;
		return -EPROTO;
	}
	return (int)n;
}

int uffd_sock_peer(int sock, struct uffd_peer_cred *out)
{
	struct ucred c;
	socklen_t len = sizeof(c);
	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &c, &len) < 0)
		return -errno;
	out->pid = c.pid;
	out->uid = (int32_t)c.uid;
	out->gid = (int32_t)c.gid;
	return 0;
}

int uffd_sock_shutdown(int sock) { return shutdown(sock, SHUT_RDWR) < 0 ? -errno : 0; }

int uffd_pidfd_send_signal(int pidfd, int sig)
{
	long r = syscall(__NR_pidfd_send_signal, pidfd, sig, NULL, 0);
	return r < 0 ? -errno : 0;
}

int uffd_tgkill(int tgid, int tid, int sig)
{
	long r = syscall(SYS_tgkill, tgid, tid, sig);
	return r < 0 ? -errno : 0;
}

int64_t uffd_process_read(int pid, void *local, uint64_t remote, uint64_t len)
{
	uint64_t done = 0;
	while (done < len) {
		struct iovec l = { .iov_base = (char *)local + done, .iov_len = (size_t)(len - done) };
		struct iovec r = { .iov_base = (void *)(uintptr_t)(remote + done), .iov_len = (size_t)(len - done) };
		ssize_t n = process_vm_readv(pid, &l, 1, &r, 1, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return done > 0 ? (int64_t)done : -errno;
		}
		if (n == 0)
			break;
		done += (uint64_t)n;
	}
	return (int64_t)done;
}
