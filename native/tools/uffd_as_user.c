/* uffd_as_user — a client of `uffdnative serve` as another user, for the security tests.
 *
 *   uffd_as_user UID GID SOCKET [FRAME_JSON]
 *
 * Drops to UID/GID (setgroups to none, setgid, setuid: after that it cannot regain root), connects to
 * SOCKET and sends FRAME_JSON as one frame (little-endian u32 length + the bytes) when given, then reads
 * one frame back. Prints exactly one line:
 *   "connect-error ERRNO"       the socket refused it (file mode, no listener)
 *   "reply JSON"                the handler's answer
 *   "eof"                       the handler closed the connection without a frame
 *   "error WHAT ERRNO"          anything else
 * Exits 0 after printing. Only syscalls and stack buffers. */

#include <errno.h>
#include <grp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int read_all(int fd, void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = read(fd, (char *)buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? 0 : -errno;
		done += (size_t)n;
	}
	return 1;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: uffd_as_user UID GID SOCKET [FRAME_JSON]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	uid_t uid = (uid_t)strtoul(argv[1], NULL, 10);
	gid_t gid = (gid_t)strtoul(argv[2], NULL, 10);
	if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0) {
		printf("error setuid %d\n", errno);
		return 0;
	}
	if (setuid(0) == 0) {
		printf("error still-root 0\n");
		return 0;
	}
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un su;
	memset(&su, 0, sizeof(su));
	su.sun_family = AF_UNIX;
	strncpy(su.sun_path, argv[3], sizeof(su.sun_path) - 1);
	if (s < 0 || connect(s, (struct sockaddr *)&su, sizeof(su)) < 0) {
		printf("connect-error %d\n", errno);
		return 0;
	}
	if (argc > 4) {
		uint32_t len = (uint32_t)strlen(argv[4]);
		if (write(s, &len, 4) != 4 || write(s, argv[4], len) != (ssize_t)len) {
			/* The handler may already have refused and closed: read its answer anyway. */
		}
	}
	uint32_t len;
	int r = read_all(s, &len, 4);
	if (r == 0) {
		printf("eof\n");
		return 0;
	}
	if (r < 0 || len > 65536) {
		printf("error read %d\n", r < 0 ? -r : EPROTO);
		return 0;
	}
	char buf[65537];
	r = read_all(s, buf, len);
	if (r <= 0) {
		printf("error read-body %d\n", r < 0 ? -r : 0);
		return 0;
	}
	buf[len] = 0;
	printf("reply %s\n", buf);
	return 0;
}
