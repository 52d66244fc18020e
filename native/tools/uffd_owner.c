/* uffd_owner — a memory owner in a process of its own, for the reliability tests (the faulting side
 * that may be killed, OOM-killed in a cgroup, or stopped by SIGBUS without taking the test host down).
 *
 *   uffd_owner SOCKET PAGES MODE ACTION SEED [HANDLER_SOCKET]
 *     MODE    missing (anonymous memory registered MISSING) or
 *             wp      (anonymous memory filled with pattern(SEED), registered WP and protected)
 *     ACTION  read    read word 0 of every page
 *             write   write word (i % 512) of page i := pattern(SEED ^ 0x7777, i)
 *             verify  every word of every page must be pattern(SEED, i * 512 + w)
 *
 * It prints "ready PID UFFD_FD ADDR", connects to SOCKET (the supervisor), sends {addr, len, features}
 * with the uffd as SCM_RIGHTS (and, with HANDLER_SOCKET, a connection to that handler made by this
 * process: the handler's SO_PEERCRED then names the owner of the memory, whoever speaks the protocol
 * on it), waits for one byte, runs ACTION printing "touched N" every 64 pages,
 * and ends with "done N" (exit 0) or "mismatch page P word W" (exit 1). A SIGBUS prints
 * "sigbus addr=0x... code=N" and exits 42. Only syscalls and stack buffers; stdout is line-buffered. */

#include "../uffd_compat.h"
#include "../uffd_inline.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

static uint64_t pattern(uint64_t seed, uint64_t index)
{
	/* The shim's uffd_pattern_word (uffd_access.c). */
	uint64_t z = seed * 0x9E3779B97F4A7C15ULL + index + 0x632BE59BD9B4E019ULL;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	char line[96];
	int n = snprintf(line, sizeof(line), "sigbus addr=0x%lx code=%d\n", (unsigned long)(uintptr_t)si->si_addr, si->si_code);
	if (write(1, line, (size_t)n) < 0) {
	}
	_exit(42);
}

static int die(const char *what)
{
	printf("error %s: %s\n", what, strerror(errno));
	return 2;
}

int main(int argc, char **argv)
{
	if (argc != 6 && argc != 7) {
		fprintf(stderr, "usage: uffd_owner SOCKET PAGES missing|wp read|write|verify SEED [HANDLER_SOCKET]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *path = argv[1];
	uint64_t pages = strtoull(argv[2], NULL, 0), len = pages * 4096ULL;
	int wp = strcmp(argv[3], "wp") == 0;
	const char *action = argv[4];
	uint64_t seed = strtoull(argv[5], NULL, 0);

	uffd_catch_signal(SIGBUS, on_sigbus, 0, NULL);

	int uffd = (int)syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0)
		return die("userfaultfd");
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_THREAD_ID | (wp ? UFFD_FEATURE_PAGEFAULT_FLAG_WP : 0) };
	if (ioctl(uffd, UFFDIO_API, &api) < 0)
		return die("UFFDIO_API");
	uint64_t features = UFFD_FEATURE_THREAD_ID | (wp ? UFFD_FEATURE_PAGEFAULT_FLAG_WP : 0);
	uint64_t *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED)
		return die("mmap");
	if (wp)
		for (uint64_t i = 0; i < len / 8; i++)
			mem[i] = pattern(seed, i);
	struct uffdio_register reg = { .range = { (uint64_t)(uintptr_t)mem, len }, .mode = wp ? UFFDIO_REGISTER_MODE_WP : UFFDIO_REGISTER_MODE_MISSING };
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0)
		return die("UFFDIO_REGISTER");
	if (wp) {
		struct uffdio_writeprotect w = { .range = { (uint64_t)(uintptr_t)mem, len }, .mode = UFFDIO_WRITEPROTECT_MODE_WP };
		if (ioctl(uffd, UFFDIO_WRITEPROTECT, &w) < 0)
			return die("UFFDIO_WRITEPROTECT");
	}
	printf("ready %d %d 0x%lx\n", (int)getpid(), uffd, (unsigned long)(uintptr_t)mem);

	int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un su;
	memset(&su, 0, sizeof(su));
	su.sun_family = AF_UNIX;
	strncpy(su.sun_path, path, sizeof(su.sun_path) - 1);
	if (sock < 0 || connect(sock, (struct sockaddr *)&su, sizeof(su)) < 0)
		return die("connect");
	int fds[2] = { uffd, -1 }, nfds = 1;
	if (argc == 7) {
		int h = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_un hu;
		memset(&hu, 0, sizeof(hu));
		hu.sun_family = AF_UNIX;
		strncpy(hu.sun_path, argv[6], sizeof(hu.sun_path) - 1);
		if (h < 0 || connect(h, (struct sockaddr *)&hu, sizeof(hu)) < 0)
			return die("connect handler");
		fds[nfds++] = h;
	}
	uint64_t hdr[3] = { (uint64_t)(uintptr_t)mem, len, features };
	char cbuf[CMSG_SPACE(sizeof(int) * 2)];
	struct iovec iov = { .iov_base = hdr, .iov_len = sizeof(hdr) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	memset(cbuf, 0, sizeof(cbuf));
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
	c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	if (sendmsg(sock, &mh, MSG_NOSIGNAL) != (ssize_t)sizeof(hdr))
		return die("sendmsg");
	if (nfds == 2)
		close(fds[1]); /* the supervisor speaks on it from now on */
	char go;
	ssize_t n;
	do {
		n = read(sock, &go, 1);
	} while (n < 0 && errno == EINTR);
	if (n != 1)
		return die("wait for go");

	volatile uint64_t *v = mem;
	for (uint64_t i = 0; i < pages; i++) {
		if (strcmp(action, "read") == 0) {
			(void)v[i * 512];
		} else if (strcmp(action, "write") == 0) {
			v[i * 512 + i % 512] = pattern(seed ^ 0x7777, i);
		} else {
			for (uint64_t w = 0; w < 512; w++)
				if (v[i * 512 + w] != pattern(seed, i * 512 + w)) {
					printf("mismatch page %lu word %lu\n", (unsigned long)i, (unsigned long)w);
					return 1;
				}
		}
		if ((i + 1) % 64 == 0)
			printf("touched %lu\n", (unsigned long)(i + 1));
	}
	printf("done %lu\n", (unsigned long)pages);
	return 0;
}
