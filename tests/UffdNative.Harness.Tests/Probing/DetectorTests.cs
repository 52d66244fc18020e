using UffdNative.Harness.Model;
using UffdNative.Harness.Probing;

namespace UffdNative.Harness.Tests.Probing;

public class DetectorTests
{
    /// <summary>What this host's 6.18.44 kernel shows for every switch (reference §0, §0a, §3 "6.18"
    /// column): every new behaviour, and the 914eedcb window closed.</summary>
    [Fact]
    public void DetectedProfileOnThisKernelMatchesTheReference()
    {
        var d = Hard.Within(Hard.Probe, ProfileDetector.Detect);
        var errors = d.Evidence.Where(e => e.Value is null).Select(e => $"{e.Switch}: {e.Evidence}").ToList();
        Assert.True(errors.Count == 0, string.Join("\n", errors));
        foreach (var sw in KernelProfile.Switches)
        {
            bool expected = sw.Name != KernelProfile.UnknownFeatureAccepted;
            Assert.True(d.Profile[sw.Name] == expected, $"{sw.Name}: detected {d.Profile[sw.Name]}, expected {expected}: {d.Evidence.Single(e => e.Switch == sw.Name).Evidence}");
        }
        Assert.Equal(KernelProfile.Switches.Length, d.Evidence.Count);
        Assert.Equal(KernelProfile.Mainline(KernelVersion.Running()).Values, d.Prior.Values);
        Assert.Empty(d.Profile.Differences(d.Prior));
    }
}
