using UffdNative.Harness.Model;
using UffdNative.Harness.Scenarios;

namespace UffdNative.Harness.Conformance;

public enum CellStatus { Pass, Diverged, NotApplicable, Error }

/// <summary>One scenario × memory type of <c>check</c>.</summary>
public sealed record CellResult
{
    public required string Scenario { get; init; }
    public required MemoryType Memory { get; init; }
    public required CellStatus Status { get; init; }
    /// <summary>Why not applicable, or what went wrong.</summary>
    public string? Reason { get; init; }
    public Divergence? Divergence { get; init; }
    public int Ops { get; init; }
    public double Milliseconds { get; init; }
}

/// <summary>Runs scenarios on the model and the kernel and compares them.</summary>
public sealed class ConformanceRunner
{
    public KernelProfile Profile { get; }
    /// <summary>The profile the kernel is believed to have (detected, or the prior): divergences are
    /// attributed to switches where <see cref="Profile"/> differs from it.</summary>
    public KernelProfile Reference { get; }
    public ConformanceEnvironment Environment { get; }
    public ModelOptions ModelOptions { get; }
    public KernelExecutor Executor { get; }

    public ConformanceRunner(KernelProfile profile, KernelProfile reference, ConformanceEnvironment environment, ModelBug bugs = ModelBug.None, ExecutorOptions? executor = null)
    {
        Profile = profile;
        Reference = reference;
        Environment = environment with { Facts = profile.Facts, UserModeOnly = profile[KernelProfile.UserModeOnly] };
        ModelOptions = new ModelOptions { Bugs = bugs };
        Executor = new KernelExecutor(executor);
    }

    public KernelModel Model => new(Profile, ModelOptions);

    /// <summary>Runs one scenario both ways; null divergence when they agree.</summary>
    public (ModelResult Model, ScenarioTrace Kernel, Divergence? Divergence) Compare(Scenario s)
    {
        var model = Model.Run(s);
        // What this process cannot open (no privilege, no device) is not applicable, never a divergence.
        if (Environment.Cannot(s) is { } why)
            return (model, new ScenarioTrace { Error = $"not applicable here: {why}" }, null);
        var kernel = Executor.Run(s);
        return (model, kernel, Differ.FirstDivergence(model, kernel, Reference, Profile));
    }

    public CellResult RunCell(NamedScenario ns, MemoryType memory)
    {
        var s = ns.Build(memory);
        if (Environment.NotApplicable(ns, memory, s) is { } why)
            return new CellResult { Scenario = ns.Name, Memory = memory, Status = CellStatus.NotApplicable, Reason = why, Ops = s.Ops.Count };
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var (model, kernel, d) = Compare(s);
        sw.Stop();
        if (model.OutOfScope is { } oos)
            return new CellResult { Scenario = ns.Name, Memory = memory, Status = CellStatus.Error, Reason = $"model out of scope: {oos}", Ops = s.Ops.Count, Milliseconds = sw.Elapsed.TotalMilliseconds };
        if (kernel.Error is { } err && kernel.Observations.Count == 0)
            return new CellResult { Scenario = ns.Name, Memory = memory, Status = CellStatus.Error, Reason = err, Ops = s.Ops.Count, Milliseconds = sw.Elapsed.TotalMilliseconds };
        return new CellResult
        {
            Scenario = ns.Name,
            Memory = memory,
            Status = d is null ? CellStatus.Pass : CellStatus.Diverged,
            Divergence = d,
            Ops = s.Ops.Count,
            Milliseconds = sw.Elapsed.TotalMilliseconds,
        };
    }

    public IEnumerable<CellResult> RunAll(IEnumerable<NamedScenario> scenarios, IReadOnlyCollection<MemoryType>? memories = null)
    {
        foreach (var ns in scenarios)
            foreach (var m in ns.Targets)
                if (memories is null || memories.Contains(m))
                    yield return RunCell(ns, m);
    }
}
