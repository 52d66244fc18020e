using System.CommandLine;
using UffdNative.Cli.Commands;

namespace UffdNative.Cli;

/// <summary>Every verb, one factory per file under Commands/.</summary>
public static class Verbs
{
    public static IEnumerable<Command> All()
    {
        yield return ProbeCommand.Create();
        yield return CheckCommand.Create();
        yield return FuzzCommand.Create();
        yield return ReplayCommand.Create();
        yield return CompareCommand.Create();
        yield return BenchCommand.Create();
        yield return MatrixCommand.Create();
        yield return ServeCommand.Create();
        yield return SoakCommand.Create();
    }
}
