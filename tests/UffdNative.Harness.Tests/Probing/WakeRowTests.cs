using UffdNative.Harness.Probing;

namespace UffdNative.Harness.Tests.Probing;

/// <summary>
/// The rows about a thread blocked in a fault (BehaviourRows.Wake.cs) on the running kernel: each must be
/// judged as mainline of this version expects, with the exact observations in its evidence (message flags,
/// fdinfo waiter counts, thread state, errno, si_code). Rows the kernel cannot show (no POISON before 6.6, no
/// full uffd without privilege) must say why.
/// </summary>
public class WakeRowTests
{
    private static (Finding F, BehaviourResult R) Run(string id)
    {
        var row = BehaviourRows.All.Single(r => r.Id == id);
        return Hard.Within(Hard.Probe, () =>
        {
            using var lab = new Lab();
            var f = row.Run(lab);
            return (f, ProbeRunner.ToResult(row, f, lab.Kernel, 0));
        });
    }

    private static void AsMainline((Finding F, BehaviourResult R) x)
    {
        Assert.True(x.F.Kind == FindingKind.Observed, $"{x.F.Kind}: {x.F.Observed} — {x.F.Evidence}");
        Assert.True(x.R.Verdict == Verdict.AsExpected.Id(), $"{x.R.Verdict}: {x.F.Observed} — {x.F.Evidence}");
        Assert.True(x.F.Value, x.F.Evidence);
    }

    /// <summary>Runs the row; where this kernel cannot show it, asserts the reason given (its start) and
    /// returns null; else asserts it is judged as mainline expects.</summary>
    private static (Finding F, BehaviourResult R)? MainlineOrAbsent(string id, string whyAbsent)
    {
        var x = Run(id);
        if (x.F.Kind == FindingKind.Undetermined)
        {
            Assert.StartsWith(whyAbsent, x.F.Observed);
            return null;
        }
        AsMainline(x);
        return x;
    }

    /// <summary>Each row's evidence holds exactly these observations (and ends with the last one given).</summary>
    [Theory]
    // UNREGISTER wakes a blocked MISSING reader, which re-faults without uffd: an ordinary fault.
    [InlineData("unregister-wakes-missing", null, "MISSING read blocked (flags 0x0, fdinfo pending=0 total=1)",
        "UNREGISTER: worker finished, 0 new message(s), fdinfo pending=0 total=0", "it read 0x0 (present=1")]
    // UNREGISTER leaves a blocked WP writer asleep until a WAKE.
    [InlineData("unregister-keeps-wp-waiter", "WAKE: worker finished, 0 new message(s), page reads 0x5a",
        "WP write blocked (flags 0x3); UNREGISTER: thread state S, fdinfo pending=0 total=1, page present=1 wp=0")]
    // COPY(DONTWAKE) leaves the reader blocked until a WAKE.
    [InlineData("copy-dontwake", "WAKE: worker read 0x77, 0 new message(s)",
        "COPY(DONTWAKE): Complete 4096; thread state S, fdinfo pending=0 total=1, page present=1")]
    // A signal makes the user-mode fault fault again.
    [InlineData("signal-refaults", "ZEROPAGE: worker finished",
        "SIGUSR1: handler ran 1 time(s), 1 new message(s) at the same address flags 0x0")]
    public void TheRowIsMainlineWithTheseObservations(string id, string? endsWith, params string[] contains)
    {
        var x = Run(id);
        AsMainline(x);
        foreach (var c in contains)
            Assert.Contains(c, x.F.Evidence);
        if (endsWith != null)
            Assert.EndsWith(endsWith, x.F.Evidence);
    }

    [Fact]
    public void ASignalDoesNotAbortAKernelModeFault()
    {
        if (MainlineOrAbsent("signal-kernel-fault-retried", "only user-mode-only uffds can be opened here") is not { } x)
            return;
        Assert.Equal("read(2) into a MISSING page blocked (flags 0x1); SIGUSR1: 3 new message(s) at the same address flags 0x1 at the same address flags 0x1 at the same address flags 0x1, syscall still in progress, handler ran 0 time(s); ZEROPAGE: read(2) returned 8, handler ran 1 time(s)", x.F.Evidence);
    }

    [Fact]
    public void APoisonMarkerRaisesTheConfiguredSigbusCode()
    {
        if (MainlineOrAbsent("poison-sigbus-code", "no UFFDIO_POISON on this kernel: not supported by this kernel (UFFDIO_API: EINVAL)") is not { } x)
            return;
        int code = BehaviourRows.MemoryFailureConfigured ? 4 : 2;
        Assert.Contains($"POISON: Complete; the fork child's read: sigbus=1 si_code={code};", x.F.Evidence);
    }
}
