using UffdNative.Interop;
using UffdNative.Uapi;

namespace UffdNative.Harness.Probing;

/// <summary>
/// How every verb opens a uffd (probe, check, fuzz, replay, bench, soak): the probe's Auto, in the
/// binding's order (<see cref="UffdOpenPath.Auto"/>). A uffd that also sees kernel-mode faults comes from
/// /dev/userfaultfd (6.1+, file permissions only, reference §1.1), else from the syscall (privilege or
/// vm.unprivileged_userfaultfd); when neither works, a user-mode-only uffd from the syscall (always
/// permitted, but a kernel-mode fault is EFAULT instead of a message), where what runs allows it.
/// EVENT_FORK needs CAP_SYS_PTRACE at UFFDIO_API time whatever the path (§1.2, 5.5+). What cannot run
/// here is reported with the reason, never turned into an error or a divergence. Probed once per process.
/// </summary>
public sealed class OpenPolicy
{
    private static readonly Lazy<OpenPolicy> Current = new(Probe);

    /// <summary>The paths tried for a uffd that sees kernel-mode faults, in order.</summary>
    public static IReadOnlyList<UffdOpenPath> FullOrder { get; } = [UffdOpenPath.Device, UffdOpenPath.Syscall];

    /// <summary>This process's answer, probed on first use.</summary>
    public static OpenPolicy Here => Current.Value;

    /// <summary>The first path of <see cref="FullOrder"/> that opens, or null.</summary>
    public UffdOpenPath? FullPath { get; init; }

    /// <summary>Whether the syscall opens a user-mode-only uffd.</summary>
    public bool UserModeOnly { get; init; }

    /// <summary>The full paths that open here (each one tried).</summary>
    public IReadOnlySet<UffdOpenPath> Opens { get; init; } = new HashSet<UffdOpenPath>();

    /// <summary>CAP_SYS_PTRACE: UFFD_FEATURE_EVENT_FORK is allowed.</summary>
    public bool ForkEvents { get; init; }

    /// <summary>Each path that failed, with its errno and why (for the reasons given to the user).</summary>
    public IReadOnlyList<string> Failures { get; init; } = [];

    public bool CanOpen => FullPath is not null || UserModeOnly;

    private static OpenPolicy Probe()
    {
        var kernel = KernelVersion.Running();
        var failures = new List<string>();
        bool Try(UffdOpenPath path)
        {
            int fd = Userfaultfd.OpenRaw(path, Uffd.OCloexec | Uffd.ONonblock, out int stage);
            if (fd >= 0)
            {
                new SafeFdHandle(fd).Dispose();
                return true;
            }
            failures.Add($"{Name(path)}: {Errno.Name(-fd)} ({Remedies.Open(path, -fd, stage, kernel).Detail})");
            return false;
        }
        var opens = FullOrder.Where(Try).ToHashSet();
        UffdOpenPath? full = FullOrder.Where(opens.Contains).Select(p => (UffdOpenPath?)p).FirstOrDefault();
        bool umo = Try(UffdOpenPath.SyscallUserModeOnly);
        return new OpenPolicy { FullPath = full, Opens = opens, UserModeOnly = umo, ForkEvents = HostFacts.HasCapability(HostFacts.CapSysPtrace), Failures = failures };
    }

    public static string Name(UffdOpenPath path) => path switch
    {
        UffdOpenPath.Syscall => "syscall",
        UffdOpenPath.Device => "device",
        UffdOpenPath.SyscallUserModeOnly => "user-mode-only",
        _ => path.ToString(),
    };

    /// <summary>Opens a raw uffd (no UFFDIO_API yet): fd or -errno. userModeOnly: the caller asks for
    /// UFFD_USER_MODE_ONLY. Otherwise the full path; if there is none, a user-mode-only uffd only with
    /// allowUserModeOnly (the caller has checked that nothing it runs faults in kernel mode).</summary>
    public int OpenRaw(bool userModeOnly, int flags, bool allowUserModeOnly = false)
    {
        if (FullPath is { } full)
            return Userfaultfd.OpenRaw(full, userModeOnly ? flags | Uffd.UserModeOnly : flags, out _);
        if (userModeOnly || allowUserModeOnly)
            return Userfaultfd.OpenRaw(UffdOpenPath.SyscallUserModeOnly, flags, out _);
        return -Errno.EPERM;
    }

    /// <summary>Options for a typed open (<see cref="Userfaultfd.Open"/>) along this policy.</summary>
    public UffdOpenOptions Options(UffdFeatures required = UffdFeatures.None, UffdFeatures optional = UffdFeatures.None, bool allowUserModeOnly = true) => new()
    {
        Path = FullPath ?? UffdOpenPath.SyscallUserModeOnly,
        AllowUserModeOnlyFallback = allowUserModeOnly,
        RequiredFeatures = required,
        OptionalFeatures = optional,
    };

    /// <summary>Why a uffd with these needs cannot be had here, or null. kernelFaults: something faults
    /// in kernel mode on it (a read(2) into the range) and must produce a message.</summary>
    public string? Cannot(UffdFeatures features, bool kernelFaults, IEnumerable<UffdOpenPath>? paths = null)
    {
        foreach (var p in paths ?? [])
            if (!Opens.Contains(p))
                return $"opens a uffd through the {Name(p)} path, which fails here: " + string.Join("; ", Failures.Where(f => f.StartsWith(Name(p) + ":", StringComparison.Ordinal)));
        if (!CanOpen)
            return "no userfaultfd can be opened here: " + string.Join("; ", Failures);
        if (kernelFaults && FullPath is null)
            return "needs a uffd that sees kernel-mode faults; only user-mode-only ones open here (" + string.Join("; ", Failures) + ")";
        if ((features & UffdFeatures.EventFork) != 0 && !ForkEvents)
            return "needs UFFD_FEATURE_EVENT_FORK, which requires CAP_SYS_PTRACE (reference §1.2): this process lacks it";
        return null;
    }
}
