using UffdNative.Harness.Conformance;
using UffdNative.Harness.Model;
using UffdNative.Harness.Scenarios;

namespace UffdNative.Harness.Tests.Conformance;

/// <summary>The SIGBUS si_code in the scenarios' observations: FEATURE_SIGBUS always gives BUS_ADRERR, a POISON
/// marker gives what the detected memory-failure fact predicts — and the opposite fact diverges exactly on the
/// poison cells, attributed to it, whichever way this kernel was built.</summary>
public class SigbusCodeTests
{
    [Fact]
    public void TheOppositeMemoryFailureFactDivergesOnPoisonAndIsNamed()
    {
        bool mf = Detected.Profile.Facts.MemoryFailure ?? true;
        var flipped = Detected.Profile.WithOverrides($"{EnvironmentFacts.MemoryFailureName}={(mf ? "off" : "on")}");
        var scenarios = NamedScenarios.All.Where(s => s.Name is "poison" or "sigbus").ToList();
        var cells = Hard.Within(120_000, () => new ConformanceRunner(flipped, Detected.Profile, ConformanceEnvironment.Detect())
            .RunAll(scenarios, [MemoryType.Anon]).ToList());
        Assert.NotNull(Detected.Profile.Facts.MemoryFailure); // detected: the sysctl exists or not
        if (!Detected.Profile[KernelProfile.Poison])
        {
            // A kernel without UFFDIO_POISON cannot show the code: the cell says so instead.
            Assert.Equal(CellStatus.NotApplicable, Assert.Single(cells, c => c.Scenario == "poison").Status);
            return;
        }
        var poison = Assert.Single(cells, c => c.Scenario == "poison");
        Assert.Equal(CellStatus.Diverged, poison.Status);
        Assert.Equal([EnvironmentFacts.MemoryFailureName], poison.Divergence!.SwitchNames);
        string expected = $"sigbus code={(mf ? 2 : 4)}", actual = $"sigbus code={(mf ? 4 : 2)}";
        Assert.Contains(expected, poison.Divergence.Describe());
        Assert.Contains(actual, poison.Divergence.Describe());
        // FEATURE_SIGBUS does not depend on the build: BUS_ADRERR either way.
        Assert.Equal(CellStatus.Pass, Assert.Single(cells, c => c.Scenario == "sigbus").Status);
    }
}
