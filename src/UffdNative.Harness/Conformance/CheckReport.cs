using System.Text.Json.Serialization;
using UffdNative.Harness.Model;
using UffdNative.Harness.Scenarios;

namespace UffdNative.Harness.Conformance;

/// <summary>How a switch's value was decided for a conformance run.</summary>
public enum SwitchStatus
{
    /// <summary>Detected, and the same as mainline of this version.</summary>
    [JsonStringEnumMemberName("as-prior")]
    AsPrior,
    /// <summary>Detected with the new behaviour on a version whose mainline has the old one.</summary>
    [JsonStringEnumMemberName("backported")]
    Backported,
    /// <summary>Detected with the old behaviour on a version whose mainline has the new one.</summary>
    [JsonStringEnumMemberName("regressed")]
    Regressed,
    /// <summary>The detector could not decide here: the prior is used.</summary>
    [JsonStringEnumMemberName("not-detected")]
    NotDetected,
    /// <summary>Detection was bypassed (--profile, --profile-set).</summary>
    [JsonStringEnumMemberName("forced")]
    Forced,
}

/// <summary>One profile switch as the check used it: the mainline prior for uname -r, the value the
/// detectors found (or the prior, when no detector ran), the value the model used.</summary>
public sealed record SwitchRow(string Switch, string Section, bool Prior, bool? Detected, bool Used, SwitchStatus Status, string Evidence);

/// <summary>One environment fact as the check used it: mainline's default, what was detected (null: not
/// determined), the value the model used, and the evidence and cause.</summary>
public sealed record FactRow(string Fact, string? Mainline, string? Detected, string Used, string Evidence, string? Cause);

/// <summary>The JSON form of <c>uffdnative check --json</c>.</summary>
public sealed record CheckReport
{
    public int SchemaVersion { get; init; } = 1;
    public string KernelRelease { get; init; } = "";
    public string Profile { get; init; } = "";
    public string ProfileSource { get; init; } = "";
    public List<SwitchRow> Switches { get; init; } = [];
    public List<FactRow> Facts { get; init; } = [];
    public int Scenarios { get; init; }
    public int Cells { get; init; }
    public int Passed { get; init; }
    public int Diverged { get; init; }
    public int NotApplicable { get; init; }
    public int Errors { get; init; }
    public List<CheckCell> Results { get; init; } = [];
    /// <summary>Switches the divergences were attributed to.</summary>
    public List<string> DivergentSwitches { get; init; } = [];

    /// <summary>The report of a check run: counts, cells and attributions computed here from typed results
    /// (<see cref="CellStatus"/>, <see cref="Divergence.SwitchNames"/>), so the CLI only renders it.</summary>
    public static CheckReport Build(string kernelRelease, string profile, string profileSource, IEnumerable<SwitchRow> switches,
        IEnumerable<FactRow> facts, int scenarios, IReadOnlyList<CellResult> cells) => new()
    {
        KernelRelease = kernelRelease,
        Profile = profile,
        ProfileSource = profileSource,
        Switches = [.. switches],
        Facts = [.. facts],
        Scenarios = scenarios,
        Cells = cells.Count(c => c.Status != CellStatus.NotApplicable),
        Passed = cells.Count(c => c.Status == CellStatus.Pass),
        Diverged = cells.Count(c => c.Status == CellStatus.Diverged),
        NotApplicable = cells.Count(c => c.Status == CellStatus.NotApplicable),
        Errors = cells.Count(c => c.Status == CellStatus.Error),
        Results = cells.Select(c => new CheckCell(c.Scenario, MemoryTypes.Name(c.Memory), c.Status.ToString().ToLowerInvariant(), c.Reason,
            c.Divergence is { } d ? (d.Index < 0 ? "setup" : $"{d.Index}: {d.Op}") : null, c.Divergence?.Aspect, c.Divergence?.Expected, c.Divergence?.Actual,
            c.Divergence?.Switches.ToList(), Math.Round(c.Milliseconds, 1))).ToList(),
        DivergentSwitches = cells.Where(c => c.Divergence is not null).SelectMany(c => c.Divergence!.SwitchNames).Distinct().Order().ToList(),
    };

    /// <summary>Whether the run found a problem (exit code 1).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool Failed => Diverged + Errors > 0;
}

public sealed record CheckCell(string Scenario, string Memory, string Status, string? Reason, string? DivergenceOp, string? Aspect, string? Expected, string? Actual, List<string>? Switches, double Milliseconds);

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, UseStringEnumConverter = true)]
[JsonSerializable(typeof(CheckReport))]
public sealed partial class CheckJsonContext : JsonSerializerContext;
