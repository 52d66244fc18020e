namespace UffdNative.Harness.Tests.Conformance;

/// <summary>The named scenarios against this kernel (real kernel, no mocks).</summary>
public class CheckTests
{
    private static List<CellResult> RunAll(KernelProfile used) =>
        Hard.Within(240_000, () => new ConformanceRunner(used, Detected.Profile, ConformanceEnvironment.Detect()).RunAll(NamedScenarios.All).ToList());

    private static string Report(IEnumerable<CellResult> cells) =>
        string.Join("\n", cells.Where(c => c.Status is CellStatus.Diverged or CellStatus.Error)
            .Select(c => $"{c.Scenario} × {MemoryTypes.Name(c.Memory)}: {c.Divergence?.Describe() ?? c.Reason}"));

    [Fact]
    public void EveryNamedScenarioPassesOnThisKernel()
    {
        var cells = RunAll(Detected.Profile);
        var bad = cells.Where(c => c.Status is CellStatus.Diverged or CellStatus.Error).ToList();
        Assert.True(bad.Count == 0, $"profile {Detected.Result.Summary}\n{Report(bad)}");
        Assert.True(cells.Count(c => c.Status == CellStatus.Pass) >= 100, $"only {cells.Count(c => c.Status == CellStatus.Pass)} cells ran");
        // Every not-applicable cell names the missing feature or setting.
        foreach (var c in cells.Where(c => c.Status == CellStatus.NotApplicable))
            Assert.Matches("nr_hugepages|shmem_enabled|transparent_hugepage|UFFD_FEATURE_|page size", c.Reason!);
    }

    [Fact]
    public void TheMainline61ProfileDivergesExactlyOnTheSwitchesWhereItDiffersFromThisKernel()
    {
        var p61 = KernelProfile.Mainline("6.1").WithFacts(Detected.Profile.Facts);
        var cells = RunAll(p61);
        var diverged = cells.Where(c => c.Status == CellStatus.Diverged).ToList();
        Assert.DoesNotContain(cells, c => c.Status == CellStatus.Error);
        // Every divergence is explained by a switch whose rule produced it.
        Assert.All(diverged, c => Assert.NotEmpty(c.Divergence!.Switches));
        var found = diverged.SelectMany(c => c.Divergence!.SwitchNames).ToHashSet();
        // The switches where mainline 6.1 and this kernel (as detected) differ, and only those, show in the
        // kernel's answers; each one whose detector could observe it here must show.
        // (Switches no model rule reads, and rules behind a switch 6.1 lacks — the scan switches need PAGEMAP_SCAN —
        // cannot show.)
        var expected = p61.Differences(Detected.Profile).Where(s => s.Modelled && (s.Needs is null || p61[s.Needs])).Select(s => s.Name).ToHashSet();
        var observable = expected.Where(sw => Detected.Result.Evidence.Any(e => e.Switch == sw && e.Value is not null)).ToHashSet();
        Assert.Subset(expected, found);
        Assert.True(observable.IsSubsetOf(found), $"switches differing but never observed: {string.Join(", ", observable.Except(found))}");
        // Cells whose behaviour did not change still pass under the old profile.
        Assert.Contains(cells, c => c.Scenario == "marker-survives-punch" && c.Status == CellStatus.Pass);
        Assert.Contains(cells, c => c.Scenario == "fault-around" && c.Status == CellStatus.Pass);
    }

    /// <summary>The opposite of this machine's zero-page fact makes exactly the cells that read untouched
    /// anonymous memory diverge, each attributed to the fact: the model consults it and the kernel's answer
    /// really depends on it, whichever way this machine is built.</summary>
    [Fact]
    public void TheOppositeZeroPageFactDivergesAndIsNamed()
    {
        bool zero = Detected.Profile.Facts.AnonReadZeroPage;
        var flipped = Detected.Profile.WithOverrides($"{EnvironmentFacts.AnonReadZeroPageName}={(zero ? "off" : "on")}");
        var cells = Hard.Within(240_000, () => new ConformanceRunner(flipped, Detected.Profile, ConformanceEnvironment.Detect())
            .RunAll(NamedScenarios.All, [MemoryType.Anon]).ToList());
        var diverged = cells.Where(c => c.Status == CellStatus.Diverged).ToList();
        Assert.NotEmpty(diverged);
        Assert.All(diverged, c => Assert.Contains(c.Divergence!.Switches, s => s.StartsWith(EnvironmentFacts.AnonReadZeroPageName, StringComparison.Ordinal)));
        Assert.Contains(diverged, c => c.Scenario == "pagemap-scan");
    }

}
