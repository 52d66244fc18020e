using System.Text.Json.Nodes;
using UffdNative.Cli.Infrastructure;
using UffdNative.Harness.Conformance;
using UffdNative.Harness.Io;
using UffdNative.Harness.Model;
using UffdNative.Harness.Probing;
using UffdNative.Harness.Scenarios;

namespace UffdNative.Cli.Commands;

/// <summary>What check, fuzz and replay share before they run anything, and how they keep what they found.</summary>
internal static class ConformanceCli
{
    /// <summary>The environment the conformance verbs run in; throws <see cref="CliEnvironmentException"/>
    /// (exit 3, one line) when this environment cannot open a userfaultfd.</summary>
    public static ConformanceEnvironment Detect()
    {
        var env = ConformanceEnvironment.Detect();
        if (env.OpenError is { } openError)
            throw new CliEnvironmentException($"this environment cannot run userfaultfd: {openError}");
        return env;
    }

    /// <summary>The profile to use and the reference (--profile, --profile-set), or a usage error.</summary>
    public static ResolvedProfile Resolve(string? version, string? overrides)
    {
        try
        {
            return ProfileResolver.Resolve(version, overrides);
        }
        catch (Exception e) when (e is FormatException or ArgumentException or OverflowException)
        {
            throw new CliUsageException(e.Message, e);
        }
    }

    public static (KernelProfile Used, KernelProfile Reference) Profile(string? version, string? overrides)
    {
        var r = Resolve(version, overrides);
        return (r.Used, r.Reference);
    }

    /// <summary>Reads a scenario file (never blocking, size-bounded) and validates it; one line on failure.</summary>
    public static Scenario LoadScenario(string path)
    {
        var text = CliFiles.ReadText(path, "scenario");
        try
        {
            return Scenario.Load(text);
        }
        catch (FormatException e)
        {
            throw new CliUsageException($"cannot replay '{path}': {e.Message}", e);
        }
    }

    /// <summary>
    /// Writes a reproducer (<see cref="Reproducer.WriteNew"/>: a new numbered directory unless
    /// <paramref name="force"/>, files written atomically). When that fails the finding is not lost: one line
    /// on stderr says why and carries the scenario's JSON, to be saved as repro.json. Null then.
    /// </summary>
    public static Reproducer.Files? WriteReproducer(Scenario s, ConformanceRunner runner, string dir, bool force, string option)
    {
        try
        {
            return Reproducer.WriteNew(s, runner, dir, force);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            var json = JsonNode.Parse(s.ToJson())!.ToJsonString();
            Console.Error.WriteLine($"uffdnative: {option}: cannot write the reproducer into '{Path.GetFullPath(dir)}': {CliFiles.Reason(e)}; the scenario, to save as repro.json: {json}");
            return null;
        }
    }
}
