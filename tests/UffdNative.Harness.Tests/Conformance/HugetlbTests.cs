using System.Globalization;
using UffdNative.Harness.Conformance;
using UffdNative.Harness.Model;
using UffdNative.Harness.Scenarios;
using static UffdNative.Harness.Scenarios.ScenarioBuilder;
using F = UffdNative.UffdFeatures;
using R = UffdNative.RegisterMode;

namespace UffdNative.Harness.Tests.Conformance;

/// <summary>hugetlb (reference §3.11): the cells run where the detected pool has free 2 MiB pages and pass; where it
/// has none they are not applicable and say so. The model's hugetlb rules are checked without a kernel too, so a
/// host without a pool still tests them.</summary>
public class HugetlbTests
{
    private static readonly MemoryType[] Hugetlb = [MemoryType.Hugetlb, MemoryType.HugetlbPrivate];

    [Fact]
    public void HugetlbCellsPassWhereTheDetectedPoolHasPagesAndAreNotApplicableWithTheReasonWhereNot()
    {
        var runner = Detected.Runner();
        var cells = Hard.Within(240_000, () => runner.RunAll(NamedScenarios.All, Hugetlb).ToList());
        int targets = NamedScenarios.All.Sum(s => s.Targets.Count(Hugetlb.Contains));
        Assert.Equal(targets, cells.Count);
        Assert.True(targets >= 50, $"only {targets} hugetlb cells in the catalog");
        var facts = Detected.Profile.Facts;
        if (facts.HugePagesFree is null or 0)
        {
            string total = facts.HugePagesTotal?.ToString(CultureInfo.InvariantCulture) ?? "absent";
            Assert.All(cells, c =>
            {
                Assert.Equal(CellStatus.NotApplicable, c.Status);
                Assert.Equal($"no free 2 MiB huge pages (vm.nr_hugepages={total})", c.Reason);
            });
            return;
        }
        var bad = cells.Where(c => c.Status is CellStatus.Diverged or CellStatus.Error).ToList();
        Assert.True(bad.Count == 0, string.Join("\n", bad.Select(c => $"{c.Scenario} × {MemoryTypes.Name(c.Memory)}: {c.Divergence?.Describe() ?? c.Reason}")));
        Assert.Contains(cells, c => c.Status == CellStatus.Pass);
    }

    [Fact]
    public void APoolTooSmallForTheScenarioNamesWhatItNeeds()
    {
        var s = NamedScenarios.Find("marker-survives-dontneed")!;
        var scenario = s.Build(MemoryType.HugetlbPrivate);
        // The memfd's 4 pages (the alias maps it shared) and the private mapping's 4.
        Assert.Equal(8, ConformanceEnvironment.HugePagesNeeded(scenario));
        var env = new ConformanceEnvironment
        {
            Features = F.WpHugetlbfsShmem | F.PageFaultFlagWp,
            Facts = EnvironmentFacts.Mainline with { HugePagesTotal = 3, HugePagesFree = 2 },
        };
        Assert.Equal("needs 8 free 2 MiB huge pages, 2 free (vm.nr_hugepages=3)", env.NotApplicable(s, MemoryType.HugetlbPrivate, scenario));
        var before519 = env with { Features = F.PageFaultFlagWp, Facts = EnvironmentFacts.Mainline with { HugePagesTotal = 16, HugePagesFree = 16 } };
        Assert.StartsWith("hugetlb is modelled from Linux 5.19", before519.NotApplicable(s, MemoryType.HugetlbPrivate, scenario));
    }

    private static ModelResult Model(Scenario s) => new KernelModel(KernelProfile.Mainline("6.12")).Run(s);

    private static OpObservation After(ModelResult r, int op) => r.Trace.Observations[op + 1];

    [Fact]
    public void TheModelFillsWholeHugePagesAndRefusesZeropage()
    {
        // §3.11: result fields count 2 MiB pages; ZEROPAGE is EINVAL (mfill_atomic_hugetlb); the register mask is
        // the basic one (WAKE|COPY|POISON, no ZEROPAGE or MOVE).
        var r = Model(NewScenario("t", MemoryType.Hugetlb, F.Poison).Then(Register(R.Missing, observeIoctls: true), Copy(0, 0x1, 2), ZeroPage(2), Poison(3), Read(0)));
        Assert.Equal("ok ioctls=0x10c", After(r, 0).Result);
        Assert.Equal("ok field=4194304", After(r, 1).Result);
        Assert.Equal("EINVAL field=-22", After(r, 2).Result);
        Assert.Equal("ok field=2097152", After(r, 3).Result);
        // A poison marker shows nothing in a hugetlb pagemap entry (pagemap_hugetlb_range).
        Assert.Equal("ff..", After(r, 4).PageMap["m0"]);
        Assert.Equal("ok value=0x1", After(r, 4).Result);
    }

    [Fact]
    public void TheModelKeepsHugetlbMarkersAcrossZapsButNotAcrossTruncate()
    {
        // §3.11: a hugetlb uffd-wp marker is "wp only" in pagemap ('m'); DONTNEED and a hole punch keep it (and turn a
        // wp page into one), truncate drops them (ZAP_FLAG_DROP_MARKER).
        ScenarioOp[] setup = [Register(R.WriteProtect), Write(0, 0x1), WriteProtect(0, 2)];
        var zap = Model(NewScenario("t", MemoryType.Hugetlb, F.PageFaultFlagWp | F.WpHugetlbfsShmem).Then(setup).Then(DontNeed(0, 2)));
        Assert.Equal("Fm..", After(zap, 2).PageMap["m0"]);
        Assert.Equal("mm..", After(zap, 3).PageMap["m0"]);
        var punch = Model(NewScenario("t", MemoryType.Hugetlb, F.PageFaultFlagWp | F.WpHugetlbfsShmem).Then(setup).Then(new PunchHoleOp(0, 2)));
        Assert.Equal("mm..", After(punch, 3).PageMap["m0"]);
        var truncate = Model(NewScenario("t", MemoryType.Hugetlb, F.PageFaultFlagWp | F.WpHugetlbfsShmem).Then(setup).Then(new TruncateOp(0), new TruncateOp(4)));
        Assert.Equal("....", After(truncate, 4).PageMap["m0"]);
    }

    [Fact]
    public void TheModelGivesAPrivateHugetlbHoleAnAnonymousPageAndNoPageCache()
    {
        // hugetlb_no_page: a read of a hole in a private hugetlb mapping maps a new anonymous page (over a marker, with
        // wp, and a write then faults WP); the file stays empty (pread reads 0).
        var r = Model(NewScenario("t", MemoryType.HugetlbPrivate, F.PageFaultFlagWp | F.WpHugetlbfsShmem, alias: true)
            .Then(Register(R.WriteProtect), WriteProtect(1), Read(0), Read(1), Write(1, 0x5), new PreadOp(1)));
        Assert.Equal("am..", After(r, 2).PageMap["m0"]);
        Assert.Equal("aA..", After(r, 3).PageMap["m0"]);
        Assert.Equal(["u0 PF 0x3 m0+1 => unprotect"], After(r, 4).Messages);
        Assert.Equal("ok value=0x0", After(r, 5).Result);
        // hugetlbfs has no write(2).
        Assert.Equal("EINVAL", Model(NewScenario("t", MemoryType.Hugetlb).Then(new PwriteOp(0, 1))).Trace.Observations[1].Result);
    }

    [Fact]
    public void TheReproducerOfAHugetlbCellCountsHugePages()
    {
        // The C program maps an MFD_HUGETLB memfd and counts 2 MiB pages, like the executor; it compiles cleanly.
        var s = NamedScenarios.Find("missing-wp-ordering")!.Build(MemoryType.HugetlbPrivate);
        var model = new KernelModel(Detected.Profile);
        var program = Reproducer.CProgram(s, model.Run(s).Trace, model.Profile, null);
        Assert.Contains("#define HUGETLB 1", program, StringComparison.Ordinal);
        Assert.Contains($"#define SLOT_BYTES {8UL << 20}UL", program, StringComparison.Ordinal);
        ReproBuild.AssertCompiles(program, s.Describe());
    }
}
