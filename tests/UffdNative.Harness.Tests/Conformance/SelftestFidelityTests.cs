using UffdNative.Messages;

namespace UffdNative.Harness.Tests.Conformance;

/// <summary>The selftest cases made to do what upstream's uffd-unit-tests.c does (docs/selftests.md): minor and
/// minor-wp read ~p through the registered mapping (the handler inverts the page through the alias before
/// CONTINUE); poison resolves each fault as the reader takes it (POISON even pages, COPY odd ones). Each is
/// asserted on the kernel's own trace, predicted by the model, and made to diverge by a wrong policy.</summary>
public class SelftestFidelityTests
{
    private static OpObservation Obs(ScenarioTrace t, string op) => t.Observations.First(o => o.Op == op);

    [Theory]
    [InlineData("minor", 0x91UL, 0x94UL, "continue")]
    [InlineData("minor-wp", 0xa1UL, 0xa4UL, "continue-wp")]
    public void MinorReadsTheInverseOfWhatTheAliasWrote(string name, ulong first, ulong last, string resolution)
    {
        var s = NamedScenarios.Find(name)!.Build(MemoryType.Shmem);
        var runner = Detected.Runner();
        var kernel = Hard.Within(60_000, () => runner.Executor.Run(s));
        Assert.Null(kernel.Error);
        for (int p = 0; p < 4; p++)
        {
            var read = Obs(kernel, $"read m0+{p}");
            Assert.Equal($"ok value=0x{~(first + (ulong)p):x}", read.Result);
            Assert.Equal([$"u0 PF 0x4 m0+{p} => {resolution}"], read.Messages);
            Assert.Equal('f', read.PageMap["al"][p]); // the alias holds the page: the handler wrote it there
        }
        // The unregistered side never faulted, and reads the inverted content too (the page cache changed).
        Assert.All(kernel.Observations.Where(o => o.Op.EndsWith(" al", StringComparison.Ordinal) || o.Op.Contains(" al+", StringComparison.Ordinal)), o => Assert.Empty(o.Messages));
        // minor: the alias reads the inverted content too (the page cache changed); minor-wp: the write after the WP fault.
        Assert.Equal(name == "minor" ? $"ok value=0x{~first:x}" : "ok value=0xa5", Obs(kernel, "read al+0").Result);
        if (name == "minor-wp")
            Assert.Equal(["u0 PF 0x3 m0+0 => unprotect"], Obs(kernel, "write m0+0 0xa5").Messages);
        Assert.Equal($"ok value=0x{~last:x}", Obs(kernel, "read m0+3").Result);
        Assert.Null(Differ.FirstDivergence(runner.Model.Run(s), kernel, runner.Reference, runner.Profile));
    }

    /// <summary>The hugetlb cells run only where huge pages are reserved (the matrix's guests); the model's
    /// prediction for them is the same story in 2 MiB pages.</summary>
    [Fact]
    public void TheModelPredictsTheSameOnHugetlb()
    {
        var runner = Detected.Runner();
        foreach (var name in new[] { "minor", "minor-wp" })
        {
            var t = runner.Model.Run(NamedScenarios.Find(name)!.Build(MemoryType.Hugetlb)).Trace;
            Assert.Null(t.Error);
            ulong first = name == "minor" ? 0x91UL : 0xa1UL;
            Assert.Equal($"ok value=0x{~first:x}", Obs(t, "read m0+0").Result);
            Assert.Equal([$"u0 PF 0x4 m0+0 => {(name == "minor" ? "continue" : "continue-wp")}"], Obs(t, "read m0+0").Messages);
        }
        foreach (var m in new[] { MemoryType.Hugetlb, MemoryType.HugetlbPrivate })
        {
            var t = runner.Model.Run(NamedScenarios.Find("poison")!.Build(m)).Trace;
            Assert.Null(t.Error);
            var fork = t.Observations.First(o => o.Op.StartsWith("fork", StringComparison.Ordinal));
            Assert.Equal(["u0 FORK", "u0c PF 0x0 m0+0 => poison", "u0c PF 0x0 m0+1 => copy", "u0c PF 0x0 m0+2 => poison", "u0c PF 0x0 m0+3 => copy"], fork.Messages);
            Assert.Equal(2, fork.Child.Count(c => c.Contains("sigbus code=", StringComparison.Ordinal)));
        }
    }

    [Fact]
    public void AMinorHandlerThatDoesNotInvertMakesMinorDiverge()
    {
        // The shipping MinorContinue maps the cached page as it is: the same ioctl, other bytes.
        var wrong = new ExecutorOptions { ReplacePolicies = policies => [.. policies.Select(p => p.Kind == FaultKind.Minor ? new MinorContinue() : p)] };
        var cells = Hard.Within(120_000, () => Detected.Runner(executor: wrong).RunAll(NamedScenarios.All.Where(n => n.Name is "minor"), [MemoryType.Shmem]).ToList());
        var cell = Assert.Single(cells);
        Assert.Equal(CellStatus.Diverged, cell.Status);
        Assert.Contains("value=0x91", cell.Divergence!.Describe(), StringComparison.Ordinal);
    }

    [Fact]
    public void PoisonResolvesEachFaultAsTheReaderTakesIt()
    {
        var runner = Detected.Runner();
        foreach (var m in new[] { MemoryType.Anon, MemoryType.Shmem, MemoryType.ShmemPrivate })
        {
            var s = NamedScenarios.Find("poison")!.Build(m);
            var kernel = Hard.Within(60_000, () => runner.Executor.Run(s));
            Assert.Null(kernel.Error);
            var fork = kernel.Observations.First(o => o.Op.StartsWith("fork", StringComparison.Ordinal));
            Assert.Equal(["u0 FORK", "u0c PF 0x0 m0+0 => poison", "u0c PF 0x0 m0+1 => copy", "u0c PF 0x0 m0+2 => poison", "u0c PF 0x0 m0+3 => copy"], fork.Messages);
            Assert.Equal(4, fork.Child.Count(c => c.StartsWith("r m0+", StringComparison.Ordinal)));
            Assert.Equal(2, fork.Child.Count(c => c.Contains("sigbus code=", StringComparison.Ordinal)));
            Assert.Contains(fork.Child, c => c.StartsWith("r m0+0 sigbus code=", StringComparison.Ordinal));
            Assert.Contains($"r m0+1 ok value=0x{HandlerPolicy.CopyTag(0, 1):x}", fork.Child);
            // The parent's own kernel-mode writes fault on its (still empty) pages: POISON then EFAULT, COPY then ok.
            var kw0 = Obs(kernel, "write(kernel) m0+0 0xe2");
            Assert.Equal("EFAULT", kw0.Result);
            Assert.Equal(["u0 PF 0x1 m0+0 => poison"], kw0.Messages);
            Assert.Equal("ok bytes=8", Obs(kernel, "write(kernel) m0+1 0xe3").Result);
            Assert.Null(Differ.FirstDivergence(runner.Model.Run(s), kernel, runner.Reference, runner.Profile));
        }
    }

    [Fact]
    public void AMissingHandlerThatDoesNotPoisonMakesPoisonDiverge()
    {
        var wrong = new ExecutorOptions
        {
            ReplacePolicies = policies => [.. policies.Select(p => p is MissingCopy mc ? new MissingCopy(mc.Source) { RefetchRemovedPages = true } : p)],
        };
        var cells = Hard.Within(120_000, () => Detected.Runner(executor: wrong).RunAll(NamedScenarios.All.Where(n => n.Name is "poison"), [MemoryType.Anon, MemoryType.Shmem]).ToList());
        Assert.Equal(2, cells.Count);
        Assert.All(cells, c => Assert.Equal(CellStatus.Diverged, c.Status));
        Assert.All(cells, c => Assert.Contains("poison", c.Divergence!.Describe(), StringComparison.Ordinal));
    }

    /// <summary>The C reproducer's handler does the same: it inverts through the alias and POISONs the listed pages
    /// (its output for the kernel's own trace is exit 0).</summary>
    [Fact]
    public void TheCReproducerRuntimeInvertsAndPoisonsAsThePolicies()
    {
        var runner = Detected.Runner();
        foreach (var (name, m) in new[] { ("minor", MemoryType.Shmem), ("minor-wp", MemoryType.Shmem), ("poison", MemoryType.Anon), ("poison", MemoryType.Shmem) })
        {
            var s = NamedScenarios.Find(name)!.Build(m);
            var trace = Hard.Within(60_000, () => runner.Executor.Run(s));
            var (rc, output) = ReproBuild.Run(s, trace, runner.Profile);
            Assert.True(rc == 0, $"{name} × {m}: the C runtime's handler does not do what the managed policies did\n{output}");
        }
    }

    [Fact]
    public void TheValidatorKeepsTheInvertAliasAndThePoisonPolicySafe()
    {
        var minor = NamedScenarios.Find("minor")!.Build(MemoryType.Shmem);
        Assert.Null(ScenarioValidator.Validate(minor));
        Assert.Contains("not a mapping", ScenarioValidator.Validate(minor with { Policy = minor.Policy with { MinorInvertThrough = "nope" } }));
        Assert.Contains("MAP_SHARED", ScenarioValidator.Validate(minor with { Policy = minor.Policy with { MinorInvertThrough = "m0" } } with { Mappings = [minor.Mappings[0] with { Kind = MapKind.Private }, minor.Mappings[1]] }));
        Assert.Contains("stays unregistered", ScenarioValidator.Validate(minor.Then(new RegisterOp("u0", "al", 0, 1, UffdNative.RegisterMode.Missing, false))));
        Assert.Contains("stays unregistered", ScenarioValidator.Validate(minor.Then(new MremapOp("al"))));
        Assert.Contains("covers 4 pages", ScenarioValidator.Validate(minor.Then(new TruncateOp(8))));
        var poison = NamedScenarios.Find("poison")!.Build(MemoryType.Anon);
        Assert.Null(ScenarioValidator.Validate(poison));
        Assert.Contains("POISONs", ScenarioValidator.Validate(poison.Then(new ReadOp("m0", 1))));
        Assert.Contains("only Copy and CopyWp", ScenarioValidator.Validate(poison with { Policy = poison.Policy with { Missing = MissingPolicy.ZeroPage } }));
        Assert.Contains("page numbers", ScenarioValidator.Validate(poison with { Policy = poison.Policy with { PoisonPages = [512] } }));
    }

    [Fact]
    public void TheNewPolicyFieldsRoundTripAndStayOutOfV1Files()
    {
        foreach (var s in new[] { NamedScenarios.Find("minor-wp")!.Build(MemoryType.Shmem), NamedScenarios.Find("poison")!.Build(MemoryType.Shmem) })
        {
            var back = Scenario.FromJson(s.ToJson());
            Assert.Equal(s.Policy, back.Policy);
            Assert.Equal(s.ToJson(), back.ToJson());
        }
        Assert.Contains("\"MinorInvertThrough\": \"al\"", NamedScenarios.Find("minor")!.Build(MemoryType.Shmem).ToJson(), StringComparison.Ordinal);
        var plain = NamedScenarios.Find("zeropage")!.Build(MemoryType.Shmem).ToJson();
        Assert.DoesNotContain("MinorInvertThrough", plain, StringComparison.Ordinal);
        Assert.DoesNotContain("PoisonPages", plain, StringComparison.Ordinal);
    }
}
