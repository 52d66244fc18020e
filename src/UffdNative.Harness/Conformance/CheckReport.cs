using System.Text.Json.Serialization;
using UffdNative.Harness.Model;

namespace UffdNative.Harness.Conformance;

/// <summary>One profile switch as the check used it: the mainline prior for uname -r, the value the
/// detectors found (or the prior, when no detector ran), the value the model used.</summary>
public sealed record SwitchRow(string Switch, string Section, bool Prior, bool? Detected, bool Used, string Status, string Evidence);

/// <summary>The JSON form of <c>uffdnative check --json</c>.</summary>
public sealed record CheckReport
{
    public int SchemaVersion { get; init; } = 1;
    public string KernelRelease { get; init; } = "";
    public string Profile { get; init; } = "";
    public string ProfileSource { get; init; } = "";
    public string FaultAround { get; init; } = "";
    public List<SwitchRow> Switches { get; init; } = [];
    public int Scenarios { get; init; }
    public int Cells { get; init; }
    public int Passed { get; init; }
    public int Diverged { get; init; }
    public int NotApplicable { get; init; }
    public int Errors { get; init; }
    public List<CheckCell> Results { get; init; } = [];
    /// <summary>Switches the divergences were attributed to.</summary>
    public List<string> DivergentSwitches { get; init; } = [];
}

public sealed record CheckCell(string Scenario, string Memory, string Status, string? Reason, string? DivergenceOp, string? Aspect, string? Expected, string? Actual, List<string>? Switches, double Milliseconds);

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(CheckReport))]
public sealed partial class CheckJsonContext : JsonSerializerContext;
