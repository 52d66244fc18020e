/*
 * uffd_seccomp_launch: run a command in the restricted environments containers give userfaultfd
 * users, for real, so `uffdnative probe` can be tested against them on an ordinary host.
 *
 *   uffd_seccomp_launch [--deny-userfaultfd[=EPERM|ENOSYS]] [--hide-device] [--] COMMAND [ARG...]
 *
 * --deny-userfaultfd  installs a seccomp filter that answers userfaultfd(2) with EPERM (what Docker's
 *                     default profile does without CAP_SYS_PTRACE) or ENOSYS (gVisor-like), for every
 *                     flag combination, UFFD_USER_MODE_ONLY included. Everything else is allowed.
 *                     /proc/self/status of the command then shows "Seccomp: 2". Works unprivileged
 *                     (it sets no_new_privs first).
 * --deny-io-uring     installs a seccomp filter that answers io_uring_setup, io_uring_enter and
 *                     io_uring_register with EPERM (what Docker's default profile does since 2023) or
 *                     ENOSYS (a kernel without CONFIG_IO_URING). Combines with --deny-userfaultfd (one
 *                     filter). Works unprivileged.
 * --hide-device       runs the command in a private mount namespace whose /dev is the host's /dev
 *                     minus /dev/userfaultfd (a container started without --device /dev/userfaultfd).
 *                     Needs CAP_SYS_ADMIN. Nothing outside the namespace changes.
 *
 * Use setpriv after this launcher to drop privileges (the filter and the namespace are inherited):
 *   uffd_seccomp_launch --hide-device -- setpriv --reuid 65534 --regid 65534 --clear-groups -- CMD
 *
 * Exit status: the command's (exec), or 125 when the environment could not be set up (the message
 * names the step and errno), 126/127 when the command cannot be executed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef __NR_userfaultfd
#define __NR_userfaultfd 323
#endif
#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#define __NR_io_uring_enter 426
#define __NR_io_uring_register 427
#endif

static int fail(const char *what, const char *arg)
{
    int e = errno;
    fprintf(stderr, "uffd_seccomp_launch: %s%s%s: %s\n", what, arg ? " " : "", arg ? arg : "", strerror(e));
    return 125;
}

/* One filter: every x86-64 syscall (and its x32 twin) with a nonzero errno in deny_nr is refused. */
static int deny_syscalls(const unsigned *nrs, const int *errs, int n)
{
    struct sock_filter filter[4 + 3 * 8 + 1];
    int k = 0;
    filter[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    filter[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
    filter[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    filter[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    for (int i = 0; i < n && i < 8; i++)
    {
        /* the x86-64 number, and the same call through the x32 ABI */
        filter[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nrs[i], 1, 0);
        filter[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x40000000u | nrs[i], 0, 1);
        filter[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)errs[i] & SECCOMP_RET_DATA));
    }
    filter[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct sock_fprog prog = { .len = (unsigned short)k, .filter = filter };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return fail("prctl(PR_SET_NO_NEW_PRIVS)", NULL);
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
        return fail("seccomp(SECCOMP_SET_MODE_FILTER)", NULL);
    return 0;
}

/* Replaces /dev (in a new private mount namespace) with a tmpfs onto which every entry of the
 * original /dev except userfaultfd is bind-mounted back (directories recursively, with their
 * submounts: pts, shm, mqueue), and symlinks are copied. */
static int hide_device(void)
{
    char src[PATH_MAX], dst[PATH_MAX], link[PATH_MAX];
    if (unshare(CLONE_NEWNS) != 0)
        return fail("unshare(CLONE_NEWNS)", NULL);
    if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        return fail("mount --make-rprivate", "/");
    int old = open("/dev", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (old < 0)
        return fail("open", "/dev");
    if (mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755") != 0)
        return fail("mount tmpfs", "/dev");
    int dupfd = dup(old);
    DIR *d = dupfd < 0 ? NULL : fdopendir(dupfd);
    if (!d)
        return fail("opendir", "/dev (original)");
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
    {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, "userfaultfd"))
            continue;
        struct stat st;
        if (fstatat(old, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue; /* vanished meanwhile */
        snprintf(src, sizeof src, "/proc/self/fd/%d/%s", old, e->d_name);
        snprintf(dst, sizeof dst, "/dev/%s", e->d_name);
        if (S_ISLNK(st.st_mode))
        {
            ssize_t n = readlinkat(old, e->d_name, link, sizeof link - 1);
            if (n < 0)
                return fail("readlink", src);
            link[n] = 0;
            if (symlink(link, dst) != 0)
                return fail("symlink", dst);
            continue;
        }
        if (S_ISDIR(st.st_mode))
        {
            if (mkdir(dst, st.st_mode & 07777) != 0)
                return fail("mkdir", dst);
        }
        else
        {
            int f = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            if (f < 0)
                return fail("create", dst);
            close(f);
        }
        if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) != 0)
            return fail("bind mount", dst);
    }
    closedir(d);
    close(old);
    return 0;
}

static void usage(void)
{
    fputs("usage: uffd_seccomp_launch [--deny-userfaultfd[=EPERM|ENOSYS]] [--deny-io-uring[=EPERM|ENOSYS]] [--hide-device] [--] COMMAND [ARG...]\n", stderr);
}

int main(int argc, char **argv)
{
    int deny = 0, deny_uring = 0, hide = 0, i = 1;
    for (; i < argc && argv[i][0] == '-'; i++)
    {
        if (!strcmp(argv[i], "--"))
        {
            i++;
            break;
        }
        if (!strcmp(argv[i], "--deny-userfaultfd") || !strcmp(argv[i], "--deny-userfaultfd=EPERM"))
            deny = EPERM;
        else if (!strcmp(argv[i], "--deny-userfaultfd=ENOSYS"))
            deny = ENOSYS;
        else if (!strcmp(argv[i], "--deny-io-uring") || !strcmp(argv[i], "--deny-io-uring=EPERM"))
            deny_uring = EPERM;
        else if (!strcmp(argv[i], "--deny-io-uring=ENOSYS"))
            deny_uring = ENOSYS;
        else if (!strcmp(argv[i], "--hide-device"))
            hide = 1;
        else
        {
            fprintf(stderr, "uffd_seccomp_launch: unknown option %s\n", argv[i]);
            usage();
            return 125;
        }
    }
    if (i >= argc)
    {
        usage();
        return 125;
    }
    int r;
    /* The namespace first: mount(2) is not filtered, but keep the filter the last thing set up. */
    if (hide && (r = hide_device()) != 0)
        return r;
    unsigned nrs[4];
    int errs[4], n = 0;
    if (deny)
    {
        nrs[n] = __NR_userfaultfd;
        errs[n++] = deny;
    }
    if (deny_uring)
    {
        const unsigned uring[] = { __NR_io_uring_setup, __NR_io_uring_enter, __NR_io_uring_register };
        for (int k = 0; k < 3; k++)
        {
            nrs[n] = uring[k];
            errs[n++] = deny_uring;
        }
    }
    if (n > 0 && (r = deny_syscalls(nrs, errs, n)) != 0)
        return r;
    execvp(argv[i], argv + i);
    int e = errno;
    fprintf(stderr, "uffd_seccomp_launch: exec %s: %s\n", argv[i], strerror(e));
    return e == ENOENT ? 127 : 126;
}
