using UffdNative.Harness.Native;
using static UffdNative.Harness.Scenarios.ScenarioBuilder;

namespace UffdNative.Harness.Tests.Conformance;

/// <summary>
/// The selftest cases sigbus and sigbus-wp as upstream runs them (uffd-unit-tests.c uffd_sigbus_test_common, docs/
/// selftests.md rows 14–15): part 1, upstream's sigsetjmp/COPY/retry loop (faulting_process(1, wp)), natively in a fork
/// child forked while nothing is registered, on a uffd of its own with FEATURE_SIGBUS (native/harness/uffd_child_sigbus.c);
/// part 2, a child forked with EVENT_FORK after the parent registers and releases the area is signalled on every access.
/// Asserted on the kernel's own trace, predicted by the model, made to diverge by a flipped model rule on exactly the cells
/// it concerns, and run by the C reproducer.
/// </summary>
public class SigbusFidelityTests
{
    public static TheoryData<MemoryType, bool> Cells => Fidelity.SmallTimesVariant();

    [Theory]
    [MemberData(nameof(Cells))]
    public void TheChildRunsUpstreamsLoopOnItsOwnUffdAndTheEventForkChildIsSignalledOnEveryAccess(MemoryType memory, bool wp)
    {
        var s = NamedScenarios.Find(wp ? "sigbus-wp" : "sigbus")!.Build(memory);
        var runner = Detected.Runner();
        var kernel = Hard.Within(120_000, () => runner.Executor.Run(s));
        Assert.Null(kernel.Error);
        var o = kernel.Observations.Where(x => x.Index >= 0).ToList();
        // 0 fork [sigbus loop], 1 register, 2 release, 3 fork (EVENT_FORK) [reads]
        Assert.Equal(4, o.Count);
        Assert.All(o, x => Assert.Equal("ok", x.Result));
        // Part 1: nothing registered at the fork, so no FORK message; the child's own uffd takes one SIGBUS per page (no
        // message anywhere), COPYs and retries; with wp the write back takes a second (WP) SIGBUS and is un-protected.
        Assert.Empty(o[0].Messages);
        string mode = wp ? "MISSING|WP" : "MISSING";
        char filled = memory == MemoryType.Shmem ? 'f' : 'a';
        Assert.Equal(["pagemap m0=....", $"sigbus-loop m0+0..2 {mode} ok sigbus=2 wp={(wp ? 2 : 0)}", $"pagemap m0={filled}{filled}.."], o[0].Child);
        // The COPYs filled the child's mm: the parent's page tables are untouched.
        Assert.Equal("....", o[0].PageMap["m0"]);
        // Part 2: every access of the EVENT_FORK child raises SIGBUS (the child's uffd context inherits FEATURE_SIGBUS),
        // and the only message is the FORK.
        Assert.Empty(o[2].Messages);
        Assert.Equal(["u0 FORK"], o[3].Messages);
        Assert.Equal(4, o[3].Child.Count);
        Assert.StartsWith("r m0+0 sigbus code=", o[3].Child[1], StringComparison.Ordinal);
        Assert.StartsWith("r m0+1 sigbus code=", o[3].Child[2], StringComparison.Ordinal);
        Assert.Null(Differ.FirstDivergence(runner.Model.Run(s), kernel, runner.Reference, runner.Profile));
    }

    [Fact]
    public void TheModelPredictsTheSameStoryOnHugetlb()
    {
        foreach (var (_, wp, t) in Fidelity.HugetlbModelTraces("sigbus", "sigbus-wp"))
        {
            var first = t.Observations.First(x => x.Op.StartsWith("fork", StringComparison.Ordinal));
            Assert.Equal($"sigbus-loop m0+0..2 {(wp ? "MISSING|WP" : "MISSING")} ok sigbus=2 wp={(wp ? 2 : 0)}", first.Child[1]);
            Assert.Equal(["u0 FORK"], t.Observations.Last().Messages);
        }
    }

    [Fact]
    public void TheFlippedSigbusRuleDivergesExactlyOnTheSigbusWpCells()
    {
        // FEATURE_SIGBUS turns every fault into SIGBUS, WP ones too (handle_userfault). Flipped, the write back in
        // sigbus-wp would become a message: only those cells change.
        var (diverged, d) = Fidelity.Flipped(ModelBug.SigbusSparesWpFaults, "sigbus", "sigbus-wp");
        Assert.Equal([("sigbus-wp", MemoryType.Anon), ("sigbus-wp", MemoryType.Shmem), ("sigbus-wp", MemoryType.ShmemPrivate)], diverged);
        // The model (wrongly) expects the write backs as messages; the kernel sends none.
        Assert.True(d.Contains("expected loop PF 0x3 m0+0 => unprotect", StringComparison.Ordinal) && d.Contains("actual   (none)", StringComparison.Ordinal), d);
    }

    [Fact]
    public void TheReproducerRunsTheLoopInTheChild() =>
        Fidelity.ReproShows("sigbus-wp", MemoryType.Shmem, ModelBug.SigbusSparesWpFaults,
            "actual   [0] ok ||  || pagemap m0=.... | sigbus-loop m0+0..2 MISSING|WP ok sigbus=2 wp=2 | pagemap m0=ff..");

    [Fact]
    public void TheLoopsTagIsTheHandlersAndTheStepIsValidated()
    {
        Assert.Equal((ulong)HarnessAbi.ChildSigbusTagBase, HandlerPolicy.CopyTag(0, 0));
        var s = NewScenario("loop", MemoryType.Anon, UffdFeatures.Sigbus);
        var ok = s.Then(Fork(ChildSigbusLoop(1, 3, wp: true)));
        Assert.Null(ScenarioValidator.Validate(ok));
        var back = Scenario.FromJson(ok.ToJson());
        Assert.Equal("fork [sigbus-loop m0+1..4 MISSING|WP]", back.Ops[0].Describe());
        Assert.Equal(ok.Ops[0], back.Ops[0]);
        Assert.Equal("op 0 (fork [sigbus-loop m0+2..5 MISSING]): range m0+2..5 outside the mapping (4 pages)", ScenarioValidator.Validate(s.Then(Fork(ChildSigbusLoop(2, 3, wp: false)))));
        Assert.Equal("op 0 (fork [sigbus-loop m0+0 MISSING]): child step sigbus-loop m0+0 MISSING: a sigbus loop is nothing else, over at least one page",
            ScenarioValidator.Validate(s.Then(Fork(ChildSigbusLoop(0, 1, wp: false) with { Pin = true }))));
    }
}
