using UffdNative.Harness.Conformance;

namespace UffdNative.Cli.Commands;

/// <summary>What check, fuzz and replay share before they run anything.</summary>
internal static class ConformanceCli
{
    /// <summary>The environment the conformance verbs run in; null (the one-line reason printed) when
    /// this environment cannot open a userfaultfd — the caller exits with ExitCodes.Environment.</summary>
    public static ConformanceEnvironment? DetectOrReport()
    {
        var env = ConformanceEnvironment.Detect();
        if (env.OpenError is { } openError)
        {
            Console.Error.WriteLine($"uffdnative: this environment cannot run userfaultfd: {openError}");
            return null;
        }
        return env;
    }
}
