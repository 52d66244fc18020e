using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using Microsoft.Extensions.Logging;

namespace UffdNative.Cli.Infrastructure;

/// <summary>
/// The whole command line: the root command with its global options and every verb, parsing,
/// logging setup, and the mapping of every outcome to one of the documented exit codes
/// (<see cref="ExitCodes"/>). Program.cs only calls <see cref="Run"/>.
/// </summary>
public static class CliApp
{
    public const string Description =
        "uffdnative — drive the real Linux userfaultfd from .NET: probe what this kernel's userfaultfd does, " +
        "check it against the model, fuzz, replay, compare reports, benchmark fault loops.";

    /// <summary>-v/--verbosity, on every verb (recursive).</summary>
    public static Option<Verbosity> VerbosityOption { get; } = CreateVerbosity();

    private static Option<Verbosity> CreateVerbosity()
    {
        var o = new Option<Verbosity>("--verbosity", "-v")
        {
            Description = "How much to log on stderr: q[uiet], m[inimal] (default), n[ormal] (progress, decisions), d[etailed] (kernel calls), diag[nostic] (everything, stack traces).",
            HelpName = "level",
            Recursive = true,
            DefaultValueFactory = _ => Verbosity.Minimal,
            CustomParser = r =>
            {
                var text = r.Tokens.Count > 0 ? r.Tokens[0].Value : "";
                if (CliLog.TryParse(text, out var v))
                    return v;
                r.AddError($"--verbosity: '{text}' is not a level; use quiet, minimal, normal, detailed or diagnostic.");
                return Verbosity.Minimal;
            },
        };
        o.AcceptOnlyFromAmong("q", "quiet", "m", "minimal", "n", "normal", "d", "detailed", "diag", "diagnostic");
        return o;
    }

    /// <summary>--log-format, on every verb (recursive): simple lines, or one JSON object per line. Checked
    /// after parsing, so a bad value is a usage error (one line, exit 2) like every other.</summary>
    public static Option<string> LogFormatOption { get; } = new("--log-format")
    {
        Description = "How log lines look on stderr: simple (default) or json (one JSON object per line: Timestamp, EventId, LogLevel, Category, Message, State).",
        HelpName = "format",
        Recursive = true,
        DefaultValueFactory = _ => "simple",
    };

    /// <summary>The root command with every verb (tests parse command lines against it). Named
    /// "uffdnative" whatever the executable is called (UffdNative.Cli.dll under `dotnet`).</summary>
    public static RootCommand BuildRoot()
    {
        var root = new RootCommand(Description);
        root.Options.Add(VerbosityOption);
        root.Options.Add(LogFormatOption);
        foreach (var command in Verbs.All())
            root.Subcommands.Add(command);
        root.WithExamples(
            "uffdnative probe                       what this kernel's userfaultfd supports and does",
            "uffdnative probe --json > probe.json   the same, for machines",
            "uffdnative <verb> --help               a verb's options and examples");
        HelpText.Install(root);
        CliConventions.Apply(root);
        return root;
    }

    internal static string RenameExecutable(string help)
    {
        var exe = RootCommand.ExecutableName;
        return exe == "uffdnative" ? help : help.Replace($"Usage:\n  {exe} ", "Usage:\n  uffdnative ", StringComparison.Ordinal);
    }

    /// <summary>Parses, runs and maps every outcome to an exit code. Never lets an exception out.</summary>
    public static int Run(string[] args, TextWriter? stdout = null, TextWriter? stderr = null)
    {
        var output = stdout ?? Console.Out;
        var error = stderr ?? Console.Error;
        ParseResult parsed;
        try
        {
            parsed = BuildRoot().Parse(args);
        }
        catch (Exception e)
        {
            return CliErrors.Report(e, error, withStackTrace: false);
        }

        if (parsed.Errors.Count > 0 && parsed.Action is ParseErrorAction or null)
        {
            // One line, no stack trace, no help dump: the first problem and where to look.
            // "Required command was not provided" says less than "Unrecognized command 'x'": only when alone.
            var errors = parsed.Errors.Where(e => !e.Message.StartsWith("Required command", StringComparison.Ordinal)).ToList();
            if (errors.Count == 0)
                errors = [.. parsed.Errors];
            var first = CliErrors.OneLine(errors[0].Message);
            var more = errors.Count > 1 ? $" (and {errors.Count - 1} more problem{(errors.Count > 2 ? "s" : "")})" : "";
            var verb = parsed.CommandResult.Command is RootCommand ? "" : " " + parsed.CommandResult.Command.Name;
            error.WriteLine($"uffdnative: {first}{more} — see 'uffdnative{verb} --help'.");
            return ExitCodes.Usage;
        }

        var verbosity = parsed.GetValue(VerbosityOption);
        var formatText = parsed.GetValue(LogFormatOption);
        if (!CliLog.TryParseFormat(formatText, out var logFormat))
            return CliErrors.Report(new CliUsageException($"--log-format: '{formatText}' is not a format; use simple or json."), error, withStackTrace: false);
        using var logging = CliLog.Configure(verbosity, logFormat);
        var log = CliLog.For("uffdnative");
        var started = System.Diagnostics.Stopwatch.StartNew();
        log.LogDebug("uffdnative {Version} on .NET {Runtime}, kernel {Kernel}: {Verb} {Arguments}",
            typeof(CliApp).Assembly.GetName().Version, Environment.Version, Environment.OSVersion.Version, parsed.CommandResult.Command.Name, string.Join(' ', args));
        int exitCode = ExitCodes.Failure;
        try
        {
            using var signals = CliSignals.Install(error);
            // Help names the command as invoked; under `dotnet UffdNative.Cli.dll` that is the
            // assembly, so help is rendered to a buffer and shown under the tool's name.
            bool help = parsed.Action is HelpText.ExamplesHelpAction;
            var sink = help ? new StringWriter() : output;
            int rc = parsed.Invoke(new InvocationConfiguration
            {
                EnableDefaultExceptionHandler = false,
                Output = sink,
                Error = error,
            });
            if (help)
                output.Write(RenameExecutable(sink.ToString()!));
            return exitCode = rc;
        }
        catch (Exception e)
        {
            return exitCode = CliErrors.Report(e, error, withStackTrace: verbosity == Verbosity.Diagnostic);
        }
        finally
        {
            log.LogDebug("exit code {ExitCode} after {Milliseconds} ms", exitCode, started.ElapsedMilliseconds);
            CliLog.Reset();
        }
    }
}
