using System.CommandLine;
using UffdNative.Cli.Commands;
using UffdNative.Cli.Infrastructure;

namespace UffdNative.Cli;

/// <summary>Every verb, one factory per file under Commands/, with its help examples.</summary>
public static class Verbs
{
    public static IEnumerable<Command> All()
    {
        yield return ProbeCommand.Create().WithExamples(
            "uffdnative probe",
            "uffdnative probe --json > probe-$(uname -r).json",
            "sudo uffdnative probe          (root: every open path and feature)");
    }
}
