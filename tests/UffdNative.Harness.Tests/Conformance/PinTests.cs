using UffdNative.Harness.Conformance;
using UffdNative.Harness.Model;
using UffdNative.Harness.Scenarios;
using UffdNative.Harness.Tests.Cli;
using static UffdNative.Harness.Scenarios.ScenarioBuilder;

namespace UffdNative.Harness.Tests.Conformance;

/// <summary>
/// The selftest cases wp-fork-pin and wp-fork-pin-with-event with a real long-term pin (io_uring fixed buffers,
/// native/harness/uffd_pin.c): on this kernel with exact observations (the pagemap wp bit in the child and the
/// parent, the messages, the bytes), the model rule that carries the wp bit through fork's early CoW flipped
/// (diverging on exactly the cells that take the early CoW with EVENT_FORK), the C reproducer, and io_uring
/// refused for real by a seccomp filter in a launched process (the cells are n/a with the reason).
/// </summary>
public class PinTests
{
    /// <summary>Where io_uring cannot pin here the cells must say so, and nothing else can be asserted.</summary>
    private static bool Unavailable(IEnumerable<CellResult> cells)
    {
        if (Detected.Profile.Facts.PinUnavailable is not { } why)
            return false;
        Assert.All(cells, c => Assert.Equal((CellStatus.NotApplicable, why), (c.Status, c.Reason)));
        return true;
    }

    public static TheoryData<MemoryType, bool> Cells => Fidelity.SmallTimesVariant();

    [Theory]
    [MemberData(nameof(Cells))]
    public void TheNamedPinScenariosPassWithExactObservations(MemoryType memory, bool evfork)
    {
        var ns = NamedScenarios.Find(evfork ? "wp-fork-pin-with-event" : "wp-fork-pin")!;
        var runner = Detected.Runner();
        var cell = Hard.Within(120_000, () => runner.RunCell(ns, memory));
        if (Unavailable([cell]))
            return;
        Assert.True(cell.Status == CellStatus.Pass, $"{cell.Status} {cell.Reason} {cell.Divergence?.Describe()}");

        // The kernel's own trace, checked against what the kernel sources say (uffd_pin.c), not against the model.
        var s = ns.Build(memory);
        var k = Hard.Within(60_000, () => runner.Executor.Run(s));
        Assert.Null(k.Error);
        var o = k.Observations.Where(x => x.Index >= 0).ToList();
        Assert.Equal(s.Ops.Count, o.Count);
        bool shared = memory == MemoryType.Shmem;
        char present = shared ? 'f' : 'a', presentWp = shared ? 'F' : 'A';
        string Row(char c) => c + "...";
        // 0 register [0,1), 1 write, 2 pin, 3 protect, 4 fork, 5 unpin, 6 fork [pin], 7 protect, 8 pin, 9 unpin
        Assert.All(o, x => Assert.StartsWith("ok", x.Result, StringComparison.Ordinal));
        Assert.Equal(Row(present), o[1].PageMap["m0"]);
        Assert.Equal(Row(present), o[2].PageMap["m0"]);
        Assert.Empty(o[2].Messages); // pinned before the protect: a writable page, no fault
        Assert.Equal(Row(presentWp), o[3].PageMap["m0"]);
        // Fork with the page pinned: private memory is copied for the child at once; its wp bit only with EVENT_FORK
        // (a WP-registered child VMA). Shared shmem is not copied at all without EVENT_FORK (no anon_vma, no WP child VMA).
        string childFirst = evfork ? Row(presentWp) : shared ? "...." : Row(present);
        Assert.Equal(["pagemap m0=" + childFirst], o[4].Child);
        Assert.Equal(evfork ? ["u0 FORK"] : [], o[4].Messages);
        Assert.Equal(Row(presentWp), o[4].PageMap["m0"]); // the parent keeps wp
        // Fork, then a pin in the child: a CoW write. With EVENT_FORK the child's PTE has wp: the pin raises a WP fault
        // on the child's uffd (a kernel-mode write: flags WRITE|WP), resolved by un-protecting it.
        Assert.Equal(["pagemap m0=" + childFirst, "pin m0+0 ok", "pagemap m0=" + Row(present)], o[6].Child);
        Assert.Equal(evfork ? ["u0 FORK", "u0c PF 0x3 m0+0 => unprotect"] : [], o[6].Messages);
        Assert.Equal(Row(presentWp), o[6].PageMap["m0"]);
        // Upstream's order — the pin after the protect — with a writable pin: a WP fault, and the page loses wp.
        Assert.Equal(Row(presentWp), o[7].PageMap["m0"]);
        Assert.Equal(["u0 PF 0x3 m0+0 => unprotect"], o[8].Messages);
        Assert.Equal(Row(present), o[8].PageMap["m0"]);
        Assert.Equal("ok", o[9].Result);
    }

    [Fact]
    public void TheBytesSurviveTheEarlyCowAndThePinsWrites()
    {
        // The pin's fault writes nothing: the child's early copy and the parent read the tag written before the pin.
        var s = NewScenario("pin-bytes", MemoryType.Anon, UffdFeatures.PageFaultFlagWp | UffdFeatures.EventFork)
            .Then(Register(RegisterMode.WriteProtect, 0, 1), Write(0, 0x7a1), Pin(0), WriteProtect(0), Fork(ChildRead(0), ChildPin(1), ChildRead(1)), Unpin(0), Read(0));
        var runner = Detected.Runner();
        var (model, kernel, d) = Hard.Within(60_000, () => runner.Compare(s));
        if (Detected.Profile.Facts.PinUnavailable is not null)
            return;
        Assert.Null(kernel.Error);
        Assert.True(d is null, d?.Describe());
        var fork = kernel.Observations.Single(x => x.Op.StartsWith("fork", StringComparison.Ordinal));
        Assert.Equal(["pagemap m0=A...", "r m0+0 ok value=0x7a1", "pin m0+1 ok", "r m0+1 ok value=0x0", "pagemap m0=Aa.."], fork.Child);
        Assert.Equal("ok value=0x7a1", kernel.Observations.Last().Result);
    }

    [Fact]
    public void TheFlippedEarlyCowRuleDivergesExactlyOnTheEarlyCowCellsWithEventFork()
    {
        var scenarios = NamedScenarios.All.Where(s => s.Name is "wp-fork-pin" or "wp-fork-pin-with-event" or "wp-fork" or "wp-fork-with-event").ToList();
        var cells = Hard.Within(300_000, () => Detected.Runner(ModelBug.EarlyCowDropsWp).RunAll(scenarios, Fidelity.Small).ToList());
        if (Unavailable(cells.Where(c => c.Scenario.Contains("pin", StringComparison.Ordinal))))
            return;
        var diverged = cells.Where(c => c.Status == CellStatus.Diverged).Select(c => (c.Scenario, c.Memory)).OrderBy(c => c.Memory).ToList();
        Assert.Equal([("wp-fork-pin-with-event", MemoryType.Anon), ("wp-fork-pin-with-event", MemoryType.ShmemPrivate)], diverged);
        Assert.All(cells.Where(c => c.Status != CellStatus.Diverged), c => Assert.Equal(CellStatus.Pass, c.Status));
        // At the first fork: the model says the child's copy has no wp, the kernel shows it.
        var d = cells.First(c => c.Status == CellStatus.Diverged).Divergence!;
        Assert.Contains("pagemap m0=a...", d.Describe(), StringComparison.Ordinal);
        Assert.Contains("pagemap m0=A...", d.Describe(), StringComparison.Ordinal);
    }

    [Fact]
    public void TheReproducerPinsAsTheExecutorDoes()
    {
        if (Detected.Profile.Facts.PinUnavailable is not null)
            return;
        var s = NamedScenarios.Find("wp-fork-pin-with-event")!.Build(MemoryType.Anon);
        foreach (var bug in new[] { ModelBug.None, ModelBug.EarlyCowDropsWp })
        {
            var output = Fidelity.Repro(s, bug);
            // Without the bug every op runs (the child's pin included); with it the program stops at the first fork.
            string seen = bug == ModelBug.None ? "pin m0+0 ok | pagemap m0=a..." : "actual   [4] ok || u0 FORK || pagemap m0=A... || m0=A...";
            Assert.True(output.Contains(seen, StringComparison.Ordinal), output);
        }
    }

    [Fact]
    public void TheValidatorRefusesUnmatchedAndOverlappingPins()
    {
        var s = NewScenario("pins", MemoryType.Anon);
        Assert.Null(ScenarioValidator.Validate(s.Then(Pin(0, 2), Pin(2), Unpin(0, 2), Unpin(2))));
        Assert.Equal("op 1 (pin m0+1): overlaps a pin still held (unpin it first)", ScenarioValidator.Validate(s.Then(Pin(0, 2), Pin(1))));
        Assert.Equal("op 0 (unpin m0+0): no pin of exactly this range is held", ScenarioValidator.Validate(s.Then(Unpin(0))));
        Assert.Equal("op 1 (unpin m0+0): no pin of exactly this range is held", ScenarioValidator.Validate(s.Then(Pin(0, 2), Unpin(0))));
        var back = Scenario.FromJson(s.Then(Pin(0), Fork(ChildPin(1), ChildRead(1)), Unpin(0)).ToJson());
        Assert.Equal(["pin m0+0", "fork [pin m0+1, r m0+1]", "unpin m0+0"], back.Ops.Select(o => o.Describe()));
    }

    /// <summary>io_uring refused for real — a seccomp filter in the launched process tree only (Docker's default profile
    /// does the same): the fact says so with its evidence and every pin cell is n/a with that reason.</summary>
    [Fact]
    public void WhereIoUringIsRefusedThePinCellsAreNotApplicableWithTheReason()
    {
        var r = CliRunner.Exec([CliRunner.Launcher, "--deny-io-uring", "--", CliRunner.DotnetHost, CliRunner.CliDll(), "check", "--scenario", "wp-fork-pin-with-event", "--json"], timeoutMs: 240_000);
        Assert.True(r.ExitCode == 0, r.ToString());
        using var doc = System.Text.Json.JsonDocument.Parse(r.Stdout);
        var fact = doc.RootElement.GetProperty("facts").EnumerateArray().Single(f => f.GetProperty("fact").GetString() == EnvironmentFacts.IoUringName);
        const string value = "unavailable: EPERM (seccomp filter, Seccomp: 2)";
        Assert.Equal(value, fact.GetProperty("detected").GetString());
        Assert.StartsWith("io_uring_setup(1): EPERM; kernel.io_uring_disabled = ", fact.GetProperty("evidence").GetString(), StringComparison.Ordinal);
        Assert.EndsWith("; Seccomp: 2 (/proc/self/status)", fact.GetProperty("evidence").GetString(), StringComparison.Ordinal);
        var cells = doc.RootElement.GetProperty("results").EnumerateArray().ToList();
        foreach (var m in Fidelity.Small)
        {
            var c = cells.Single(x => x.GetProperty("memory").GetString() == MemoryTypes.Name(m));
            Assert.Equal(("notapplicable", "io_uring " + value), (c.GetProperty("status").GetString(), c.GetProperty("reason").GetString()));
        }
        // The host is untouched: io_uring still pins here.
        Assert.Equal(EnvironmentFacts.IoUringAvailable, Detected.Profile.Facts.IoUring);
    }
}
