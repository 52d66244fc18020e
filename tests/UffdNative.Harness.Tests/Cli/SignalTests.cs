using System.Globalization;

namespace UffdNative.Harness.Tests.Cli;

/// <summary>
/// Signals at the worst moment leave the host as found. The CLI runs as the leader of its own process group
/// (setsid), with its journal in a private state directory (UFFDNATIVE_STATE_DIR). Every signal is sent at a
/// moment the test observed — vm.nr_hugepages raised by the probe (checked again while the process is
/// stopped with SIGSTOP, so the signal lands inside the change, not after it), or a progress line of fuzz —
/// never after a sleep.
/// </summary>
[Collection(HostChangesCollection.Name)]
public sealed class SignalTests : IDisposable
{
    private const string Knob = "/proc/sys/vm/nr_hugepages";
    private readonly string state = Directory.CreateTempSubdirectory("uffdnative-state-").FullName;

    public void Dispose() => Directory.Delete(state, recursive: true);

    private static int ReadKnob() => int.Parse(File.ReadAllText(Knob).Trim(), CultureInfo.InvariantCulture);

    private static bool HugePagesFree() =>
        File.ReadLines("/proc/meminfo").First(l => l.StartsWith("HugePages_Free:", StringComparison.Ordinal)).Split(':')[1].Trim() != "0";

    private sealed class Run(Process process, StringBuilder stdout, StringBuilder stderr) : IDisposable
    {
        public Process Process { get; } = process;
        public int Pid => Process.Id;

        public string Stdout { get { lock (stdout) return stdout.ToString(); } }
        public string Stderr { get { lock (stderr) return stderr.ToString(); } }

        public void Signal(string name) => Assert.Equal(0, CliRunner.Exec(["kill", "-s", name, Pid.ToString(CultureInfo.InvariantCulture)]).ExitCode);

        public int Wait()
        {
            if (!Process.WaitForExit(120_000))
            {
                Process.Kill(entireProcessTree: true);
                Assert.Fail($"the CLI did not end within 120 s after the signal\n{Stdout}\n{Stderr}");
            }
            Process.WaitForExit();
            return Process.ExitCode;
        }

        /// <summary>Processes left in the CLI's process group (forked children, helpers).</summary>
        public List<int> Leftovers()
        {
            var left = new List<int>();
            foreach (var d in Directory.EnumerateDirectories("/proc"))
            {
                if (!int.TryParse(Path.GetFileName(d), out int pid))
                    continue;
                try
                {
                    var stat = File.ReadAllText(Path.Combine(d, "stat"));
                    var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                    if (fields[2] == Pid.ToString(CultureInfo.InvariantCulture) && fields[0] != "Z")
                        left.Add(pid);
                }
                catch (IOException)
                {
                    // gone meanwhile
                }
            }
            return left;
        }

        public void Dispose()
        {
            if (!Process.HasExited)
                Process.Kill(entireProcessTree: true);
            Process.Dispose();
        }
    }

    private Run Start(params string[] args)
    {
        var psi = new ProcessStartInfo("setsid") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var a in (string[])[CliRunner.DotnetHost, CliRunner.CliDll(), .. args])
            psi.ArgumentList.Add(a);
        psi.Environment["UFFDNATIVE_STATE_DIR"] = state;
        psi.Environment["NO_COLOR"] = "1";
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        var p = Process.Start(psi)!;
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (stdout) stdout.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        p.StandardInput.Close();
        return new Run(p, stdout, stderr);
    }

    /// <summary>Starts probe --allow-host-changes until one run is caught (stopped) while its reservation is
    /// in place: the knob above <paramref name="before"/> while the process cannot run. Null when the probe
    /// never reserves here (huge pages already free, or the kernel could not allocate any).</summary>
    private Run? CatchProbeHoldingHugePages(int before)
    {
        for (int attempt = 0; attempt < 12; attempt++)
        {
            var run = Start("probe", "--allow-host-changes", "--rows", "wp-shmem-markers", "--json");
            while (!run.Process.HasExited)
            {
                if (ReadKnob() > before)
                {
                    run.Signal("STOP");
                    if (ReadKnob() > before)
                        return run; // stopped inside the change
                    run.Signal("CONT");
                    break;
                }
                Thread.Sleep(1); // polling an observation, not waiting for time to pass
            }
            run.Wait();
            Assert.Equal(before, ReadKnob());
            if (run.Stdout.Contains("hugetlbfs rows skipped", StringComparison.Ordinal))
                return null;
            run.Dispose();
        }
        Assert.Fail("12 probe runs ended their reservation before it could be observed");
        return null;
    }

    [Theory]
    [InlineData("INT", 130)]
    [InlineData("TERM", 143)]
    public void SigintOrSigtermDuringProbeAllowHostChangesRestoresTheHugePages(string signal, int exitCode)
    {
        int before = ReadKnob();
        if (HugePagesFree())
        {
            // The probe uses free pages as they are and changes nothing: that is what must be reported.
            var r = CliRunner.Run("probe", "--allow-host-changes", "--rows", "wp-shmem-markers", "--json");
            Assert.Contains("free reserved", r.Stdout, StringComparison.Ordinal);
            Assert.Equal(before, ReadKnob());
            return;
        }
        using var run = CatchProbeHoldingHugePages(before);
        if (run is null)
            return; // the probe reported it could not reserve (checked in CatchProbeHoldingHugePages)
        Assert.True(File.Exists(Directory.GetFiles(Path.Combine(state, "journal"), "*.journal").Single()), "journalled before the change");
        run.Signal(signal);
        run.Signal("CONT");
        int exit = run.Wait();
        Assert.True(exit == exitCode, $"exit {exit}\n{run.Stderr}");
        Assert.Equal(before, ReadKnob());
        // The handler restores (its line names the change) — unless, once continued, the probe's own restore
        // ran first: then the handler finds nothing left to do. Either way the knob is back, checked above.
        Assert.Matches($"uffdnative: interrupted by SIG{signal}: (restored vm.nr_hugepages={before} |no host change to restore)", run.Stderr);
        Assert.Empty(Directory.GetFiles(Path.Combine(state, "journal")));
        Assert.Empty(run.Leftovers());
    }

    [Fact]
    public void AfterSigkillTheNextStartRestoresTheHugePagesAndSaysSo()
    {
        int before = ReadKnob();
        if (HugePagesFree())
            return; // nothing is reserved here (see the SIGINT test, which asserts that this is reported)
        int pid;
        using (var run = CatchProbeHoldingHugePages(before))
        {
            if (run is null)
                return;
            pid = run.Pid;
            run.Signal("KILL");
            run.Wait();
        }
        // Killed: nothing could restore, the journal says what to undo.
        Assert.True(ReadKnob() > before, "the reservation stays until the next start");
        Assert.Single(Directory.GetFiles(Path.Combine(state, "journal"), "*.journal"));

        using var next = Start("check", "--list");
        Assert.Equal(0, next.Wait());
        Assert.Equal(before, ReadKnob());
        Assert.Contains($"uffdnative: restored vm.nr_hugepages={before}", next.Stderr, StringComparison.Ordinal);
        Assert.Contains($"left by an earlier run (pid {pid}) that was killed before it could restore it", next.Stderr, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(Path.Combine(state, "journal")));
    }

    [Theory]
    [InlineData("INT", 130)]
    [InlineData("TERM", 143)]
    public void SigintOrSigtermDuringFuzzEndsItWithNothingLeftBehind(string signal, int exitCode)
    {
        var output = Path.Combine(state, "repro");
        using var run = Start("fuzz", "--seed", "1", "--seconds", "120", "--output", output);
        var deadline = Stopwatch.StartNew();
        while (!run.Stdout.Contains(" scenarios, ", StringComparison.Ordinal))
        {
            Assert.False(run.Process.HasExited, $"fuzz ended before its first progress line\n{run.Stdout}\n{run.Stderr}");
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(90), "no progress line within 90 s");
            Thread.Sleep(5); // polling an observation
        }
        run.Signal(signal);
        int exit = run.Wait();
        Assert.True(exit == exitCode, $"exit {exit}\n{run.Stderr}");
        Assert.Contains($"uffdnative: interrupted by SIG{signal}: no host change to restore", run.Stderr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(output), "no reproducer (half-)written");
        Assert.Empty(run.Leftovers());
    }

    /// <summary>Entries of /tmp and /dev/shm that carry a pid in their name (the sockets' private
    /// directories are uffdnative-TAG-PID-...). The .NET runtime's own diagnostics endpoints
    /// (dotnet-diagnostic-PID-*, clr-debug-pipe-PID-*) are not the project's: any .NET process killed by
    /// SIGKILL leaves them.</summary>
    private static List<string> TempEntriesOf(int pid) =>
        [.. new[] { "/tmp", "/dev/shm" }.Where(Directory.Exists).SelectMany(Directory.EnumerateFileSystemEntries)
            .Where(e => Path.GetFileName(e).Contains($"-{pid}-", StringComparison.Ordinal))
            .Where(e => !Path.GetFileName(e).StartsWith("dotnet-diagnostic-", StringComparison.Ordinal) && !Path.GetFileName(e).StartsWith("clr-debug-pipe-", StringComparison.Ordinal))];

    /// <summary>Pids of live handler hosts whose parent is <paramref name="parent"/>, or that were started
    /// with a socket under a directory of that pid (the orphan a killed parent would leave).</summary>
    private static List<int> HandlerHostsOf(int parent)
    {
        var found = new List<int>();
        foreach (var d in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(d), out int pid))
                continue;
            try
            {
                var cmd = File.ReadAllText(Path.Combine(d, "cmdline")).Split('\0');
                if (cmd.Any(a => a.EndsWith("UffdNative.HandlerHost.dll", StringComparison.Ordinal)) && cmd.Any(a => a.Contains($"-{parent}-", StringComparison.Ordinal)))
                    found.Add(pid);
            }
            catch (IOException)
            {
            }
        }
        return found;
    }

    /// <summary>True once <paramref name="done"/> holds, polled (an observation) within the bound.</summary>
    private static bool Eventually(Func<bool> done, int ms)
    {
        var sw = Stopwatch.StartNew();
        while (!done())
        {
            if (sw.ElapsedMilliseconds > ms)
                return false;
            Thread.Sleep(10);
        }
        return true;
    }

    /// <summary>Does the handler host of <paramref name="cli"/> hold a userfaultfd (a session adopted)?</summary>
    private static bool HostServesASession(int cli) => HandlerHostsOf(cli).Any(h =>
    {
        try
        {
            return Directory.EnumerateFiles($"/proc/{h}/fd").Any(f =>
            {
                try
                {
                    return new FileInfo(f).LinkTarget == "anon_inode:[userfaultfd]";
                }
                catch (IOException)
                {
                    return false;
                }
            });
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    });

    /// <summary>The milestones a long verb passes, in order, each an observation of the running process.</summary>
    private static (string Name, Func<Run, bool> Reached)[] Milestones(string verb) => verb == "bench" ?
    [
        ("the handler host process started", r => HandlerHostsOf(r.Pid).Count > 0),
        ("the handler's socket", r => TempEntriesOf(r.Pid).Any(e => File.Exists(Path.Combine(e, "h.sock")))),
        ("a session in the handler (it holds the uffd)", r => HostServesASession(r.Pid)),
    ] :
    [
        ("the first progress line", r => SoakProgressLines(r) >= 1),
        ("the second progress line", r => SoakProgressLines(r) >= 2),
        ("the fourth progress line", r => SoakProgressLines(r) >= 4),
    ];

    private static string[] Command(string verb) => verb == "bench"
        ? ["bench", "--external", "--loop", "managed", "--scenario", "missing-copy/shmem", "--scenario", "wp/shmem", "--pages", "65536", "--repeat", "3"]
        : ["soak", "--seconds", "30", "--threads", "2", "--pages", "1024", "-v", "n"];

    // Without a terminal, soak's progress is an Information line (-v n) at each tenth of its --seconds: every 3 s here,
    // so the fourth comes 18 s before the run's end.
    private static int SoakProgressLines(Run r) =>
        r.Stderr.Split('\n').Count(l => l.StartsWith("info: uffdnative.progress[0] soak 30 s: ", StringComparison.Ordinal) && l.Contains(" t=", StringComparison.Ordinal));

    /// <summary>
    /// SIGINT, SIGTERM or SIGKILL at a seeded choice among the observed milestones of `bench --external`
    /// (its handler host started through the library) and `soak` (forked children): afterwards no process of
    /// the run is left (the handler host stops with its parent, even a killed one: it watches the parent's
    /// pidfd), no socket or temp directory of its pid remains, and the journal is empty (after the next
    /// start, for SIGKILL).
    /// </summary>
    [Theory]
    [InlineData("bench", "INT", 130, 1)]
    [InlineData("bench", "TERM", 143, 2)]
    [InlineData("bench", "KILL", 137, 3)]
    [InlineData("soak", "INT", 130, 4)]
    [InlineData("soak", "TERM", 143, 5)]
    [InlineData("soak", "KILL", 137, 6)]
    public void ASignalAtASeededMilestoneOfBenchExternalOrSoakLeavesNothingBehind(string verb, string signal, int exitCode, int seed)
    {
        var milestones = Milestones(verb);
        var (name, reached) = milestones[new Random(seed).Next(milestones.Length)];
        using var run = Start(Command(verb));
        var sw = Stopwatch.StartNew();
        while (!reached(run))
        {
            Assert.False(run.Process.HasExited, $"{verb} ended before {name}\n{run.Stdout}\n{run.Stderr}");
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(120), $"{name} not observed within 120 s\n{run.Stdout}\n{run.Stderr}");
            Thread.Sleep(5); // polling an observation
        }
        run.Signal(signal);
        int exit = run.Wait();
        // setsid execs: the process killed is the CLI itself (128 + the signal).
        Assert.True(exit == exitCode, $"exit {exit} after SIG{signal} at {name}\n{run.Stderr}");
        if (signal != "KILL")
            Assert.Contains($"uffdnative: interrupted by SIG{signal}", run.Stderr, StringComparison.Ordinal);
        // The handler host notices its parent's end through the pidfd and stops (bounded: its stop waits
        // at most 5 s for the sessions); then nothing of the run is left.
        Assert.True(Eventually(() => run.Leftovers().Count == 0 && HandlerHostsOf(run.Pid).Count == 0, 30_000),
            $"processes left after SIG{signal} at {name}: {string.Join(", ", run.Leftovers().Concat(HandlerHostsOf(run.Pid)))}");
        Assert.True(Eventually(() => TempEntriesOf(run.Pid).Count == 0, 10_000),
            $"left after SIG{signal} at {name}: {string.Join(", ", TempEntriesOf(run.Pid))}");
        if (signal == "KILL")
        {
            using var next = Start("check", "--list");
            Assert.Equal(0, next.Wait());
        }
        var journal = Path.Combine(state, "journal");
        Assert.True(!Directory.Exists(journal) || Directory.GetFiles(journal).Length == 0, "a journal entry is left");
    }
}
