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

    [Fact]
    public void UnregisterWakesABlockedMissingReader()
    {
        var x = Run("unregister-wakes-missing");
        AsMainline(x);
        Assert.Contains("MISSING read blocked (flags 0x0, fdinfo pending=0 total=1)", x.F.Evidence);
        Assert.Contains("UNREGISTER: worker finished, 0 new message(s), fdinfo pending=0 total=0", x.F.Evidence);
        Assert.Contains("it read 0x0 (present=1", x.F.Evidence);
    }

    [Fact]
    public void UnregisterLeavesABlockedWpWriterAsleepUntilWake()
    {
        var x = Run("unregister-keeps-wp-waiter");
        AsMainline(x);
        Assert.Contains("WP write blocked (flags 0x3); UNREGISTER: thread state S, fdinfo pending=0 total=1, page present=1 wp=0", x.F.Evidence);
        Assert.EndsWith("WAKE: worker finished, 0 new message(s), page reads 0x5a", x.F.Evidence);
    }

    [Fact]
    public void CopyWithDontWakeLeavesTheReaderBlocked()
    {
        var x = Run("copy-dontwake");
        AsMainline(x);
        Assert.Contains("COPY(DONTWAKE): Complete 4096; thread state S, fdinfo pending=0 total=1, page present=1", x.F.Evidence);
        Assert.EndsWith("WAKE: worker read 0x77, 0 new message(s)", x.F.Evidence);
    }

    [Fact]
    public void ASignalMakesTheUserFaultFaultAgain()
    {
        var x = Run("signal-refaults");
        AsMainline(x);
        Assert.Contains("SIGUSR1: handler ran 1 time(s), 1 new message(s) at the same address flags 0x0", x.F.Evidence);
        Assert.EndsWith("ZEROPAGE: worker finished", x.F.Evidence);
    }

    [Fact]
    public void ASignalDoesNotAbortAKernelModeFault()
    {
        var x = Run("signal-kernel-fault-retried");
        if (x.F.Kind == FindingKind.Undetermined)
        {
            Assert.Equal("only user-mode-only uffds can be opened here", x.F.Observed);
            return;
        }
        AsMainline(x);
        Assert.Equal("read(2) into a MISSING page blocked (flags 0x1); SIGUSR1: 3 new message(s) at the same address flags 0x1 at the same address flags 0x1 at the same address flags 0x1, syscall still in progress, handler ran 0 time(s); ZEROPAGE: read(2) returned 8, handler ran 1 time(s)", x.F.Evidence);
    }

    [Fact]
    public void APoisonMarkerRaisesTheConfiguredSigbusCode()
    {
        var x = Run("poison-sigbus-code");
        if (x.F.Kind == FindingKind.Undetermined)
        {
            Assert.StartsWith("no UFFDIO_POISON on this kernel: not supported by this kernel (UFFDIO_API: EINVAL)", x.F.Observed);
            return;
        }
        AsMainline(x);
        int code = BehaviourRows.MemoryFailureConfigured ? 4 : 2;
        Assert.Contains($"POISON: Complete; the fork child's read: sigbus=1 si_code={code};", x.F.Evidence);
    }
}
