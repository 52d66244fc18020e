namespace UffdNative;

/// <summary>Scalar uapi constants the binding needs (the layout check proves each one).</summary>
public static class Uffd
{
    public const long Api = 0xAA;
    public const int OCloexec = 0x80000;
    public const int ONonblock = 0x800;
    public const int UserModeOnly = 1;
    public const int SizeOfMsg = 32;
    public const string DevicePath = "/dev/userfaultfd";
}

/// <summary>What <c>uffd_poll</c> reports.</summary>
[Flags]
public enum PollEvents
{
    None = 0,
    Readable = 1,
    Stop = 2,
    HangUp = 4,
    Error = 8,
}

/// <summary>A feature bit with the mainline version that added it (reference §1.2).</summary>
public sealed record UffdFeatureInfo(UffdFeatures Feature, string CName, KernelVersion Since, string Meaning)
{
    public static readonly IReadOnlyList<UffdFeatureInfo> All =
    [
        new(UffdFeatures.PageFaultFlagWp, "UFFD_FEATURE_PAGEFAULT_FLAG_WP", new(5, 7), "WP register mode (anonymous memory)"),
        new(UffdFeatures.EventFork, "UFFD_FEATURE_EVENT_FORK", new(4, 11), "FORK events; needs CAP_SYS_PTRACE since 5.5"),
        new(UffdFeatures.EventRemap, "UFFD_FEATURE_EVENT_REMAP", new(4, 11), "REMAP events on mremap"),
        new(UffdFeatures.EventRemove, "UFFD_FEATURE_EVENT_REMOVE", new(4, 11), "REMOVE events on MADV_DONTNEED/MADV_REMOVE"),
        new(UffdFeatures.MissingHugetlbfs, "UFFD_FEATURE_MISSING_HUGETLBFS", new(4, 11), "MISSING mode on hugetlbfs"),
        new(UffdFeatures.MissingShmem, "UFFD_FEATURE_MISSING_SHMEM", new(4, 11), "MISSING mode on shmem/memfd"),
        new(UffdFeatures.EventUnmap, "UFFD_FEATURE_EVENT_UNMAP", new(4, 11), "UNMAP events on munmap"),
        new(UffdFeatures.Sigbus, "UFFD_FEATURE_SIGBUS", new(4, 14), "faults raise SIGBUS instead of messages"),
        new(UffdFeatures.ThreadId, "UFFD_FEATURE_THREAD_ID", new(4, 14), "the faulting thread id in each message"),
        new(UffdFeatures.MinorHugetlbfs, "UFFD_FEATURE_MINOR_HUGETLBFS", new(5, 13), "MINOR mode on hugetlbfs"),
        new(UffdFeatures.MinorShmem, "UFFD_FEATURE_MINOR_SHMEM", new(5, 14), "MINOR mode on shmem/memfd"),
        new(UffdFeatures.ExactAddress, "UFFD_FEATURE_EXACT_ADDRESS", new(5, 18), "fault addresses not page-masked"),
        new(UffdFeatures.WpHugetlbfsShmem, "UFFD_FEATURE_WP_HUGETLBFS_SHMEM", new(5, 19), "WP mode on shmem/hugetlbfs (PTE markers)"),
        new(UffdFeatures.WpUnpopulated, "UFFD_FEATURE_WP_UNPOPULATED", new(6, 4), "WP also protects never-touched anonymous pages"),
        new(UffdFeatures.Poison, "UFFD_FEATURE_POISON", new(6, 6), "UFFDIO_POISON"),
        new(UffdFeatures.WpAsync, "UFFD_FEATURE_WP_ASYNC", new(6, 7), "asynchronous WP: the kernel resolves, PAGEMAP_SCAN reports"),
        new(UffdFeatures.Move, "UFFD_FEATURE_MOVE", new(6, 8), "UFFDIO_MOVE"),
        new(UffdFeatures.Rwp, "UFFD_FEATURE_RWP", new(7, 3), "RWP register mode: read and write faults on protected pages (UFFDIO_RWPROTECT)"),
        new(UffdFeatures.RwpAsync, "UFFD_FEATURE_RWP_ASYNC", new(7, 3), "asynchronous RWP: the kernel resolves, PAGEMAP_SCAN reports PAGE_IS_ACCESSED"),
    ];

    public static UffdFeatureInfo Of(UffdFeatures single) => All.First(f => f.Feature == single);

    /// <summary>"UFFD_FEATURE_A (Linux 5.19+), UFFD_FEATURE_B (Linux 6.4+)" for every set bit.</summary>
    public static string Describe(UffdFeatures set)
    {
        var parts = new List<string>();
        foreach (var f in All)
            if ((set & f.Feature) != 0)
                parts.Add($"{f.CName} (Linux {f.Since}+)");
        var unknown = (ulong)set & ~AllKnownMask;
        if (unknown != 0)
            parts.Add($"unknown bits 0x{unknown:x} (not in mainline through 7.3)");
        return string.Join(", ", parts);
    }

    public const ulong AllKnownMask = 0x7ffff;
}

/// <summary>A kernel release reduced to major.minor.patch; the raw release string is kept.</summary>
public readonly record struct KernelVersion(int Major, int Minor, int Patch = 0) : IComparable<KernelVersion>
{
    public int CompareTo(KernelVersion other) =>
        Major != other.Major ? Major.CompareTo(other.Major) : Minor != other.Minor ? Minor.CompareTo(other.Minor) : Patch.CompareTo(other.Patch);

    public static bool operator <(KernelVersion a, KernelVersion b) => a.CompareTo(b) < 0;
    public static bool operator >(KernelVersion a, KernelVersion b) => a.CompareTo(b) > 0;
    public static bool operator <=(KernelVersion a, KernelVersion b) => a.CompareTo(b) <= 0;
    public static bool operator >=(KernelVersion a, KernelVersion b) => a.CompareTo(b) >= 0;

    public override string ToString() => Patch == 0 ? $"{Major}.{Minor}" : $"{Major}.{Minor}.{Patch}";

    /// <summary>Parses "6.18.44-fc-v669", "6.1.0-56-amd64", "6.12.117+deb12-amd64", "6.1".</summary>
    public static bool TryParse(string? release, out KernelVersion version)
    {
        version = default;
        if (string.IsNullOrWhiteSpace(release))
            return false;
        var nums = new List<int>();
        int i = 0;
        while (nums.Count < 3 && i < release.Length && char.IsDigit(release[i]))
        {
            int start = i;
            while (i < release.Length && char.IsDigit(release[i]))
                i++;
            // A number too large for an int ("99999999999.1") is not a release: no OverflowException.
            if (!int.TryParse(release.AsSpan(start, i - start), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n))
                return false;
            nums.Add(n);
            if (i < release.Length && release[i] == '.')
                i++;
            else
                break;
        }
        if (nums.Count < 2)
            return false;
        version = new KernelVersion(nums[0], nums[1], nums.Count > 2 ? nums[2] : 0);
        return true;
    }

    public static KernelVersion Parse(string release) =>
        TryParse(release, out var v) ? v : throw new FormatException($"'{release}' is not a kernel release (expected e.g. 6.1 or 6.18.44-fc)");

    /// <summary>The running kernel's release string (uname -r).</summary>
    public static string RunningRelease()
    {
        try
        {
            return File.ReadAllText("/proc/sys/kernel/osrelease").Trim();
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    public static KernelVersion Running() => TryParse(RunningRelease(), out var v) ? v : default;
}
