using static UffdNative.Harness.Scenarios.ScenarioBuilder;

namespace UffdNative.Harness.Tests.Conformance;

/// <summary>
/// The selftest cases events and events-wp as upstream runs them (uffd-unit-tests.c faulting_process(0) in a fork child,
/// docs/selftests.md rows 16–17): the child (EVENT_FORK) reads and writes back half the pages, mremaps the area, does
/// the other half, releases it and reads zeros; the handler follows FORK, REMAP and REMOVE from fd to fd and
/// UNREGISTERs on REMOVE. Asserted on the kernel's own trace, predicted by the model, made to diverge by a flipped
/// model rule on exactly the cells it concerns, and run by the C reproducer.
/// </summary>
public class EventsFidelityTests
{
    public static TheoryData<MemoryType, bool> Cells => Fidelity.SmallTimesVariant();

    private static OpObservation ForkObs(ScenarioTrace t) => t.Observations.Single(o => o.Op.StartsWith("fork", StringComparison.Ordinal));

    /// <summary>What upstream's handler sees, message by message, on the child's uffd after the parent's FORK.</summary>
    private static List<string> Messages(bool wp, string release)
    {
        var m = new List<string> { "u0 FORK" };
        void Half(int from, int to)
        {
            for (int p = from; p < to; p++)
            {
                m.Add($"u0c PF 0x0 m0+{p} => {(wp ? "copy-wp" : "copy")}");
                if (wp)
                    m.Add($"u0c PF 0x3 m0+{p} => unprotect"); // the write back of COPY(MODE_WP)'s page
            }
        }
        Half(0, 2);
        m.Add("u0c REMAP m0");
        Half(2, 4);
        m.Add($"u0c REMOVE m0+0..4 => unregister{release}");
        return m;
    }

    [Theory]
    [MemberData(nameof(Cells))]
    public void TheChildDoesUpstreamsStepsAndTheHandlerFollowsItFromFdToFd(MemoryType memory, bool wp)
    {
        var ns = NamedScenarios.Find(wp ? "events-wp" : "events")!;
        var s = ns.Build(memory);
        var runner = Detected.Runner();
        var kernel = Hard.Within(120_000, () => runner.Executor.Run(s));
        Assert.Null(kernel.Error);
        // The parent only registers and forks: every access, the mremap and the release are the child's.
        Assert.Equal(["register u0 m0+0..4 MISSING" + (wp ? "|WP" : ""), s.Ops[1].Describe()], kernel.Observations.Where(o => o.Index >= 0).Select(o => o.Op));
        var fork = ForkObs(kernel);
        Assert.Equal("ok", fork.Result);
        Assert.Equal(Messages(wp, ""), fork.Messages);
        var child = new List<string> { "pagemap m0=...." };
        for (int p = 0; p < 4; p++)
        {
            if (p == 2)
                child.Add("mremap m0 ok");
            ulong tag = HandlerPolicy.CopyTag(0, p);
            child.Add($"r m0+{p} ok value=0x{tag:x}");
            child.Add($"w m0+{p} 0x{tag:x} ok value=0x0");
        }
        child.Add($"madvise m0+0..4 {(memory == MemoryType.Shmem ? "REMOVE" : "DONTNEED")} ok");
        // After the release and the handler's UNREGISTER: zeros, and no message (upstream's "page is not zero" check).
        for (int p = 0; p < 4; p++)
            child.Add($"r m0+{p} ok value=0x0");
        Assert.Equal(child, fork.Child.Take(child.Count));
        // The child's last pagemap: its pages were read again unregistered (no wp bit anywhere).
        Assert.Equal(child.Count + 1, fork.Child.Count);
        Assert.DoesNotContain('A', fork.Child[^1]);
        Assert.DoesNotContain('F', fork.Child[^1]);
        // Upstream's count: one MISSING fault per page.
        Assert.Equal(4, fork.Messages.Count(x => x.Contains(" PF 0x0 ", StringComparison.Ordinal)));
        // The parent's own range is untouched and still registered (its pages never faulted).
        Assert.Equal("....", fork.PageMap["m0"]);
        Assert.Null(Differ.FirstDivergence(runner.Model.Run(s), kernel, runner.Reference, runner.Profile));
    }

    [Fact]
    public void TheModelPredictsTheSameStoryOnHugetlb()
    {
        // The hugetlb cells run where huge pages are reserved (the matrix's guests): 2 MiB pages, the same messages.
        foreach (var (m, wp, t) in Fidelity.HugetlbModelTraces("events", "events-wp"))
        {
            var fork = ForkObs(t);
            Assert.Equal(Messages(wp, ""), fork.Messages);
            Assert.Contains($"madvise m0+0..4 {(m == MemoryType.Hugetlb ? "REMOVE" : "DONTNEED")} ok", fork.Child);
            Assert.Equal("r m0+3 ok value=0x0", fork.Child[^2]);
        }
    }

    [Fact]
    public void WithoutTheUnregisterTheReadsAfterTheReleaseFaultAgainAndTheModelSaysSo()
    {
        // The handler option is the scenario's (HandlerPolicy), read by the executor, the model and the C reproducer alike:
        // without it the released pages fault MISSING again and are copied anew (the served range refetches removed pages).
        var s = NamedScenarios.Find("events")!.Build(MemoryType.Anon);
        s = s with { Policy = s.Policy with { UnregisterOnRemove = false } };
        var runner = Detected.Runner();
        var (model, kernel, d) = Hard.Within(120_000, () => runner.Compare(s));
        Assert.Null(kernel.Error);
        Assert.True(d is null, d?.Describe());
        var fork = ForkObs(kernel);
        Assert.Contains("u0c REMOVE m0+0..4", fork.Messages);
        Assert.Equal(8, fork.Messages.Count(x => x.Contains(" PF 0x0 ", StringComparison.Ordinal)));
        Assert.Contains($"r m0+0 ok value=0x{HandlerPolicy.CopyTag(0, 0):x}", fork.Child.Skip(11));
        Assert.Equal(ForkObs(model.Trace).Messages, fork.Messages);
    }

    [Fact]
    public void TheFlippedDontNeedRuleDivergesExactlyOnTheShmemPrivateCells()
    {
        // MADV_DONTNEED of a private file mapping zaps its private COWs (zap_page_range_single without details): the
        // child's release on shmem-private drops the pages COPY installed, and the child reads the file's zeros. Flipped
        // (kept, as a hole punch would), only those cells change: anon has no file under it, shmem is released by REMOVE.
        var (diverged, d) = Fidelity.Flipped(ModelBug.DontNeedKeepsFileCows, "events", "events-wp");
        Assert.Equal([("events", MemoryType.ShmemPrivate), ("events-wp", MemoryType.ShmemPrivate)], diverged);
        // At the fork: the model says the child reads the copied tag after the release, the kernel reads 0.
        Assert.Contains($"r m0+0 ok value=0x{HandlerPolicy.CopyTag(0, 0):x}", d, StringComparison.Ordinal);
        Assert.Contains("r m0+0 ok value=0x0", d, StringComparison.Ordinal);
    }

    [Fact]
    public void TheReproducerRunsTheChildsStepsAndTheHandlersUnregister() =>
        Fidelity.ReproShows("events-wp", MemoryType.ShmemPrivate, ModelBug.DontNeedKeepsFileCows,
            "u0c REMAP m0",
            "u0c REMOVE m0+0..4 => unregister",
            "mremap m0 ok | r m0+2 ok value=0xc0002",
            "madvise m0+0..4 DONTNEED ok | r m0+0 ok value=0x0");

    [Fact]
    public void TheChildsMremapAndMadviseStepsAreValidatedAndRoundTrip()
    {
        var s = NewScenario("child-vm", MemoryType.Shmem, UffdFeatures.EventFork | UffdFeatures.EventRemap | UffdFeatures.EventRemove);
        var ok = s.Then(Register(RegisterMode.Missing), Fork(ChildMremap(), ChildRelease(MemoryType.Shmem, 1, 2), ChildRead(1)));
        Assert.Null(ScenarioValidator.Validate(ok));
        var back = Scenario.FromJson(ok.ToJson());
        Assert.Equal("fork [mremap m0, madvise m0+1..3 REMOVE, r m0+1]", back.Ops[1].Describe());
        Assert.Equal(ok.Ops[1], back.Ops[1]);
        // A format v1 fork (accesses only) writes no new fields.
        Assert.DoesNotContain("mremap", s.Then(Fork(ChildRead(0))).ToJson(), StringComparison.OrdinalIgnoreCase);
        Assert.Equal("op 0 (fork [madvise m0+3..6 REMOVE]): range m0+3..6 outside the mapping (4 pages)",
            ScenarioValidator.Validate(s.Then(Fork(ChildRelease(MemoryType.Shmem, 3, 3)))));
        Assert.Equal("op 0 (fork [mremap m0]): child step mremap m0: an mremap or madvise step is nothing else",
            ScenarioValidator.Validate(s.Then(Fork(ChildMremap() with { Write = true }))));
        Assert.Equal("op 0 (fork [madvise m0+0 PAGEOUT]): child step madvise m0+0 PAGEOUT: a child's madvise is DONTNEED or REMOVE of at least one page",
            ScenarioValidator.Validate(s.Then(Fork(new ChildAccess("m0", 0) { Madvise = MadviseAdvice.PageOut, Count = 1 }))));
    }
}
