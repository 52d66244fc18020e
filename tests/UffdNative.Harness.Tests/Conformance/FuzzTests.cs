namespace UffdNative.Harness.Tests.Conformance;

/// <summary>The fuzzer on this kernel: quiet with the real model, finds an injected model bug quickly,
/// shrinks it, and the C reproducer it writes compiles and reproduces the divergence.</summary>
public class FuzzTests
{
    [Theory]
    [InlineData(1UL)]
    [InlineData(2UL)]
    [InlineData(3UL)]
    public void FuzzFindsNoDivergenceOnThisKernel(ulong seed)
    {
        var report = Hard.Within(180_000, () => new Fuzzer(Detected.Runner()).Run(seed, count: 600, duration: TimeSpan.FromSeconds(60)));
        Assert.True(report.Finding is null, report.Finding is { } f ? $"{f.Shrunk.Describe()}\n{f.Divergence.Describe()}" : "");
        Assert.True(report.Scenarios >= 100, $"only {report.Scenarios} scenarios ran");
    }

    [Fact]
    public void TheSameSeedGivesTheSameScenarios()
    {
        var a = Fuzzer.Generate(42, 7).ToJson();
        var b = Fuzzer.Generate(42, 7).ToJson();
        Assert.Equal(a, b);
        Assert.NotEqual(a, Fuzzer.Generate(43, 7).ToJson());
        Assert.NotEqual(a, Fuzzer.Generate(42, 8).ToJson());
    }

    [Fact]
    public void AnInjectedModelBugIsFoundShrunkAndReproducedByTheCProgram()
    {
        var runner = Detected.Runner(ModelBug.ZapDropsFileMarker);
        var report = Hard.Within(150_000, () => new Fuzzer(runner).Run(seed: 5, count: null, duration: TimeSpan.FromSeconds(60)));
        var f = report.Finding;
        Assert.NotNull(f);
        Assert.True(f.TimeToFind < TimeSpan.FromSeconds(60), $"found after {f.TimeToFind}");
        Assert.True(f.Shrunk.Ops.Count <= 6, f.Shrunk.Describe());

        var dir = Path.Combine(Path.GetTempPath(), $"uffd-repro-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            var (json, c) = Reproducer.Write(f.Shrunk, runner, dir);
            // The JSON replays to the same divergence.
            var replayed = Scenario.FromJson(File.ReadAllText(json));
            Assert.NotNull(new Fuzzer(runner).Diverges(replayed));

            var (rc, output) = ReproBuild.CompileAndRun(c);
            Assert.True(rc != 0, output);
            Assert.Contains("DIVERGENCE", output);

            // With the correct model the same program finds nothing: the C runtime agrees with the executor.
            var correct = Detected.Runner();
            File.WriteAllText(c, Reproducer.CProgram(f.Shrunk, correct.Model.Run(f.Shrunk).Trace, correct.Profile, null));
            (rc, output) = ReproBuild.CompileAndRun(c);
            Assert.True(rc == 0, output);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    internal static (int Code, string Output) Run(string file, string args, string dir, int timeoutMs)
    {
        var psi = new ProcessStartInfo(file, args) { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeoutMs))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"{file} did not finish within {timeoutMs} ms");
        }
        return (p.ExitCode, stdout.Result + stderr.Result);
    }
}
