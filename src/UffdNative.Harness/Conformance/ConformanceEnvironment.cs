using System.Globalization;

namespace UffdNative.Harness.Conformance;

/// <summary>What the machine offers the named scenarios: kernel features and the memory settings that
/// decide whether a cell can run (and, when it cannot, the reason naming the feature or setting).</summary>
public sealed record ConformanceEnvironment
{
    public UffdFeatures Features { get; init; }
    public string? OpenError { get; init; }
    public int? NrHugepages { get; init; }
    public string? ThpEnabled { get; init; }
    public string? ShmemThpEnabled { get; init; }
    /// <summary>fault_around_bytes from debugfs, when readable.</summary>
    public int? FaultAroundBytes { get; init; }

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
            NrHugepages = HostFacts.ReadInt("/proc/sys/vm/nr_hugepages"),
            ThpEnabled = Selected("/sys/kernel/mm/transparent_hugepage/enabled"),
            ShmemThpEnabled = Selected("/sys/kernel/mm/transparent_hugepage/shmem_enabled"),
            FaultAroundBytes = HostFacts.ReadInt("/sys/kernel/debug/fault_around_bytes"),
        };
    }

    /// <summary>The bracketed choice of a sysfs selector file ("always [madvise] never" → "madvise").</summary>
    private static string? Selected(string path)
    {
        try
        {
            var text = File.ReadAllText(path);
            int a = text.IndexOf('['), b = text.IndexOf(']');
            return a >= 0 && b > a ? text[(a + 1)..b] : text.Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>fault_around_bytes in pages: debugfs when mounted, else the kernel default of 64 KiB (§3.1).</summary>
    public int FaultAroundPages => (FaultAroundBytes ?? 65536) / 4096;

    public string FaultAroundSource => FaultAroundBytes is { } b
        ? $"fault_around_bytes = {b.ToString(CultureInfo.InvariantCulture)} (debugfs)"
        : "fault_around_bytes = 65536 (kernel default; debugfs not mounted)";

    /// <summary>Why a cell cannot run here, or null.</summary>
    public string? NotApplicable(NamedScenario ns, MemoryType memory, Scenario s)
    {
        if (memory is MemoryType.Hugetlb or MemoryType.HugetlbPrivate)
            return NrHugepages is null or 0
                ? $"hugetlb: no huge pages reserved (vm.nr_hugepages = {NrHugepages?.ToString(CultureInfo.InvariantCulture) ?? "absent"})"
                : $"hugetlb (vm.nr_hugepages = {NrHugepages}): 2 MiB pages are not modelled";
        var missing = s.RequiredFeatures & ~Features;
        if (missing != 0)
            return $"needs {UffdFeatureInfo.Describe(missing)}, which this kernel lacks";
        return ns.Requires?.Invoke(this);
    }
}
