using System.Collections.Immutable;
using System.Globalization;

namespace UffdNative.Harness.Model;

/// <summary>How the model uses a fact: it changes what the model predicts, or only which cells can run.</summary>
public enum FactUse { Predicts, Applicability }

/// <summary>One environment fact (reference §0b): a property of this kernel's build, boot options or
/// configuration — not of its version — that the model depends on. <see cref="Mainline"/> is what a
/// mainline kernel with default settings shows (null where there is no such default, e.g. the huge page
/// pool).</summary>
public sealed record FactSpec(string Name, string Title, string? Mainline, FactUse Use, string ModelUse);

/// <summary>
/// The environment facts a <see cref="KernelProfile"/> carries beside its dated switches. Each is
/// detected by an experiment or read from /proc and /sys (Probing.FactDetectors, shared with
/// <c>uffdnative probe</c>); the defaults are mainline's, so a profile built from a version number alone
/// (<see cref="KernelProfile.Mainline(KernelVersion)"/>) predicts a stock kernel.
/// </summary>
public sealed record EnvironmentFacts
{
    public const string AnonReadZeroPageName = "anon-read-zero-page";
    public const string HugeZeroPageName = "huge-zero-page";
    public const string FaultAroundPagesName = "fault-around-pages";
    public const string PageSizeName = "page-size";
    public const string ThpAnonName = "thp-anon";
    public const string ThpShmemName = "thp-shmem";
    public const string HugePagesName = "hugetlb-pool";
    public const string SwapName = "swap";
    public const string MemoryLimitName = "memory-cgroup";
    public const string MemoryFailureName = "memory-failure";
    public const string IoUringName = "io-uring";
    /// <summary>The <see cref="IoUring"/> value where io_uring fixed buffers can pin pages.</summary>
    public const string IoUringAvailable = "available";

    public static readonly ImmutableArray<FactSpec> Specs =
    [
        new(AnonReadZeroPageName, "an anonymous read fault maps the shared zero page", "on", FactUse.Predicts,
            "anon read faults: the zero page (no anon_vma, fork does not copy it, PAGE_IS_PFNZERO) or a private exclusive zeroed page (anon_vma prepared, fork copies it, MOVE after fork is EBUSY)"),
        new(HugeZeroPageName, "a THP read fault maps the huge zero page", "on", FactUse.Predicts,
            "reads in MADV_HUGEPAGE mappings (their pages are unspecified either way: §3.8)"),
        new(FaultAroundPagesName, "fault-around window (fault_around_bytes / page size)", "16", FactUse.Predicts,
            "how many cached neighbours a read fault maps in unregistered and MISSING-only file VMAs (§3.1)"),
        new(PageSizeName, "base page size", "4096", FactUse.Applicability, "the model's pages are 4 KiB: other sizes make every cell n/a"),
        new(ThpAnonName, "THP for anonymous memory (transparent_hugepage/enabled)", null, FactUse.Applicability,
            "scenarios pin MADV_NOHUGEPAGE; the THP scenarios need it not 'never'"),
        new(ThpShmemName, "THP for shmem (transparent_hugepage/shmem_enabled)", null, FactUse.Predicts,
            "'always' and 'force' make write(2) into an uncached 2 MiB extent cache the whole extent (no VMA, so no MADV_NOHUGEPAGE pin; faults keep the pin under every value); minor-collapse runs under every value but deny"),
        new(HugePagesName, "2 MiB huge page pool (vm.nr_hugepages)", null, FactUse.Applicability, "hugetlb cells need free 2 MiB pages"),
        new(SwapName, "swap", null, FactUse.Applicability, "swap-out rows need a swap device; MADV_PAGEOUT of a private anon page is predicted only without swap"),
        new(MemoryLimitName, "memory cgroup limit of this process", null, FactUse.Applicability, "reported; a tight limit can fail large cells"),
        new(MemoryFailureName, "CONFIG_MEMORY_FAILURE (the vm.memory_failure_* sysctls exist)", null, FactUse.Predicts,
            "the SIGBUS si_code of an access to a POISON marker: BUS_MCEERR_AR (4) with it, BUS_ADRERR (2) without (§1.4 UFFDIO_POISON)"),
        new(IoUringName, "io_uring fixed buffers: a long-term page pin from user space", null, FactUse.Applicability,
            "the pin cells (wp-fork-pin, wp-fork-pin-with-event) need it; unavailable (seccomp, kernel.io_uring_disabled, no CONFIG_IO_URING) they are n/a with the reason"),
    ];

    public static FactSpec Describe(string name) =>
        Specs.FirstOrDefault(s => s.Name == name) ?? throw new ArgumentException($"unknown environment fact '{name}'; known: {string.Join(", ", Specs.Select(s => s.Name))}");

    public static bool IsFact(string name) => Specs.Any(s => s.Name == name);

    /// <summary>Mainline defaults: the zero page and the huge zero page on, 64 KiB fault-around, 4 KiB pages;
    /// configuration-only facts unknown.</summary>
    public static EnvironmentFacts Mainline { get; } = new();

    /// <summary>do_anonymous_page maps the shared zero page for a read (mainline). False where a build or
    /// boot option (e.g. the vendor parameter pvm_no_zero_page=1) makes it allocate a private zeroed page.</summary>
    public bool AnonReadZeroPage { get; init; } = true;

    /// <summary>do_huge_pmd_anonymous_page maps the huge zero page for a read (use_zero_page=1, mainline).</summary>
    public bool HugeZeroPage { get; init; } = true;

    /// <summary>fault_around_bytes / PAGE_SIZE (64 KiB by default, §3.1).</summary>
    public int FaultAroundPages { get; init; } = 16;

    public int PageSize { get; init; } = 4096;

    /// <summary>transparent_hugepage/enabled: always | madvise | never; null when unknown (no THP in the kernel: "absent").</summary>
    public string? ThpAnon { get; init; }

    /// <summary>transparent_hugepage/shmem_enabled: always | within_size | advise | never | deny | force.</summary>
    public string? ThpShmem { get; init; }

    /// <summary>Free 2 MiB huge pages (null: unknown).</summary>
    public long? HugePagesFree { get; init; }

    public long? HugePagesTotal { get; init; }

    public bool? Swap { get; init; }

    /// <summary>The memory cgroup limit ("max", or bytes), null when unknown.</summary>
    public string? MemoryLimit { get; init; }

    /// <summary>CONFIG_MEMORY_FAILURE: a build option with no mainline value; null (unknown) predicts as set, which
    /// distribution kernels do.</summary>
    public bool? MemoryFailure { get; init; }

    /// <summary>"available" where io_uring_setup + IORING_REGISTER_BUFFERS pinned a page, else "unavailable: ERRNO (cause)";
    /// null when not detected.</summary>
    public string? IoUring { get; init; }

    /// <summary>Why a scenario that pins pages cannot run here ("io_uring unavailable: EPERM (…)"), or null (available or
    /// not detected: then the kernel run itself shows the failure).</summary>
    public string? PinUnavailable => IoUring is { } v && v != IoUringAvailable ? $"io_uring {v}" : null;

    /// <summary>The value of a fact as text (the form probe and check show and --profile-set takes).</summary>
    public string Value(string name) => name switch
    {
        AnonReadZeroPageName => OnOff(AnonReadZeroPage),
        HugeZeroPageName => OnOff(HugeZeroPage),
        FaultAroundPagesName => FaultAroundPages.ToString(CultureInfo.InvariantCulture),
        PageSizeName => PageSize.ToString(CultureInfo.InvariantCulture),
        ThpAnonName => ThpAnon ?? "unknown",
        ThpShmemName => ThpShmem ?? "unknown",
        HugePagesName => HugePagesTotal is { } t ? $"{t.ToString(CultureInfo.InvariantCulture)} reserved, {(HugePagesFree ?? 0).ToString(CultureInfo.InvariantCulture)} free" : "unknown",
        SwapName => Swap is { } s ? OnOff(s) : "unknown",
        MemoryLimitName => MemoryLimit ?? "unknown",
        MemoryFailureName => MemoryFailure is { } mf ? OnOff(mf) : "unknown",
        IoUringName => IoUring ?? "unknown",
        _ => throw new ArgumentException($"unknown environment fact '{name}'"),
    };

    private static string OnOff(bool v) => v ? "on" : "off";

    /// <summary>Facts that change the model's predictions and differ from mainline's defaults. A build option with no
    /// mainline value (memory-failure) never counts as a difference from mainline.</summary>
    public IEnumerable<FactSpec> PredictiveDifferences(EnvironmentFacts other) =>
        Specs.Where(s => s.Use == FactUse.Predicts && Value(s.Name) != other.Value(s.Name) && (s.Mainline is not null || other.Value(s.Name) != "unknown"));

    /// <summary>Sets one fact from text: on/off (true/false, yes/no) for the boolean facts, a positive number
    /// for fault-around-pages (memory-failure too, to hold the other build against this kernel). Other configuration-only facts
    /// are read, never set.</summary>
    public EnvironmentFacts With(string name, string value)
    {
        bool Bool() => value.ToLowerInvariant() switch
        {
            "on" or "true" or "yes" or "1" or "new" => true,
            "off" or "false" or "no" or "0" or "old" => false,
            _ => throw new FormatException($"fact '{name}': value must be on or off, not '{value}'"),
        };
        return name switch
        {
            AnonReadZeroPageName => this with { AnonReadZeroPage = Bool() },
            HugeZeroPageName => this with { HugeZeroPage = Bool() },
            MemoryFailureName => this with { MemoryFailure = Bool() },
            FaultAroundPagesName => int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n is >= 1 and <= 512
                ? this with { FaultAroundPages = n }
                : throw new FormatException($"fact '{name}': value must be a page count 1..512, not '{value}'"),
            _ when IsFact(name) => throw new FormatException($"fact '{name}' is read from the machine and cannot be set"),
            _ => throw new ArgumentException($"unknown environment fact '{name}'"),
        };
    }

    /// <summary>"zero page off, fault-around 1 page" — the facts that differ from mainline, for profile names.</summary>
    public string DifferenceText(EnvironmentFacts? from = null)
    {
        from ??= Mainline;
        return string.Join(", ", PredictiveDifferences(from).Select(s => s.Name switch
        {
            AnonReadZeroPageName => $"zero page {Value(s.Name)}",
            HugeZeroPageName => $"huge zero page {Value(s.Name)}",
            FaultAroundPagesName => $"fault-around {FaultAroundPages} page{(FaultAroundPages == 1 ? "" : "s")}",
            _ => $"{s.Name} {Value(s.Name)}",
        }));
    }
}
