namespace UffdNative.Harness.Tests.Formats;

/// <summary>
/// The real verbs, run once per test run through the built CLI on this kernel, in the forms the format
/// tests read. check runs twice: with the detected profile, and with one switch forced to the opposite
/// of what this kernel was detected to do (a profile the kernel must diverge from, so that the failing
/// paths of every format are exercised whatever the kernel is).
/// </summary>
public static class FormatRuns
{
    /// <summary>A switch whose forced flip makes the model predict what this kernel does not do.</summary>
    public const string FlippedSwitch = "wp-unpopulated";

    public static string[] FlippedProfile => ["--profile-set", $"{FlippedSwitch}={(Detected.Profile[FlippedSwitch] ? "old" : "new")}"];

    private static readonly Lazy<CliResult> ProbeJsonRun = new(() => Run("probe", "--json"));
    private static readonly Lazy<CliResult> CheckJsonRun = new(() => Run("check", "--json"));
    private static readonly Lazy<CliResult> FlippedCheckJsonRun = new(() => Run(["check", "--json", .. FlippedProfile]));

    public static CliResult ProbeJson => ProbeJsonRun.Value;

    public static CliResult CheckJson => CheckJsonRun.Value;

    public static CliResult FlippedCheckJson => FlippedCheckJsonRun.Value;

    public static ProbeReport ProbeReport => ProbeReport.FromJson(ProbeJson.Stdout, "probe --json");

    public static CheckReport CheckReportOf(CliResult r) =>
        JsonSerializer.Deserialize(r.Stdout, CheckJsonContext.Default.CheckReport) ?? throw new InvalidOperationException(r.ToString());

    /// <summary>Runs the CLI; it must end with 0 (all agreed) or 1 (a divergence or a flagged row: the
    /// tests check which against the report) and write its report on stdout.</summary>
    public static CliResult Run(params string[] args)
    {
        var r = CliRunner.Run(args);
        Assert.True(r.ExitCode is 0 or 1 && r.Stdout.Length > 0, $"expected a report and exit 0 or 1\n{r}");
        return r;
    }

    /// <summary>The exit code check documents for a report: 1 when a cell diverged or failed.</summary>
    public static int ExitCodeOf(CheckReport r) => r.Diverged + r.Errors > 0 ? 1 : 0;
}
