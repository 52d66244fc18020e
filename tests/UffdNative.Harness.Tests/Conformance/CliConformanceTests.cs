using UffdNative.Harness.Tests.Probing;

namespace UffdNative.Harness.Tests.Conformance;

/// <summary>check, fuzz and replay end to end, as a separate process (exit codes, JSON, files).</summary>
public class CliConformanceTests
{
    [Fact]
    public void CheckJsonReportsEveryCellPassingOnThisKernel()
    {
        var r = CliRunner.Run(["check", "--json"], timeoutMs: 240_000);
        Assert.True(r.ExitCode == 0, r.Stdout + r.Stderr);
        var report = JsonSerializer.Deserialize(r.Stdout, CheckJsonContext.Default.CheckReport)!;
        Assert.Equal(NamedScenarios.All.Count, report.Scenarios);
        Assert.Equal(0, report.Diverged);
        Assert.Equal(0, report.Errors);
        Assert.True(report.Cells >= 100);
        Assert.Equal(report.Cells, report.Passed);
        Assert.All(report.Results.Where(c => c.Status == "notapplicable"), c => Assert.False(string.IsNullOrWhiteSpace(c.Reason)));
        Assert.StartsWith("detected", report.ProfileSource, StringComparison.Ordinal);
    }

    [Fact]
    public void CheckWithTheMainline61ProfileExitsOneAndNamesTheChangedSwitches()
    {
        var r = CliRunner.Run(["check", "--profile", "6.1", "--json"], timeoutMs: 240_000);
        Assert.Equal(1, r.ExitCode);
        var report = JsonSerializer.Deserialize(r.Stdout, CheckJsonContext.Default.CheckReport)!;
        Assert.StartsWith("forced: mainline 6.1", report.ProfileSource, StringComparison.Ordinal);
        var p61 = KernelProfile.Mainline("6.1");
        bool pool = Detected.Profile.Facts.HugePagesFree > 0;
        var expected = p61.Differences(Detected.Profile).Where(s => s.Modelled && (s.Needs is null || p61[s.Needs]) && (pool || !s.HugetlbOnly)).Select(s => s.Name).Order();
        Assert.Equal(expected, report.DivergentSwitches);
    }

    [Fact]
    public void CheckPrintsTheTableAndTheCounts()
    {
        var r = CliRunner.Run(["check", "--scenario", "marker-read", "--scenario", "register-ioctls"], timeoutMs: 120_000);
        Assert.True(r.ExitCode == 0, r.Stdout + r.Stderr);
        Assert.Contains("marker-read", r.Stdout);
        // Both scenarios have two hugetlb cells: not applicable, with the pool as the reason, where the detected pool
        // has no free page.
        bool noPool = Detected.Profile.Facts.HugePagesFree is null or 0;
        Assert.Matches($@"2 scenarios, \d+ scenario × memory cells run: \d+ passed, 0 diverged, 0 errors; {(noPool ? 4 : 0)} not applicable", r.Stdout);
        if (noPool)
            Assert.Contains("no free 2 MiB huge pages (vm.nr_hugepages=", r.Stdout);
    }

    [Theory]
    [InlineData("check", "--scenario", "no-such-scenario")]
    [InlineData("check", "--profile-set", "no-such-switch=new")]
    [InlineData("check", "--memory", "tmpfs")]
    [InlineData("fuzz", "--seed", "1")]
    [InlineData("fuzz", "--seed", "1", "--count", "5", "--seconds", "5")]
    [InlineData("replay", "/nonexistent/scenario.json")]
    public void UsageErrorsExitTwo(params string[] args)
    {
        var r = CliRunner.Run(args, timeoutMs: 60_000);
        Assert.True(r.ExitCode == 2, $"{string.Join(' ', args)}: {r.ExitCode}\n{r.Stdout}{r.Stderr}");
    }

    [Fact]
    public void FuzzPrintsThroughputAndNoDivergence()
    {
        var r = CliRunner.Run(["fuzz", "--seed", "9", "--count", "150"], timeoutMs: 180_000);
        Assert.True(r.ExitCode == 0, r.Stdout + r.Stderr);
        Assert.Matches(@"150 scenarios in [\d.]+ s: [\d.]+ scenarios/s", r.Stdout);
        Assert.Contains("0 divergences", r.Stdout);
    }

    [Fact]
    public void FuzzWithAnInjectedBugWritesAReproducerThatReplays()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"uffd-cli-repro-{Guid.NewGuid():N}");
        try
        {
            var r = CliRunner.Run(["fuzz", "--seed", "5", "--seconds", "60", "--inject-bug", "WpSkipsNoneShmem", "--output", dir], timeoutMs: 180_000);
            Assert.True(r.ExitCode == 1, r.Stdout + r.Stderr);
            Assert.Contains("shrunk from", r.Stdout);
            Assert.True(File.Exists(Path.Combine(dir, "repro.c")));
            // The real model agrees with the kernel on the scenario the buggy one got wrong.
            var replay = CliRunner.Run(["replay", Path.Combine(dir, "repro.json")], timeoutMs: 60_000);
            Assert.True(replay.ExitCode == 0, replay.Stdout + replay.Stderr);
            Assert.Contains("no divergence", replay.Stdout);
        }
        finally
        {
            if (Directory.Exists(dir))
                Directory.Delete(dir, recursive: true);
        }
    }
}
