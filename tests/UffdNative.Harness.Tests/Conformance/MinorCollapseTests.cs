namespace UffdNative.Harness.Tests.Conformance;

/// <summary>minor-collapse (uffd-unit-tests uffd_minor_collapse_test, reference §2.1 #13): MADV_COLLAPSE of the alias of a
/// MINOR-registered shmem range. The model follows the madv-collapse switch; the cell runs where shmem_enabled lets the
/// pre-collapse faults stay 4 KiB under the alias's MADV_NOHUGEPAGE (never, advise, always, within_size, force).</summary>
public class MinorCollapseTests
{
    private static readonly NamedScenario Named = NamedScenarios.All.Single(n => n.Name == "minor-collapse");
    private static Scenario Built => Named.Build(MemoryType.Shmem);
    private static int CollapseIndex => Built.Ops.ToList().FindIndex(o => o is CollapseOp);

    [Fact]
    public void TheModelCollapsesIntoAPmdAndUnmapsTheRegisteredMappingFrom61()
    {
        var newer = new KernelModel(KernelProfile.Mainline("6.18")).Run(Built).Trace.Observations;
        var collapse = newer[CollapseIndex + 1];
        Assert.Equal("ok ShmemPmdMapped=2048kB", collapse.Result);
        Assert.Empty(collapse.Messages);
        Assert.Equal(new string('f', 512), collapse.PageMap["al"]);
        Assert.Equal(new string('.', 512), collapse.PageMap["m0"]);
        // The holes read zero through the alias, the written pages their tags; the registered mapping faults MINOR again.
        Assert.Equal("ok value=0x1301", newer[CollapseIndex + 2].Result);
        Assert.Equal("ok value=0x0", newer[CollapseIndex + 3].Result);
        Assert.Equal("ok value=0x1304", newer[CollapseIndex + 4].Result);
        var last = newer[^1];
        Assert.Equal("ok value=0x1302", last.Result);
        Assert.Single(last.Messages, m => m.Contains(" PF ", StringComparison.Ordinal) && m.Contains("m0+1", StringComparison.Ordinal));

        var older = new KernelModel(KernelProfile.Mainline("6.18").With(KernelProfile.MadvCollapse, false)).Run(Built).Trace.Observations;
        Assert.Equal("EINVAL", older[CollapseIndex + 1].Result);
    }

    [Theory]
    [InlineData("never", null)]
    [InlineData("advise", null)]
    [InlineData("always", null)]       // the alias's MADV_NOHUGEPAGE keeps its faults 4 KiB (seen in a 6.12 guest: the cell passes)
    [InlineData("within_size", null)]
    [InlineData("force", null)]        // force lifts no VMA's pin either (seen in a 6.12 guest: the cell passes)
    [InlineData("deny", "deny refuses MADV_COLLAPSE")]
    [InlineData(null, "no THP in this kernel")]
    public void TheCellRunsWhereShmemFaultsStaySmall(string? shmemEnabled, string? reason)
    {
        var why = Named.Requires!(EnvironmentFacts.Mainline with { ThpShmem = shmemEnabled });
        if (reason is null)
            Assert.Null(why);
        else
            Assert.EndsWith($"shmem_enabled = {shmemEnabled ?? "absent"} ({reason})", why);
    }

    /// <summary>shmem_enabled=force turns huge on for every mount but lifts no MADV_NOHUGEPAGE pin (mm/shmem.c
    /// shmem_allowable_huge_orders: vma_thp_disabled before shmem_huge_global_enabled's force check), so every shmem cell
    /// is exactly as applicable as under always (a 6.12 guest with force: the whole check passes with them).</summary>
    [Fact]
    public void ShmemCellsRunUnderForceAsUnderAlways()
    {
        ConformanceEnvironment Env(string thp) => new()
        {
            Features = (UffdFeatures)UffdFeatureInfo.AllKnownMask,
            Facts = EnvironmentFacts.Mainline with { ThpShmem = thp, HugePagesTotal = 16, HugePagesFree = 16 },
        };
        var (force, always) = (Env("force"), Env("always"));
        int cells = 0;
        foreach (var ns in NamedScenarios.All)
            foreach (var m in ns.Targets.Where(m => m is MemoryType.Shmem or MemoryType.ShmemPrivate))
            {
                var s = ns.Build(m);
                Assert.Equal(always.NotApplicable(ns, m, s), force.NotApplicable(ns, m, s));
                cells++;
            }
        Assert.True(cells > 50, $"{cells} shmem cells");
        Assert.Null(force.NotApplicable(Named, MemoryType.Shmem, Built));
    }

    /// <summary>Where the cell runs here, the C reproducer (the standalone runtime's OP_COLLAPSE) gives the managed executor's trace.</summary>
    [Fact]
    public void TheCReproducerCollapsesAsTheExecutor()
    {
        var runner = Detected.Runner();
        var s = Built;
        if (runner.Environment.NotApplicable(Named, MemoryType.Shmem, s) is { } why)
        {
            Assert.False(string.IsNullOrEmpty(why));
            return;
        }
        var trace = Hard.Within(60_000, () => runner.Executor.Run(s));
        Assert.StartsWith("ok ShmemPmdMapped=", trace.Observations[CollapseIndex + 1].Result);
        var (rc, output) = ReproBuild.Run(s, trace, runner.Profile);
        Assert.True(rc == 0, output);
    }
}
