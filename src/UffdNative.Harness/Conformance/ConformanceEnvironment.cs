using System.Globalization;
using UffdNative.Harness.Model;
using UffdNative.Harness.Probing;
using UffdNative.Harness.Scenarios;

namespace UffdNative.Harness.Conformance;

/// <summary>What the machine offers the named scenarios: kernel features and the memory settings that
/// decide whether a cell can run (and, when it cannot, the reason naming the feature or setting).</summary>
public sealed record ConformanceEnvironment
{
    public UffdFeatures Features { get; init; }
    public string? OpenError { get; init; }
    /// <summary>The environment facts the cells are judged against: always the model profile's (the
    /// <see cref="ConformanceRunner"/> sets them), so applicability and predictions share one source.</summary>
    public EnvironmentFacts Facts { get; init; } = EnvironmentFacts.Mainline;
    /// <summary>How uffds open here (<see cref="OpenPolicy"/>): what a scenario cannot have is not applicable.</summary>
    public OpenPolicy Access { get; init; } = OpenPolicy.Here;

    /// <summary>Whether userfaultfd(UFFD_USER_MODE_ONLY) exists (5.11+): the model profile's user-mode-only switch,
    /// set by the <see cref="ConformanceRunner"/> like <see cref="Facts"/>. Before 5.11 the flag is EINVAL at open,
    /// so a scenario with such a uffd has nothing to compare.</summary>
    public bool UserModeOnly { get; init; } = true;

    /// <summary>Features from UFFDIO_API (or why no uffd opens here), along the open policy.</summary>
    public static ConformanceEnvironment Detect()
    {
        UffdFeatures features = UffdFeatures.None;
        string? error = null;
        var access = OpenPolicy.Here;
        try
        {
            features = Userfaultfd.QuerySupportedFeatures(access.Options());
        }
        catch (UffdException e)
        {
            error = e.Message;
        }
        return new ConformanceEnvironment
        {
            Features = features,
            OpenError = error,
            Access = access,
        };
    }

    /// <summary>Why the scenario cannot run with the uffds this process can open, or null: EVENT_FORK
    /// without CAP_SYS_PTRACE; a kernel-mode access to a uffd that must see it when only user-mode-only
    /// uffds open; an API op through a path that fails here. Never a divergence.</summary>
    public string? Cannot(Scenario s)
    {
        var features = s.Uffds.Aggregate(UffdFeatures.None, (f, u) => f | u.Features);
        // A pin faults its pages in kernel mode (GUP), in this process or in a fork child.
        bool kernelFaults = s.Uffds.Any(u => !u.UserModeOnly) && s.Ops.Any(o => o is WriteOp { Mode: AccessMode.Kernel } or PinOp or HoldOp { Mode: AccessMode.Kernel } || o is ForkOp f && f.Child.Any(a => a.Pin));
        var paths = s.Ops.OfType<ApiOp>().Select(a => a.Device ? UffdOpenPath.Device : UffdOpenPath.Syscall).Distinct();
        return Access.Cannot(features, kernelFaults, paths);
    }

    /// <summary>Free 2 MiB huge pages a hugetlb scenario may take at once: the memfd's pages (a shared mapping reserves
    /// them at mmap), every private mapping's (reserved at mmap too), and a CoW page per fork-child write (a child has
    /// no reservation; a child's pin CoWs like a write, and fork copies a pinned private page at once). Without them a fault or fill fails with SIGBUS/ENOMEM, which the model does not predict.</summary>
    public static long HugePagesNeeded(Scenario s) =>
        s.FilePages
        + s.Mappings.Where(m => m.Kind != MapKind.Shared).Sum(m => (long)m.Pages)
        + s.Ops.OfType<ForkOp>().Sum(f => (long)f.Child.Count(a => a.Write || a.Pin))
        // A pinned private page is copied for the child at fork (early CoW): one more page per fork, at most.
        + s.Ops.OfType<ForkOp>().Count() * s.Ops.OfType<PinOp>().Sum(p => (long)p.Count);

    /// <summary>Why a hugetlb cell cannot run: the huge page pool (the hugetlb-pool fact), or a kernel before 5.19,
    /// where the model does not follow hugetlb (no WP or markers on hugetlb, no MADV_DONTNEED on it before 5.18).</summary>
    private string? HugetlbCannot(Scenario s)
    {
        string total = Facts.HugePagesTotal?.ToString(CultureInfo.InvariantCulture) ?? "absent";
        if (Facts.HugePagesFree is null or 0)
            return $"no free 2 MiB huge pages (vm.nr_hugepages={total})";
        long need = HugePagesNeeded(s);
        if (Facts.HugePagesFree < need)
            return $"needs {need} free 2 MiB huge pages, {Facts.HugePagesFree} free (vm.nr_hugepages={total})";
        if ((Features & UffdFeatures.WpHugetlbfsShmem) == 0)
            return "hugetlb is modelled from Linux 5.19 (UFFD_FEATURE_WP_HUGETLBFS_SHMEM: WP and markers on hugetlb), which this kernel predates";
        return null;
    }

    /// <summary>Why a cell cannot run here, or null.</summary>
    public string? NotApplicable(NamedScenario ns, MemoryType memory, Scenario s)
    {
        if (Facts.PageSize != 4096)
            return $"the model's pages are 4 KiB; this kernel's page size is {Facts.PageSize}";
        if (MemoryTypes.IsHugetlb(memory) && HugetlbCannot(s) is { } noHuge)
            return noHuge;
        if (!UserModeOnly && s.Uffds.Any(u => u.UserModeOnly))
            return "needs UFFD_USER_MODE_ONLY (Linux 5.11+), which this kernel lacks (user-mode-only: old)";
        var missing = s.RequiredFeatures & ~Features;
        if (missing != 0)
            return $"needs {UffdFeatureInfo.Describe(missing)}, which this kernel lacks";
        if (Cannot(s) is { } why)
            return why;
        return ns.Requires?.Invoke(Facts);
    }
}
