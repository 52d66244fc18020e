using System.Globalization;
using UffdNative.Harness.Model;
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

    /// <summary>Whether userfaultfd(UFFD_USER_MODE_ONLY) exists (5.11+): the model profile's user-mode-only switch,
    /// set by the <see cref="ConformanceRunner"/> like <see cref="Facts"/>. Before 5.11 the flag is EINVAL at open,
    /// so a scenario with such a uffd has nothing to compare.</summary>
    public bool UserModeOnly { get; init; } = true;

    /// <summary>Features from UFFDIO_API (or why no uffd opens here).</summary>
    public static ConformanceEnvironment Detect()
    {
        UffdFeatures features = UffdFeatures.None;
        string? error = null;
        try
        {
            features = Userfaultfd.QuerySupportedFeatures(new UffdOpenOptions { Path = UffdOpenPath.Syscall });
        }
        catch (UffdException e)
        {
            error = e.Message;
        }
        return new ConformanceEnvironment
        {
            Features = features,
            OpenError = error,
        };
    }

    /// <summary>Why a cell cannot run here, or null.</summary>
    public string? NotApplicable(NamedScenario ns, MemoryType memory, Scenario s)
    {
        if (Facts.PageSize != 4096)
            return $"the model's pages are 4 KiB; this kernel's page size is {Facts.PageSize}";
        if (memory is MemoryType.Hugetlb or MemoryType.HugetlbPrivate)
            return Facts.HugePagesTotal is null or 0
                ? $"hugetlb: no huge pages reserved (vm.nr_hugepages = {Facts.HugePagesTotal?.ToString(CultureInfo.InvariantCulture) ?? "absent"})"
                : $"hugetlb (vm.nr_hugepages = {Facts.HugePagesTotal}): 2 MiB pages are not modelled";
        if (memory is MemoryType.Shmem or MemoryType.ShmemPrivate && Facts.ThpShmem == "force")
            return "shmem THP is 'force' (transparent_hugepage/shmem_enabled): MADV_NOHUGEPAGE cannot keep these mappings at 4 KiB pages";
        if (!UserModeOnly && s.Uffds.Any(u => u.UserModeOnly))
            return "needs UFFD_USER_MODE_ONLY (Linux 5.11+), which this kernel lacks (user-mode-only: old)";
        var missing = s.RequiredFeatures & ~Features;
        if (missing != 0)
            return $"needs {UffdFeatureInfo.Describe(missing)}, which this kernel lacks";
        return ns.Requires?.Invoke(Facts);
    }
}
