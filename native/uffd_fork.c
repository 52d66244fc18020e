/* uffd_fork.c — the native fork helper.
 *
 * After fork() in a multi-threaded .NET process only the forking thread exists in the child, and
 * any lock another thread held (malloc, the runtime's) stays held forever. So the child executes
 * nothing but this file's code: raw syscalls, stack buffers, no malloc, no stdio, and _exit at the
 * end (ARCHITECTURE.md rule 6). Each op's result is written to a pipe as soon as it is known, so
 * the parent can observe progress (e.g. "the child is about to touch page 3"). */

#include "uffd_shim.h"

#define UFFD_INLINE_CHILD_SIGBUS
#include "uffd_inline.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef __NR_userfaultfd
#define __NR_userfaultfd 323
#endif
#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif

struct uffd_child {
	pid_t pid;
	int res_fd; /* read end of the result pipe */
	int ctl_fd; /* parent end of the control socket (fd passing, release) */
};

/* ---- child side ------------------------------------------------------------------------------ */

/* Child state lives outside the stack frame that sigsetjmp saves, so a SIGBUS cannot clobber it. */
static int uffd = -1;
static uint64_t last_addr, last_len;
static struct uffd_child_result r;
static int op_index;

static void child_write(int fd, const struct uffd_child_result *r)
{
	ssize_t n;
	do {
		n = write(fd, r, sizeof(*r));
	} while (n < 0 && errno == EINTR);
}

static int64_t child_pagemap(uint64_t addr, uint64_t *out)
{
	/* Opened here, in the child: an fd inherited from the parent reads the parent's tables (§1.7). */
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = pread(fd, out, 8, (off_t)(addr / 4096) * 8);
	int64_t r = n == 8 ? 0 : (n < 0 ? -errno : -EIO);
	close(fd);
	return r;
}

static int64_t child_send_fd(int sock, int fd, uint64_t addr)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &addr, .iov_len = sizeof(addr) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	memset(cbuf, 0, sizeof(cbuf));
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	ssize_t n;
	do {
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : 0;
}

static __attribute__((noreturn)) void child_main(const struct uffd_child_op *ops, int nops, int res_fd, int ctl_fd)
{
	sigset_t unblock;

	uffd_child_catch_sigbus();
	/* The runtime's own handlers must not run here. */
	signal(SIGSEGV, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&unblock);
	sigaddset(&unblock, SIGBUS);
	sigaddset(&unblock, SIGSEGV);
	sigprocmask(SIG_UNBLOCK, &unblock, NULL);

	for (op_index = 0; op_index < nops; op_index++) {
		const struct uffd_child_op *op = &ops[op_index];
		memset(&r, 0, sizeof(r));
		r.index = op_index;
		uffd_child_sigbus = 0;
		if (sigsetjmp(uffd_child_jmp, 1) != 0) {
			/* A SIGBUS aborted the op (FEATURE_SIGBUS, POISON, a released range). */
			r.sigbus = uffd_child_sigbus;
			r.si_code = uffd_child_si_code;
			r.ret = -EFAULT;
			child_write(res_fd, &r);
			continue;
		}
		volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)op->addr;
		switch (op->kind) {
		case UFFD_CHILD_READ64:
			r.value = *p;
			break;
		case UFFD_CHILD_WRITE64:
			*p = op->value;
			break;
		case UFFD_CHILD_PAGEMAP:
			r.ret = child_pagemap(op->addr, &r.value);
			break;
		case UFFD_CHILD_VERIFY:
			for (uint64_t w = 0; w < op->len / 8; w++)
				if (p[w] != uffd_pattern_word(op->value, w)) {
					r.ret = (int64_t)(w * 8 + 1);
					break;
				}
			break;
		case UFFD_CHILD_FILL:
			for (uint64_t w = 0; w < op->len / 8; w++)
				p[w] = uffd_pattern_word(op->value, w);
			break;
		case UFFD_CHILD_TOUCH_WRITE: {
			uint64_t stride = op->arg > 0 ? (uint64_t)op->arg : 4096;
			for (uint64_t off = 0; off < op->len; off += stride)
				*(volatile uint64_t *)(uintptr_t)(op->addr + off) = op->value;
			break;
		}
		case UFFD_CHILD_WAIT_PARENT: {
			char b;
			ssize_t n;
			do {
				n = read(ctl_fd, &b, 1);
			} while (n < 0 && errno == EINTR);
			r.ret = n < 0 ? -errno : n;
			break;
		}
		case UFFD_CHILD_UFFD_OPEN: {
			long fd = syscall(__NR_userfaultfd, op->arg);
			if (fd < 0 && (errno == EPERM || errno == ENOSYS)) {
				/* The same fallback as the binding's Auto path: where the syscall is refused
				 * (sysctl, missing CAP_SYS_PTRACE, a seccomp filter) the device may be allowed. */
				int first = errno, stage;
				int dfd = uffd_open_device(NULL, op->arg, &stage);
				fd = dfd;
				errno = dfd < 0 ? first : 0;
			}
			if (fd < 0) {
				r.ret = -errno;
				break;
			}
			struct uffdio_api api = { .api = UFFD_API, .features = op->value };
			if (ioctl((int)fd, UFFDIO_API, &api) < 0) {
				r.ret = -errno;
				close((int)fd);
				break;
			}
			uffd = (int)fd;
			r.ret = fd;
			r.value = api.features;
			break;
		}
		case UFFD_CHILD_MMAP_ANON:
		case UFFD_CHILD_MMAP_FILL: {
			void *m = mmap(NULL, op->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (m == MAP_FAILED) {
				r.ret = -errno;
				break;
			}
			last_addr = (uint64_t)(uintptr_t)m;
			last_len = op->len;
			if (op->kind == UFFD_CHILD_MMAP_FILL)
				uffd_pattern_fill(m, op->len, op->value, 0);
			r.value = last_addr;
			break;
		}
		case UFFD_CHILD_REGISTER: {
			struct uffdio_register reg = { .range = { last_addr, last_len }, .mode = (uint64_t)op->arg };
			r.ret = ioctl(uffd, UFFDIO_REGISTER, &reg) < 0 ? -errno : 0;
			r.value = reg.ioctls;
			break;
		}
		case UFFD_CHILD_SEND_UFFD:
			r.ret = child_send_fd(ctl_fd, uffd, last_addr);
			break;
		case UFFD_CHILD_CALL: {
			uffd_child_fn fn = (uffd_child_fn)(uintptr_t)op->value;
			r.ret = fn ? fn(op->addr, op->len, op->arg, &r.value) : -EINVAL;
			break;
		}
		case UFFD_CHILD_EXIT:
			_exit(op->arg);
		default:
			r.ret = -EINVAL;
		}
		r.sigbus = uffd_child_sigbus;
		child_write(res_fd, &r);
	}
	_exit(0);
}

/* ---- parent side ----------------------------------------------------------------------------- */

void *uffd_fork_start(const struct uffd_child_op *ops, int nops, int *err)
{
	int pfd[2], sv[2];
	struct uffd_child *c;
	struct uffd_child_op *copy;
	if (err)
		*err = 0;
	c = calloc(1, sizeof(*c));
	copy = calloc((size_t)(nops > 0 ? nops : 1), sizeof(*ops));
	if (!c || !copy) {
		free(c);
		free(copy);
		if (err)
			*err = -ENOMEM;
		return NULL;
	}
	memcpy(copy, ops, (size_t)nops * sizeof(*ops));
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		if (err)
			*err = -errno;
		free(c);
		free(copy);
		return NULL;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		if (err)
			*err = -errno;
		close(pfd[0]);
		close(pfd[1]);
		free(c);
		free(copy);
		return NULL;
	}
	/* With EVENT_FORK this blocks until the uffd's reader has taken the FORK message (§1.6).
	 * The raw syscall, not glibc's fork(): glibc holds every malloc arena lock (and the stdio list
	 * lock) across the fork system call, so with EVENT_FORK any thread that mallocs before the FORK
	 * message is read -- the reader itself, the .NET JIT or GC -- would deadlock with this one. The
	 * child runs only raw syscalls (no atfork handlers are needed). */
	pid_t pid = (pid_t)syscall(SYS_fork);
	if (pid == 0) {
		close(pfd[0]);
		close(sv[0]);
		child_main(copy, nops, pfd[1], sv[1]);
	}
	int saved = errno;
	free(copy);
	close(pfd[1]);
	close(sv[1]);
	if (pid < 0) {
		close(pfd[0]);
		close(sv[0]);
		free(c);
		if (err)
			*err = -saved;
		return NULL;
	}
	c->pid = pid;
	c->res_fd = pfd[0];
	c->ctl_fd = sv[0];
	return c;
}

int uffd_fork_pid(void *child) { return ((struct uffd_child *)child)->pid; }

static int wait_readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r;
	do {
		r = poll(&p, 1, timeout_ms);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return r == 0 ? -ETIMEDOUT : 0;
}

int uffd_fork_next(void *child, int timeout_ms, struct uffd_child_result *res)
{
	struct uffd_child *c = child;
	int r = wait_readable(c->res_fd, timeout_ms);
	if (r < 0)
		return r;
	ssize_t n;
	do {
		n = read(c->res_fd, res, sizeof(*res));
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return 0;
	return n == (ssize_t)sizeof(*res) ? 1 : -EPROTO; /* records are < PIPE_BUF, so writes are atomic */
}

int uffd_fork_recv_fd(void *child, int timeout_ms, uint64_t *addr)
{
	struct uffd_child *c = child;
	char cbuf[CMSG_SPACE(sizeof(int))];
	uint64_t a = 0;
	struct iovec iov = { .iov_base = &a, .iov_len = sizeof(a) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	int r = wait_readable(c->ctl_fd, timeout_ms);
	if (r < 0)
		return r;
	ssize_t n;
	do {
		n = recvmsg(c->ctl_fd, &mh, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n != sizeof(a))
		return -EPROTO;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			int fd;
			memcpy(&fd, CMSG_DATA(cm), sizeof(int));
			if (addr)
				*addr = a;
			return fd;
		}
	return -EPROTO;
}

int uffd_fork_release(void *child)
{
	struct uffd_child *c = child;
	char b = 1;
	ssize_t n;
	do {
		n = send(c->ctl_fd, &b, 1, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : 0;
}

int uffd_fork_finish(void *child, int timeout_ms, int *status)
{
	struct uffd_child *c = child;
	int st = 0, rc = 0;
	/* Closing the control socket releases a child parked in WAIT_PARENT (it reads EOF). */
	close(c->ctl_fd);
	int pidfd = (int)syscall(__NR_pidfd_open, c->pid, 0);
	if (pidfd >= 0) {
		rc = wait_readable(pidfd, timeout_ms);
		close(pidfd);
	} else {
		/* Pre-5.3 kernels: the child's exit closes its end of the result pipe. */
		char drain[256];
		for (;;) {
			rc = wait_readable(c->res_fd, timeout_ms);
			if (rc < 0)
				break;
			ssize_t n = read(c->res_fd, drain, sizeof(drain));
			if (n <= 0)
				break;
		}
	}
	if (rc == -ETIMEDOUT)
		kill(c->pid, SIGKILL);
	pid_t w;
	do {
		w = waitpid(c->pid, &st, 0);
	} while (w < 0 && errno == EINTR);
	close(c->res_fd);
	free(c);
	if (status)
		*status = st;
	if (rc == -ETIMEDOUT)
		return -ETIMEDOUT;
	return w < 0 ? -errno : st;
}
