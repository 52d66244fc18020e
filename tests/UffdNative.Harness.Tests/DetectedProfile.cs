namespace UffdNative.Harness.Tests;

/// <summary>The running kernel's detected profile (switch and fact detectors, the same code as probe and
/// check), detected once per test run. Tests that compare the model with this kernel use it — never a
/// profile that assumes what the machine running the tests is.</summary>
public static class Detected
{
    private static readonly Lazy<DetectedProfile> Value = new(() => Hard.Within(Hard.Probe, ProfileDetector.Detect));

    public static DetectedProfile Result => Value.Value;

    public static KernelProfile Profile => Value.Value.Profile;
}
