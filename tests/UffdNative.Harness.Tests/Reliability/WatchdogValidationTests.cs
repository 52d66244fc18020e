namespace UffdNative.Harness.Tests.Reliability;

/// <summary>The watchdog's rules checked before anything is handed over, and refusals by the handler.</summary>
public class WatchdogValidationTests
{
    private static HandoffRegion Region(string mode) => new() { BaseHostVirtAddr = 0x7f0000000000, Size = 1 << 20, Modes = [mode] };

    [Theory]
    [InlineData("missing", "MISSING")]
    [InlineData("minor", "MINOR")]
    public void ReleaseIsRefusedWhereClosingTheUffdWouldLoseData(string mode, string named)
    {
        using var uffd = R.Open(UffdFeatures.None);
        var e = Assert.Throws<ArgumentException>(() => ExternalHandler.Validate(uffd, new ExternalHandlerOptions { Regions = [Region("wp"), Region(mode)], OnFailure = WatchdogAction.Release }));
        Assert.Contains("would lose data", e.Message, StringComparison.Ordinal);
        Assert.Contains(named, e.Message, StringComparison.Ordinal);
        Assert.Contains("Takeover", e.Message, StringComparison.Ordinal);
        // The same regions are fine with the other actions.
        ExternalHandler.Validate(uffd, new ExternalHandlerOptions { Regions = [Region(mode)], OnFailure = WatchdogAction.Fail });
        ExternalHandler.Validate(uffd, new ExternalHandlerOptions { Regions = [Region(mode)], OnFailure = WatchdogAction.Takeover, TakeoverPolicies = () => [] });
    }

    [Fact]
    public void ReleaseIsAllowedForWriteProtectTracking()
    {
        using var uffd = R.Open(UffdFeatures.PageFaultFlagWp);
        ExternalHandler.Validate(uffd, new ExternalHandlerOptions { Regions = [Region("wp")], OnFailure = WatchdogAction.Release });
    }

    [Fact]
    public void TakeoverNeedsPoliciesAndFailOnWpNeedsThreadIds()
    {
        using var plain = Userfaultfd.Open(new UffdOpenOptions { RequiredFeatures = UffdFeatures.PageFaultFlagWp });
        Assert.Contains("TakeoverPolicies", Assert.Throws<ArgumentException>(() => ExternalHandler.Validate(plain, new ExternalHandlerOptions { Regions = [Region("missing")], OnFailure = WatchdogAction.Takeover })).Message, StringComparison.Ordinal);
        Assert.Contains("THREAD_ID", Assert.Throws<ArgumentException>(() => ExternalHandler.Validate(plain, new ExternalHandlerOptions { Regions = [Region("wp")], OnFailure = WatchdogAction.Fail })).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheHandlerRefusesAHandoffItCannotServe_AndTheClientSaysWhy()
    {
        using var handler = HandlerProcess.Start([]);
        using var map = Mapping.Anonymous(16 * R.Page);
        var uffd = R.RegisterMissing(map);
        R.Within(60_000, () =>
        {
            var e = Assert.Throws<UffdException>(() => ExternalHandler.Connect(handler.SocketPath, uffd, new ExternalHandlerOptions
            {
                Regions = [R.Region(map, "anon", "missing")],
                Policies = [PolicySpec.Of("no-such-policy")],
            }));
            Assert.Contains("refused the handoff", e.Message, StringComparison.Ordinal);
            Assert.Contains("unknown policy 'no-such-policy'", e.Message, StringComparison.Ordinal);
        }, () => uffd.Dispose(), handler.Kill);
        uffd.Dispose();
        // A refused handoff does not use up --sessions 1 (an attacker cannot end serve that way): the
        // next valid session is served, and that one ends it.
        Assert.False(handler.HasExited);
        ServeAttackTests.ValidSession(handler.SocketPath);
        Assert.Equal(0, handler.WaitForExit(20_000));
    }
}
