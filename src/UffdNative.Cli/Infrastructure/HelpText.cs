using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.Runtime.CompilerServices;

namespace UffdNative.Cli.Infrastructure;

/// <summary>
/// Help with examples: each verb registers its example command lines with <see cref="WithExamples"/>,
/// and the help output (<c>uffdnative VERB --help</c>) ends with them; the root's help also lists the
/// exit codes.
/// </summary>
public static class HelpText
{
    private static readonly ConditionalWeakTable<Command, string[]> Examples = new();

    public const string ExitCodesText =
        "Exit codes:\n" +
        "  0  ok: everything ran and agreed\n" +
        "  1  a divergence, failed check or failure was found\n" +
        "  2  usage error: unknown verb or option, bad value, missing or malformed input file, unwritable output\n" +
        "  3  this environment cannot run userfaultfd (permissions, seccomp, missing device or kernel support)";

    /// <summary>Adds examples ("uffdnative probe --json > probe.json") to a verb's help.</summary>
    public static T WithExamples<T>(this T command, params string[] lines) where T : Command
    {
        Examples.AddOrUpdate(command, lines);
        return command;
    }

    public static IReadOnlyList<string> ExamplesOf(Command command) => Examples.TryGetValue(command, out var l) ? l : [];

    /// <summary>Wraps the root's help action so that examples (and, at the root, exit codes) follow it.</summary>
    public static void Install(RootCommand root)
    {
        foreach (var help in root.Options.OfType<HelpOption>())
            if (help.Action is { } original and not ExamplesHelpAction)
                help.Action = new ExamplesHelpAction(original);
    }

    internal sealed class ExamplesHelpAction(CommandLineAction inner) : SynchronousCommandLineAction
    {
        public override bool ClearsParseErrors => true;

        public override int Invoke(ParseResult parseResult)
        {
            int r = inner is SynchronousCommandLineAction s ? s.Invoke(parseResult) : 0;
            var command = parseResult.CommandResult.Command;
            var output = parseResult.InvocationConfiguration.Output;
            var examples = ExamplesOf(command);
            if (examples.Count > 0)
            {
                output.WriteLine("Examples:");
                foreach (var e in examples)
                    output.WriteLine("  " + e);
                output.WriteLine();
            }
            if (command is RootCommand)
            {
                output.WriteLine(ExitCodesText);
                output.WriteLine();
            }
            return r;
        }
    }
}
