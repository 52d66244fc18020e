namespace UffdNative.Harness.Tests;

/// <summary>The running kernel's detected profile (switch and fact detectors, the same code as probe and
/// check), detected once per test run. Tests that compare the model with this kernel use it — never a
/// profile that assumes what the machine running the tests is.</summary>
public static class Detected
{
    private static readonly Lazy<DetectedProfile> Value = new(() => Hard.Within(Hard.Probe, ProfileDetector.Detect));

    public static DetectedProfile Result => Value.Value;

    public static KernelProfile Profile => Value.Value.Profile;

    /// <summary>The conformance runner whose model predicts with this kernel's detected profile (also the reference the
    /// verdicts compare against), optionally with model rules flipped or executor options set by the test.</summary>
    public static ConformanceRunner Runner(ModelBug bugs = ModelBug.None, ExecutorOptions? executor = null) =>
        new(Profile, Profile, ConformanceEnvironment.Detect(), bugs, executor);
}
