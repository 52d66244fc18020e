namespace UffdNative.Harness.Tests.Formats;

/// <summary>--format and the older format flags: contradictions and unknown formats are one usage line
/// (exit 2) before anything runs; agreeing flags are accepted.</summary>
public sealed class FormatOptionTests
{
    public static TheoryData<string[], string> Refused => new()
    {
        { ["check", "--json", "--format", "ktap"], "uffdnative: --json and --format ktap are exclusive: choose one output format." },
        { ["probe", "--markdown", "--format", "junit"], "uffdnative: --markdown and --format junit are exclusive: choose one output format." },
        { ["probe", "--json", "--markdown"], "uffdnative: --json and --markdown are exclusive: choose one output format." },
        { ["compare", "--json", "--markdown", "/nonexistent/report.json"], "uffdnative: --json and --markdown are exclusive: choose one output format." },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public void ContradictingFormatsAreOneUsageLine(string[] args, string line)
    {
        var r = CliRunner.Run(args);
        Assert.Equal((2, ""), (r.ExitCode, r.Stdout));
        Assert.Equal([line], r.StderrLines);
    }

    [Theory]
    [InlineData("check", "markdown")]
    [InlineData("probe", "tap")]
    public void AFormatTheVerbDoesNotWriteIsRefused(string verb, string format)
    {
        var r = CliRunner.Run(verb, "--format", format);
        Assert.Equal((2, ""), (r.ExitCode, r.Stdout));
        Assert.Single(r.StderrLines);
        Assert.Contains($"'{format}'", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void JsonAndFormatJsonTogetherAreOneRequest()
    {
        var r = CliRunner.Run("probe", "--rows", "wp-shmem-markers", "--json", "--format", "json");
        Assert.True(r.ExitCode is 0 or 1, r.ToString());
        Assert.StartsWith("{", r.Stdout, StringComparison.Ordinal);
    }
}
