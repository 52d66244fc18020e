using static UffdNative.Harness.Scenarios.ScenarioBuilder;

namespace UffdNative.Harness.Tests.Scenarios;

/// <summary>The validator decides from the scenario text alone what the executor may run in this process.</summary>
public class ScenarioValidatorTests
{
    [Fact]
    public void TheValidatorKeepsSigbusProneAccessesOutOfThisProcess()
    {
        var baseScenario = NewScenario("scenario", MemoryType.Shmem);
        Assert.Null(ScenarioValidator.Validate(baseScenario with { Ops = [new ReadOp("m0", 3)] }));
        Assert.Contains("beyond the memfd's end", ScenarioValidator.Validate(baseScenario with { Ops = [new TruncateOp(2), new ReadOp("m0", 3)] }));
        Assert.Null(ScenarioValidator.Validate(baseScenario with { Ops = [new TruncateOp(2), new WriteOp("m0", 3, 1, AccessMode.Kernel)] }));
        Assert.Contains("POISON", ScenarioValidator.Validate(baseScenario with { Ops = [new PoisonOp("u0", "m0", 0, 1), new ReadOp("m0", 1)] }));
        Assert.Null(ScenarioValidator.Validate(baseScenario with { Ops = [new PoisonOp("u0", "m0", 0, 1), new ForkOp([new ChildAccess("m0", 0)])] }));
        Assert.Contains("SIGBUS", ScenarioValidator.Validate(baseScenario with { Uffds = [new UffdSpec("u0", UffdFeatures.Sigbus)], Ops = [new WriteOp("m0", 0, 1)] }));
        Assert.Contains("after close", ScenarioValidator.Validate(baseScenario with { Ops = [new CloseOp("u0"), new WakeOp("u0", "m0", 0, 1)] }));
        Assert.Contains("drain first", ScenarioValidator.Validate(baseScenario with { Ops = [new MadviseOp("m0", 0, 1, MadviseAdvice.Remove, Hold: true), new ReadOp("m0", 1)] }));
        Assert.Contains("EVENT_UNMAP", ScenarioValidator.Validate(baseScenario with { Uffds = [new UffdSpec("u0", UffdFeatures.EventUnmap)] }));
    }
}
