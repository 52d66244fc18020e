using System.CommandLine;

namespace UffdNative.Cli.Infrastructure;

/// <summary>
/// Rules every verb gets without writing them: applied to the whole command tree once it is built,
/// so that a verb that declares a plain <c>Option&lt;FileInfo?&gt;("--output")</c> still refuses a
/// directory or a path in a missing directory while parsing (exit 2, one line), before it runs for
/// minutes and then fails to write.
/// </summary>
public static class CliConventions
{
    public static void Apply(Command root)
    {
        foreach (var command in Walk(root))
            foreach (var option in command.Options)
                if (option.Name == "--output" && option.ValueType == typeof(FileInfo))
                    option.Validators.Add(r =>
                    {
                        if (r.Tokens.Count == 1 && CliPaths.OutputFileProblem("--output", r.Tokens[0].Value) is { } problem)
                            r.AddError(problem);
                    });
    }

    private static IEnumerable<Command> Walk(Command c) => c.Subcommands.SelectMany(Walk).Prepend(c);
}
