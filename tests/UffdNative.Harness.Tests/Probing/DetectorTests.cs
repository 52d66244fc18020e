namespace UffdNative.Harness.Tests.Probing;

/// <summary>
/// The detectors on the running kernel. Nothing here assumes which kernel or build runs the tests: the
/// assertions are about the evidence and its consistency. That each detector's answer is the kernel's is
/// proven where the answers differ — the check passes with the detected profile here (CheckTests) and in
/// the kernel matrix's guests (other versions, the test kernel with the zero page off, other boot options).
/// </summary>
public class DetectorTests
{
    [Fact]
    public void EverySwitchAndFactHasOneAnswerWithItsEvidence()
    {
        var d = Detected.Result;
        Assert.Equal(KernelProfile.Switches.Select(s => s.Name), d.Evidence.Select(e => e.Switch));
        foreach (var e in d.Evidence)
        {
            Assert.False(string.IsNullOrWhiteSpace(e.Evidence), e.Switch);
            // An undecided switch says that the prior is kept, and which value that is.
            if (e.Value is null)
                Assert.Contains("profile", e.Evidence);
            else
                Assert.Equal(e.Value.Value, d.Profile[e.Switch]);
        }
        Assert.Equal(KernelProfile.Mainline(KernelVersion.Running()).Values, d.Prior.Values);
        Assert.Equal(EnvironmentFacts.Specs.Select(s => s.Name), d.Facts.Select(f => f.Name));
    }

    /// <summary>The zero-page fact rests on four independent observations that must agree (exclusive bit,
    /// PFN, PAGEMAP_SCAN where it exists, and what a fork child inherits); the profile follows it and names
    /// a cause whenever it differs from mainline.</summary>
    [Fact]
    public void TheZeroPageFactIsDecidedByConsistentEvidence()
    {
        var f = Detected.Result.Facts.Single(x => x.Name == EnvironmentFacts.AnonReadZeroPageName);
        Assert.True(f.Value is "on" or "off", f.Evidence);
        Assert.Contains("exclusive=", f.Evidence);
        Assert.Contains("fork child", f.Evidence);
        bool on = f.Value == "on";
        Assert.Contains(on ? "exclusive=0" : "exclusive=1", f.Evidence);
        Assert.Contains(on ? "does not have page 0" : "has page 0", f.Evidence);
        Assert.Equal(on, Detected.Profile.Facts.AnonReadZeroPage);
        if (on)
            Assert.Null(f.Cause);
        else
        {
            Assert.NotNull(f.Cause);
            Assert.Contains("zero page off", Detected.Result.Summary);
        }
    }

    [Fact]
    public void TheFaultAroundFactCountsTheWindowTheKernelMapped()
    {
        var f = Detected.Result.Facts.Single(x => x.Name == EnvironmentFacts.FaultAroundPagesName);
        Assert.Matches(@"^\d+$", f.Value);
        Assert.Matches($@"one read at a 2 MiB boundary: {f.Value} of 512 pages present", f.Evidence);
        Assert.Equal(int.Parse(f.Value!, System.Globalization.CultureInfo.InvariantCulture), Detected.Profile.Facts.FaultAroundPages);
        if (HostFacts.ReadInt("/sys/kernel/debug/fault_around_bytes") is { } bytes)
            Assert.Equal(bytes / 4096, Detected.Profile.Facts.FaultAroundPages);
    }

    [Fact]
    public void TheProfileNameSaysWhatDiffersFromMainline()
    {
        var prior = KernelProfile.Mainline("6.18");
        var off = prior.WithFacts(prior.Facts with { AnonReadZeroPage = false });
        var text = DetectedProfile.Describe(off, prior, [new FactFinding(EnvironmentFacts.AnonReadZeroPageName, "off", "", "pvm_no_zero_page=1 (kernel command line)")]);
        Assert.Equal("mainline 6.18 + zero page off (pvm_no_zero_page=1 (kernel command line))", text);
        var backported = KernelProfile.Mainline("6.1").With(KernelProfile.CloseClearsWp, true);
        Assert.Equal("mainline 6.1 + close-clears-wp (backported)", DetectedProfile.Describe(backported, KernelProfile.Mainline("6.1"), []));
        Assert.Equal("mainline 6.18", DetectedProfile.Describe(prior, prior, []));
    }
}
