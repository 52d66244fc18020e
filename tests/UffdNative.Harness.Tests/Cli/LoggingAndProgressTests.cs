using System.Text.Json;
using System.Text.RegularExpressions;
using UffdNative.Cli.Commands;
using UffdNative.Cli.Infrastructure;

namespace UffdNative.Harness.Tests.Cli;

/// <summary>
/// What the CLI says on stderr besides its results: at -v detailed every uffd ioctl the run made, with its
/// arguments and result, tied to the executor's step that made it; --log-format json; and the live progress
/// of the long verbs, as plain log lines when stderr is not a terminal and as a bar on one. stdout never changes.
/// </summary>
public sealed partial class LoggingAndProgressTests
{
    /// <summary>The result part of check's text output: from the scenario table on (the header above it shows
    /// environment facts that other processes on this machine may change between two runs).</summary>
    private static string Results(string stdout) => stdout[stdout.IndexOf("scenario ", StringComparison.Ordinal)..];

    /// <summary>check's summary line: the cells iterated, and those the kernel ran (passed, diverged or errors).</summary>
    private static (int Cells, int Executed) Summary(string stdout)
    {
        var m = SummaryLine().Match(stdout);
        Assert.True(m.Success, stdout);
        int N(int g) => int.Parse(m.Groups[g].Value, System.Globalization.CultureInfo.InvariantCulture);
        return (N(1), N(2) + N(3) + N(4));
    }

    [GeneratedRegex(@"\d+ scenarios, (\d+) scenario × memory cells run: (\d+) passed, (\d+) diverged, (\d+) errors; \d+ not applicable")]
    private static partial Regex SummaryLine();

    [GeneratedRegex(@"^\d\d:\d\d:\d\d\.\d{3} dbug: UffdNative\.Harness\.Conformance\.KernelExecutor\[4001\] fault-around: op \d+ register (u\d) [a-z-]+\+(\d+)\.\.(\d+) ([A-Z|]+) -> ok$")]
    private static partial Regex RegisterStep();

    [GeneratedRegex(@"^\d\d:\d\d:\d\d\.\d{3} dbug: UffdNative\.Kernel\[1002\] UFFDIO_REGISTER\(uffd (\d+), \[0x([0-9a-f]+), \+0x([0-9a-f]+)\), mode ([A-Za-z, ]+)\) -> 0: ioctls 0x([0-9a-f]+) \[[A-Za-z0-9, ]+\]$")]
    private static partial Regex RegisterCall();

    [GeneratedRegex(@"^\d\d:\d\d:\d\d\.\d{3} dbug: UffdNative\.Kernel\[1001\] UFFDIO_API\(uffd (\d+), api 0xaa, features 0x([0-9a-f]+) \[[A-Za-z0-9, ]+\]\) -> 0: features 0x[0-9a-f]+, ioctls 0x[0-9a-f]+ \[[A-Za-z0-9, ]+\]$")]
    private static partial Regex ApiCall();

    [GeneratedRegex(@"; messages: (.*)$")]
    private static partial Regex StepMessages();

    [Fact]
    public void CheckAtDetailedShowsEachUffdIoctlItMadeAndTheResultsDoNotChange()
    {
        var plain = CliRunner.Run("check", "--scenario", "fault-around");
        var detailed = CliRunner.Run("check", "--scenario", "fault-around", "-v", "d");
        Assert.True(plain.ExitCode == 0, plain.ToString());
        Assert.True(detailed.ExitCode == 0, detailed.ToString());
        Assert.Equal("", plain.Stderr);
        Assert.Equal(Results(plain.Stdout), Results(detailed.Stdout));
        int cells = Summary(plain.Stdout).Executed;
        var lines = detailed.StderrLines;
        var setups = lines.Select((l, i) => (l, i)).Where(x => x.l.Contains("KernelExecutor[4000] fault-around: setup -> ", StringComparison.Ordinal)).ToList();
        // Each cell run on this kernel is one execution (n/a cells run nothing).
        Assert.Equal(cells, setups.Count);
        if (cells == 0)
            return; // this kernel runs no cell of the scenario: nothing the executor could have logged

        int registers = 0, resolutions = 0;
        foreach (var (setup, at) in setups)
        {
            // The handshake of the scenario's uffd right before its setup line: its fd and the features asked for.
            var api = lines.Take(at).Select(l => ApiCall().Match(l)).LastOrDefault(m => m.Success);
            Assert.True(api is not null, $"no UFFDIO_API before {setup}\n{detailed.Stderr}");
            string fd = api!.Groups[1].Value;
            int end = setups.Select(s => s.i).FirstOrDefault(i => i > at, lines.Count);
            for (int i = at + 1; i < end; i++)
            {
                if (RegisterStep().Match(lines[i]) is { Success: true } step)
                {
                    // The step's REGISTER is the kernel call logged just before it: same uffd, the step's length.
                    var call = RegisterCall().Match(lines[i - 1]);
                    Assert.True(call.Success, $"{lines[i]}\nnot preceded by its UFFDIO_REGISTER: {lines[i - 1]}");
                    Assert.Equal(fd, call.Groups[1].Value);
                    long pages = long.Parse(step.Groups[3].Value, System.Globalization.CultureInfo.InvariantCulture) - long.Parse(step.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture);
                    Assert.Equal(pages * 4096, Convert.ToInt64(call.Groups[3].Value, 16));
                    var modes = step.Groups[4].Value.Split('|').Select(m => m switch { "MISSING" => "Missing", "WP" => "WriteProtect", "MINOR" => "Minor", _ => m });
                    Assert.Equal(modes.Order(), call.Groups[4].Value.Split(", ").Order());
                    registers++;
                }
                if (lines[i].Contains("KernelExecutor[4001]", StringComparison.Ordinal) && StepMessages().Match(lines[i]) is { Success: true } msgs)
                {
                    // Every resolution the executor reports ("=> continue", "=> copy", ...) is a logged ioctl on that
                    // uffd since the previous step, with the kernel's result.
                    int from = i - 1;
                    while (from > at && !lines[from].Contains("KernelExecutor[", StringComparison.Ordinal))
                        from--;
                    var calls = lines.Skip(from + 1).Take(i - from - 1).Where(l => l.Contains("UffdNative.Kernel[", StringComparison.Ordinal)).ToList();
                    foreach (var m in msgs.Groups[1].Value.Split(", ").Where(m => m.Contains(" => ", StringComparison.Ordinal)))
                    {
                        foreach (var resolution in m[(m.IndexOf(" => ", StringComparison.Ordinal) + 4)..].Split(' '))
                        {
                            var name = resolution.Split(':')[0];
                            var ioctl = name switch
                            {
                                "copy" or "copy-wp" => "UFFDIO_COPY",
                                "continue" or "continue-wp" => "UFFDIO_CONTINUE",
                                "zeropage" => "UFFDIO_ZEROPAGE",
                                "protect" or "unprotect" => "UFFDIO_WRITEPROTECT",
                                "move" => "UFFDIO_MOVE",
                                "wake" => "UFFDIO_WAKE",
                                _ => null,
                            };
                            if (ioctl is null)
                                continue; // "no resolution (the server ended)"
                            var result = resolution.Contains(':') ? "-" + resolution.Split(':')[1] : "0";
                            Assert.True(calls.Any(c => c.Contains($"] {ioctl}(uffd {fd}, ", StringComparison.Ordinal) && c.Contains($") -> {result}", StringComparison.Ordinal)),
                                $"{lines[i]}\nhas no logged {ioctl} -> {result} on uffd {fd} before it:\n{string.Join("\n", calls)}");
                            resolutions++;
                        }
                    }
                }
            }
        }
        // fault-around registers its ranges and resolves at least one fault through the handler in every cell.
        Assert.True(registers >= cells, $"{registers} REGISTER steps in {cells} cells\n{detailed.Stderr}");
        Assert.True(resolutions >= cells, $"{resolutions} resolutions in {cells} cells\n{detailed.Stderr}");
    }

    [Fact]
    public void LogFormatJsonWritesOneObjectPerLineWithTheCategoryAndEventId()
    {
        var r = CliRunner.Run("--log-format", "json", "-v", "d", "check", "--scenario", "fault-around");
        var plain = CliRunner.Run("check", "--scenario", "fault-around");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(Results(plain.Stdout), Results(r.Stdout));
        var categories = new HashSet<string>();
        var kernelEvents = new HashSet<int>();
        foreach (var line in r.StderrLines)
        {
            using var doc = JsonDocument.Parse(line); // one complete object per line
            var o = doc.RootElement;
            Assert.Equal(JsonValueKind.Object, o.ValueKind);
            var category = o.GetProperty("Category").GetString()!;
            int id = o.GetProperty("EventId").GetInt32();
            Assert.Contains(o.GetProperty("LogLevel").GetString(), new[] { "Debug", "Information", "Warning" });
            Assert.False(string.IsNullOrEmpty(o.GetProperty("Message").GetString()));
            Assert.True(DateTimeOffset.TryParse(o.GetProperty("Timestamp").GetString(), System.Globalization.CultureInfo.InvariantCulture, out _), line);
            categories.Add(category);
            if (category == "UffdNative.Kernel")
            {
                kernelEvents.Add(id);
                Assert.StartsWith(id == 1000 ? "open userfaultfd" : "UFFDIO_", o.GetProperty("Message").GetString(), StringComparison.Ordinal);
            }
        }
        Assert.Contains("uffdnative", categories);
        Assert.Contains("UffdNative.Kernel", categories);
        // The open, the handshake and the registration are made whatever the kernel (the detectors make them).
        Assert.Superset(new HashSet<int> { 1000, 1001, 1002 }, kernelEvents);
        if (Summary(plain.Stdout).Executed > 0)
            Assert.Contains("UffdNative.Harness.Conformance.KernelExecutor", categories);
    }

    [Fact]
    public void CheckProgressIsLoggedAtNormalOnlyAndNeverOnStdout()
    {
        var quiet = CliRunner.Run("check", "--scenario", "fault-around");
        var normal = CliRunner.Run("check", "--scenario", "fault-around", "-v", "n");
        Assert.True(normal.ExitCode == 0, normal.ToString());
        Assert.Equal("", quiet.Stderr);
        Assert.Equal(Results(quiet.Stdout), Results(normal.Stdout));
        Assert.DoesNotContain("progress", normal.Stdout, StringComparison.Ordinal);
        int cells = Summary(quiet.Stdout).Cells;
        var progress = normal.StderrLines.Where(l => l.Contains("uffdnative.progress[0]", StringComparison.Ordinal)).ToList();
        Assert.Equal($"info: uffdnative.progress[0] check {cells} cells: done ({cells}/{cells} steps)", progress[^1]);
        // On the way, one line at each further tenth, naming the cell just done and its verdict.
        Assert.All(progress.SkipLast(1), l => Assert.Matches($@"^info: uffdnative\.progress\[0\] check {cells} cells: \d+/{cells} \(\d+%\) fault-around × [a-z-]+: (pass|notapplicable|diverged|error); \d+ diverged or failed$", l));
        int tenths = Enumerable.Range(1, cells).Select(d => d * 10 / cells).Where(t => t is > 0 and < 10).Distinct().Count();
        Assert.Equal(tenths, progress.Count - 1);
    }

    [Fact]
    public void FuzzProgressIsLoggedAtNormalOnlyAndNeverOnStdout()
    {
        var quiet = CliRunner.Run("fuzz", "--seed", "1", "--seconds", "2");
        var normal = CliRunner.Run("fuzz", "--seed", "1", "--seconds", "2", "-v", "n");
        Assert.True(quiet.ExitCode == 0, quiet.ToString());
        Assert.True(normal.ExitCode == 0, normal.ToString());
        Assert.Equal("", quiet.Stderr);
        foreach (var r in new[] { quiet, normal })
        {
            Assert.StartsWith("fuzz seed 1 on ", r.Stdout, StringComparison.Ordinal);
            Assert.DoesNotContain("progress", r.Stdout, StringComparison.Ordinal);
            Assert.EndsWith("0 divergences\n", r.Stdout, StringComparison.Ordinal);
        }
        var progress = normal.StderrLines.Where(l => l.Contains("uffdnative.progress[0]", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(progress);
        Assert.Matches(@"^info: uffdnative\.progress\[0\] fuzz for 2 s: done \(2000/2000 steps\)$", progress[^1]);
        // Time is the measure of a --seconds run; the status carries scenarios, divergences and the rate.
        Assert.All(progress.SkipLast(1), l => Assert.Matches(@"^info: uffdnative\.progress\[0\] fuzz for 2 s: \d+/2000 \(\d0%\) \d+ scenarios, 0 divergences, \d+ scenarios/s$", l));
    }

    [Fact]
    public void OnATerminalFuzzDrawsTheProgressBarOnStderr()
    {
        // script(1) gives the CLI a pseudo-terminal for stdin, stdout and stderr; what it drew is the typescript.
        var log = Path.Combine(Path.GetTempPath(), $"uffdnative-pty-{Guid.NewGuid():N}.txt");
        try
        {
            // fuzz for 2 s rather than a check of a few cells: a run shorter than the bar's first refresh draws nothing.
            var command = $"{CliRunner.DotnetHost} {CliRunner.CliDll()} fuzz --seed 1 --seconds 2";
            var r = CliRunner.Exec(["script", "-q", "-e", "-c", command, log], environment: new Dictionary<string, string> { ["TERM"] = "xterm-256color", ["COLUMNS"] = "160", ["LINES"] = "40" });
            Assert.True(r.ExitCode == 0, r.ToString());
            var drawn = File.ReadAllText(log);
            // The task's description and status as the bar shows them; the summary follows on stdout.
            Assert.Contains("fuzz for 2 s", drawn, StringComparison.Ordinal);
            Assert.Matches(@"\d+ scenarios, 0 divergences, \d+ scenarios/s", drawn);
            Assert.Contains("0 divergences", drawn, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(log);
        }
    }

    private sealed class RecordingSink : IProgressSink
    {
        public List<(long Done, long Total, string Status)> Updates { get; } = [];
        public void Advance(long steps = 1) => throw new InvalidOperationException("matrix progress is absolute");
        public void Status(string text) => throw new InvalidOperationException("matrix progress is absolute");
        public void Update(long done, long total, string status) => Updates.Add((done, total, status));
        public void Line(string text) => throw new InvalidOperationException("not a line");
    }

    [Fact]
    public void MatrixProgressCountsStepsOfKernelsFromTheScriptsEvents()
    {
        var sink = new RecordingSink();
        var p = new MatrixProgress(sink);
        var file = Path.Combine(Path.GetTempPath(), $"uffdnative-km-{Guid.NewGuid():N}.tsv");
        try
        {
            // What kernel-matrix.sh appends (km_progress): a plan, steps as they end, kernels as they end.
            File.WriteAllText(file, "plan\t2\t3\nstep\thost\tprobe.json\t0\texit 0\nstep\thost\tprobe-nobody.json\t65534\texit 0\nstep\thost\tcheck.json\t0\tFAI");
            long offset = p.ReadFrom(file, 0);
            Assert.Equal((2L, 6L), (p.Done, p.Total)); // the line being written is left for later
            File.AppendAllText(file, "LED\nkernel\thost\t1\tstep failed\nkernel\t6.1\t3\tsetup failed\n");
            offset = p.ReadFrom(file, offset);
            Assert.Equal(new FileInfo(file).Length, offset);
            Assert.Equal((6L, 6L), (p.Done, p.Total)); // a kernel that could not be set up ran none of its 3 steps
            Assert.Equal([(0L, 6L, "0/2 kernels"), (1, 6, "0/2 kernels; host: probe.json (uid 0) exit 0"), (2, 6, "0/2 kernels; host: probe-nobody.json (uid 65534) exit 0"),
                (3, 6, "0/2 kernels; host: check.json (uid 0) FAILED"), (3, 6, "1/2 kernels; host: step failed"), (6, 6, "2/2 kernels; 6.1: setup failed")], sink.Updates);
        }
        finally
        {
            File.Delete(file);
        }
    }
}
