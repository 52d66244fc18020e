using System.Text.Json.Serialization;
using UffdNative.Harness.Conformance;
using UffdNative.Harness.Probing;

namespace UffdNative.Harness.Reporting;

/// <summary>A divergence in JSON: where the kernel's trace first left the model's (-1 = the setup),
/// what was compared, both answers, the switches that explain it, the model state before the op.</summary>
public sealed record DivergenceJson(int Index, string Op, string Aspect, string Expected, string Actual, IReadOnlyList<string> Switches, string StateBefore)
{
    public static DivergenceJson From(Divergence d) => new(d.Index, d.Op, d.Aspect, d.Expected, d.Actual, [.. d.Switches], d.StateBefore);
}

/// <summary>The shrunk divergence a fuzz run found, and where its reproducer was written.</summary>
public sealed record FuzzFindingJson
{
    public int ScenarioIndex { get; init; }
    public double SecondsToFind { get; init; }
    public double SecondsToShrink { get; init; }
    public int ShrinkSteps { get; init; }
    public int OriginalOps { get; init; }
    public int ShrunkOps { get; init; }
    /// <summary>The shrunk scenario as text (the JSON form is the reproducer file).</summary>
    public string Scenario { get; init; } = "";
    public required DivergenceJson Divergence { get; init; }
    /// <summary>The scenario JSON (for <c>uffdnative replay</c>) and the standalone C program.</summary>
    public string ReproducerJson { get; init; } = "";
    public string ReproducerC { get; init; } = "";
}

/// <summary>The JSON form of <c>uffdnative fuzz --json</c>.</summary>
public sealed record FuzzJsonReport
{
    public int SchemaVersion { get; init; } = 1;
    public string KernelRelease { get; init; } = "";
    public string Profile { get; init; } = "";
    public ulong Seed { get; init; }
    /// <summary>The model rule broken on purpose (--inject-bug), or null.</summary>
    public string? InjectedBug { get; init; }
    public int Scenarios { get; init; }
    public int Skipped { get; init; }
    public double Seconds { get; init; }
    public double ScenariosPerSecond { get; init; }
    /// <summary>Null: no divergence.</summary>
    public FuzzFindingJson? Finding { get; init; }

    public static FuzzJsonReport From(Fuzzer.FuzzReport r, string kernelRelease, string profile, string? injectedBug, (string Json, string C)? reproducer) => new()
    {
        KernelRelease = kernelRelease,
        Profile = profile,
        Seed = r.Seed,
        InjectedBug = injectedBug,
        Scenarios = r.Scenarios,
        Skipped = r.Skipped,
        Seconds = Math.Round(r.Elapsed.TotalSeconds, 3),
        ScenariosPerSecond = Math.Round(r.ScenariosPerSecond, 2),
        Finding = r.Finding is not { } f ? null : new FuzzFindingJson
        {
            ScenarioIndex = f.ScenarioIndex,
            SecondsToFind = Math.Round(f.TimeToFind.TotalSeconds, 3),
            SecondsToShrink = Math.Round(f.TimeToShrink.TotalSeconds, 3),
            ShrinkSteps = f.ShrinkSteps,
            OriginalOps = f.Original.Ops.Count,
            ShrunkOps = f.Shrunk.Ops.Count,
            Scenario = f.Shrunk.Describe(),
            Divergence = DivergenceJson.From(f.Divergence),
            ReproducerJson = reproducer?.Json ?? "",
            ReproducerC = reproducer?.C ?? "",
        },
    };
}

/// <summary>The JSON form of <c>uffdnative replay --json</c>: both traces and the first divergence.</summary>
public sealed record ReplayJsonReport
{
    public int SchemaVersion { get; init; } = 1;
    public string KernelRelease { get; init; } = "";
    public string Profile { get; init; } = "";
    public string File { get; init; } = "";
    public string Scenario { get; init; } = "";
    public string ModelTrace { get; init; } = "";
    public string KernelTrace { get; init; } = "";
    /// <summary>Null: the kernel did what the model predicts.</summary>
    public DivergenceJson? Divergence { get; init; }
    /// <summary>The C reproducer written with --c, or null.</summary>
    public string? CReproducer { get; init; }
}

/// <summary>One row of <c>uffdnative compare --json</c>: a cell per report, the verdict notes, whether they differ.</summary>
public sealed record CompareRowJson(string Section, string Key, IReadOnlyList<string> Cells, IReadOnlyList<string> Notes, bool Differs);

/// <summary>The JSON form of <c>uffdnative compare --json</c>: the probes × kernels matrix.</summary>
public sealed record CompareJsonReport
{
    public int SchemaVersion { get; init; } = 1;
    /// <summary>One column per report (its kernel release, made unique).</summary>
    public IReadOnlyList<string> Columns { get; init; } = [];
    public IReadOnlyList<CompareRowJson> Rows { get; init; } = [];
    public int DifferingRows { get; init; }
    /// <summary>Rows flagged regressed/unexpected or failed, per report.</summary>
    public IReadOnlyList<string> Flagged { get; init; } = [];

    public static CompareJsonReport From(ReportMatrix m) => new()
    {
        Columns = m.Columns,
        Rows = [.. m.Rows.Select(r => new CompareRowJson(r.Section, r.Key, r.Cells, r.Notes, r.Differs))],
        DifferingRows = m.DifferingRows,
        Flagged = m.Flagged,
    };
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(FuzzJsonReport))]
[JsonSerializable(typeof(ReplayJsonReport))]
[JsonSerializable(typeof(CompareJsonReport))]
public sealed partial class VerbJsonContext : JsonSerializerContext;
