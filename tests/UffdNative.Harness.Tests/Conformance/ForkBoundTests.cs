using System.Diagnostics;
using UffdNative.Access;
using UffdNative.Messages;

namespace UffdNative.Harness.Tests.Conformance;

/// <summary>The executor's fork op is bounded on silence, not on wall time (issue 11: a 7.3-rc guest under TCG
/// reported a false "timeout" for a fork whose child made progress the whole time): a child that keeps reporting
/// is never cut off, however slow; a child that stays blocked ends "blocked" within the bound.</summary>
public class ForkBoundTests
{
    /// <summary>Serves a fork child's faults late (the parent's own at once): a slow machine, as seen by the executor.</summary>
    private sealed class LateInChild(FaultPolicy inner, int delayMs, bool child) : FaultPolicy
    {
        public override FaultKind Kind => inner.Kind;

        public override ResolveResult Resolve(in FaultContext context, in FaultRun run, bool dontWake)
        {
            if (child)
                Thread.Sleep(delayMs);
            return inner.Resolve(context, run, dontWake);
        }

        public override FaultPolicy ForForkChild() => new LateInChild(inner.ForForkChild(), delayMs, true);
    }

    [Fact]
    public void AForkChildThatKeepsMakingProgressIsNeverCutOff()
    {
        // events-wp × anon: the child's accesses fault eight times on the child's uffd (four MISSING, four WP). With
        // each served 1.5 s late the fork takes more than 12 s, four times the op's old fixed bound (2 × 1.5 s); every
        // resolved fault is progress, so the cell passes.
        const int bound = 1500, late = 1500;
        var options = new ExecutorOptions
        {
            OpTimeoutMs = bound,
            ReplacePolicies = policies => [.. policies.Select(p => (FaultPolicy)new LateInChild(p, late, child: false))],
        };
        var runner = Detected.Runner(executor: options);
        var sw = Stopwatch.StartNew();
        var cell = Assert.Single(Hard.Within(120_000, () => runner.RunAll(NamedScenarios.All.Where(n => n.Name == "events-wp"), [MemoryType.Anon]).ToList()));
        if (cell.Status == CellStatus.NotApplicable)
        {
            // A kernel without EVENT_FORK or WP for this process: the reason names it.
            Assert.False(string.IsNullOrEmpty(cell.Reason));
            return;
        }
        Assert.True(cell.Status == CellStatus.Pass, $"{cell.Status}: {cell.Divergence?.Describe() ?? cell.Reason}");
        Assert.True(sw.ElapsedMilliseconds > 4 * late, $"the child's faults were not served late ({sw.ElapsedMilliseconds} ms)");
    }

    [Fact]
    public void AForkChildThatStaysBlockedEndsBlockedWithinTheBound()
    {
        // The child parks before its first op (WaitParent: alive, silent, never released by the executor): killed after
        // the op's bound on silence (2 × 500 ms), the fork op ends "blocked" and the run stops there.
        var options = new ExecutorOptions { OpTimeoutMs = 500, ReplaceChildOps = ops => [ChildOps.WaitParent(), .. ops] };
        var scenario = NamedScenarios.All.Single(n => n.Name == "fork-no-event").Build(MemoryType.Anon);
        int fork = scenario.Ops.ToList().FindIndex(o => o is ForkOp);
        var sw = Stopwatch.StartNew();
        var trace = Hard.Within(60_000, () => new KernelExecutor(options).Run(scenario));
        long ms = sw.ElapsedMilliseconds;
        Assert.Null(trace.Error);
        var last = trace.Observations[^1];
        Assert.Equal(fork, last.Index);
        Assert.Equal("blocked", last.Result);
        Assert.Empty(last.Child);
        Assert.InRange(ms, 1000, 15_000);
    }
}
