using System.Diagnostics;
using CsCheck;
using UffdNative.Harness.Model;
using UffdNative.Harness.Scenarios;
using F = UffdNative.UffdFeatures;
using R = UffdNative.RegisterMode;

namespace UffdNative.Harness.Conformance;

/// <summary>
/// Random scenarios from a seed: a CsCheck generator (<see cref="ScenarioGen"/>, driven by CsCheck's PCG so a
/// (seed, index) pair always gives the same scenario) builds valid scenarios op by op; each runs on the model
/// and on the kernel; a divergent one is shrunk to a minimal scenario that still diverges.
/// </summary>
public sealed class Fuzzer(ConformanceRunner runner)
{
    public ConformanceRunner Runner { get; } = runner;

    public sealed record FuzzFinding(Scenario Original, Scenario Shrunk, Divergence Divergence, int ScenarioIndex, TimeSpan TimeToFind, TimeSpan TimeToShrink, int ShrinkSteps);

    public sealed record FuzzReport(ulong Seed, int Scenarios, int Skipped, TimeSpan Elapsed, FuzzFinding? Finding)
    {
        public double ScenariosPerSecond => Elapsed.TotalSeconds > 0 ? Scenarios / Elapsed.TotalSeconds : 0;
    }

    /// <summary>The scenario number <paramref name="index"/> of seed <paramref name="seed"/>.</summary>
    public static Scenario Generate(ulong seed, int index, KernelModel? model = null)
    {
        // One PCG stream per seed, one PCG seed per scenario index: (seed, index) always gives the same scenario.
        ulong z = seed * 0x9E3779B97F4A7C15UL + 0x632BE59BD9B4E019UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        var pcg = new PCG((uint)(seed % 0x7fffffffUL) * 2 + 1, (z ^ (z >> 27)) + (ulong)index * 0x94D049BB133111EBUL);
        return new ScenarioGen(model).Generate(pcg, null, out _) with { Name = $"fuzz-{seed}-{index}" };
    }

    /// <summary>Runs scenarios until one diverges, <paramref name="count"/> were run or
    /// <paramref name="duration"/> passed; shrinks a divergent one. <paramref name="scenarioRun"/> is told
    /// after each scenario run: how many so far, and the time since the start.</summary>
    public FuzzReport Run(ulong seed, int? count, TimeSpan? duration, Action<string>? progress = null, CancellationToken cancel = default, Action<int, TimeSpan>? scenarioRun = null)
    {
        var sw = Stopwatch.StartNew();
        int run = 0, skipped = 0;
        var model = Runner.Model;
        for (int i = 0; ; i++)
        {
            if (count is { } c && run >= c)
                break;
            if (duration is { } d && sw.Elapsed >= d)
                break;
            if (cancel.IsCancellationRequested)
                break;
            var s = Generate(seed, i, model);
            if (s.Ops.Count == 0)
            {
                skipped++;
                continue;
            }
            var (m, k, div) = Runner.Compare(s);
            run++;
            scenarioRun?.Invoke(run, sw.Elapsed);
            if (k.Error is not null && k.Observations.Count == 0)
            {
                skipped++;
                continue;
            }
            if (div is null)
            {
                if (run % 200 == 0)
                    progress?.Invoke($"{run} scenarios, {run / sw.Elapsed.TotalSeconds:F0}/s");
                continue;
            }
            var found = sw.Elapsed;
            progress?.Invoke($"scenario {i} diverged after {found.TotalSeconds:F1} s: {div.Describe()}");
            var shrinkWatch = Stopwatch.StartNew();
            var (shrunk, sd, steps) = Shrink(s, div, progress);
            return new FuzzReport(seed, run, skipped, sw.Elapsed, new FuzzFinding(s, shrunk, sd, i, found, shrinkWatch.Elapsed, steps));
        }
        return new FuzzReport(seed, run, skipped, sw.Elapsed, null);
    }

    /// <summary>Does the scenario (valid and in the model's scope) still diverge?</summary>
    public Divergence? Diverges(Scenario s)
    {
        if (ScenarioValidator.Validate(s) is not null)
            return null;
        var model = Runner.Model.Run(s);
        if (model.OutOfScope is not null && model.Trace.Observations.Count <= 1)
            return null;
        var kernel = Runner.Executor.Run(s);
        if (kernel.Error is not null && kernel.Observations.Count == 0)
            return null;
        return Differ.FirstDivergence(model, kernel, Runner.Reference, Runner.Profile);
    }

    /// <summary>Structural shrinking (delta debugging over the ops, then over the setup): keep a candidate
    /// when it is valid and still diverges. Each candidate is a real-kernel run.</summary>
    public (Scenario Scenario, Divergence Divergence, int Steps) Shrink(Scenario s, Divergence d, Action<string>? progress = null)
    {
        int steps = 0;
        // Ops after the first divergence cannot matter.
        if (d.Index >= 0 && d.Index + 1 < s.Ops.Count)
        {
            var cut = s with { Ops = s.Ops.Take(d.Index + 1).ToList() };
            if (Diverges(cut) is { } cd)
                (s, d) = (cut, cd);
        }
        bool progressMade = true;
        while (progressMade && steps < 400)
        {
            progressMade = false;
            foreach (var candidate in Candidates(s))
            {
                steps++;
                if (Diverges(candidate) is { } cd)
                {
                    (s, d) = (candidate, cd);
                    progressMade = true;
                    progress?.Invoke($"  shrunk to {s.Ops.Count} ops");
                    break;
                }
                if (steps >= 400)
                    break;
            }
        }
        return (s with { Name = s.Name + "-shrunk" }, d, steps);
    }

    /// <summary>The shrinker's candidates for <paramref name="s"/>, simplest changes last. A candidate need not be
    /// valid: the shrinker keeps only those <see cref="ScenarioValidator"/> accepts (<see cref="Diverges"/>), so a
    /// reproducer is always a runnable scenario. Candidates that drop a mapping or the Move policy also drop the
    /// policy's MoveSource when it names that mapping, so that the mapping can go at all.</summary>
    public static IEnumerable<Scenario> Candidates(Scenario s)
    {
        // Remove chunks of ops, large to small (ddmin).
        for (int size = Math.Max(1, s.Ops.Count / 2); size >= 1; size /= 2)
        {
            for (int start = 0; start + size <= s.Ops.Count; start += size)
                yield return s with { Ops = s.Ops.Take(start).Concat(s.Ops.Skip(start + size)).ToList() };
            if (size == 1)
                break;
        }
        // Simplify single ops.
        for (int i = 0; i < s.Ops.Count; i++)
            foreach (var simpler in Simplify(s.Ops[i]))
                yield return s with { Ops = s.Ops.Select((o, j) => j == i ? simpler : o).ToList() };
        // Simplify the setup: features, second uffd, unused mappings, the policy.
        foreach (var u in s.Uffds)
            foreach (var f in Enum.GetValues<F>().Where(f => f != F.None && (u.Features & f) == f))
                yield return s with { Uffds = s.Uffds.Select(x => x.Name == u.Name ? x with { Features = x.Features & ~f } : x).ToList() };
        foreach (var u in s.Uffds.Where(u => u.UserModeOnly))
            yield return s with { Uffds = s.Uffds.Select(x => x.Name == u.Name ? x with { UserModeOnly = false } : x).ToList() };
        foreach (var m in s.Mappings.Skip(1))
            yield return s with
            {
                Mappings = s.Mappings.Where(x => x.Name != m.Name).ToList(),
                Policy = s.Policy.MoveSource == m.Name && s.Policy.Missing != MissingPolicy.Move ? s.Policy with { MoveSource = null, MoveChunk = 1 } : s.Policy,
            };
        foreach (var u in s.Uffds.Skip(1))
            yield return s with { Uffds = s.Uffds.Where(x => x.Name != u.Name).ToList() };
        if (s.Policy.Missing != MissingPolicy.Copy)
            yield return s with { Policy = s.Policy with { Missing = MissingPolicy.Copy, MoveSource = null, MoveChunk = 1 } };
        else if (s.Policy.MoveSource is not null)
            yield return s with { Policy = s.Policy with { MoveSource = null, MoveChunk = 1 } };
        if (s.Policy.ContinueWp)
            yield return s with { Policy = s.Policy with { ContinueWp = false } };
        if (s.Policy.MinorInvertThrough is not null)
            yield return s with { Policy = s.Policy with { MinorInvertThrough = null } };
        if (s.Policy.PoisonPages is not null)
            yield return s with { Policy = s.Policy with { PoisonPages = null } };
    }

    private static IEnumerable<ScenarioOp> Simplify(ScenarioOp op)
    {
        switch (op)
        {
            case ForkOp f when f.Child.Count > 0:
                for (int i = 0; i < f.Child.Count; i++)
                    yield return new ForkOp(f.Child.Where((_, j) => j != i).ToList());
                break;
            case RegisterOp r when r.Count > 1:
                yield return r with { Count = 1 };
                break;
            case WriteProtectOp w when w.Count > 1:
                yield return w with { Count = 1 };
                break;
            case CopyOp c when c.Count > 1 || c.Wp:
                if (c.Count > 1)
                    yield return c with { Count = 1 };
                if (c.Wp)
                    yield return c with { Wp = false };
                break;
            case MadviseOp m when m.Count > 1 || m.Hold:
                if (m.Count > 1)
                    yield return m with { Count = 1 };
                break;
            case UnregisterOp u when u.Count > 1:
                yield return u with { Count = 1 };
                break;
            case WriteOp { Mode: AccessMode.Kernel } w:
                yield return w with { Mode = AccessMode.User };
                break;
        }
    }
}

/// <summary>
/// The CsCheck generator of fuzz scenarios. It draws from CsCheck's PCG and builds a scenario op by op,
/// keeping only ops the executor may run safely (<see cref="ScenarioValidator"/>); with a model it stops the
/// scenario where the model leaves its scope.
/// </summary>
public sealed class ScenarioGen(KernelModel? model) : Gen<Scenario>
{
    private static readonly F[] OptionalFeatures = [F.EventFork, F.EventRemap, F.EventRemove, F.WpUnpopulated, F.MinorShmem, F.PageFaultFlagWp, F.WpHugetlbfsShmem, F.ThreadId];

    public override Scenario Generate(PCG pcg, Size? min, out Size size)
    {
        int Next(int n) => (int)pcg.Next((uint)n);
        bool Chance(int percent) => Next(100) < percent;
        T Pick<T>(IReadOnlyList<T> xs) => xs[Next(xs.Count)];

        var memory = Pick(new[] { MemoryType.Anon, MemoryType.Shmem, MemoryType.Shmem, MemoryType.ShmemPrivate });
        bool file = MemoryTypes.IsFileBacked(memory);
        int pages = 2 + Next(5);
        var maps = new List<MappingSpec> { new("m0", MemoryTypes.PrimaryKind(memory), pages) };
        if (file && Chance(50))
            maps.Add(new MappingSpec("al", MapKind.Shared, pages));
        if (!file && Chance(35))
            maps.Add(new MappingSpec("src", MapKind.Anon, pages));

        F Features()
        {
            F f = F.None;
            foreach (var x in OptionalFeatures)
                if (Chance(35))
                    f |= x;
            if (!file && Chance(30))
                f |= F.Move;
            if (Chance(8))
                f |= F.WpAsync;
            if (Chance(6))
                f |= F.Sigbus;
            if (Chance(10))
                f |= F.Poison;
            return f;
        }
        var uffds = new List<UffdSpec> { new("u0", Features(), Chance(15)) };
        if (Chance(15))
            uffds.Add(new UffdSpec("u1", Features(), Chance(15)));

        var policy = new HandlerPolicy
        {
            Missing = Pick(new[] { MissingPolicy.Copy, MissingPolicy.Copy, MissingPolicy.CopyWp, MissingPolicy.ZeroPage }),
            ContinueWp = Chance(40),
        };
        if (maps.Any(m => m.Name == "src") && Chance(25))
            policy = policy with { Missing = MissingPolicy.Move, MoveSource = "src", MoveChunk = 1 };

        var scenario = new Scenario { Memory = memory, FilePages = file ? pages : 0, Mappings = maps, Uffds = uffds, Policy = policy };
        int target = 2 + Next(12);
        var ops = new List<ScenarioOp>();
        int fileSize = scenario.FilePages;
        bool held = false;
        ulong tag = 0x10 + (ulong)Next(0x100) * 0x10;

        RegisterOp Register(string u, MappingSpec rm)
        {
            int first = Chance(60) ? 0 : Next(rm.Pages);
            int cnt = Chance(60) ? rm.Pages - first : 1 + Next(rm.Pages - first);
            R modes = (R)(1 + Next(7));
            if (rm.Kind == MapKind.Anon)
                modes &= ~R.Minor;
            return new RegisterOp(u, rm.Name, first, cnt, modes == R.None ? R.Missing : modes);
        }

        ScenarioOp NewOp()
        {
            var m = Chance(65) ? maps[0] : Pick(maps);
            var u = Pick(uffds).Name;
            int p = Next(m.Pages);
            int n = 1 + Next(Math.Max(1, m.Pages - p));
            if (n > 1 && Chance(50))
                n = 1;
            tag += 0x10;
            int k = Next(100);
            return k switch
            {
                < 12 => Register(u, Chance(70) ? maps[0] : m),
                < 17 => new UnregisterOp(u, m.Name, p, n),
                < 30 => maps.Count > 1 && maps[1].Name == "src" && Chance(25) ? new MoveOp(u, "m0", p % pages, "src", p % pages, 1, Chance(50)) : new ReadOp(m.Name, p),
                < 44 => new WriteOp(m.Name, p, tag, Chance(15) ? AccessMode.Kernel : AccessMode.User),
                < 53 => new WriteProtectOp(u, m.Name, p, n, Protect: Chance(70)),
                < 58 => new CopyOp(u, m.Name, p, n, tag, Chance(30)),
                < 61 => new ZeroPageOp(u, m.Name, p, n),
                < 64 => new ContinueOp(u, m.Name, p, n, Chance(30)),
                < 66 => new PoisonOp(u, m.Name, p, 1),
                < 68 => maps.FirstOrDefault(x => x.Name == "src") is { } src ? new MoveOp(u, Chance(80) ? "m0" : "src", p % pages, Chance(80) ? "src" : "m0", Next(src.Pages), 1 + (Chance(30) ? 1 : 0), Chance(50)) is var mv && mv.First + mv.Count <= pages && mv.SrcFirst + mv.Count <= pages ? mv : new MoveOp(u, "m0", 0, "src", 0, 1) : new WakeOp(u, m.Name, p, n),
                < 69 => new WakeOp(u, m.Name, p, n),
                < 76 => new MadviseOp(m.Name, p, n, Chance(60) ? MadviseAdvice.DontNeed : MadviseAdvice.Remove, Hold: Chance(8)),
                < 79 => file ? new PunchHoleOp(Next(pages), 1 + Next(2)) : new ReadOp(m.Name, p),
                < 81 => file ? new TruncateOp(Chance(50) ? Next(pages) : pages) : new WriteOp(m.Name, p, tag),
                < 85 => file ? new PwriteOp(Next(Math.Max(1, fileSize)), tag) : new ReadOp(m.Name, p),
                < 86 => file ? new PreadOp(Next(Math.Max(1, fileSize))) : new ReadOp(m.Name, p),
                < 88 => new MprotectOp(m.Name, p, n),
                < 90 => new MremapOp(m.Name),
                < 98 => new ForkOp(Enumerable.Range(0, Next(3)).Select(_ => { var cm = Chance(70) ? maps[0] : Pick(maps); return new ChildAccess(cm.Name, Next(cm.Pages), Chance(50), tag + (ulong)Next(8)); }).ToList()),
                _ => Chance(40) ? new CloseOp(u) : new ReadOp(m.Name, p),
            };
        }

        // Most interesting behaviour needs a registration: usually start with one over m0 (and sometimes a
        // second one, possibly splitting the VMA or using the other uffd).
        if (Chance(85))
            ops.Add(Register("u0", maps[0]) with { First = 0, Count = pages });
        if (Chance(30))
            ops.Add(Register(Pick(uffds).Name, Pick(maps)));
        for (int attempt = 0; ops.Count < target && attempt < target * 6; attempt++)
        {
            var op = NewOp();
            if (held && op is not (CopyOp or ZeroPageOp or ContinueOp or PoisonOp or MoveOp or WriteProtectOp or WakeOp or PreadOp or PwriteOp))
            {
                ops.Add(new DrainOp());
                held = false;
            }
            var candidate = scenario with { Ops = [.. ops, op] };
            if (ScenarioValidator.Validate(candidate) is not null)
                continue;
            ops.Add(op);
            if (op is MadviseOp { Hold: true })
                held = true;
            if (op is TruncateOp t)
                fileSize = t.Pages;
        }
        if (held)
            ops.Add(new DrainOp());
        scenario = scenario with { Ops = ops };
        if (model is not null)
        {
            // Stop where the model has no rule (e.g. mremap of a split mapping): the rest has no verdict.
            var r = model.Run(scenario);
            if (r.OutOfScope is not null)
            {
                int keep = r.Trace.Observations.Count - 1;
                var cut = ops.Take(keep).ToList();
                if (cut.Count(o => o is MadviseOp { Hold: true }) > cut.Count(o => o is DrainOp))
                    cut.Add(new DrainOp());
                scenario = scenario with { Ops = cut };
                if (ScenarioValidator.Validate(scenario) is not null)
                    scenario = scenario with { Ops = [] };
            }
        }
        size = new Size((ulong)scenario.Ops.Count);
        return scenario;
    }
}
