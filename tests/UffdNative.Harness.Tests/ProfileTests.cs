namespace UffdNative.Harness.Tests;

public class ProfileTests
{
    [Fact]
    public void MainlinePriorFollowsTheReferenceDates()
    {
        var p61 = KernelProfile.Mainline("6.1");
        var p612 = KernelProfile.Mainline("6.12.117");
        Assert.True(p61[KernelProfile.WpShmem]);
        Assert.False(p61[KernelProfile.CloseClearsWp]);       // 6.9
        Assert.False(p61[KernelProfile.WpUnpopulated]);       // 6.4
        Assert.True(p612[KernelProfile.CloseClearsWp]);
        Assert.False(p612[KernelProfile.MremapClearsWp]);     // mainline 6.13; patch level is ignored
        Assert.False(p612[KernelProfile.UnregisterOtherUffdEinval]);
        Assert.True(KernelProfile.Mainline("6.2")[KernelProfile.UnknownFeatureAccepted]);
        Assert.False(KernelProfile.Mainline("6.4")[KernelProfile.UnknownFeatureAccepted]);
    }

    [Fact]
    public void OverridesNameTheSwitchAndRejectUnknownOnes()
    {
        var p = KernelProfile.Mainline("6.1").WithOverrides("close-clears-wp=new, mremap-clears-wp=true");
        Assert.True(p[KernelProfile.CloseClearsWp]);
        Assert.True(p[KernelProfile.MremapClearsWp]);
        var e = Assert.Throws<ArgumentException>(() => p.WithOverrides("no-such=new"));
        Assert.Contains("unknown profile switch 'no-such'", e.Message);
        Assert.Throws<FormatException>(() => p.WithOverrides("close-clears-wp=maybe"));
    }
}
