/* ==== runtime: the same executor as UffdNative's KernelExecutor, in plain C (Linux x86-64) ==== */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* native/uffd_inline.h, written in here by the harness when it writes this file (the signal catchers and upstream's
 * sigbus loop, the code the shim and libuffdharness run themselves). */
#define UFFD_INLINE_CHILD_SIGBUS
#define UFFD_INLINE_SIGBUS_LOOP
#include "uffd_inline.h"

/* The UAPI is defined here, not taken from <linux/userfaultfd.h>: distribution headers lag the
 * kernel (Debian 12 ships 6.1 headers without POISON, MOVE, WP_ASYNC, PAGEMAP_SCAN). */
struct r_uffdio_api { uint64_t api, features, ioctls; };
struct r_uffdio_range { uint64_t start, len; };
struct r_uffdio_register { struct r_uffdio_range range; uint64_t mode, ioctls; };
struct r_uffdio_copy { uint64_t dst, src, len, mode; int64_t copy; };
/* uffdio_zeropage, uffdio_continue and uffdio_poison: one layout, {range, mode, result} (zeropage, mapped, updated). */
struct r_uffdio_fill { struct r_uffdio_range range; uint64_t mode; int64_t result; };
struct r_uffdio_writeprotect { struct r_uffdio_range range; uint64_t mode; };
struct r_uffdio_move { uint64_t dst, src, len, mode; int64_t move; };
struct r_uffd_msg {
	uint8_t event, reserved1;
	uint16_t reserved2;
	uint32_t reserved3;
	union {
		struct { uint64_t flags, address; uint32_t ptid; } __attribute__((packed)) pagefault;
		struct { uint32_t ufd; } fork;
		struct { uint64_t from, to, len; } remap;
		struct { uint64_t start, end; } remove;
		uint8_t pad[24];
	} arg;
} __attribute__((packed));
struct r_page_region { uint64_t start, end, categories; };
struct r_pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define R_IOWR(nr, sz) (0xC0000000UL | ((unsigned long)(sz) << 16) | (0xAAUL << 8) | (nr))
#define R_IOR(nr, sz) (0x80000000UL | ((unsigned long)(sz) << 16) | (0xAAUL << 8) | (nr))
#define UFFDIO_API_ R_IOWR(0x3F, 24)
#define UFFDIO_REGISTER_ R_IOWR(0x00, 32)
#define UFFDIO_UNREGISTER_ R_IOR(0x01, 16)
#define UFFDIO_WAKE_ R_IOR(0x02, 16)
#define UFFDIO_COPY_ R_IOWR(0x03, 40)
#define UFFDIO_ZEROPAGE_ R_IOWR(0x04, 32)
#define UFFDIO_MOVE_ R_IOWR(0x05, 40)
#define UFFDIO_WRITEPROTECT_ R_IOWR(0x06, 24)
#define UFFDIO_CONTINUE_ R_IOWR(0x07, 32)
#define UFFDIO_POISON_ R_IOWR(0x08, 32)
#define USERFAULTFD_IOC_NEW_ 0xAA00UL
#define PAGEMAP_SCAN_ 0xC0606610UL
#define EV_PAGEFAULT 0x12
#define EV_FORK 0x13
#define EV_REMAP 0x14
#define EV_REMOVE 0x15
#define PF_WRITE 1
#define PF_WP 2
#define PF_MINOR 4
/* A scenario page: 4 KiB, or one 2 MiB huge page in a hugetlb scenario (HUGETLB and SLOT_BYTES come with the
 * scenario below). pagemap is always indexed by 4 KiB. */
#define PAGE (HUGETLB ? (2UL << 20) : 4096UL)
#define BASE_PAGE 4096UL
#define SLOT SLOT_BYTES
#define MAX_FAULTS_PER_OP 9
#define MAX_MAPS 8
#define MAX_UFFDS 8

enum { K_ANON = 0, K_SHARED = 1, K_PRIVATE = 2 };
enum { P_COPY = 0, P_COPYWP = 1, P_ZERO = 2, P_MOVE = 3 };
enum {
	OP_READ = 1, OP_WRITE, OP_KWRITE, OP_REGISTER, OP_UNREGISTER, OP_WP, OP_COPY, OP_ZEROPAGE, OP_CONTINUE, OP_POISON,
	OP_MOVE, OP_WAKE, OP_MADVISE, OP_DRAIN, OP_PUNCH, OP_TRUNCATE, OP_PWRITE, OP_PREAD, OP_MPROTECT, OP_MREMAP,
	OP_FORK, OP_CLOSE, OP_API, OP_SCAN, OP_PIN, OP_UNPIN, OP_HOLD, OP_SIGNAL, OP_COLLAPSE,
};
struct map_spec { const char *name; int kind, pages, file_offset, hugepage; };
struct uffd_spec { const char *name; uint64_t features; int umo; };
/* A child step: a load or store, a pin, or (mremap) an mremap of the whole mapping to a free slot of the child's
 * own address space, or (madvise = 1 DONTNEED, 2 REMOVE) a madvise of count pages: upstream's events child; or
 * (sigbus_loop) upstream's sigbus loop over count pages on a uffd of the child's own, MISSING (|WP with write). */
struct child_acc { int m, page, write; uint64_t tag; int pin, mremap, madvise, count, sigbus_loop; };
struct api_step { uint64_t api, features; };
/* flag1: wp | protect | hold | device | wp_matching | write (OP_HOLD); flag2: dontwake (OP_WP, OP_COPY) | allow_src_holes |
 * advice(REMOVE=1, PAGEOUT=2) | kernel (OP_HOLD) */
struct op { int kind, u, m, first, count, modes, flag1, flag2, m2, first2; uint64_t tag; int child_first, child_count; };
#define MAX_OPS_PINS 16
/* minor_alias: -1, or the mapping through which a MINOR page's bytes are inverted before CONTINUE (upstream's
 * handler); poison[npoison]: page numbers whose MISSING faults are POISONed instead of COPYed. */
/* unregister_on_remove: the handler UNREGISTERs a REMOVE event's range on the uffd it came from (upstream's events handler). */
struct policy { int missing, continue_wp, move_src, move_chunk, minor_alias, npoison; const int *poison; int unregister_on_remove; };

/*@@SCENARIO@@*/

/* ---- state ------------------------------------------------------------------------------------ */
static uint64_t map_addr[MAX_MAPS];
static int memfd = -1, pagemap_fd = -1;
static int uffd_fd[MAX_UFFDS];
static int uffd_closed[MAX_UFFDS];
static int child_fd[MAX_UFFDS];
static char child_name[MAX_UFFDS][32];
static uint64_t child_features[MAX_UFFDS];
static int nchild;
/* With POLICY.unregister_on_remove the child waits on release_pipe after each madvise step until the handler has
 * UNREGISTERed the REMOVE's range: userfaultfd_unregister wakes waiters before it clears each VMA, and a fault under the
 * per-VMA lock can queue itself in between (a message for a range no longer registered: COPY ENOENT). */
static int release_pipe[2] = { -1, -1 };
static uint64_t slot_base;
static int next_slot;
static int faults_this_op, blocked, timed_out;
static char msgs[4096];
static int nmsgs;
static long op_deadline_ms;

static const char *ename(int e)
{
	static char buf[16];
	switch (e < 0 ? -e : e) {
	case 0: return "OK";
	case EPERM: return "EPERM"; case ENOENT: return "ENOENT"; case ESRCH: return "ESRCH"; case EINTR: return "EINTR";
	case EIO: return "EIO"; case ENXIO: return "ENXIO"; case EBADF: return "EBADF"; case ECHILD: return "ECHILD";
	case EAGAIN: return "EAGAIN"; case ENOMEM: return "ENOMEM"; case EACCES: return "EACCES"; case EFAULT: return "EFAULT";
	case EBUSY: return "EBUSY"; case EEXIST: return "EEXIST"; case ENODEV: return "ENODEV"; case ENOTDIR: return "ENOTDIR";
	case EISDIR: return "EISDIR"; case EINVAL: return "EINVAL"; case EMFILE: return "EMFILE"; case ENOTTY: return "ENOTTY";
	case EFBIG: return "EFBIG"; case ENOSPC: return "ENOSPC"; case ESPIPE: return "ESPIPE"; case EROFS: return "EROFS";
	case EPIPE: return "EPIPE"; case ERANGE: return "ERANGE"; case ENOSYS: return "ENOSYS"; case EPROTO: return "EPROTO";
	case EOVERFLOW: return "EOVERFLOW"; case EOPNOTSUPP: return "EOPNOTSUPP"; case ETIMEDOUT: return "ETIMEDOUT";
	}
	snprintf(buf, sizeof(buf), "E%d", e < 0 ? -e : e);
	return buf;
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void add_msg(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	size_t len = strlen(msgs);
	snprintf(msgs + len, sizeof(msgs) - len, "%s%s", nmsgs++ ? " | " : "", line);
}

static int xioctl(int fd, unsigned long req, void *arg)
{
	int r;
	do
		r = ioctl(fd, req, arg);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

static uint64_t addr_of(int m, int page) { return map_addr[m] + (uint64_t)page * PAGE; }

/* A field of the smaps entry of the mapping holding addr, in kB (0 when absent). */
static long smaps_kb(uint64_t addr, const char *field)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	int in = 0;
	long v = 0;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long s, e;
		char *dash = strchr(line, '-'), *sp = strchr(line, ' ');
		if (dash && sp && dash < sp && sscanf(line, "%llx-%llx ", &s, &e) == 2) {
			in = addr >= s && addr < e;
			continue;
		}
		if (in && strncmp(line, field, strlen(field)) == 0) {
			sscanf(line + strlen(field), "%ld", &v);
			break;
		}
	}
	fclose(f);
	return v;
}

static void pagemap_string(int m, char *out)
{
	int n = MAPS[m].pages;
	uint64_t ents[512];
	int ok = 1;
	/* A huge page has one entry per 4 KiB, all alike: its base's stands for it. */
	for (int i = 0; i < n && ok; i++)
		ok = pread(pagemap_fd, &ents[i], 8, (off_t)(addr_of(m, i) / BASE_PAGE) * 8) == 8;
	if (!ok) {
		memset(out, '?', n);
	} else {
		for (int i = 0; i < n; i++) {
			uint64_t e = ents[i];
			int present = (e >> 63) & 1, swap = (e >> 62) & 1, file = (e >> 61) & 1, wp = (e >> 57) & 1;
			char c;
			if (!present && !swap) c = wp ? 'm' : '.'; /* 'm': a hugetlb uffd-wp marker (no swap bit) */
			else if (present) c = file ? (wp ? 'F' : 'f') : (wp ? 'A' : 'a');
			else c = wp ? 'M' : 'x';
			out[i] = c;
		}
	}
	out[n] = 0;
}

static void all_pagemaps(char *out, size_t cap)
{
	out[0] = 0;
	for (int m = 0; m < NMAPS; m++) {
		char pm[600];
		pagemap_string(m, pm);
		size_t len = strlen(out);
		snprintf(out + len, cap - len, " %s=%s", MAPS[m].name, pm);
	}
}

/* ---- helper threads (accesses and blocking syscalls never run on the serving thread) ---------- */
struct job { pthread_t t; atomic_int done; long ret; uint64_t value; int op_index; };

/* A job thread gets every asynchronous signal blocked but SIGUSR1 (the signal op), as the shim's access workers do:
 * a user-mode fault sleeps interruptibly (reference §1.5), and a process-directed signal the kernel picked a job's
 * thread for would wake it and re-run its access. The mask is set around pthread_create, which the thread inherits. */
static int start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t set, old;
	sigfillset(&set);
	sigdelset(&set, SIGUSR1);
	sigdelset(&set, SIGBUS);
	sigdelset(&set, SIGSEGV);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	int rc = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

/* During a fork op: where the child's mremap steps put its mappings (the parent's stay in map_addr). */
static struct { int m; uint64_t addr; } child_place[MAX_MAPS];
static int nchild_places;
/* The start of the mapping in the address space the last locate() found the address in (the parent's or the child's). */
static uint64_t located_base;

static int locate(uint64_t a, int *page)
{
	for (int m = 0; m < NMAPS; m++)
		if (a >= map_addr[m] && a < map_addr[m] + MAPS[m].pages * PAGE) {
			*page = (int)((a - map_addr[m]) / PAGE);
			located_base = map_addr[m];
			return m;
		}
	for (int k = 0; k < nchild_places; k++) {
		int m = child_place[k].m;
		if (a >= child_place[k].addr && a < child_place[k].addr + MAPS[m].pages * PAGE) {
			*page = (int)((a - child_place[k].addr) / PAGE);
			located_base = child_place[k].addr;
			return m;
		}
	}
	return -1;
}

/* The scenario's handler: the same ioctls, in the same order, as the C# executor and the model. */
static int do_copy(int fd, int m, int page, int count, uint64_t tag, int wp, int dontwake, int64_t *field);
static int do_fill(int fd, unsigned long req, int m, int page, int count, uint64_t mode, int64_t *field);
static int do_move(int fd, int m, int page, int src, int srcpage, int count, int holes, int64_t *field);
static int do_wp(int fd, int m, int page, int count, int protect, int dontwake);

static void entry(char *log, size_t cap, const char *name, int rc)
{
	size_t len = strlen(log);
	if (rc == 0)
		snprintf(log + len, cap - len, "%s%s", len ? " " : "", name);
	else
		snprintf(log + len, cap - len, "%s%s:%s", len ? " " : "", name, ename(rc));
}

static void handle(int fd, const char *uname, uint64_t features, struct r_uffd_msg *msg)
{
	int page;
	if (msg->event == EV_PAGEFAULT) {
		if (++faults_this_op > MAX_FAULTS_PER_OP) {
			blocked = 1;
			return;
		}
		uint64_t flags = msg->arg.pagefault.flags;
		int m = locate(msg->arg.pagefault.address, &page);
		if (m < 0) {
			add_msg("%s PF 0x%llx 0x%llx => unknown address", uname, (unsigned long long)flags, (unsigned long long)msg->arg.pagefault.address);
			blocked = 1;
			return;
		}
		char log[256] = "";
		int rc, first = page;
		int64_t field = 0;
		/* A fault of a fork child whose mremap moved the mapping: the handler's ioctls address it there, as
		 * upstream's handler follows REMAP (area_dst = remap.to); the parent's place is restored below. */
		uint64_t parent_base = map_addr[m];
		map_addr[m] = located_base;
		if (flags & PF_WP) {
			rc = do_wp(fd, m, page, 1, 0, 0);
			entry(log, sizeof(log), "unprotect", rc);
		} else if (flags & PF_MINOR) {
			if (POLICY.minor_alias >= 0) {
				/* The alias maps the file from page 0 and is never registered: an ordinary write, no fault. */
				uint64_t *q = (uint64_t *)(uintptr_t)addr_of(POLICY.minor_alias, MAPS[m].file_offset + page);
				for (size_t b = 0; b < PAGE / 8; b++)
					q[b] = ~q[b];
			}
			if (POLICY.continue_wp) {
				rc = do_fill(fd, UFFDIO_CONTINUE_, m, page, 1, 2, &field);
				entry(log, sizeof(log), "continue-wp", rc);
				if (rc == -EINVAL) {
					rc = do_fill(fd, UFFDIO_CONTINUE_, m, page, 1, 0, &field);
					entry(log, sizeof(log), "continue", rc);
				}
			} else {
				rc = do_fill(fd, UFFDIO_CONTINUE_, m, page, 1, 0, &field);
				entry(log, sizeof(log), "continue", rc);
			}
		} else {
			uint64_t tag = 0xC0000ULL + ((uint64_t)m << 8) + (uint64_t)page;
			int poisoned = 0;
			for (int i = 0; i < POLICY.npoison; i++)
				poisoned |= POLICY.poison[i] == page;
			switch (poisoned && (POLICY.missing == P_COPY || POLICY.missing == P_COPYWP) ? -1 : POLICY.missing) {
			case -1:
				rc = do_fill(fd, UFFDIO_POISON_, m, page, 1, 0, &field);
				entry(log, sizeof(log), "poison", rc);
				break;
			case P_COPYWP:
				rc = do_copy(fd, m, page, 1, tag, 1, 0, &field);
				entry(log, sizeof(log), "copy-wp", rc);
				if (rc == -EINVAL) {
					rc = do_copy(fd, m, page, 1, tag, 0, 0, &field);
					entry(log, sizeof(log), "copy", rc);
				}
				break;
			case P_ZERO:
				rc = do_fill(fd, UFFDIO_ZEROPAGE_, m, page, 1, 0, &field);
				entry(log, sizeof(log), "zeropage", rc);
				break;
			case P_MOVE: {
				int chunk = POLICY.move_chunk > 0 ? POLICY.move_chunk : 1;
				first = page - page % chunk;
				rc = do_move(fd, m, first, POLICY.move_src, first, chunk, 1, &field);
				entry(log, sizeof(log), "move", rc);
				break;
			}
			default:
				rc = do_copy(fd, m, page, 1, tag, 0, 0, &field);
				entry(log, sizeof(log), "copy", rc);
			}
		}
		int resolved;
		if (rc == 0)
			resolved = 1;
		else if (rc == -EEXIST) {
			struct r_uffdio_range r = { addr_of(m, page), PAGE };
			xioctl(fd, UFFDIO_WAKE_, &r);
			entry(log, sizeof(log), "wake", 0);
			resolved = 1;
		} else
			resolved = rc == -EAGAIN && field > 0 && page < first + (int)(field / (int64_t)PAGE);
		map_addr[m] = parent_base;
		add_msg("%s PF 0x%llx %s+%d => %s", uname, (unsigned long long)flags, MAPS[m].name, page, log);
		if (!resolved)
			blocked = 1;
	} else if (msg->event == EV_FORK) {
		add_msg("%s FORK", uname);
		if (nchild < MAX_UFFDS) {
			child_fd[nchild] = (int)msg->arg.fork.ufd;
			snprintf(child_name[nchild], sizeof(child_name[0]), "%sc", uname);
			child_features[nchild] = features;
			nchild++;
		}
	} else if (msg->event == EV_REMOVE) {
		int m = locate(msg->arg.remove.start, &page);
		char how[64] = "";
		if (POLICY.unregister_on_remove) {
			/* Then the releasing fork child, waiting on release_pipe, goes on (see release_pipe). */
			struct r_uffdio_range r = { msg->arg.remove.start, msg->arg.remove.end - msg->arg.remove.start };
			int rc = xioctl(fd, UFFDIO_UNREGISTER_, &r);
			snprintf(how, sizeof(how), rc ? " => unregister:%s" : " => unregister", rc ? ename(rc) : "");
			for (int c = 0; c < nchild; c++)
				if (child_fd[c] == fd && release_pipe[1] >= 0 && write(release_pipe[1], "r", 1) < 0) {}
		}
		if (m >= 0)
			add_msg("%s REMOVE %s+%d..%d%s", uname, MAPS[m].name, page, page + (int)((msg->arg.remove.end - msg->arg.remove.start) / PAGE), how);
		else
			add_msg("%s REMOVE 0x%llx..0x%llx%s", uname, (unsigned long long)msg->arg.remove.start, (unsigned long long)msg->arg.remove.end, how);
	} else if (msg->event == EV_REMAP) {
		int m = locate(msg->arg.remap.from, &page);
		if (m >= 0)
			add_msg("%s REMAP %s", uname, MAPS[m].name);
		else
			add_msg("%s REMAP 0x%llx", uname, (unsigned long long)msg->arg.remap.from);
	} else {
		add_msg("%s event 0x%x 0x%llx", uname, msg->event, (unsigned long long)msg->arg.remove.start);
	}
}

/* During a fork op (0 otherwise): the op's bound on silence, and the child's report bytes seen so far; the child. */
static int fork_pipe[2];
static atomic_int fork_pid;
static long fork_silence_ms;
static int fork_seen;

/* A fork op is bounded on silence, not in total, as the executor's: a fork and a child's faulting accesses take
 * seconds under TCG on a loaded machine. Every message served and every report the child writes is progress; the
 * child has finitely many steps and an op at most MAX_FAULTS_PER_OP faults, so the op still ends. */
static void fork_progress(int any)
{
	int avail = 0;
	if (ioctl(fork_pipe[0], FIONREAD, &avail) == 0 && avail > fork_seen) {
		fork_seen = avail;
		any = 1;
	}
	if (any)
		op_deadline_ms = now_ms() + fork_silence_ms;
}

/* Reads and resolves messages until *done (or a hang: timed_out). */
static void serve(atomic_int *done)
{
	struct r_uffd_msg buf[16];
	for (;;) {
		int any = 0;
		for (int i = 0; i < NUFFDS + nchild; i++) {
			int fd = i < NUFFDS ? (uffd_closed[i] ? -1 : uffd_fd[i]) : child_fd[i - NUFFDS];
			if (fd < 0)
				continue;
			const char *name = i < NUFFDS ? UFFDS[i].name : child_name[i - NUFFDS];
			uint64_t features = i < NUFFDS ? UFFDS[i].features : child_features[i - NUFFDS];
			ssize_t n = read(fd, buf, sizeof(buf));
			if (n <= 0)
				continue;
			for (int k = 0; k < n / (ssize_t)sizeof(buf[0]); k++) {
				any = 1;
				handle(fd, name, features, &buf[k]);
				if (blocked)
					return;
			}
		}
		if (done == NULL || atomic_load(done))
			return;
		if (fork_silence_ms > 0)
			fork_progress(any);
		if (now_ms() > op_deadline_ms) {
			pid_t child = fork_silence_ms > 0 ? (pid_t)atomic_load(&fork_pid) : 0;
			if (child > 0) {
				/* A child silent for the whole bound while alive is blocked (e.g. a write that retries forever,
				 * §3.11 fork): killed, and the op ends "blocked", as the executor's and the model's thread that is
				 * never released. */
				kill(child, SIGKILL);
				blocked = 1;
			} else
				timed_out = 1;
			return;
		}
		if (!any) {
			struct pollfd p[2 * MAX_UFFDS];
			int np = 0;
			for (int i = 0; i < NUFFDS; i++)
				if (!uffd_closed[i])
					p[np++] = (struct pollfd){ .fd = uffd_fd[i], .events = POLLIN };
			for (int i = 0; i < nchild; i++)
				p[np++] = (struct pollfd){ .fd = child_fd[i], .events = POLLIN };
			if (np)
				poll(p, np, 5);
			else
				usleep(1000);
		}
	}
}

static int any_readable(int ms)
{
	struct pollfd p[MAX_UFFDS];
	int np = 0;
	for (int i = 0; i < NUFFDS; i++)
		if (!uffd_closed[i])
			p[np++] = (struct pollfd){ .fd = uffd_fd[i], .events = POLLIN };
	if (!np) {
		usleep(1000);
		return 0;
	}
	return poll(p, np, ms) > 0;
}

/* ---- ioctls ----------------------------------------------------------------------------------- */
static unsigned char *src_buf;

static int do_copy(int fd, int m, int page, int count, uint64_t tag, int wp, int dontwake, int64_t *field)
{
	size_t len = (size_t)count * PAGE;
	if (src_buf)
		free(src_buf);
	if (posix_memalign((void **)&src_buf, PAGE, len))
		return -ENOMEM;
	memset(src_buf, 0, len);
	for (int i = 0; i < count; i++)
		memcpy(src_buf + (size_t)i * PAGE, &tag, 8);
	struct r_uffdio_copy c = { addr_of(m, page), (uint64_t)(uintptr_t)src_buf, len, (wp ? 2 : 0) | (dontwake ? 1 : 0), 1 };
	int rc = xioctl(fd, UFFDIO_COPY_, &c);
	*field = c.copy;
	return rc;
}

/* UFFDIO_ZEROPAGE, UFFDIO_CONTINUE (mode 2: MODE_WP) or UFFDIO_POISON of count pages from page of mapping m. */
static int do_fill(int fd, unsigned long req, int m, int page, int count, uint64_t mode, int64_t *field)
{
	struct r_uffdio_fill f = { { addr_of(m, page), (uint64_t)count * PAGE }, mode, 1 };
	int rc = xioctl(fd, req, &f);
	*field = f.result;
	return rc;
}

static int do_move(int fd, int m, int page, int src, int srcpage, int count, int holes, int64_t *field)
{
	struct r_uffdio_move mv = { addr_of(m, page), addr_of(src, srcpage), (uint64_t)count * PAGE, holes ? 2 : 0, 1 };
	int rc = xioctl(fd, UFFDIO_MOVE_, &mv);
	*field = mv.move;
	return rc;
}

static int do_wp(int fd, int m, int page, int count, int protect, int dontwake)
{
	struct r_uffdio_writeprotect w = { { addr_of(m, page), (uint64_t)count * PAGE }, (protect ? 1 : 0) | (dontwake ? 2 : 0) };
	return xioctl(fd, UFFDIO_WRITEPROTECT_, &w);
}

/* ---- blocking jobs ------------------------------------------------------------------------------ */

/* A long-term pin: [addr, addr+len) registered as an io_uring fixed buffer (io_uring_setup +
 * IORING_REGISTER_BUFFERS: pin_user_pages_fast(FOLL_WRITE | FOLL_LONGTERM), each page faulted in as a
 * kernel-mode write first). Returns the ring fd or -errno; ring_unpin unregisters (unpins) and closes. */
static int ring_pin(uint64_t addr, uint64_t len)
{
	uint32_t params[30];
	memset(params, 0, sizeof(params));
	long fd = syscall(425 /* __NR_io_uring_setup */, 1, params);
	if (fd < 0)
		return -errno;
	struct { void *base; size_t len; } iov = { (void *)(uintptr_t)addr, (size_t)len };
	if (syscall(427 /* __NR_io_uring_register */, (int)fd, 0 /* IORING_REGISTER_BUFFERS */, &iov, 1) < 0) {
		int e = errno;
		close((int)fd);
		return -e;
	}
	return (int)fd;
}
static int ring_unpin(int ring)
{
	int rc = syscall(427, ring, 1 /* IORING_UNREGISTER_BUFFERS */, NULL, 0) < 0 ? -errno : 0;
	close(ring);
	return rc;
}
static int pin_ring[MAX_OPS_PINS], pin_m[MAX_OPS_PINS], pin_first[MAX_OPS_PINS], pin_count[MAX_OPS_PINS], npins;

static void *pin_job(void *arg)
{
	struct job *j = arg;
	const struct op *o = &OPS[j->op_index];
	j->ret = ring_pin(addr_of(o->m, o->first), (uint64_t)o->count * PAGE);
	atomic_store(&j->done, 1);
	return NULL;
}

static void *access_job(void *arg)
{
	struct job *j = arg;
	const struct op *o = &OPS[j->op_index];
	volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)addr_of(o->m, o->first);
	if (o->kind == OP_READ)
		j->value = *p;
	else if (o->kind == OP_WRITE)
		*p = o->tag;
	else {
		/* A kernel-mode store: read(2) from a pipe into the page. */
		int pp[2];
		uint64_t v = o->tag;
		if (pipe(pp) == 0) {
			if (write(pp[1], &v, 8) == 8) {
				ssize_t n;
				do
					n = read(pp[0], (void *)p, 8);
				while (n < 0 && errno == EINTR);
				j->ret = n < 0 ? -errno : n;
			}
			close(pp[0]);
			close(pp[1]);
		}
	}
	atomic_store(&j->done, 1);
	return NULL;
}

static void *madvise_job(void *arg)
{
	struct job *j = arg;
	const struct op *o = &OPS[j->op_index];
	j->ret = madvise((void *)(uintptr_t)addr_of(o->m, o->first), (size_t)o->count * PAGE, o->flag2 == 2 ? 21 /* MADV_PAGEOUT */ : o->flag2 ? MADV_REMOVE : MADV_DONTNEED) < 0 ? -errno : 0;
	atomic_store(&j->done, 1);
	return NULL;
}

static uint64_t mremap_target;
static void *mremap_job(void *arg)
{
	struct job *j = arg;
	const struct op *o = &OPS[j->op_index];
	void *p = mremap((void *)(uintptr_t)map_addr[o->m], (size_t)MAPS[o->m].pages * PAGE, (size_t)MAPS[o->m].pages * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)(uintptr_t)mremap_target);
	j->ret = p == MAP_FAILED ? -errno : 0;
	atomic_store(&j->done, 1);
	return NULL;
}

/* fork: the child reports its pagemap, runs its accesses (SIGBUS caught), reports again, exits.
 * Only syscalls and stack buffers in the child: the parent is multi-threaded. */
struct child_rec { int32_t index, sigbus, si_code, pad; int64_t ret; uint64_t value; };

/* Upstream's sigbus loop (faulting_process(1, wp)) in the child, on a uffd of its own with FEATURE_SIGBUS that
 * registers the range: uffd_sigbus_loop_run, with this file's ioctls. */
static int loop_fd;

static int64_t loop_copy(uint64_t dst, uint64_t src, uint64_t len, int wp)
{
	struct r_uffdio_copy cp = { dst, src, len, wp ? 2 /* MODE_WP */ : 0, 0 };
	return xioctl(loop_fd, UFFDIO_COPY_, &cp);
}

static int64_t loop_unprotect(uint64_t start, uint64_t len)
{
	struct r_uffdio_writeprotect w = { { start, len }, 0 };
	return xioctl(loop_fd, UFFDIO_WRITEPROTECT_, &w);
}

static int64_t child_sigbus_loop(const struct child_acc *c, uint64_t addr, uint64_t *value)
{
	int wp = c->write;
	uint64_t features = (1ULL << 7) /* SIGBUS */ | (wp ? 1ULL << 0 /* PAGEFAULT_FLAG_WP */ : 0) | (wp && MAPS[c->m].kind != K_ANON ? 1ULL << 12 /* WP_HUGETLBFS_SHMEM */ : 0);
	loop_fd = (int)syscall(323, O_CLOEXEC | O_NONBLOCK);
	if (loop_fd < 0)
		return -errno;
	struct r_uffdio_api api = { 0xAA, features, 0 };
	int64_t r = xioctl(loop_fd, UFFDIO_API_, &api);
	if (r < 0)
		return r;
	struct r_uffdio_register reg = { { addr, (uint64_t)c->count * PAGE }, 1 /* MISSING */ | (wp ? 2 /* WP */ : 0), 0 };
	if ((r = xioctl(loop_fd, UFFDIO_REGISTER_, &reg)) < 0)
		return r;
	const struct uffd_sigbus_loop loop = {
		.addr = addr,
		.pages = (uint64_t)c->count,
		.page_size = PAGE,
		.first_tag = 0xC0000ULL + ((uint64_t)c->m << 8) + (uint64_t)c->page,
		.wp = wp,
		.copy = loop_copy,
		.unprotect = loop_unprotect,
	};
	return uffd_sigbus_loop_run(&loop, value);
}

static void child_run(const struct op *o)
{
	uffd_child_catch_sigbus();
	int pm = open("/proc/self/pagemap", O_RDONLY); /* reopened in the child: an inherited fd reads the parent */
	int idx = 0;
	/* Where the child's mappings are: its mremap steps move them to free slots after the parent's. */
	static uint64_t caddr[MAX_MAPS];
	int cslot = next_slot;
	for (int m = 0; m < NMAPS; m++)
		caddr[m] = map_addr[m];
	static int rings[16];
	int nrings = 0;
	for (int pass = 0; pass < (o->child_count > 0 ? 2 : 1); pass++) {
		if (pass == 1) {
			for (int a = 0; a < o->child_count; a++, idx++) {
				const struct child_acc *c = &CHILD[o->child_first + a];
				static struct child_rec r;
				memset((void *)&r, 0, sizeof(r));
				r.index = idx;
				uffd_child_sigbus = 0;
				if (sigsetjmp(uffd_child_jmp, 1) == 0) {
					uint64_t a = caddr[c->m] + (uint64_t)c->page * PAGE;
					volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)a;
					if (c->mremap) {
						uint64_t to = slot_base + (uint64_t)cslot++ * SLOT;
						size_t len = (size_t)MAPS[c->m].pages * PAGE;
						r.ret = mremap((void *)(uintptr_t)caddr[c->m], len, len, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)(uintptr_t)to) == MAP_FAILED ? -errno : 0;
						if (r.ret == 0)
							caddr[c->m] = to;
					} else if (c->sigbus_loop) {
						r.ret = child_sigbus_loop(c, a, &r.value);
					} else if (c->madvise) {
						r.ret = madvise((void *)(uintptr_t)a, (size_t)c->count * PAGE, c->madvise == 2 ? MADV_REMOVE : MADV_DONTNEED) < 0 ? -errno : 0;
						char b;
						if (POLICY.unregister_on_remove && read(release_pipe[0], &b, 1) < 0) {}
					} else if (c->pin) {
						int ring = nrings < 16 ? ring_pin(a, PAGE) : -EMFILE;
						if (ring >= 0)
							rings[nrings++] = ring;
						r.ret = ring < 0 ? ring : 0;
					} else if (c->write)
						*p = c->tag;
					else
						r.value = *p;
				} else
					r.ret = -EFAULT;
				r.sigbus = uffd_child_sigbus;
				r.si_code = uffd_child_si_code;
				if (write(fork_pipe[1], (const void *)&r, sizeof(r)) < 0) {}
			}
		}
		for (int m = 0; m < NMAPS; m++)
			for (int p = 0; p < MAPS[m].pages; p++, idx++) {
				struct child_rec r = { idx, 0, 0, 0 };
				if (pread(pm, &r.value, 8, (off_t)((caddr[m] + (uint64_t)p * PAGE) / BASE_PAGE) * 8) != 8)
					r.ret = -EIO;
				if (write(fork_pipe[1], &r, sizeof(r)) < 0) {}
			}
	}
	/* The child's pins end after its last report. */
	while (nrings > 0)
		ring_unpin(rings[--nrings]);
	_exit(0);
}

static void *fork_job(void *arg)
{
	struct job *j = arg;
	const struct op *o = &OPS[j->op_index];
	/* With EVENT_FORK this returns only after the FORK event is read. The raw syscall, not glibc's
	 * fork(), which holds the malloc locks across it: the serving thread may malloc meanwhile. */
	pid_t pid = (pid_t)syscall(SYS_fork);
	if (pid == 0)
		child_run(o);
	if (pid > 0)
		atomic_store(&fork_pid, pid);
	if (pid < 0) {
		j->ret = -errno;
	} else {
		int st;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
		j->ret = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	}
	atomic_store(&j->done, 1);
	return NULL;
}

static struct job held_jobs[4];
static int nheld;

static void close_all_uffds(void)
{
	for (int i = 0; i < NUFFDS; i++)
		if (!uffd_closed[i]) {
			close(uffd_fd[i]);
			uffd_closed[i] = 1;
		}
	for (int i = 0; i < nchild; i++)
		close(child_fd[i]);
	nchild = 0;
}

/* ---- a held access (OP_HOLD): its faults are read and recorded "=> held", never resolved ---------------- */
static struct {
	pthread_t t;
	atomic_int done, tid;
	int active, kernel, sent, retrying, ufd; /* ufd: index of the uffd of its latest message, -1 none */
	long ret;
	uint64_t value;
	const struct op *o;
} held = { .ufd = -1 };
static atomic_int held_signals;

static void held_on_sigusr1(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
	atomic_fetch_add(&held_signals, 1);
}

static void *hold_job(void *arg)
{
	(void)arg;
	const struct op *o = held.o;
	atomic_store(&held.tid, (int)syscall(SYS_gettid));
	volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)addr_of(o->m, o->first);
	if (o->flag2) {
		/* A kernel-mode store: read(2) from a pipe into the page (EINTR retried, as the shim does). */
		int pp[2];
		uint64_t v = o->tag;
		held.ret = -EIO;
		if (pipe(pp) == 0) {
			if (write(pp[1], &v, 8) == 8) {
				ssize_t n;
				do
					n = read(pp[0], (void *)p, 8);
				while (n < 0 && errno == EINTR);
				held.ret = n < 0 ? -errno : n;
			}
			close(pp[0]);
			close(pp[1]);
		}
	} else if (o->flag1)
		*p = o->tag;
	else
		held.value = *p;
	atomic_store(&held.done, 1);
	return NULL;
}

/* Reads what is queued on every open uffd, at most limit fault messages; records them when asked. */
static int read_held(int record, int limit)
{
	int n = 0;
	for (int i = 0; i < NUFFDS; i++) {
		if (uffd_closed[i])
			continue;
		struct r_uffd_msg msg;
		while (n < limit && read(uffd_fd[i], &msg, sizeof(msg)) == (ssize_t)sizeof(msg)) {
			if (msg.event == EV_PAGEFAULT) {
				int page, m = locate(msg.arg.pagefault.address, &page);
				n++;
				held.ufd = i;
				if (record && m >= 0)
					add_msg("%s PF 0x%llx %s+%d => held", UFFDS[i].name, (unsigned long long)msg.arg.pagefault.flags, MAPS[m].name, page);
				else if (record)
					add_msg("%s PF 0x%llx 0x%llx => held", UFFDS[i].name, (unsigned long long)msg.arg.pagefault.flags, (unsigned long long)msg.arg.pagefault.address);
			} else
				add_msg("%s event 0x%x", UFFDS[i].name, msg.event);
		}
	}
	return n;
}

/* Its waiter still queued on the uffd of its latest message (fdinfo pending 0, total >= 1: a wake-up unlinks it
 * inside the waking ioctl) and the thread asleep (state S). */
static int held_asleep(void)
{
	if (held.ufd < 0 || uffd_closed[held.ufd])
		return 0;
	char path[64], buf[512];
	long pending = -1, total = -1;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", uffd_fd[held.ufd]);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(buf, sizeof(buf), f)) {
		sscanf(buf, "pending: %ld", &pending);
		sscanf(buf, "total: %ld", &total);
	}
	fclose(f);
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", atomic_load(&held.tid));
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	char *close_paren = strrchr(buf, ')');
	return pending == 0 && total >= 1 && close_paren && close_paren[1] && close_paren[2] == 'S';
}

/* What the held access does now: its result (the hold ends), "asleep" or "retrying" (KernelExecutor.Hold.cs). */
static void settle_held(char *out, size_t cap)
{
	int was = held.retrying, seen = 0;
	for (;;) {
		seen += read_held(!was, was ? 1 << 30 : RETRY_MESSAGES - seen);
		if (atomic_load(&held.done)) {
			pthread_join(held.t, NULL);
			held.active = 0;
			int len = held.o->flag2 ? (held.ret >= 0 ? snprintf(out, cap, "ok bytes=%ld", held.ret) : snprintf(out, cap, "%s", ename((int)held.ret)))
					       : snprintf(out, cap, "ok value=0x%llx", (unsigned long long)held.value);
			if (held.sent)
				snprintf(out + len, cap - len, " signals=%d", atomic_load(&held_signals));
			return;
		}
		int pending = atomic_load(&held_signals) < held.sent;
		if (pending && seen >= (was ? 2 : RETRY_MESSAGES)) {
			held.retrying = 1;
			snprintf(out, cap, "retrying");
			return;
		}
		if (!pending && held_asleep()) {
			held.retrying = 0;
			snprintf(out, cap, "asleep");
			return;
		}
		if (now_ms() > op_deadline_ms) {
			timed_out = 1;
			snprintf(out, cap, "timeout");
			return;
		}
		any_readable(5);
	}
}

static void start_hold(const struct op *o, char *res, size_t cap)
{
	uffd_catch_signal(SIGUSR1, held_on_sigusr1, SA_RESTART, NULL);
	held.o = o;
	held.active = 1;
	held.ufd = -1;
	atomic_store(&held.done, 0);
	start_thread(&held.t, hold_job, NULL);
	settle_held(res, cap);
}

/* ---- one op: its canonical result text ------------------------------------------------------------ */
static void fill_text(char *res, size_t cap, int rc, int64_t field)
{
	snprintf(res, cap, "%s field=%lld", rc == 0 ? "ok" : ename(rc), (long long)field);
}

/* Runs op i's job on a thread while the handler serves the faults it raises: 1 once it completed and was joined,
 * 0 when the op stays blocked or timed out (the thread is left to the scenario's end). */
static int run_served(struct job *j, void *(*fn)(void *), int i)
{
	memset(j, 0, sizeof(*j));
	j->op_index = i;
	start_thread(&j->t, fn, j);
	serve(&j->done);
	if (blocked || timed_out)
		return 0;
	pthread_join(j->t, NULL);
	return 1;
}

static void run_op(int i, char *res, size_t cap, char *child, size_t ccap)
{
	const struct op *o = &OPS[i];
	int fd = o->u >= 0 ? uffd_fd[o->u] : -1;
	int64_t field = 0;
	int rc;
	child[0] = 0;
	switch (o->kind) {
	case OP_READ:
	case OP_WRITE:
	case OP_KWRITE: {
		static struct job j;
		if (!run_served(&j, access_job, i))
			return;
		if (o->kind == OP_KWRITE) {
			if (j.ret >= 0)
				snprintf(res, cap, "ok bytes=%ld", j.ret);
			else
				snprintf(res, cap, "%s", ename((int)j.ret));
		} else
			snprintf(res, cap, "ok value=0x%llx", (unsigned long long)j.value);
		return;
	}
	case OP_REGISTER: {
		struct r_uffdio_register r = { { addr_of(o->m, o->first), (uint64_t)o->count * PAGE }, (uint64_t)o->modes, 0 };
		rc = xioctl(fd, UFFDIO_REGISTER_, &r);
		if (rc)
			snprintf(res, cap, "%s", ename(rc));
		else if (o->flag1)
			snprintf(res, cap, "ok ioctls=0x%llx", (unsigned long long)r.ioctls);
		else
			snprintf(res, cap, "ok");
		return;
	}
	case OP_UNREGISTER:
	case OP_WAKE: {
		struct r_uffdio_range r = { addr_of(o->m, o->first), (uint64_t)o->count * PAGE };
		rc = xioctl(fd, o->kind == OP_WAKE ? UFFDIO_WAKE_ : UFFDIO_UNREGISTER_, &r);
		snprintf(res, cap, "%s", rc ? ename(rc) : "ok");
		return;
	}
	case OP_WP:
		rc = do_wp(fd, o->m, o->first, o->count, o->flag1, o->flag2);
		snprintf(res, cap, "%s", rc ? ename(rc) : "ok");
		return;
	case OP_COPY:
	case OP_ZEROPAGE:
	case OP_CONTINUE:
	case OP_POISON:
	case OP_MOVE:
		/* The resolving ioctls: each reports its result and the field the kernel wrote back. */
		if (o->kind == OP_COPY)
			rc = do_copy(fd, o->m, o->first, o->count, o->tag, o->flag1, o->flag2, &field);
		else if (o->kind == OP_MOVE)
			rc = do_move(fd, o->m, o->first, o->m2, o->first2, o->count, o->flag2, &field);
		else
			rc = do_fill(fd, o->kind == OP_ZEROPAGE ? UFFDIO_ZEROPAGE_ : o->kind == OP_CONTINUE ? UFFDIO_CONTINUE_ : UFFDIO_POISON_,
				     o->m, o->first, o->count, o->kind == OP_CONTINUE && o->flag1 ? 2 : 0, &field);
		fill_text(res, cap, rc, field);
		return;
	case OP_MADVISE: {
		struct job *j = &held_jobs[nheld];
		memset(j, 0, sizeof(*j));
		j->op_index = i;
		start_thread(&j->t, madvise_job, j);
		if (o->flag1) {
			/* Hold: wait until the event is queued (a uffd readable) or the call returned. */
			while (!atomic_load(&j->done) && !any_readable(10))
				if (now_ms() > op_deadline_ms) {
					timed_out = 1;
					return;
				}
			if (!atomic_load(&j->done)) {
				nheld++;
				snprintf(res, cap, "held");
				return;
			}
		}
		serve(&j->done);
		if (blocked || timed_out)
			return;
		pthread_join(j->t, NULL);
		snprintf(res, cap, "%s", j->ret ? ename((int)j->ret) : "ok");
		return;
	}
	case OP_DRAIN: {
		strcpy(res, "ok");
		for (int h = 0; h < nheld; h++) {
			serve(&held_jobs[h].done);
			if (blocked || timed_out)
				return;
			pthread_join(held_jobs[h].t, NULL);
			size_t len = strlen(res);
			snprintf(res + len, cap - len, " madvise=%s", held_jobs[h].ret ? ename((int)held_jobs[h].ret) : "ok");
		}
		nheld = 0;
		return;
	}
	case OP_PUNCH:
		rc = fallocate(memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)o->first * PAGE, (off_t)o->count * PAGE) < 0 ? -errno : 0;
		snprintf(res, cap, "%s", rc ? ename(rc) : "ok");
		return;
	case OP_TRUNCATE:
		rc = ftruncate(memfd, (off_t)o->count * PAGE) < 0 ? -errno : 0;
		snprintf(res, cap, "%s", rc ? ename(rc) : "ok");
		return;
	case OP_PWRITE: {
		uint64_t v = o->tag;
		rc = pwrite(memfd, &v, 8, (off_t)o->first * PAGE) == 8 ? 0 : -errno;
		snprintf(res, cap, "%s", rc ? ename(rc) : "ok");
		return;
	}
	case OP_PREAD: {
		uint64_t v = 0;
		if (pread(memfd, &v, 8, (off_t)o->first * PAGE) < 0) {}
		snprintf(res, cap, "ok value=0x%llx", (unsigned long long)v);
		return;
	}
	case OP_MPROTECT: {
		void *a = (void *)(uintptr_t)addr_of(o->m, o->first);
		size_t len = (size_t)o->count * PAGE;
		rc = mprotect(a, len, PROT_READ) < 0 ? -errno : (mprotect(a, len, PROT_READ | PROT_WRITE) < 0 ? -errno : 0);
		snprintf(res, cap, "%s", rc ? ename(rc) : "ok");
		return;
	}
	case OP_PIN: {
		static struct job j;
		if (!run_served(&j, pin_job, i))
			return;
		if (j.ret >= 0 && npins < MAX_OPS_PINS) {
			pin_ring[npins] = (int)j.ret;
			pin_m[npins] = o->m;
			pin_first[npins] = o->first;
			pin_count[npins++] = o->count;
		}
		snprintf(res, cap, "%s", j.ret < 0 ? ename((int)j.ret) : "ok");
		return;
	}
	case OP_UNPIN: {
		rc = -ENOENT;
		for (int k = 0; k < npins; k++)
			if (pin_m[k] == o->m && pin_first[k] == o->first && pin_count[k] == o->count) {
				rc = ring_unpin(pin_ring[k]);
				pin_ring[k] = pin_ring[--npins];
				pin_m[k] = pin_m[npins];
				pin_first[k] = pin_first[npins];
				pin_count[k] = pin_count[npins];
				break;
			}
		snprintf(res, cap, "%s", rc ? ename(rc) : "ok");
		return;
	}
	case OP_MREMAP: {
		static struct job j;
		mremap_target = slot_base + (uint64_t)next_slot++ * SLOT;
		if (!run_served(&j, mremap_job, i))
			return;
		if (j.ret == 0)
			map_addr[o->m] = mremap_target;
		snprintf(res, cap, "%s", j.ret ? ename((int)j.ret) : "ok");
		return;
	}
	case OP_FORK: {
		static struct job j;
		memset(&j, 0, sizeof(j));
		j.op_index = i;
		if (pipe(fork_pipe) < 0) {
			snprintf(res, cap, "pipe failed");
			return;
		}
		/* The places the child's mremap steps take, as child_run computes them, for locate(). */
		nchild_places = 0;
		for (int a = 0, slot = next_slot; a < o->child_count; a++)
			if (CHILD[o->child_first + a].mremap && nchild_places < MAX_MAPS) {
				child_place[nchild_places].m = CHILD[o->child_first + a].m;
				child_place[nchild_places++].addr = slot_base + (uint64_t)slot++ * SLOT;
			}
		if (pipe(release_pipe) < 0) {
			snprintf(res, cap, "pipe failed");
			return;
		}
		fork_silence_ms = op_deadline_ms - now_ms();
		fork_seen = 0;
		atomic_store(&fork_pid, 0);
		start_thread(&j.t, fork_job, &j);
		serve(&j.done);
		fork_silence_ms = 0;
		close(release_pipe[0]);
		close(release_pipe[1]);
		release_pipe[0] = release_pipe[1] = -1;
		for (int c = 0; c < nchild; c++)
			close(child_fd[c]);
		nchild = 0;
		nchild_places = 0;
		if (blocked || timed_out)
			return;
		pthread_join(j.t, NULL);
		close(fork_pipe[1]);
		static struct child_rec recs[4096];
		int n = 0;
		struct child_rec r;
		while (n < 4096 && read(fork_pipe[0], &r, sizeof(r)) == sizeof(r))
			recs[n++] = r;
		close(fork_pipe[0]);
		int total_pages = 0;
		for (int m = 0; m < NMAPS; m++)
			total_pages += MAPS[m].pages;
		size_t len = 0;
		for (int pass = 0; pass < (o->child_count > 0 ? 2 : 1); pass++) {
			int base = pass == 0 ? 0 : total_pages + o->child_count;
			if (pass == 1) {
				for (int a = 0; a < o->child_count; a++) {
					const struct child_acc *c = &CHILD[o->child_first + a];
					struct child_rec *cr = NULL;
					for (int k = 0; k < n; k++)
						if (recs[k].index == total_pages + a)
							cr = &recs[k];
					char what[64];
					if (!cr)
						snprintf(what, sizeof(what), "missing");
					else if (c->sigbus_loop && cr->ret == 0)
						snprintf(what, sizeof(what), "ok sigbus=%llu wp=%llu", (unsigned long long)(cr->value & 0xffffffffULL), (unsigned long long)(cr->value >> 32));
					else if (c->sigbus_loop && (cr->ret == -EPROTO || cr->ret == -EIO))
						snprintf(what, sizeof(what), "%s page=%llu", ename((int)cr->ret), (unsigned long long)cr->value);
					else if (cr->sigbus)
						snprintf(what, sizeof(what), "sigbus code=%d", cr->si_code);
					else if (cr->ret < 0)
						snprintf(what, sizeof(what), "%s", ename((int)cr->ret));
					else if (c->pin || c->mremap || c->madvise)
						snprintf(what, sizeof(what), "ok");
					else
						snprintf(what, sizeof(what), "ok value=0x%llx", (unsigned long long)(c->write ? 0 : cr->value));
					if (c->sigbus_loop && c->count == 1)
						len += snprintf(child + len, ccap - len, " | sigbus-loop %s+%d %s %s", MAPS[c->m].name, c->page, c->write ? "MISSING|WP" : "MISSING", what);
					else if (c->sigbus_loop)
						len += snprintf(child + len, ccap - len, " | sigbus-loop %s+%d..%d %s %s", MAPS[c->m].name, c->page, c->page + c->count, c->write ? "MISSING|WP" : "MISSING", what);
					else if (c->mremap)
						len += snprintf(child + len, ccap - len, " | mremap %s %s", MAPS[c->m].name, what);
					else if (c->madvise && c->count == 1)
						len += snprintf(child + len, ccap - len, " | madvise %s+%d %s %s", MAPS[c->m].name, c->page, c->madvise == 2 ? "REMOVE" : "DONTNEED", what);
					else if (c->madvise)
						len += snprintf(child + len, ccap - len, " | madvise %s+%d..%d %s %s", MAPS[c->m].name, c->page, c->page + c->count, c->madvise == 2 ? "REMOVE" : "DONTNEED", what);
					else if (c->pin)
						len += snprintf(child + len, ccap - len, " | pin %s+%d %s", MAPS[c->m].name, c->page, what);
					else if (c->write)
						len += snprintf(child + len, ccap - len, " | w %s+%d 0x%llx %s", MAPS[c->m].name, c->page, (unsigned long long)c->tag, what);
					else
						len += snprintf(child + len, ccap - len, " | r %s+%d %s", MAPS[c->m].name, c->page, what);
				}
			}
			len += snprintf(child + len, ccap - len, "%spagemap", len ? " | " : "");
			int k = base;
			for (int m = 0; m < NMAPS; m++) {
				len += snprintf(child + len, ccap - len, " %s=", MAPS[m].name);
				for (int p = 0; p < MAPS[m].pages; p++, k++) {
					char ch = '?';
					for (int q = 0; q < n; q++)
						if (recs[q].index == k && recs[q].ret == 0) {
							uint64_t e = recs[q].value;
							int present = (e >> 63) & 1, swap = (e >> 62) & 1, file = (e >> 61) & 1, wp = (e >> 57) & 1;
							if (!present && !swap) ch = wp ? '?' : '.';
							else if (present) ch = file ? (wp ? 'F' : 'f') : (wp ? 'A' : 'a');
							else ch = wp ? 'M' : 'x';
						}
					len += snprintf(child + len, ccap - len, "%c", ch);
				}
			}
		}
		if (j.ret == 0)
			snprintf(res, cap, "ok");
		else
			snprintf(res, cap, "child exit %ld", j.ret);
		return;
	}
	case OP_CLOSE:
		close(fd);
		uffd_closed[o->u] = 1;
		snprintf(res, cap, "ok");
		return;
	case OP_API: {
		int nfd;
		if (o->flag1) {
			int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
			nfd = dev < 0 ? -errno : ioctl(dev, USERFAULTFD_IOC_NEW_, O_CLOEXEC | O_NONBLOCK);
			if (dev >= 0 && nfd < 0)
				nfd = -errno;
			if (dev >= 0)
				close(dev);
		} else {
			nfd = (int)syscall(323, O_CLOEXEC | O_NONBLOCK);
			if (nfd < 0)
				nfd = -errno;
		}
		if (nfd < 0) {
			snprintf(res, cap, "open=%s", ename(nfd));
			return;
		}
		size_t len = (size_t)snprintf(res, cap, "open=ok");
		for (int s = 0; s < o->count; s++) {
			struct r_uffdio_api a = { API[o->first + s].api, API[o->first + s].features, 0 };
			rc = xioctl(nfd, UFFDIO_API_, &a);
			len += snprintf(res + len, cap - len, " api%d=%s", s, rc ? ename(rc) : "ok");
		}
		close(nfd);
		return;
	}
	case OP_HOLD:
		start_hold(o, res, cap);
		return;
	case OP_SIGNAL:
		if (!held.active) {
			snprintf(res, cap, "ok (nothing held)");
			return;
		}
		syscall(SYS_tgkill, getpid(), atomic_load(&held.tid), SIGUSR1);
		held.sent++;
		snprintf(res, cap, "ok");
		return;
	case OP_SCAN: {
		struct r_page_region vec[64];
		struct r_pm_scan_arg a = { sizeof(a), o->flag1 ? 3 : 0, map_addr[o->m], map_addr[o->m] + MAPS[o->m].pages * PAGE, 0, (uint64_t)(uintptr_t)vec, 64, 0, 0, 2, 0, 2 | 4 | 8 | 16 | 32 };
		int n = ioctl(pagemap_fd, PAGEMAP_SCAN_, &a);
		if (n < 0) {
			snprintf(res, cap, "%s", ename(errno));
			return;
		}
		size_t len = (size_t)snprintf(res, cap, "ok regions=%d", n);
		for (int r = 0; r < n; r++)
			len += snprintf(res + len, cap - len, " [%llu,%llu):0x%llx", (unsigned long long)((vec[r].start - map_addr[o->m]) / PAGE), (unsigned long long)((vec[r].end - map_addr[o->m]) / PAGE), (unsigned long long)vec[r].categories);
		return;
	}
	case OP_COLLAPSE: {
		/* MADV_HUGEPAGE (lifts the setup's MADV_NOHUGEPAGE), MADV_COLLAPSE (25) of the whole mapping, then its smaps ShmemPmdMapped. */
		if (madvise((void *)(uintptr_t)map_addr[o->m], (size_t)MAPS[o->m].pages * PAGE, MADV_HUGEPAGE) < 0 ||
		    madvise((void *)(uintptr_t)map_addr[o->m], (size_t)MAPS[o->m].pages * PAGE, 25) < 0) {
			snprintf(res, cap, "%s", ename(errno));
			return;
		}
		snprintf(res, cap, "ok ShmemPmdMapped=%ldkB", smaps_kb(map_addr[o->m], "ShmemPmdMapped:"));
		return;
	}
	}
	snprintf(res, cap, "unknown op");
}

/* ---- comparison: '*' in a pagemap, "key=?" and "A|B" (alternatives) are unspecified by the model -- */
static int token_matches(const char *e, size_t el, const char *a, size_t al)
{
	if (el == al && memcmp(e, a, el) == 0)
		return 1;
	if (el >= 2 && e[el - 1] == '?' && e[el - 2] == '=' && al >= el - 1 && memcmp(e, a, el - 1) == 0)
		return 1;
	const char *bar = memchr(e, '|', el);
	if (bar && !memchr(e, '=', el)) {
		const char *colon = NULL;
		for (const char *c = e; c < bar; c++)
			if (*c == ':')
				colon = c;
		size_t plen = colon ? (size_t)(colon - e + 1) : 0;
		const char *s = e;
		while (s < e + el) {
			const char *t = memchr(s, '|', (size_t)(e + el - s));
			if (!t)
				t = e + el;
			size_t sl = (size_t)(t - s);
			if (s == e) {
				if (sl == al && memcmp(s, a, al) == 0)
					return 1;
			} else if (plen + sl == al && memcmp(e, a, plen) == 0 && memcmp(s, a + plen, sl) == 0)
				return 1;
			s = t + 1;
		}
		return 0;
	}
	const char *eq = memchr(e, '=', el);
	if (eq && memchr(e, '*', el) && el == al && memcmp(e, a, (size_t)(eq - e + 1)) == 0) {
		for (size_t i = 0; i < el; i++)
			if (e[i] != '*' && e[i] != a[i])
				return 0;
		return 1;
	}
	return 0;
}

static int line_matches(const char *e, const char *a)
{
	while (1) {
		const char *ee = strchr(e, ' '), *ae = strchr(a, ' ');
		size_t el = ee ? (size_t)(ee - e) : strlen(e), al = ae ? (size_t)(ae - a) : strlen(a);
		if (!token_matches(e, el, a, al))
			return 0;
		if (!ee || !ae)
			return !ee && !ae;
		e = ee + 1;
		a = ae + 1;
	}
}

static int setup(char *res, size_t cap)
{
	int slots = NMAPS + 8;
	size_t rlen = (size_t)(slots + 1) * SLOT;
	void *r = mmap(NULL, rlen, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED)
		return -errno;
	slot_base = ((uint64_t)(uintptr_t)r + (2UL << 20) - 1) & ~((2UL << 20) - 1);
	if (NEED_FILE) {
		memfd = (int)syscall(SYS_memfd_create, "uffd-repro", 1 /* MFD_CLOEXEC */ | (HUGETLB ? 4 /* MFD_HUGETLB */ | 21u << 26 /* MFD_HUGE_2MB */ : 0));
		if (memfd < 0 || ftruncate(memfd, (off_t)FILE_PAGES * PAGE) < 0)
			return -errno;
	}
	for (int m = 0; m < NMAPS; m++) {
		uint64_t a = slot_base + (uint64_t)next_slot++ * SLOT;
		size_t len = (size_t)MAPS[m].pages * PAGE;
		void *p = MAPS[m].kind == K_ANON
			? mmap((void *)(uintptr_t)a, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0)
			: mmap((void *)(uintptr_t)a, len, PROT_READ | PROT_WRITE, (MAPS[m].kind == K_SHARED ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED, memfd, (off_t)MAPS[m].file_offset * PAGE);
		if (p == MAP_FAILED)
			return -errno;
		if (!HUGETLB || MAPS[m].kind == K_ANON)
			madvise(p, len, MAPS[m].hugepage ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
		map_addr[m] = a;
	}
	pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	res[0] = 0;
	for (int u = 0; u < NUFFDS; u++) {
		int fd = (int)syscall(323, O_CLOEXEC | O_NONBLOCK | (UFFDS[u].umo ? 1 : 0));
		if (fd < 0)
			return -errno;
		struct r_uffdio_api a = { 0xAA, UFFDS[u].features, 0 };
		int rc = xioctl(fd, UFFDIO_API_, &a);
		uffd_fd[u] = fd;
		len += snprintf(res + len, cap - len, "%s%s=%s", len ? " " : "", UFFDS[u].name, rc ? ename(rc) : "ok");
	}
	if (NUFFDS == 0)
		snprintf(res, cap, "ok");
	return 0;
}

int main(void)
{
	static char res[4096], child[16384], pm[8192], line[32768];
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("%s\n", DESCRIPTION);
	int rc = setup(res, sizeof(res));
	if (rc < 0) {
		printf("setup failed: %s (this machine cannot run the scenario)\n", ename(rc));
		return 2;
	}
	int diverged = 0;
	for (int i = -1; i < NOPS; i++) {
		msgs[0] = 0;
		nmsgs = 0;
		faults_this_op = 0;
		child[0] = 0;
		op_deadline_ms = now_ms() + (i >= 0 && OPS[i].kind == OP_FORK ? 6000 : 3000);
		/* After a hold, each op reports what the held access does, in brackets after its own result. */
		int report_held = i >= 0 && held.active && OPS[i].kind != OP_HOLD;
		if (i >= 0)
			run_op(i, res, sizeof(res), child, sizeof(child));
		if (report_held && held.active && !blocked && !timed_out) {
			static char st[256];
			settle_held(st, sizeof(st));
			size_t len = strlen(res);
			snprintf(res + len, sizeof(res) - len, " [held: %s]", st);
		}
		const char *result = res;
		int stop = 0;
		if (blocked || timed_out) {
			result = blocked ? "blocked" : "timeout";
			close_all_uffds();
			pm[0] = 0;
			stop = 1;
		} else
			all_pagemaps(pm, sizeof(pm));
		snprintf(line, sizeof(line), "[%s%d] %s || %s || %s ||%s", i < 0 ? "setup" : "", i < 0 ? 0 : i, result, msgs, child, pm);
		if (i < 0) /* "[setup]" */
			snprintf(line, sizeof(line), "[setup] %s || %s || %s ||%s", result, msgs, child, pm);
		const char *exp = EXPECTED[i + 1];
		int ok = line_matches(exp, line);
		printf("%s %s\n", ok ? "  same    " : "  DIFFERS ", i < 0 ? "setup" : OP_TEXT[i]);
		printf("    expected %s\n    actual   %s\n", exp, line);
		if (!ok) {
			diverged = 1;
			break;
		}
		if (stop || i + 1 >= NEXPECTED - 1)
			break;
	}
	close_all_uffds();
	if (held.active) /* close() woke it (§1.5) */
		pthread_join(held.t, NULL);
	if (diverged)
		printf("DIVERGENCE: the kernel does not do what the model expects (exit 1)\n");
	else
		printf("no divergence: the kernel behaves as the model expects (exit 0)\n");
	return diverged;
}
