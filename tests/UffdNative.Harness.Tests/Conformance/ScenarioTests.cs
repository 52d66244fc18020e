using static UffdNative.Harness.Scenarios.ScenarioBuilder;

namespace UffdNative.Harness.Tests.Conformance;

/// <summary>Scenario plumbing without a kernel: the named scenarios' JSON and validity, the differ's wildcards.</summary>
public class ScenarioTests
{
    [Fact]
    public void EveryNamedScenarioRoundTripsThroughJsonAndIsValid()
    {
        foreach (var ns in NamedScenarios.All)
            foreach (var m in ns.Targets)
            {
                var s = ns.Build(m);
                var back = Scenario.FromJson(s.ToJson());
                Assert.Equal(s.ToJson(), back.ToJson());
                Assert.Equal(s.Ops, back.Ops);
                Assert.Null(ScenarioValidator.Validate(s));
            }
    }

    [Fact]
    public void TheModelHasARuleForEveryNamedScenario()
    {
        var model = new KernelModel(KernelProfile.Mainline("6.18"));
        foreach (var ns in NamedScenarios.All)
            foreach (var m in ns.Targets.Where(t => t is MemoryType.Anon or MemoryType.Shmem or MemoryType.ShmemPrivate))
            {
                var r = model.Run(ns.Build(m));
                Assert.True(r.OutOfScope is null || ns.Name == "minor-collapse", $"{ns.Name} × {m}: {r.OutOfScope}");
            }
    }

    [Fact]
    public void TheDifferAcceptsExactlyWhatTheModelLeavesUnspecified()
    {
        Assert.True(Differ.Matches("EAGAIN field=?", "EAGAIN field=-11"));
        Assert.False(Differ.Matches("EAGAIN field=?", "EEXIST field=-11"));
        Assert.True(Differ.Matches("EEXIST|ENOENT field=?", "ENOENT field=-2"));
        Assert.False(Differ.Matches("EEXIST|ENOENT field=?", "EBUSY field=-16"));
        Assert.True(Differ.Matches("u0 PF 0x0 m0+0 => move:EEXIST|ENOENT", "u0 PF 0x0 m0+0 => move:ENOENT"));
        Assert.True(Differ.PageMapMatches("a**.", "aaf."));
        Assert.False(Differ.PageMapMatches("a**.", "aafa"));
        Assert.True(Differ.Matches("pagemap m0=a*.", "pagemap m0=af."));
        Assert.False(Differ.Matches("ok value=0x1", "ok value=0x2"));
    }

    [Fact]
    public void TheFirstDivergenceCarriesTheStateBeforeAndTheSwitches()
    {
        var s = NewScenario("scenario", MemoryType.Shmem, pages: 2)
            .Then(new RegisterOp("u0", "m0", 0, 2, RegisterMode.WriteProtect), new WriteOp("m0", 0, 1), new WriteProtectOp("u0", "m0", 0, 2, true), new CloseOp("u0"));
        var now = new KernelModel(KernelProfile.Mainline("6.18")).Run(s);
        var old = new KernelModel(KernelProfile.Mainline("6.1")).Run(s);
        // The 6.18 model's trace stands in for the kernel here.
        var d = Differ.FirstDivergence(old, now.Trace, KernelProfile.Mainline("6.18"), KernelProfile.Mainline("6.1"));
        Assert.NotNull(d);
        Assert.Equal(3, d.Index);
        Assert.Equal("pagemap m0", d.Aspect);
        Assert.Equal(["close-clears-wp"], d.Switches);
        Assert.Contains("wp-marker", d.StateBefore);
    }
}
