using UffdNative.Harness.Conformance;
using UffdNative.Harness.Model;
using UffdNative.Harness.Scenarios;

namespace UffdNative.Harness.Tests.Conformance;

/// <summary>The §1.5 "Waking a blocked thread" scenarios (HoldOp, SignalOp): each runs on this kernel with the detected
/// profile, the model agrees, and the observations are exactly these (what the blocked access saw, which messages
/// came); a model with one wake rule flipped diverges on exactly that scenario's cell; a scenario that ends with
/// the access still blocked leaves no thread behind.</summary>
public class HeldFaultTests
{
    /// <summary>Per scenario: (op index, result, messages) of the ops that show the held access.</summary>
    private static readonly Dictionary<string, (int Op, string Result, string[] Messages)[]> Expected = new()
    {
        ["unregister-wakes-missing-reader"] =
        [
            (1, "asleep", ["u0 PF 0x0 m0+1 => held"]),
            (2, "ok [held: ok value=0x0]", []),
        ],
        ["unregister-keeps-wp-waiter"] =
        [
            (3, "asleep", ["u0 PF 0x3 m0+1 => held"]),
            (4, "ok [held: asleep]", []),
            (5, "ok [held: ok value=0x0]", []),
        ],
        ["unregister-wakes-wp-waiter-of-missing-vma"] =
        [
            (3, "asleep", ["u0 PF 0x3 m0+1 => held"]),
            (4, "ok [held: ok value=0x0]", []),
        ],
        ["unregister-keeps-minor-waiter"] =
        [
            (2, "asleep", ["u0 PF 0x4 m0+1 => held"]),
            (3, "ok [held: asleep]", []),
            (4, "ok [held: ok value=0x1221]", []),
        ],
        ["copy-dontwake"] =
        [
            (1, "asleep", ["u0 PF 0x0 m0+1 => held"]),
            (2, "ok field=4096 [held: asleep]", []),
            (3, "ok [held: asleep]", []),
            (4, "ok [held: ok value=0x1301]", []),
        ],
        ["wake-refaults"] =
        [
            (1, "asleep", ["u0 PF 0x0 m0+1 => held"]),
            (2, "ok [held: asleep]", ["u0 PF 0x0 m0+1 => held"]),
            (3, "ok field=4096 [held: ok value=0x0]", []),
        ],
        ["signal-refaults"] =
        [
            (1, "asleep", ["u0 PF 0x0 m0+1 => held"]),
            (2, "ok [held: asleep]", ["u0 PF 0x0 m0+1 => held"]),
            (3, "ok field=4096 [held: ok value=0x1401 signals=1]", []),
        ],
        ["signal-kernel-fault-retried"] =
        [
            (1, "asleep", ["u0 PF 0x1 m0+1 => held"]),
            (2, "ok [held: retrying]", ["u0 PF 0x1 m0+1 => held", "u0 PF 0x1 m0+1 => held", "u0 PF 0x1 m0+1 => held"]),
            (3, "ok field=4096 [held: ok bytes=8 signals=1]", []),
        ],
    };

    public static TheoryData<string, MemoryType> Cells()
    {
        var d = new TheoryData<string, MemoryType>();
        foreach (var name in Expected.Keys)
            foreach (var m in NamedScenarios.Find(name)!.Targets)
                d.Add(name, m);
        return d;
    }

    [Theory]
    [MemberData(nameof(Cells))]
    public void TheKernelShowsExactlyWhatTheModelPredicts(string name, MemoryType memory)
    {
        var ns = NamedScenarios.Find(name)!;
        var s = ns.Build(memory);
        var (model, kernel, d) = Hard.Within(60_000, () => Detected.Runner().Compare(s));
        Assert.True(kernel.Error is null, kernel.Error);
        Assert.True(d is null, $"{name} × {MemoryTypes.Name(memory)}: {d?.Describe()}\nmodel:\n{model.Trace.Describe()}\nkernel:\n{kernel.Describe()}");
        Assert.Equal(s.Ops.Count + 1, kernel.Observations.Count);
        foreach (var (op, result, messages) in Expected[name])
        {
            var o = kernel.Observations[op + 1];
            Assert.Equal(op, o.Index);
            Assert.Equal(result, o.Result);
            Assert.Equal(messages, o.Messages);
        }
        // The page the held access faulted on is present afterwards in every scenario.
        Assert.NotEqual(PageChars.None, kernel.Observations[^1].PageMap["m0"][1]);
    }

    [Theory]
    [InlineData(ModelBug.UnregisterWakesEveryWaiter, "unregister-keeps-wp-waiter", 4, "ok [held: ok value=0x0]", "ok [held: asleep]", "unregister-keeps-minor-waiter")]
    [InlineData(ModelBug.CopyIgnoresDontWake, "copy-dontwake", 2, "ok field=4096 [held: ok value=0x1301]", "ok field=4096 [held: asleep]")]
    [InlineData(ModelBug.SignalKeepsUserFaultAsleep, "signal-refaults", 2, "(none)", "u0 PF 0x0 m0+1 => held")]
    [InlineData(ModelBug.SignalAbortsKernelFault, "signal-kernel-fault-retried", 2, "ok [held: EFAULT signals=1]", "ok [held: retrying]")]
    public void AModelWithTheRuleFlippedDivergesOnExactlyThatCell(ModelBug bug, string cell, int op, string expected, string actual, string? alsoDiverges = null)
    {
        var scenarios = NamedScenarios.All.Where(n => Expected.ContainsKey(n.Name)).ToList();
        Assert.Equal(Expected.Count, scenarios.Count);
        var cells = Hard.Within(120_000, () => Detected.Runner(bug).RunAll(scenarios, [MemoryType.Anon, MemoryType.Shmem]).ToList());
        Assert.Equal(scenarios.Sum(n => n.Targets.Count(t => t is MemoryType.Anon or MemoryType.Shmem)), cells.Count);
        // The flipped rule diverges on its scenario (and alsoDiverges, which shows the same rule) on every memory, nowhere else.
        Assert.All(cells, c => Assert.Equal(c.Scenario == cell || c.Scenario == alsoDiverges ? CellStatus.Diverged : CellStatus.Pass, c.Status));
        var bad = Assert.Single(cells, c => c.Scenario == cell && c.Memory == MemoryType.Anon);
        Assert.Equal(CellStatus.Diverged, bad.Status);
        Assert.Equal(op, bad.Divergence!.Index);
        Assert.Equal(expected, bad.Divergence.Expected);
        Assert.Equal(actual, bad.Divergence.Actual);
    }

    /// <summary>The standalone C reproducer expresses the held access, the signal and COPY DONTWAKE: each scenario's C
    /// program, expecting the model's trace, runs on this kernel and agrees (exit 0); and with a flipped rule's trace it
    /// reports the divergence (exit 1).</summary>
    [Fact]
    public void TheCReproducerRunsTheHeldScenariosAsTheExecutorDoes()
    {
        var runner = Detected.Runner();
        foreach (var name in Expected.Keys)
        {
            var ns = NamedScenarios.Find(name)!;
            var memories = ns.Targets.Where(t => t is MemoryType.Anon or MemoryType.Shmem).ToList();
            foreach (var (memory, bugs) in memories.Select(m => (m, ModelBug.None)).Append((memories[0], BugFor(name))).Distinct())
            {
                var s = ns.Build(memory);
                var trace = new KernelModel(Detected.Profile, new ModelOptions { Bugs = bugs }).Run(s).Trace;
                var (rc, output) = ReproBuild.Run(s, trace, runner.Profile);
                Assert.True(rc == (bugs == ModelBug.None ? 0 : 1), $"{name} × {MemoryTypes.Name(memory)} (model bugs {bugs}): exit {rc}\n{output}");
            }
        }
    }

    private static ModelBug BugFor(string name) => name switch
    {
        "unregister-keeps-wp-waiter" or "unregister-keeps-minor-waiter" => ModelBug.UnregisterWakesEveryWaiter,
        "copy-dontwake" => ModelBug.CopyIgnoresDontWake,
        "signal-refaults" => ModelBug.SignalKeepsUserFaultAsleep,
        "signal-kernel-fault-retried" => ModelBug.SignalAbortsKernelFault,
        _ => ModelBug.None,
    };

    /// <summary>Threads of this process asleep in a userfaultfd fault (wchan handle_userfault).</summary>
    private static List<string> BlockedInUserfault() =>
        [.. Directory.GetDirectories("/proc/self/task").Where(t =>
        {
            try { return File.ReadAllText(Path.Combine(t, "wchan")).Trim() == "handle_userfault"; }
            catch (IOException) { return false; }
        }).Select(t => Path.GetFileName(t) ?? t)];

    [Fact]
    public void AScenarioEndingWithTheAccessStillBlockedLeavesNoThreadBehind()
    {
        // Ends with the writer asleep after UNREGISTER (no WAKE): the executor closes the uffd, which wakes it, and joins it.
        var s = NamedScenarios.Find("unregister-keeps-wp-waiter")!.Build(MemoryType.Anon);
        s = s with { Ops = [.. s.Ops.Take(5)] };
        var (_, kernel, d) = Hard.Within(60_000, () => Detected.Runner().Compare(s));
        Assert.Null(d);
        Assert.Equal("ok [held: asleep]", kernel.Observations[^1].Result);
        Assert.Empty(BlockedInUserfault());
    }

    [Fact]
    public void TheValidatorRefusesWhatAHeldAccessCannotBeFollowedBy()
    {
        var s = ScenarioBuilder.NewScenario("x", MemoryType.Anon).Then(ScenarioBuilder.Register(RegisterMode.Missing), ScenarioBuilder.HoldRead(0));
        Assert.Null(ScenarioValidator.Validate(s));
        Assert.Contains("after a held access", ScenarioValidator.Validate(s.Then(ScenarioBuilder.Read(1))));
        Assert.Contains("after a held access", ScenarioValidator.Validate(s.Then(ScenarioBuilder.HoldRead(1))));
        Assert.Contains("after a held access", ScenarioValidator.Validate(s.Then(ScenarioBuilder.Fork())));
        Assert.Contains("signal without a held access", ScenarioValidator.Validate(ScenarioBuilder.NewScenario("y", MemoryType.Anon).Then(ScenarioBuilder.SignalHeld())));
        Assert.Contains("must be a write", ScenarioValidator.Validate(ScenarioBuilder.NewScenario("z", MemoryType.Anon).Then(new HoldOp("m0", 0, Mode: AccessMode.Kernel))));
    }

    [Fact]
    public void HeldOpsAndCopyDontWakeRoundTripThroughJsonAndOldCopiesKeepTheirBytes()
    {
        var s = ScenarioBuilder.NewScenario("held", MemoryType.Shmem)
            .Then(ScenarioBuilder.Register(RegisterMode.Missing), ScenarioBuilder.Copy(2, 0x9, dontWake: true), ScenarioBuilder.HoldKernelWrite(3, 0x7), ScenarioBuilder.SignalHeld());
        var back = Scenario.Load(s.ToJson());
        Assert.Equal(s.Ops, back.Ops);
        Assert.Equal(s.ToJson(), back.ToJson());
        Assert.Contains("\"op\": \"hold\"", s.ToJson(), StringComparison.Ordinal);
        Assert.Contains("\"op\": \"signal\"", s.ToJson(), StringComparison.Ordinal);
        Assert.Contains("\"DontWake\": true", s.ToJson(), StringComparison.Ordinal);
        // A COPY without DONTWAKE writes no DontWake field (format v1 bytes unchanged).
        Assert.DoesNotContain("DontWake", ScenarioBuilder.NewScenario("c", MemoryType.Anon).Then(ScenarioBuilder.Copy(0, 1)).ToJson(), StringComparison.Ordinal);
    }
}
