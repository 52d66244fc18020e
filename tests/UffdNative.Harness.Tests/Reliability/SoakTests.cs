namespace UffdNative.Harness.Tests.Reliability;

/// <summary>A short soak in the test run (the long one is .ci/soak.sh).</summary>
public class SoakTests
{
    [Fact]
    public void ShortSoak_NothingLostCorruptOrHung_AndTheExactSweepsMatch()
    {
        SoakResult? r = null;
        R.Within(120_000, () => r = new SoakRunner(new SoakOptions { Seconds = 6, Threads = 3, PagesPerRegion = 2048, Seed = 5 }).Run());
        Assert.True(r!.Passed, string.Join("\n", r.Problems));
        Assert.Equal(0UL, r.Lost);
        Assert.Equal(0UL, r.Corrupt);
        Assert.Equal(0UL, r.Hung);
        Assert.Equal(0UL, r.AccountingErrors);
        Assert.True(r.Faults > 10_000, $"only {r.Faults} faults");
        Assert.True(r.ExactSweeps >= 2 && r.ExactSweeps == r.Epochs, $"{r.ExactSweeps} exact sweeps in {r.Epochs} checkpoints");
        Assert.True(r.MissingFaults > 0 && r.WpFaults > 0 && r.MinorFaults > 0, "a policy saw no fault");
        Assert.True(r.RemoveEvents > 0 && r.RemapEvents > 0 && r.ForkEvents > 0, "an event kind never happened");
        Assert.True(r.PagesVerified > 0 && r.Writes > 0);
    }

    [Fact]
    public void SoakCommand_ExitsZeroAndPrintsTheTotals()
    {
        var (file, prefix) = UffdNative.Harness.Tests.Cli.CliRunner.Command();
        var psi = new System.Diagnostics.ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in prefix.Concat(["soak", "--seconds", "3", "--threads", "2", "--pages", "1024"]))
            psi.ArgumentList.Add(a);
        var lines = new List<string>();
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var p = new System.Diagnostics.Process { StartInfo = psi };
        p.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
                closed.TrySetResult();
            else
                lock (lines)
                    lines.Add(e.Data);
        };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (lines) lines.Add("stderr: " + e.Data); };
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        // Wait for the process itself (its fork children may hold the pipes a little longer).
        bool exited = p.WaitForExit(120_000);
        bool drained = exited && ((IAsyncResult)closed.Task).AsyncWaitHandle.WaitOne(10_000);
        string output;
        lock (lines)
            output = string.Join("\n", lines);
        if (!exited)
            p.Kill(entireProcessTree: true);
        Assert.True(exited, "soak did not end within its bound: " + output);
        Assert.True(drained, "the soak's standard output stayed open after it exited: " + output);
        Assert.True(p.ExitCode == 0, output);
        Assert.Contains("lost 0, corrupt 0, hung 0, accounting errors 0", output, StringComparison.Ordinal);
        Assert.Contains("PASS", output, StringComparison.Ordinal);
    }
}
