using System.Globalization;

namespace UffdNative.Harness.Tests.Cli;

/// <summary>
/// Signals at the worst moment leave the host as found. The CLI runs as the leader of its own process group
/// (setsid), with its journal in a private state directory (UFFDNATIVE_STATE_DIR). Every signal is sent at a
/// moment the test observed — vm.nr_hugepages raised by the probe (checked again while the process is
/// stopped with SIGSTOP, so the signal lands inside the change, not after it), or a progress line of fuzz —
/// never after a sleep.
/// </summary>
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
}
