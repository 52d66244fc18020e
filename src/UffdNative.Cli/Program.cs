using System.CommandLine;
using UffdNative.Cli;

var root = new RootCommand("uffdnative — drive the real Linux userfaultfd from .NET: probe a kernel's behaviour, check it against the model, benchmark fault loops.");
foreach (var command in Verbs.All())
    root.Subcommands.Add(command);

var parsed = root.Parse(args);
if (parsed.Errors.Count > 0)
{
    // One line per problem, no stack trace; exit code 2 (usage).
    foreach (var e in parsed.Errors)
        Console.Error.WriteLine($"uffdnative: {e.Message}");
    Console.Error.WriteLine("Run 'uffdnative --help' for usage.");
    return ExitCodes.Usage;
}
try
{
    return parsed.Invoke();
}
catch (UffdNative.UffdException e) when (e.Operation.StartsWith("open", StringComparison.Ordinal) || e.Operation.StartsWith("UFFDIO_API", StringComparison.Ordinal))
{
    Console.Error.WriteLine($"uffdnative: {e.Message}");
    return ExitCodes.Environment;
}
