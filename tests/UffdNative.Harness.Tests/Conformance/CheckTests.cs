using UffdNative.Harness.Conformance;
using UffdNative.Harness.Model;

namespace UffdNative.Harness.Tests.Conformance;

/// <summary>The named scenarios against this kernel (real kernel, no mocks).</summary>
public class CheckTests
{
    private static readonly KernelProfile Running = KernelProfile.Mainline(KernelVersion.Running());

    private static List<CellResult> RunAll(KernelProfile used) =>
        Hard.Within(240_000, () => new ConformanceRunner(used, Running, ConformanceEnvironment.Detect()).RunAll(Scenarios.All).ToList());

    private static string Report(IEnumerable<CellResult> cells) =>
        string.Join("\n", cells.Where(c => c.Status is CellStatus.Diverged or CellStatus.Error)
            .Select(c => $"{c.Scenario} × {MemoryTypes.Name(c.Memory)}: {c.Divergence?.Describe() ?? c.Reason}"));

    [Fact]
    public void EveryNamedScenarioPassesOnThisKernel()
    {
        var cells = RunAll(Running);
        var bad = cells.Where(c => c.Status is CellStatus.Diverged or CellStatus.Error).ToList();
        Assert.True(bad.Count == 0, Report(bad));
        Assert.True(cells.Count(c => c.Status == CellStatus.Pass) >= 100, $"only {cells.Count(c => c.Status == CellStatus.Pass)} cells ran");
        // Every not-applicable cell names the missing feature or setting.
        foreach (var c in cells.Where(c => c.Status == CellStatus.NotApplicable))
            Assert.Matches("nr_hugepages|shmem_enabled|transparent_hugepage|UFFD_FEATURE_", c.Reason!);
    }

    [Fact]
    public void TheMainline61ProfileDivergesExactlyOnTheSwitchesThatChangedAfter61()
    {
        var p61 = KernelProfile.Mainline("6.1");
        var cells = RunAll(p61);
        var diverged = cells.Where(c => c.Status == CellStatus.Diverged).ToList();
        Assert.DoesNotContain(cells, c => c.Status == CellStatus.Error);
        // Every divergence is explained by a switch whose rule produced it.
        Assert.All(diverged, c => Assert.NotEmpty(c.Divergence!.Switches));
        var found = diverged.SelectMany(c => c.Divergence!.Switches).Select(s => s.Replace(" (earlier)", "")).ToHashSet();
        var expected = p61.Differences(Running).Select(s => s.Name).ToHashSet();
        Assert.Equal(expected.Order(), found.Order());
        Assert.Equal(
            ["close-clears-wp", "continue-mode-wp", "eagain-result-field", "move", "mremap-clears-wp", "multi-vma-writeprotect", "pagemap-scan",
             "poison", "register-mask-move-poison", "unknown-feature-accepted", "unregister-other-uffd-einval", "wp-async", "wp-unpopulated"],
            found.Order());
        // Cells whose behaviour did not change still pass under the old profile.
        Assert.Contains(cells, c => c.Scenario == "marker-survives-punch" && c.Status == CellStatus.Pass);
        Assert.Contains(cells, c => c.Scenario == "fault-around" && c.Status == CellStatus.Pass);
    }
}
