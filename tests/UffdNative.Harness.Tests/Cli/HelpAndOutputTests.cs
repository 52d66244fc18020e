using Microsoft.Extensions.Logging;
using UffdNative.Cli;

namespace UffdNative.Harness.Tests.Cli;

/// <summary>
/// The CLI's shared behaviour: help with examples and the exit codes, -v/--verbosity logging that
/// never touches stdout, progress that falls back to log lines, tables without ANSI when
/// redirected, the error → exit code mapping and the diagnosis of a failed open.
/// </summary>
public sealed class HelpAndOutputTests
{
    [Fact]
    public void RootHelpShowsTheVerbsExamplesAndTheDocumentedExitCodes()
    {
        var r = CliRunner.Run("--help");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("", r.Stderr);
        Assert.Contains("Usage:\n  uffdnative [command] [options]", r.Stdout, StringComparison.Ordinal);
        foreach (var verb in CliApp.BuildRoot().Subcommands)
            Assert.Contains($"\n  {verb.Name} ", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("-v, --verbosity <level>", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("Examples:\n  uffdnative probe ", r.Stdout, StringComparison.Ordinal);
        Assert.Contains(HelpText.ExitCodesText, r.Stdout, StringComparison.Ordinal);
        Assert.Equal(
            ["  0  ok: everything ran and agreed", "  1  a divergence, failed check or failure was found"],
            HelpText.ExitCodesText.Split('\n')[1..3]);
        Assert.Equal((0, 1, 2, 3), (ExitCodes.Ok, ExitCodes.Failure, ExitCodes.Usage, ExitCodes.Environment));
    }

    [Fact]
    public void EveryVerbHasHelpWithExamplesOfItself()
    {
        var verbs = CliApp.BuildRoot().Subcommands.ToList();
        Assert.Contains(verbs, v => v.Name == "probe");
        foreach (var verb in verbs)
        {
            var r = CliRunner.Run(verb.Name, "--help");
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.Contains($"Usage:\n  uffdnative {verb.Name} ", r.Stdout, StringComparison.Ordinal);
            var examples = HelpText.ExamplesOf(verb);
            Assert.NotEmpty(examples);
            Assert.All(examples, e => Assert.StartsWith($"uffdnative {verb.Name}", e.Replace("sudo ", "", StringComparison.Ordinal), StringComparison.Ordinal));
            Assert.Contains("Examples:\n" + string.Join("\n", examples.Select(e => "  " + e)), r.Stdout, StringComparison.Ordinal);
            Assert.DoesNotContain("Exit codes:", r.Stdout, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void NoVerbReusesANameOrAliasOfTheGlobalOptions()
    {
        var root = CliApp.BuildRoot();
        var global = root.Options.Where(o => o.Recursive).SelectMany(o => o.Aliases.Append(o.Name)).ToHashSet();
        Assert.Contains("-v", global);
        Assert.Contains("--verbosity", global);
        foreach (var verb in root.Subcommands)
            foreach (var option in verb.Options)
                Assert.False(option.Aliases.Append(option.Name).Any(global.Contains), $"{verb.Name} {option.Name} reuses a global option's name ({string.Join(", ", option.Aliases)})");
    }

    [Fact]
    public void VerbosityLogsOnStderrAndLeavesJsonOnStdoutClean()
    {
        var detailed = CliRunner.Run("-v", "detailed", "probe", "--rows", "wp-shmem-markers", "--json");
        Assert.True(detailed.ExitCode == 0, detailed.ToString());
        using (var doc = JsonDocument.Parse(detailed.Stdout))
            Assert.Equal("uffdnative", doc.RootElement.GetProperty("tool").GetString());
        // The CLI's first and last lines; between them only the kernel calls the probe made (LoggingTests checks their content).
        Assert.True(detailed.StderrLines.Count > 2, detailed.ToString());
        Assert.Matches(@"^\d\d:\d\d:\d\d\.\d{3} dbug: uffdnative\[0\] uffdnative \d+\.\d+\.\d+\.\d+ on \.NET 10\.\d+\.\d+, kernel [\d.]+: probe -v detailed probe --rows wp-shmem-markers --json$", detailed.StderrLines[0]);
        Assert.Matches(@"^\d\d:\d\d:\d\d\.\d{3} dbug: uffdnative\[0\] exit code 0 after \d+ ms$", detailed.StderrLines[^1]);
        Assert.All(detailed.StderrLines.Skip(1).SkipLast(1), l => Assert.Matches(@"^\d\d:\d\d:\d\d\.\d{3} dbug: UffdNative\.Kernel\[10\d\d\] (open userfaultfd|UFFDIO_)", l));

        // The short forms, and the default: nothing but the result.
        var quiet = CliRunner.Run("probe", "--rows", "wp-shmem-markers", "--json", "-v", "q");
        Assert.True(quiet is { ExitCode: 0, Stderr: "" }, quiet.ToString());
        var normal = CliRunner.Run("probe", "--rows", "wp-shmem-markers", "--json");
        Assert.True(normal is { ExitCode: 0, Stderr: "" }, normal.ToString());
        Assert.True(CliLog.TryParse("diag", out var v) && v == Verbosity.Diagnostic);
        Assert.False(CliLog.TryParse("loud", out _));
    }

    private sealed class CapturingLogger : ILogger
    {
        public List<string> Lines { get; } = [];
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Lines.Add($"{logLevel}: {formatter(state, exception)}");
    }

    [Fact]
    public void ProgressWithoutATerminalLogsEachTenthAndTheEnd()
    {
        var log = new CapturingLogger();
        var sink = new CliProgress.LogSink(log, "fuzz 50 cases", 50);
        sink.Status("seed 7");
        for (int i = 0; i < 50; i++)
            sink.Advance();
        sink.Finish();
        Assert.Equal(10, log.Lines.Count);
        Assert.Equal("Information: fuzz 50 cases: 5/50 (10%) seed 7", log.Lines[0]);
        Assert.Equal("Information: fuzz 50 cases: 45/50 (90%) seed 7", log.Lines[8]);
        Assert.Equal("Information: fuzz 50 cases: done (50/50 steps)", log.Lines[9]);

        // Through the public entry point, with --json (no live bar): the work runs once and its result comes back.
        int calls = 0;
        Assert.Equal(42, CliProgress.Run("bench", 3, json: true, s => { calls++; s.Advance(3); return 42; }));
        Assert.Equal(1, calls);
    }

    [Fact]
    public void TablesArePlainTextWhenRedirected()
    {
        var stdout = new StringWriter();
        CliConsole.Redirect(stdout, null);
        try
        {
            CliConsole.WriteTable(["kernel", "WP on shmem"], [["6.1.0-56", "0x17c"], ["6.18.44", "0x17c"]], "register masks");
        }
        finally
        {
            CliConsole.Redirect(null, null);
        }
        var text = stdout.ToString();
        Assert.DoesNotContain("\u001b[", text, StringComparison.Ordinal);
        var lines = text.Split('\n').Select(l => l.TrimEnd()).Where(l => l.Length > 0).ToList();
        Assert.Contains(lines, l => l.Trim() == "register masks");
        Assert.Contains(lines, l => l.Contains("kernel", StringComparison.Ordinal) && l.Contains("WP on shmem", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("6.1.0-56", StringComparison.Ordinal) && l.Contains("0x17c", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("6.18.44", StringComparison.Ordinal));
    }

    public static TheoryData<string, int, string> Exceptions() => new()
    {
        { "usage", ExitCodes.Usage, "--cases must be between 1 and 100000 (got 0)." },
        { "environment", ExitCodes.Environment, "qemu-system-x86_64 is not installed" },
        { "register", ExitCodes.Failure, "UFFDIO_REGISTER(Minor) failed: EINVAL" },
        { "open", ExitCodes.Environment, "open userfaultfd failed: EPERM" },
        { "json", ExitCodes.Usage, "malformed JSON: " },
        { "missing", ExitCodes.Usage, "file not found: /x/y.json" },
        { "bug", ExitCodes.Failure, "internal error: InvalidOperationException: a bug" },
        { "shim", ExitCodes.Environment, "the native shim libuffdshim.so could not be loaded" },
    };

    [Theory]
    [MemberData(nameof(Exceptions))]
    public void EveryExceptionMapsToADocumentedExitCodeAndOneLine(string kind, int exitCode, string says)
    {
        Exception e = kind switch
        {
            "usage" => new CliUsageException("--cases must be between 1 and 100000 (got 0)."),
            "environment" => new CliEnvironmentException("qemu-system-x86_64 is not installed"),
            "register" => new UffdException("UFFDIO_REGISTER(Minor)", Errno.EINVAL, "MINOR mode needs shmem", "register MINOR only on memfd"),
            "open" => new UffdException("open userfaultfd", Errno.EPERM, "a seccomp filter\nis active", "allow it"),
            "json" => new JsonException("'}' is invalid"),
            "missing" => new FileNotFoundException("gone", "/x/y.json"),
            "bug" => new InvalidOperationException("a bug"),
            _ => new DllNotFoundException("libuffdshim.so: cannot open shared object file"),
        };
        var error = new StringWriter();
        Assert.Equal(exitCode, CliErrors.Report(e, error, withStackTrace: false));
        var lines = error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("uffdnative: " + says, lines[0], StringComparison.Ordinal);
        Assert.Equal(kind == "bug" ? 2 : 1, lines.Length); // a bug adds where to get the stack trace
        Assert.DoesNotContain("   at ", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void SharedOptionFactoriesRefuseBadValuesWithOneLine()
    {
        var cases = CliOptions.Int("--cases", "Scenarios to run", 100, 1, 100_000);
        var input = CliOptions.InputFile("--scenario-file", "A scenario JSON");
        var output = CliOptions.OutputFile("--output", "Where to write", "-o");
        var cmd = new System.CommandLine.Command("fuzz") { cases, input, output };
        string Error(params string[] args) => string.Join(" | ", cmd.Parse(args).Errors.Select(e => e.Message));

        Assert.Equal("", Error("--cases", "5"));
        Assert.Equal(100, cmd.Parse([]).GetValue(cases));
        Assert.Equal("--cases must be between 1 and 100000 (got 0).", Error("--cases", "0"));
        Assert.Equal("--cases must be between 1 and 100000 (got 100001).", Error("--cases", "100001"));
        Assert.StartsWith("Cannot parse argument 'many' for option '--cases' as expected type 'System.Int32'", Error("--cases", "many"), StringComparison.Ordinal);
        Assert.Equal("--scenario-file: file not found: '/nonexistent/s.json'.", Error("--scenario-file", "/nonexistent/s.json"));
        Assert.Equal("--scenario-file: '/tmp' is a directory, not a file.", Error("--scenario-file", "/tmp"));
        Assert.Equal("--output: cannot write '/nonexistent/o.json': directory '/nonexistent' does not exist.", Error("-o", "/nonexistent/o.json"));
        Assert.Equal("--output: '/tmp' is a directory; give a file name.", Error("-o", "/tmp"));
        Assert.Equal("--output: an empty path; give a file name, or '-' for standard output.", Error("-o", ""));
        Assert.Equal("--output: '/dev/full' is a character device, not a regular file; give a file name, or '-' for standard output.", Error("-o", "/dev/full"));
        Assert.Equal("", Error("-o", "-"));

        var bad = Path.Combine(Path.GetTempPath(), $"uffdnative-bad-{Guid.NewGuid():N}.json");
        File.WriteAllText(bad, "{\"a\": [1, 2,, 3]}");
        try
        {
            var e = Assert.Throws<CliUsageException>(() => CliFiles.ReadJson(new FileInfo(bad), ReportJson.Default.DictionaryStringObject, "scenario"));
            Assert.StartsWith($"scenario '{bad}' is not valid JSON at line 1, byte ", e.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("\n", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(bad);
        }
        var unwritable = Assert.Throws<CliUsageException>(() => CliFiles.WriteOutput("/proc/uffdnative-x.json", "{}"));
        Assert.Equal("--output: cannot write '/proc/uffdnative-x.json': no such file or directory", unwritable.Message);
    }

    private static UffdOpenAttempt Refused(UffdOpenPath p, int errno, string detail, string remedy) => new(p, errno, detail, remedy);

    [Fact]
    public void AFailedOpenIsDiagnosedOnOneLineWithTheFixThatCoversIt()
    {
        // Docker's default profile, no device: user-mode-only refused, so only a filter can be the cause.
        var docker = EnvironmentDiagnosis.From([
            Refused(UffdOpenPath.Device, Errno.ENOENT, "/dev/userfaultfd does not exist", "pass --device /dev/userfaultfd"),
            Refused(UffdOpenPath.Syscall, Errno.EPERM, "lacks CAP_SYS_PTRACE", "run the container with --cap-add SYS_PTRACE, or ...; if that does not help, " + Remedies.SeccompAdvice),
            Refused(UffdOpenPath.SyscallUserModeOnly, Errno.EPERM, "even UFFD_USER_MODE_ONLY was refused (Seccomp: 2)", Remedies.SeccompAdvice),
        ]);
        Assert.False(docker.Usable);
        Assert.Equal([Remedies.SeccompAdvice], docker.Fixes);
        Assert.Equal("userfaultfd cannot be opened here: Device ENOENT (/dev/userfaultfd does not exist); Syscall EPERM (lacks CAP_SYS_PTRACE); " +
            "SyscallUserModeOnly EPERM (even UFFD_USER_MODE_ONLY was refused (Seccomp: 2)). Fix: " + Remedies.SeccompAdvice, docker.OneLine());

        // An unprivileged user under a filter: the device's own fix is needed as well.
        var nobody = EnvironmentDiagnosis.From([
            Refused(UffdOpenPath.Device, Errno.EACCES, "not accessible to uid 65534", "sudo setfacl -m u:$USER:rw /dev/userfaultfd"),
            Refused(UffdOpenPath.Syscall, Errno.EPERM, "vm.unprivileged_userfaultfd=0", Remedies.UnprivilegedAdvice),
            Refused(UffdOpenPath.SyscallUserModeOnly, Errno.EPERM, "refused (Seccomp: 2)", Remedies.SeccompAdvice),
        ]);
        Assert.Equal([Remedies.SeccompAdvice, "sudo setfacl -m u:$USER:rw /dev/userfaultfd"], nobody.Fixes);

        // Only user-mode-only works: usable, through the fallback, and the caveat says what it narrows.
        var fallback = EnvironmentDiagnosis.From([
            new OpenPathOutcome("Syscall", false, "EPERM", "vm.unprivileged_userfaultfd=0", Remedies.UnprivilegedAdvice),
            new OpenPathOutcome("SyscallUserModeOnly", true, "OK", "", ""),
            new OpenPathOutcome("Device", false, "EACCES", "not accessible", "setfacl"),
        ]);
        Assert.True(fallback.UserModeOnlyFallback);
        Assert.StartsWith("userfaultfd       usable only through the fallback UFFD_USER_MODE_ONLY: faults raised in kernel mode", fallback.Lines().First(), StringComparison.Ordinal);

        // The mapping uses it for any verb whose open fails (the attempts travel in the exception).
        var e = new UffdException("open userfaultfd", Errno.EPERM, "x", "y") { Data = { ["attempts"] = new List<UffdOpenAttempt>(docker.Refusals.Select(r => Refused(Enum.Parse<UffdOpenPath>(r.Path), r.Errno == "ENOENT" ? Errno.ENOENT : Errno.EPERM, r.Detail, r.Remedy))) } };
        Assert.Equal((ExitCodes.Environment, docker.OneLine()), CliErrors.Classify(e));
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, object>))]
internal sealed partial class ReportJson : System.Text.Json.Serialization.JsonSerializerContext;
