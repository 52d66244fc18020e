using UffdNative.Messages;

namespace UffdNative.Harness.Tests.Conformance;

/// <summary>check runs the shipping policies: the executor's faults are resolved by a stepped
/// FaultServer, so a wrong policy makes it diverge, and the C reproducer's own handler (the standalone
/// runtime) gives the same observations as the managed policies on the same scenario.</summary>
public class ExecutorPolicyTests
{
    /// <summary>A wrong MISSING source: zero pages where the handler's policy says tagged ones. It issues
    /// the same ioctl (COPY) as the right one, so only the engine's effect can tell them apart.</summary>
    private sealed unsafe class ZeroPages : PageSource
    {
        private readonly byte[] buf = GC.AllocateArray<byte>(8 << 20, pinned: true);

        public override ulong Length => ulong.MaxValue;

        public override nint Prepare(ulong offset, ulong length, out ulong available)
        {
            available = Math.Min(length, 4UL << 20);
            fixed (byte* b = buf)
                return (nint)(((ulong)b + 4095) & ~4095UL);
        }
    }

    [Fact]
    public void AWrongMissingPolicyMakesCheckDiverge()
    {
        var wrong = new ExecutorOptions
        {
            ReplacePolicies = policies => [.. policies.Select(p => p is MissingCopy ? new MissingCopy(new ZeroPages()) : p)],
        };
        var scenarios = NamedScenarios.All.Where(n => n.Name is "events" or "events-wp").ToList();
        Assert.Equal(2, scenarios.Count);
        var right = Hard.Within(120_000, () => Detected.Runner().RunAll(scenarios, [MemoryType.Anon, MemoryType.Shmem]).ToList());
        var bad = Hard.Within(120_000, () => Detected.Runner(executor: wrong).RunAll(scenarios, [MemoryType.Anon, MemoryType.Shmem]).ToList());
        Assert.All(right.Where(c => c.Status != CellStatus.NotApplicable), c => Assert.Equal(CellStatus.Pass, c.Status));
        var ran = bad.Where(c => c.Status != CellStatus.NotApplicable).ToList();
        Assert.NotEmpty(ran);
        // Every cell whose faults the policy resolves diverges, on what a thread read after the COPY.
        Assert.All(ran, c => Assert.Equal(CellStatus.Diverged, c.Status));
        Assert.Contains(ran, c => c.Divergence!.Describe().Contains("value=0x0", StringComparison.Ordinal));
    }

    [Fact]
    public void AWrongWriteProtectPolicyMakesCheckDiverge()
    {
        // Un-protects without waking the thread and reports no progress: the server defers the fault,
        // the thread stays blocked and the scenario ends "blocked" where the model resolves it.
        var wrong = new ExecutorOptions
        {
            ReplacePolicies = policies => [.. policies.Select(p => p is WpUnprotect ? new WrongUnprotect() : p)],
        };
        var cells = Hard.Within(60_000, () => Detected.Runner(executor: wrong).RunAll(NamedScenarios.All.Where(n => n.Name == "kernel-write"), [MemoryType.Anon]).ToList());
        var cell = Assert.Single(cells);
        Assert.Equal(CellStatus.Diverged, cell.Status);
    }

    private sealed class WrongUnprotect : FaultPolicy
    {
        public override FaultKind Kind => FaultKind.WriteProtect;

        public override ResolveResult Resolve(in FaultContext context, in FaultRun run, bool dontWake) =>
            context.Unprotect(run.Start, run.Length, dontWake: true) is { Ret: 0 } ? ResolveResult.Fail(Errno.EAGAIN) : ResolveResult.Fail(Errno.EINVAL);
    }

    /// <summary>Each distinct way the handler resolves faults in the named scenarios (copy, copy-wp,
    /// zeropage, move, unprotect, continue, continue-wp, EEXIST + wake), taken from the managed executor's
    /// own trace, replayed by the standalone C runtime expecting exactly that trace: exit 0.</summary>
    [Fact]
    public void TheCReproducerRuntimeResolvesAsTheManagedPolicies()
    {
        var runner = Detected.Runner();
        var env = runner.Environment;
        var picked = new List<(Scenario S, ScenarioTrace Trace)>();
        var seen = new HashSet<string>();
        Hard.Within(180_000, () =>
        {
            foreach (var ns in NamedScenarios.All)
                foreach (var m in ns.Targets)
                {
                    var s = ns.Build(m);
                    if (env.NotApplicable(ns, m, s) is not null)
                        continue;
                    var trace = runner.Executor.Run(s);
                    var kinds = trace.Observations.SelectMany(o => o.Messages)
                        .Where(x => x.Contains(" PF ", StringComparison.Ordinal))
                        .Select(x => x[(x.IndexOf("=> ", StringComparison.Ordinal) + 3)..])
                        .Where(seen.Add).ToList();
                    if (kinds.Count > 0)
                        picked.Add((s, trace));
                }
        });
        Assert.Contains("copy", seen);
        Assert.Contains("unprotect", seen);
        Assert.Contains(seen, k => k.StartsWith("continue", StringComparison.Ordinal));

        foreach (var (s, trace) in picked)
        {
            var (rc, output) = ReproBuild.Run(s, trace, runner.Profile);
            Assert.True(rc == 0, $"{s.Name}: the C runtime's handler does not do what the managed policies did\n{output}");
        }
    }
}
