namespace UffdNative.Harness.Scenarios;

/// <summary>The observations of one run (model or kernel) of a scenario.</summary>
public sealed record ScenarioTrace
{
    public IReadOnlyList<OpObservation> Observations { get; init; } = [];
    /// <summary>Set when the run could not be done: the reason (environment, invalid scenario).</summary>
    public string? Error { get; init; }

    public string Describe() => string.Join("\n", Observations.Select(o => o.Describe())) + (Error is null ? "" : $"\n  error: {Error}");
}
