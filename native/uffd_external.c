/* uffd_external.c — what handing a uffd to another process needs natively: Unix stream sockets that
 * carry file descriptors (SCM_RIGHTS), the peer's credentials, signals through a pidfd, and reads of
 * another process's memory (a handler snapshotting anonymous memory it cannot map).
 * Conventions as everywhere in the shim: >= 0 or -errno, EINTR retried inside. */

#include "uffd_shim.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
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

struct unix_addr {
	struct sockaddr_un sa;
	socklen_t len;
};

/* The address of path and a new stream socket for it: the fd, or -errno. */
static int unix_socket(const char *path, struct unix_addr *a)
{
	int r = make_addr(path, &a->sa, &a->len);
	if (r < 0)
		return r;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	return fd < 0 ? -errno : fd;
}

int uffd_sock_listen(const char *path, int backlog) { return uffd_sock_listen_mode(path, backlog, -1); }

int uffd_sock_listen_mode(const char *path, int backlog, int mode)
{
	struct unix_addr a;
	int r;
	int fd = unix_socket(path, &a);
	if (fd < 0)
		return fd;
	if (bind(fd, (struct sockaddr *)&a.sa, a.len) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	/* Bound but not listening: a connect() now is refused, so the mode is in place before anyone can
	 * reach the socket (the mode bind gave it came from the umask). */
	if ((mode >= 0 && chmod(path, (mode_t)mode) < 0) || listen(fd, backlog) < 0) {
		r = -errno;
		unlink(path);
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
	struct unix_addr a;
	int r;
	int fd = unix_socket(path, &a);
	if (fd < 0)
		return fd;
	do {
		r = connect(fd, (struct sockaddr *)&a.sa, a.len);
	} while (r < 0 && errno == EINTR);
	if (r < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

static int64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int uffd_sock_send_timed(int sock, const void *buf, int len, const int *fds, int nfds, int timeout_ms)
{
	char cbuf[CMSG_SPACE(sizeof(int) * UFFD_SOCK_MAX_FDS)];
	const char *p = buf;
	int done = 0;
	int64_t deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : 0;
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
			n = sendmsg(sock, &mh, MSG_NOSIGNAL | (timeout_ms >= 0 ? MSG_DONTWAIT : 0));
		} while (n < 0 && errno == EINTR);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && timeout_ms >= 0) {
			int64_t left = deadline - now_ms();
			if (left <= 0)
				return -ETIMEDOUT;
			int r = wait_fd(sock, POLLOUT, (int)left);
			if (r < 0)
				return r;
			continue;
		}
		if (n < 0)
			return -errno;
		done += (int)n;
	}
	return 0;
}

int uffd_sock_send(int sock, const void *buf, int len, const int *fds, int nfds)
{
	return uffd_sock_send_timed(sock, buf, len, fds, nfds, -1);
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

/* ---- serving another process safely ------------------------------------------------------------- */

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
#ifndef __NR_openat2
#define __NR_openat2 437
#endif
#ifndef RESOLVE_NO_MAGICLINKS
#define RESOLVE_NO_MAGICLINKS 0x02
#endif
#ifndef RESOLVE_NO_SYMLINKS
#define RESOLVE_NO_SYMLINKS 0x04
#endif
#ifndef RESOLVE_BENEATH
#define RESOLVE_BENEATH 0x08
#endif
#ifndef F_GET_SEALS
#define F_GET_SEALS 1034
#endif

_Static_assert(sizeof(struct uffd_file_info) == 56, "uffd_file_info: 4 x u32, 3 x u64, i64, 2 x i32");
_Static_assert(offsetof(struct uffd_file_info, size) == 16 && offsetof(struct uffd_file_info, fs_type) == 40 && offsetof(struct uffd_file_info, fl) == 48,
	       "uffd_file_info offsets (mirrored by Interop/Shim.External.cs)");

int uffd_sock_peer_pidfd(int sock)
{
	int pidfd = -1;
	socklen_t len = sizeof(pidfd);
	if (getsockopt(sock, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) < 0)
		return -errno;
	/* The descriptor arrives without close-on-exec. */
	if (fcntl(pidfd, F_SETFD, FD_CLOEXEC) < 0) {
		int r = -errno;
		close(pidfd);
		return r;
	}
	return pidfd;
}

int uffd_sock_is_unix_listener(int fd)
{
	int v = 0;
	socklen_t len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len) < 0)
		return errno == ENOTSOCK ? 0 : -errno;
	if (v != AF_UNIX)
		return 0;
	len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) < 0)
		return -errno;
	if (v != SOCK_STREAM)
		return 0;
	len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) < 0)
		return -errno;
	return v ? 1 : 0;
}

static void fill_info(const struct stat *st, struct uffd_file_info *out)
{
	memset(out, 0, sizeof(*out));
	out->mode = st->st_mode;
	out->uid = st->st_uid;
	out->gid = st->st_gid;
	out->size = st->st_size;
	out->dev = st->st_dev;
	out->ino = st->st_ino;
	out->seals = -EINVAL;
}

int uffd_fd_info(int fd, struct uffd_file_info *out)
{
	struct stat st;
	struct statfs sf;
	if (fstat(fd, &st) < 0)
		return -errno;
	fill_info(&st, out);
	if (fstatfs(fd, &sf) == 0)
		out->fs_type = (int64_t)sf.f_type;
	int seals = fcntl(fd, F_GET_SEALS);
	out->seals = seals < 0 ? -errno : seals;
	int fl = fcntl(fd, F_GETFL);
	out->fl = fl < 0 ? -errno : fl;
	return 0;
}

int uffd_path_info(const char *path, int follow, struct uffd_file_info *out)
{
	struct stat st;
	if ((follow ? stat(path, &st) : lstat(path, &st)) < 0)
		return -errno;
	fill_info(&st, out);
	return 0;
}

int uffd_fd_link(int fd, char *buf, int len)
{
	char p[64];
	if (len <= 1)
		return -EINVAL;
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(p, buf, (size_t)len - 1);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return (int)n;
}

int uffd_open_dir(const char *path)
{
	int fd;
	do {
		fd = open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	} while (fd < 0 && errno == EINTR);
	return fd < 0 ? -errno : fd;
}

struct open_how_compat {
	uint64_t flags;
	uint64_t mode;
	uint64_t resolve;
};

int uffd_open_beneath(int dirfd, const char *path)
{
	struct open_how_compat how = {
		.flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
		.mode = 0,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	long r;
	do {
		r = syscall(__NR_openat2, dirfd, path, &how, sizeof(how));
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : (int)r;
}

int uffd_lock_path(const char *path)
{
	for (int attempt = 0; attempt < 8; attempt++) {
		int fd;
		do {
			fd = open(path, O_CREAT | O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0600);
		} while (fd < 0 && errno == EINTR);
		if (fd < 0)
			return -errno;
		int r;
		do {
			r = flock(fd, LOCK_EX | LOCK_NB);
		} while (r < 0 && errno == EINTR);
		if (r < 0) {
			r = -errno;
			close(fd);
			return r;
		}
		/* The previous holder may have removed the file between our open and our flock: then the lock
		 * is on an orphan inode and protects nothing. It must still be the file at path. */
		struct stat a, b;
		if (fstat(fd, &a) == 0 && lstat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino && S_ISREG(b.st_mode))
			return fd;
		close(fd);
	}
	return -EAGAIN;
}

int uffd_parent_pidfd(int parent_pid)
{
	int fd = uffd_pidfd_open(parent_pid);
	if (fd < 0)
		return fd;
	/* Opened by number: it is our parent only if the parent is still that process now (it cannot
	 * have been reused while it was alive, and the pidfd keeps naming the original). */
	if (getppid() != parent_pid || uffd_pidfd_exited(fd) != 0) {
		close(fd);
		return -ESRCH;
	}
	return fd;
}

int uffd_pidfd_exited(int pidfd)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };
	int r;
	do {
		r = poll(&p, 1, 0);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return (p.revents & (POLLIN | POLLHUP)) ? 1 : 0;
}
