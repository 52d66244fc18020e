using UffdNative.Memory;

namespace UffdNative;

/// <summary>
/// Turns an errno in a given context into what it means here and what a person can do about it.
/// Every text names the cause (a sysctl, a capability, a device permission, a seccomp filter, a
/// missing feature and the Linux version that added it) and the fix.
/// </summary>
public static class Remedies
{
    public static readonly string SeccompAdvice =
        "a seccomp filter refuses userfaultfd (Docker's default profile allows it in no rule, whatever the capabilities, CAP_SYS_PTRACE included): " +
        "pass --device /dev/userfaultfd (Linux 6.1+; needs no capability), or run under a seccomp profile that allows userfaultfd " +
        "(Docker's default plus userfaultfd, e.g. docs/containers/seccomp-userfaultfd.json; with --cap-add SYS_PTRACE for the full syscall, without it user-mode-only), " +
        "or, last, --privileged";

    public static readonly string UnprivilegedAdvice =
        "set sysctl vm.unprivileged_userfaultfd=1, or open with UFFD_USER_MODE_ONLY (user-space faults only; UffdOpenOptions.UserModeOnly), " +
        "or grant access to /dev/userfaultfd (sudo setfacl -m u:$USER:rw /dev/userfaultfd, Linux 6.1+), or run with CAP_SYS_PTRACE";

    public static (string Detail, string Remedy) Generic(string op, int errno) => errno switch
    {
        Errno.ENOSYS => ("the kernel does not implement this call", "use a kernel built with CONFIG_USERFAULTFD=y (gVisor does not implement userfaultfd)"),
        Errno.EBADF => ("the file descriptor is closed", "keep the Userfaultfd (and its mappings) alive for the whole operation"),
        Errno.ESRCH => ("the process that owns this uffd's memory has exited (reference §1.8)", "stop serving this uffd and close it"),
        _ => ($"{op} returned {Errno.Name(errno)}", "see the reference's error table for this operation"),
    };

    /// <summary>Why opening a uffd failed on this path.</summary>
    public static (string Detail, string Remedy) Open(UffdOpenPath path, int errno, int stage, KernelVersion kernel)
    {
        bool ptrace = HostFacts.HasCapability(HostFacts.CapSysPtrace);
        int seccomp = HostFacts.SeccompMode;
        int? sysctl = HostFacts.UnprivilegedUserfaultfd;
        switch (path, errno)
        {
            case (UffdOpenPath.Device, Errno.ENOENT) when stage == 1:
                return ($"{Uffd.DevicePath} does not exist" + (kernel < new KernelVersion(6, 1) ? $" (it needs Linux 6.1+; this kernel is {kernel})" : " (in a container it must be passed in)"),
                    "pass --device /dev/userfaultfd to the container, or use the syscall path");
            case (UffdOpenPath.Device, Errno.EACCES or Errno.EPERM) when stage == 1:
                return ($"{Uffd.DevicePath} is not accessible to uid {HostFacts.EffectiveUid} (it is root-only 0600 by default)",
                    "grant access: sudo setfacl -m u:$USER:rw /dev/userfaultfd (or chmod in a throwaway VM), or use the syscall path");
            case (UffdOpenPath.Device, _) when stage == 2:
                return ($"USERFAULTFD_IOC_NEW on {Uffd.DevicePath} returned {Errno.Name(errno)}",
                    errno == Errno.EINVAL ? "check the flags (O_CLOEXEC, O_NONBLOCK, UFFD_USER_MODE_ONLY only)" : "use the syscall path");
            case (UffdOpenPath.SyscallUserModeOnly, Errno.EINVAL):
                return ($"UFFD_USER_MODE_ONLY needs Linux 5.11+ (this kernel is {kernel})", "open without user-mode-only (needs privilege) or upgrade the kernel");
            case (UffdOpenPath.SyscallUserModeOnly, Errno.EPERM):
                // The kernel always allows user-mode-only (§1.1): only a filter can refuse it.
                return ($"even UFFD_USER_MODE_ONLY, which the kernel always allows, was refused (Seccomp: {seccomp})", SeccompAdvice);
            case (UffdOpenPath.Syscall, Errno.EPERM) when seccomp == 2 && ptrace:
                // The capability decides, not the uid: root in a container usually lacks CAP_SYS_PTRACE.
                return ($"the process has CAP_SYS_PTRACE, so the kernel's own rule allows the call; a seccomp filter is active (Seccomp: 2) and it is what refuses userfaultfd", SeccompAdvice);
            case (UffdOpenPath.Syscall, Errno.EPERM):
            {
                // uid 0 without the capability: a container's root (Docker does not grant CAP_SYS_PTRACE).
                bool capLessRoot = HostFacts.EffectiveUid == 0;
                return ($"vm.unprivileged_userfaultfd={sysctl?.ToString() ?? "?"} and the process lacks CAP_SYS_PTRACE (uid {HostFacts.EffectiveUid}" +
                        (capLessRoot ? ": root without the capability, as in a container" : "") +
                        (seccomp == 2 ? ", and a seccomp filter is active" : "") + ")",
                    capLessRoot
                        ? seccomp == 2
                            ? "pass --device /dev/userfaultfd (Linux 6.1+), or run under a seccomp profile that allows userfaultfd with --cap-add SYS_PTRACE " +
                              "(the capability alone does not help: Docker's default profile allows userfaultfd in no rule), or, last, --privileged"
                            : "pass --device /dev/userfaultfd (Linux 6.1+), or add the capability (--cap-add SYS_PTRACE), or set sysctl vm.unprivileged_userfaultfd=1 on the host; " +
                              "UFFD_USER_MODE_ONLY works without any of these (user-space faults only)"
                        : UnprivilegedAdvice + (seccomp == 2 ? "; if that does not help, " + SeccompAdvice : ""));
            }
            case (_, Errno.ENOSYS):
                return ("userfaultfd(2) is not implemented here (CONFIG_USERFAULTFD=n, gVisor, or a seccomp filter answering ENOSYS)",
                    "run on a kernel with CONFIG_USERFAULTFD=y, outside gVisor");
            case (_, Errno.EINVAL):
                return ("the open flags were refused (only O_CLOEXEC, O_NONBLOCK and UFFD_USER_MODE_ONLY are accepted)", "pass only those flags");
            case (_, Errno.EMFILE):
                return ("the process has no free file descriptors", "close fds or raise ulimit -n");
            default:
                return Generic("open " + path, errno);
        }
    }

    /// <summary>Why UFFDIO_API refused the requested features.</summary>
    public static (string Detail, string Remedy) Api(UffdFeatures requested, UffdFeatures supported, int errno, KernelVersion kernel) => errno switch
    {
        Errno.EPERM when (requested & UffdFeatures.EventFork) != 0 =>
            ("UFFD_FEATURE_EVENT_FORK needs CAP_SYS_PTRACE (Linux 5.5+, commit 3c1c24d91ffd)", "run with CAP_SYS_PTRACE or do not request EVENT_FORK"),
        Errno.EINVAL when (requested & ~supported) != 0 =>
            ($"this kernel ({kernel}) does not support {UffdFeatureInfo.Describe(requested & ~supported)}",
             "request only supported features (mark the others optional) or use a newer kernel"),
        Errno.EINVAL => ("UFFDIO_API succeeds once per fd; this fd is already initialised (reference §1.2 rule 6)",
            "query features on a throwaway fd and enable them on a fresh one (Userfaultfd.Open does this)"),
        _ => Generic("UFFDIO_API", errno),
    };

    /// <summary>Why UFFDIO_REGISTER failed for this range and mode.</summary>
    public static (string Detail, string Remedy) Register(ulong start, ulong len, RegisterMode mode, UffdFeatures enabled, UffdFeatures supported, int errno, KernelVersion kernel)
    {
        var vmas = SafeVmas(start, len);
        string where = vmas.Count == 0 ? "no mapping" : string.Join(", ", vmas.Select(v => $"{v.Kind}{(v.Shared ? " shared" : " private")} {v.Start:x}-{v.End:x}"));
        switch (errno)
        {
            case Errno.EINVAL:
                if (mode == RegisterMode.None)
                    return ("the mode is 0", "pass at least one of Missing, WriteProtect, Minor");
                if (((ulong)mode & ~7UL) != 0)
                    return ($"unknown mode bits 0x{(ulong)mode & ~7UL:x}", "use only MISSING (1), WP (2), MINOR (4)");
                if ((start & 4095) != 0 || (len & 4095) != 0 || len == 0)
                    return ($"start 0x{start:x} and length {len} must be page aligned and non-zero", "align the range to the page size");
                if (vmas.Count == 0)
                    return ($"no mapping intersects 0x{start:x}+{len}", "register a mapped range");
                if ((mode & RegisterMode.Minor) != 0 && vmas.Any(v => v.Kind is VmaKind.Anonymous))
                    return ($"MINOR mode needs shmem or hugetlbfs memory; the range is {where}", "register MINOR only on memfd/shmem/hugetlbfs mappings");
                if ((mode & RegisterMode.Minor) != 0 && vmas.Any(v => v.Kind is VmaKind.Shmem) && (supported & UffdFeatures.MinorShmem) == 0)
                    return ($"MINOR mode on shmem needs Linux 5.14+ (UFFD_FEATURE_MINOR_SHMEM); this kernel is {kernel}", "use a newer kernel or MISSING mode");
                if ((mode & RegisterMode.WriteProtect) != 0 && vmas.Any(v => v.Kind is VmaKind.Shmem or VmaKind.Hugetlb) && (supported & UffdFeatures.WpHugetlbfsShmem) == 0)
                    return ($"WP registration on shmem needs Linux 5.19+ (UFFD_FEATURE_WP_HUGETLBFS_SHMEM); this kernel is {kernel}", "use a newer kernel or anonymous memory");
                if ((mode & RegisterMode.WriteProtect) != 0 && (supported & UffdFeatures.PageFaultFlagWp) == 0)
                    return ($"WP registration needs Linux 5.7+ (UFFD_FEATURE_PAGEFAULT_FLAG_WP); this kernel is {kernel}", "use a newer kernel");
                if (vmas.Any(v => v.Kind is VmaKind.File))
                    return ($"regular files cannot be registered (only anon, shmem, hugetlbfs; WP-only on any file needs a WP_ASYNC uffd, Linux 6.7+); the range is {where}",
                        "map a memfd or anonymous memory instead");
                if (vmas.Any(v => v.Kind is VmaKind.Hugetlb))
                    return ($"hugetlbfs ranges must be aligned to the huge page size; the range is {where}", "align start and length to the huge page size");
                return ($"the kernel refused mode {mode} on {where}", "check the mode against the memory type (reference §1.3)");
            case Errno.EPERM:
                return ($"a mapping in the range cannot be written (MAP_SHARED of a read-only fd lacks VM_MAYWRITE); the range is {where}",
                    "open the file read-write before mapping it shared, or map it MAP_PRIVATE");
            case Errno.EBUSY:
                return ($"the range is already registered with another userfaultfd; the range is {where}", "unregister it from the other uffd first, or use that uffd");
            case Errno.ENOMEM:
                return ("the process that owns this memory has exited, or the kernel is out of memory (reference §1.8)", "stop using this uffd");
            default:
                return Generic("UFFDIO_REGISTER", errno);
        }
    }

    private static List<VmaInfo> SafeVmas(ulong start, ulong len)
    {
        try
        {
            return VmaInfo.Overlapping(start, Math.Max(len, 1)).ToList();
        }
        catch (IOException)
        {
            return [];
        }
    }
}
