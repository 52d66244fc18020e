using UffdNative.Harness.Scenarios;

namespace UffdNative.Harness.Model;

/// <summary>
/// Rules that a test may deliberately break, to prove the differential check finds a wrong model
/// (the "injected bug" of issue 4). Never set outside tests and demonstrations.
/// </summary>
[Flags]
public enum ModelBug
{
    None = 0,
    /// <summary>A zap of a write-protected shmem page drops the wp state instead of leaving a marker (§3.2).</summary>
    ZapDropsFileMarker = 1 << 0,
    /// <summary>UFFDIO_WRITEPROTECT skips none PTEs of shmem instead of installing markers (§1.4).</summary>
    WpSkipsNoneShmem = 1 << 1,
    /// <summary>Fault-around also runs in WP-registered VMAs (§3.1).</summary>
    FaultAroundInWpVma = 1 << 2,
    /// <summary>UFFDIO_UNREGISTER keeps wp bits (the pre-6.0 rule, while the profile says otherwise).</summary>
    UnregisterKeepsWp = 1 << 3,
    /// <summary>Reading a uffd-wp marker sends a WP message (it must not, §3.2).</summary>
    MarkerReadFaults = 1 << 4,
    /// <summary>fork's early CoW of a pinned anon page drops the uffd-wp bit even in a WP-registered child VMA (the
    /// bug upstream's wp-fork-pin-with-event catches: fixed by "mm/userfaultfd: fix uffd-wp special cases for fork()", 5.16).</summary>
    EarlyCowDropsWp = 1 << 5,
    /// <summary>UFFDIO_UNREGISTER wakes every waiter of the range, not only those of MISSING VMAs (§1.4 UNREGISTER).</summary>
    UnregisterWakesEveryWaiter = 1 << 6,
    /// <summary>UFFDIO_COPY ignores MODE_DONTWAKE and wakes the range (§1.5).</summary>
    CopyIgnoresDontWake = 1 << 7,
    /// <summary>A signal leaves a thread blocked in a user-mode fault asleep, with no second message (§1.5).</summary>
    SignalKeepsUserFaultAsleep = 1 << 8,
    /// <summary>A signal aborts a kernel-mode fault: the syscall fails EFAULT at once (§1.5).</summary>
    SignalAbortsKernelFault = 1 << 9,
    /// <summary>MADV_DONTNEED of a private file mapping keeps its private COWed (anon) pages, as a hole punch does; it
    /// must zap them (zap_page_range_single without details, §3.2): what the events cases' release shows on shmem-private.</summary>
    DontNeedKeepsFileCows = 1 << 10,
    /// <summary>FEATURE_SIGBUS turns only MISSING faults into SIGBUS, a WP fault still becomes a message; it turns every
    /// fault into SIGBUS (handle_userfault, §1.5): what upstream's sigbus-wp shows with its write back.</summary>
    SigbusSparesWpFaults = 1 << 11,
}

/// <summary>Options of a model run that are not kernel-version switches.</summary>
public sealed record ModelOptions
{
    public ModelBug Bugs { get; init; }
}

/// <summary>The model's answer for a whole scenario.</summary>
public sealed record ModelResult
{
    public required ScenarioTrace Trace { get; init; }
    /// <summary>Per observation (setup first), the profile switches the rules consulted to produce it.</summary>
    public required IReadOnlyList<IReadOnlySet<string>> Consulted { get; init; }
    /// <summary>Per observation, the model's internal state before it (VMAs, PTEs, file pages).</summary>
    public required IReadOnlyList<string> StateBefore { get; init; }
    /// <summary>Set when the scenario leaves the model's scope (the reason); the trace then stops there.</summary>
    public string? OutOfScope { get; init; }
    /// <summary>The scenario ended because a faulting thread stayed blocked (its handler action failed).</summary>
    public bool Blocked { get; init; }
}

/// <summary>
/// The executable specification of userfaultfd written from docs/kernel-reference.md. Every rule
/// names its section and the kernel versions it holds for; rules that changed between versions read
/// a <see cref="KernelProfile"/> switch (and record that they did, so a divergence can be attributed).
/// It does not learn anything from the running kernel.
/// </summary>
public sealed class KernelModel(KernelProfile profile, ModelOptions? options = null)
{
    /// <summary>How many faults one op may raise before the handler is declared stuck (the executor and the
    /// C reproducer use the same bound): a handler that wakes without resolving livelocks the thread (§4 I3).</summary>
    public const int MaxFaultsPerOp = 9;

    public KernelProfile Profile { get; } = profile;
    public ModelOptions Options { get; } = options ?? new ModelOptions();

    public ModelResult Run(Scenario scenario) => new ModelRun(Profile, Options, scenario).Run();
}
