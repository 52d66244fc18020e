using System.Text.Json.Serialization;

namespace UffdNative.Harness.Benchmarks;

public enum BenchLoop { Managed, Native, Both }

/// <summary>CPU placement: none (the scheduler decides), same (loop and touchers share CPU 0),
/// split (loop on CPU 0, touchers on CPU 1). On a 2-vCPU VM a cross-vCPU wake-up costs several times
/// a same-vCPU one, so only ratios within one regime mean anything.</summary>
public enum BenchPin { None, Same, Split }

public sealed record BenchOptions
{
    public IReadOnlyList<long> Pages { get; init; } = [65536];
    public int Touchers { get; init; } = 1;
    public BenchLoop Loop { get; init; } = BenchLoop.Both;
    public BenchPin Pin { get; init; } = BenchPin.Same;
    public int Repeat { get; init; } = 5;
    /// <summary>Populate and free the memory a measurement needs just before it (this VM hands freed
    /// memory back to its host; the next first touch would fault on the host too).</summary>
    public bool Warmup { get; init; }
    /// <summary>read-ahead: pages installed after the faulting one.</summary>
    public int ReadAhead { get; init; } = 63;
    /// <summary>"scenario" or "scenario/memory" filters; empty: every scenario.</summary>
    public IReadOnlyList<string> Scenarios { get; init; } = [];
    /// <summary>Also measure each loop scenario served by an external handler process (`uffdnative serve`).</summary>
    public bool External { get; init; }
}

/// <summary>One scenario on one memory type. async/anon tracks memory in use (populated, then armed:
/// the first write is one WP fault the kernel resolves); async/anon-unpopulated arms never-touched
/// memory (WP_UNPOPULATED markers: the first write allocates the page, which arrives write-protected
/// and takes a second, async WP fault).</summary>
public sealed record BenchCase(string Scenario, string Memory)
{
    public string Id => $"{Scenario}/{Memory}";
    /// <summary>Measured with a fault loop (managed and/or native); baseline and async have none.</summary>
    public bool UsesLoop => Scenario is not ("baseline" or "async");

    public static readonly IReadOnlyList<BenchCase> All =
    [
        new("baseline", "anon"), new("baseline", "shmem"),
        new("missing-copy", "anon"), new("missing-copy", "shmem"),
        new("missing-zero", "anon"),
        new("wp", "anon"), new("wp", "shmem"),
        new("wp-snapshot", "shmem"),
        new("minor", "shmem"),
        new("read-ahead", "anon"), new("read-ahead", "shmem"),
        new("async", "anon"), new("async", "anon-unpopulated"),
    ];

    public bool Matches(string filter) => filter.Contains('/') ? filter == Id : filter == Scenario;
}

/// <summary>One measured run: one loop, one repetition.</summary>
public sealed record Measurement
{
    public required string Loop { get; init; }
    public int Rep { get; init; }
    public long Pages { get; init; }
    public ulong Faults { get; init; }
    public ulong PagesResolved { get; init; }
    public long WallNs { get; init; }
    public long LoopCpuNs { get; init; }
    public long LoopContextSwitches { get; init; }
    public long TouchCpuNs { get; init; }
    public long TouchContextSwitches { get; init; }
    /// <summary>Page faults the toucher threads took (getrusage minflt): uffd faults, plus any the
    /// kernel resolved alone (first touch, CoW, async WP).</summary>
    public long TouchKernelFaults { get; init; }
    public ulong P50Ns { get; init; }
    public ulong P99Ns { get; init; }
    public ulong P999Ns { get; init; }
    public ulong ServiceP50Ns { get; init; }
    public ulong ServiceP99Ns { get; init; }
    public ulong Batches { get; init; }
    /// <summary>async: the PAGEMAP_SCAN of the whole range, and whether it returned exactly the written pages.</summary>
    public long? ScanNs { get; init; }
    public long? ScanPages { get; init; }
    public bool? ScanExact { get; init; }
    /// <summary>Null when the content and the fault count verified; else what failed.</summary>
    public string? Failure { get; init; }
    /// <summary>Every touch's latency as the touchers saw it (the source of P50Ns..P999Ns; the bench
    /// plots draw its CDF). Not in the JSON report.</summary>
    [JsonIgnore] public UffdNative.Serving.HistogramSnapshot? Latency { get; init; }

    [JsonIgnore] public double NsPerFault => Faults == 0 ? 0 : (double)WallNs / Faults;
}

/// <summary>The medians over the repetitions of one loop.</summary>
public sealed record LoopFigures
{
    public required string Loop { get; init; }
    public int Reps { get; init; }
    public ulong Faults { get; init; }
    public double FaultsPerSecond { get; init; }
    public double PagesPerSecond { get; init; }
    public double NsPerFault { get; init; }
    public double NsPerPage { get; init; }
    public double P50Ns { get; init; }
    public double P99Ns { get; init; }
    public double P999Ns { get; init; }
    public double CpuUsPerFault { get; init; }
    /// <summary>The loop thread alone: the handler's own cost per fault.</summary>
    public double LoopCpuUsPerFault { get; init; }
    public double ContextSwitchesPerFault { get; init; }
    /// <summary>Kernel page faults the touchers took per page touched.</summary>
    public double KernelFaultsPerPage { get; init; }
    public double ServiceP50Ns { get; init; }
    public double ServiceP99Ns { get; init; }
    /// <summary>Spread of ns/fault over the repetitions: (max - min) / median.</summary>
    public double Spread { get; init; }
    public double? ScanMs { get; init; }
    public long? ScanPages { get; init; }
}

public sealed record ScenarioResult
{
    public required string Scenario { get; init; }
    public required string Memory { get; init; }
    public long Pages { get; init; }
    public List<LoopFigures> Loops { get; init; } = [];
    /// <summary>Median managed ns/fault over median native ns/fault of the same run.</summary>
    public double? ManagedNativeRatio { get; init; }
    /// <summary>The median of the per-repetition ratios (each pair measured back to back).</summary>
    public double? PairedRatio { get; init; }
    /// <summary>Median managed CPU µs/fault over native (loop + touchers): less sensitive than wall
    /// time to other load on a shared machine, which delays both threads without charging them.</summary>
    public double? CpuRatio { get; init; }
    /// <summary>Median managed p50 touch latency over native.</summary>
    public double? P50Ratio { get; init; }
    /// <summary>Median external-handler ns/fault over median managed (in-process) ns/fault of the same run.</summary>
    public double? ExternalManagedRatio { get; init; }
    /// <summary>The same for CPU µs/fault (the handler's loop thread plus the touchers).</summary>
    public double? ExternalManagedCpuRatio { get; init; }
    /// <summary>Set when any repetition failed verification: then no figure is reported.</summary>
    public string? Failure { get; init; }
    public List<Measurement> Measurements { get; init; } = [];
}

/// <summary>An acceptance check computed from figures of the same run.</summary>
public sealed record BenchCheck(string Name, double Value, string Target, bool Pass, string Detail);

public sealed record BenchReport
{
    public int SchemaVersion { get; init; } = 1;
    public string Tool { get; init; } = "uffdnative bench";
    public string Kernel { get; init; } = "";
    public int Cpus { get; init; }
    public string CommandLine { get; init; } = "";
    /// <summary>/proc/loadavg (1-minute) when the run started and ended: other load on the machine
    /// stretches wall time (a thread waiting for the CPU is not charged CPU time), so on a busy
    /// machine compare CPU µs/fault and p50, which it disturbs far less.</summary>
    public double LoadBefore { get; init; }
    public double LoadAfter { get; init; }
    public BenchOptions? Options { get; init; }
    public List<ScenarioResult> Results { get; init; } = [];
    public List<BenchCheck> Checks { get; init; } = [];
    public bool Failed => Results.Any(r => r.Failure is not null);
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, UseStringEnumConverter = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(BenchReport))]
public sealed partial class BenchJsonContext : JsonSerializerContext;

/// <summary>What a running bench reports for a progress display.</summary>
public readonly record struct BenchProgress(string Case, string Loop, long Pages, int Rep, int Reps, ulong Done, ulong Total, ulong Faults, int Step, int Steps);
