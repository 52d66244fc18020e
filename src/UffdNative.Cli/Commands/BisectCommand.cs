using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using UffdNative.Cli.Infrastructure;
using UffdNative.Harness.Matrix;

namespace UffdNative.Cli.Commands;

/// <summary>
/// <c>uffdnative bisect ROW|SCENARIO</c>: which kernel build changed this behaviour? Lists the builds
/// of a Debian series (scripts/kernel-builds.sh, kernel-matrix's own apt state) or takes the user's
/// kernels, then binary-searches (<see cref="BisectSearch"/>) with one kernel-matrix shard per build
/// looked at — cached under --work, so a second bisect over the same builds boots nothing it has
/// seen — and reports the two adjacent builds, both answers and the ranked changelog lines between
/// them (<see cref="DebianChangelog"/>). docs/bisect.md.
/// </summary>
public static partial class BisectCommand
{
    public const string BuildsScriptName = "kernel-builds.sh";

    public static Command Create()
    {
        var target = new Argument<string>("target") { Description = "A probe row id (uffdnative probe --rows; e.g. close-clears-wp) or a check scenario name (uffdnative check --list)." };
        var series = new Option<string?>("--series") { Description = "The Debian series whose builds to search: 5.10, 6.1, 6.12 (bookworm), 6.12-trixie, 7.2, 7.3, -rt of one. Implied by --from when absent." };
        var from = new Option<string?>("--from") { Description = "The oldest build to search, a Debian package version of the series (e.g. 6.1.170-3; default: the oldest the archive has)." };
        var to = new Option<string?>("--to") { Description = "The newest build to search (e.g. 6.1.192-3; default: the newest)." };
        var kernels = new Option<string[]>("--kernels") { Description = "Search these kernels instead, oldest first: anything kernel-matrix takes (bzImage[:MODDIR] of one's own builds, .debs, package versions). Comma-separated or repeated.", AllowMultipleArgumentsPerToken = true };
        var scenario = new Option<bool>("--scenario") { Description = "TARGET is a check scenario even where a probe row has the same name (close-clears-wp is both)." };
        var profile = new Option<string?>("--profile") { Description = "For a scenario: the model profile every build is checked against (default: the series of the oldest build, e.g. 6.1), so only the kernel changes." };
        var json = new Option<bool>("--json") { Description = "Write the report as JSON (the same as --format json)." };
        var format = new Option<string?>("--format") { Description = "text (default), json or ktap." };
        format.AcceptOnlyFromAmong("text", "json", "ktap");
        var output = new Option<FileInfo?>("--output", "-o") { Description = "Write the report to this file instead of standard output." };
        var work = new Option<string?>("--work") { Description = "Where the shards are kept and reused (default: artifacts/bisect in the repository): shards/BUILD/probe is an ordinary kernel-matrix output directory." };
        var fresh = new Option<bool>("--fresh") { Description = "Boot every build looked at, even where a shard of an earlier run exists (the old shard is replaced)." };
        var guest = new GuestOptions();
        var script = new Option<string?>("--script") { Description = $"Path to kernel-matrix.sh (default: ${MatrixCommand.ScriptEnvironmentVariable}, else {MatrixCommand.ScriptRelativePath} above the current or this program's directory); {BuildsScriptName} is taken from the same directory." };

        var cmd = new Command("bisect",
            "Find the kernel build where a probe row's answer (or a check scenario's observation) changed: boot the two ends of a Debian series' builds (or of --kernels) under qemu, binary-search between them with one cached kernel-matrix shard per build, and report the two adjacent builds, both answers and the changelog lines between them that mention userfaultfd, uffd, mm/ or the row's CVE. " +
            "Exit 0 when the search ended (flip found or none), 1 a build gave no result (timeout, panic: see its shard log), 2 usage, 3 setup (qemu, apt, download).")
        {
            target, series, from, to, kernels, scenario, profile, json, format, output, work, fresh, guest.Timeout, guest.StepTimeout, guest.Append, guest.Accel, guest.NoInstall, script,
        };
        cmd.SetAction(pr =>
        {
            var matrixScript = MatrixCommand.FindScript(pr.GetValue(script), Environment.GetEnvironmentVariable(MatrixCommand.ScriptEnvironmentVariable),
                Directory.GetCurrentDirectory(), AppContext.BaseDirectory)
                ?? throw new CliUsageException($"{MatrixCommand.ScriptRelativePath} not found above {Directory.GetCurrentDirectory()} or {AppContext.BaseDirectory}: run from the repository, or pass --script PATH.");
            var fmt = pr.GetValue(format) ?? (pr.GetValue(json) ? "json" : "text");
            if (pr.GetValue(json) && fmt != "json")
                throw new CliUsageException($"--json and --format {fmt} disagree: give one of them.");
            var kernelList = (pr.GetValue(kernels) ?? []).SelectMany(k => k.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();
            var request = new Request
            {
                Target = pr.GetValue(target)!,
                Series = pr.GetValue(series),
                From = pr.GetValue(from),
                To = pr.GetValue(to),
                Kernels = kernelList,
                Scenario = pr.GetValue(scenario),
                Profile = pr.GetValue(profile),
                Work = pr.GetValue(work),
                Fresh = pr.GetValue(fresh),
                Guest = guest.Read(pr),
            };
            BisectReport report;
            try
            {
                report = Run(request, matrixScript, Console.Error);
            }
            catch (BisectNoResultException e)
            {
                Console.Error.WriteLine($"uffdnative: {e.Message}");
                return ExitCodes.Failure;
            }
            var text = fmt switch { "json" => report.ToJson(), "ktap" => report.ToKtap(), _ => report.ToText() };
            if (pr.GetValue(output) is { } file)
            {
                CliFiles.WriteOutput(file.FullName, text);
                Console.Error.WriteLine($"uffdnative: {report.Summary()}");
            }
            else
                Console.Out.Write(text);
            return ExitCodes.Ok;
        });
        return cmd;
    }

    /// <summary>What the verb was asked for.</summary>
    public sealed record Request
    {
        public required string Target { get; init; }
        public string? Series { get; init; }
        public string? From { get; init; }
        public string? To { get; init; }
        public IReadOnlyList<string> Kernels { get; init; } = [];
        public bool Scenario { get; init; }
        public string? Profile { get; init; }
        public string? Work { get; init; }
        public bool Fresh { get; init; }
        public GuestSettings Guest { get; init; } = new();
        /// <summary>The CLI the guests run (null: this program's directory, else the script builds one).</summary>
        public string? Cli { get; init; }
    }

    /// <summary>Runs the whole bisect; progress lines go to <paramref name="log"/>. Throws <see
    /// cref="CliUsageException"/> (2), <see cref="CliEnvironmentException"/> (3), <see
    /// cref="BisectNoResultException"/> (1).</summary>
    public static BisectReport Run(Request r, string matrixScript, TextWriter log)
    {
        var started = Stopwatch.StartNew();
        var scriptsDir = Path.GetDirectoryName(Path.GetFullPath(matrixScript))!;
        var buildsScript = Path.Combine(scriptsDir, BuildsScriptName);
        if (r.Kernels.Count > 0 && (r.Series is not null || r.From is not null || r.To is not null))
            throw new CliUsageException("--kernels names the builds itself: drop --series/--from/--to, or drop --kernels.");
        string? series = r.Kernels.Count > 0 ? null : r.Series ?? ((r.From ?? r.To) is { } v ? SeriesOf(v) : null);
        if (r.Kernels.Count == 0 && series is null)
            throw new CliUsageException("which builds? give --series (e.g. 6.1), --from/--to package versions, or --kernels K1,K2,... (oldest first).");

        if (BisectTarget.Find(r.Target, r.Scenario, "") is null)
            throw new CliUsageException(UnknownTarget(r.Target));

        IReadOnlyList<KernelBuild> builds;
        if (r.Kernels.Count > 0)
        {
            if (r.Kernels.Count < 2)
                throw new CliUsageException("--kernels needs at least two kernels, oldest first.");
            builds = [.. r.Kernels.Select(k => new KernelBuild(k))];
        }
        else
        {
            var (rc, stdout, stderr) = RunScript(buildsScript, ["list", series!]);
            if (rc != 0)
                throw Fail(rc, $"{BuildsScriptName} list {series}: {LastLine(stderr)}");
            try
            {
                builds = KernelBuild.Range(KernelBuild.ParseListing(stdout), r.From, r.To);
            }
            catch (ArgumentException e)
            {
                throw new CliUsageException(e.Message);
            }
        }

        var profile = r.Profile ?? (SeriesOf(builds[0].Release ?? builds[0].Spec) is { } s ? Regex.Match(s, @"^\d+\.\d+").Value : null);
        var target = BisectTarget.Find(r.Target, r.Scenario, profile ?? "")
            ?? throw new CliUsageException(UnknownTarget(r.Target));
        if (target.IsScenario && string.IsNullOrEmpty(profile))
            throw new CliUsageException($"scenario {target.Id}: the release of {builds[0].Spec} does not say which model profile to check against: pass --profile (e.g. 6.1).");

        var work = Path.GetFullPath(r.Work ?? Path.Combine(Path.GetDirectoryName(scriptsDir)!, "artifacts", "bisect"));
        var cli = r.Cli ?? MatrixCommand.OwnCliDirectory();
        log.WriteLine($"bisect: {target.Id} over {builds.Count} builds ({builds[0].Spec} .. {builds[^1].Spec}); shards in {work}/shards");

        var results = new Dictionary<int, BisectBuildResult>();
        var outcome = BisectSearch.Run(builds.Count, i =>
        {
            var res = Shard(builds[i], target, work, matrixScript, cli, r, log);
            results[i] = res;
            return res.Answer;
        });
        var steps = outcome.Steps.Select(s => results[s.Index]).ToList();
        var report = new BisectReport
        {
            Target = target,
            Series = series,
            Builds = builds,
            Steps = steps,
            LastOld = outcome.LastOld is { } lo ? results[lo] : null,
            FirstNew = outcome.FirstNew is { } fn ? results[fn] : null,
            WallSeconds = started.Elapsed.TotalSeconds,
        };
        if (report.Flipped)
            report = WithChangelog(report, buildsScript);
        return report with { WallSeconds = started.Elapsed.TotalSeconds };
    }

    private static BisectReport WithChangelog(BisectReport report, string buildsScript)
    {
        var older = report.LastOld!.Build;
        var newer = report.FirstNew!.Build;
        if (!older.IsPackaged || !newer.IsPackaged)
            return report with { ChangelogNote = $"{(older.IsPackaged ? newer : older).Spec} is not a Debian package version: no changelog to read; between one's own builds, git log says what changed" };
        var (rc, text, stderr) = RunScript(buildsScript, ["changelog", newer.Spec]);
        if (rc != 0)
            return report with { ChangelogNote = $"{BuildsScriptName} changelog {newer.Spec} failed: {LastLine(stderr)}" };
        var between = DebianChangelog.Between(DebianChangelog.Parse(text), older.Spec, newer.Spec);
        if (between.Count == 0)
            return report with { ChangelogNote = $"the changelog of {newer.Spec} has no entries after {older.Spec}" };
        return report with { Changes = DebianChangelog.Rank(between, report.Target.Cves, report.Target.Hints) };
    }

    /// <summary>The shard of one build: reused when an earlier run left its step output, else booted
    /// with kernel-matrix.sh (its retry of early-boot deaths and its timeouts).</summary>
    private static BisectBuildResult Shard(KernelBuild build, BisectTarget target, string work, string matrixScript, string? cli, Request r, TextWriter log)
    {
        var dir = Path.Combine(work, "shards", ShardKey(build.Spec), target.ShardKind);
        if (!r.Fresh && StepOutput(dir, target.StepFile) is { } cached)
        {
            try
            {
                var answer = target.AnswerFrom(File.ReadAllText(cached), cached);
                log.WriteLine($"bisect: {build.Spec}: {answer.Text} (reused {Path.GetDirectoryName(cached)})");
                return new BisectBuildResult(build, answer, false, Seconds(cached), Path.GetDirectoryName(cached)!);
            }
            catch (Exception e) when (e is FormatException or System.Text.Json.JsonException)
            {
                // A shard of an older CLI (without this row) or a truncated one: boot it again.
                log.WriteLine($"bisect: {build.Spec}: the shard of an earlier run does not answer ({CliErrors.OneLine(e.Message)}); booting again");
            }
        }
        if (Directory.Exists(dir) && !File.Exists(Path.Combine(dir, ".kernel-matrix-out")))
            throw new CliUsageException($"--work: {dir} exists and is not a kernel-matrix shard: choose another --work directory.");
        Directory.CreateDirectory(Path.GetDirectoryName(dir)!);
        var args = MatrixCommand.ScriptArguments(new MatrixCommand.Request
        {
            Kernels = [build.Spec],
            Out = dir,
            Steps = [$"{target.StepFile}={target.StepCommand}"],
            Jobs = 1,
            Cli = cli,
            Guest = r.Guest,
        });
        var logFile = dir + ".log";
        log.WriteLine($"bisect: {build.Spec}: booting (kernel-matrix shard {dir}; log {logFile})");
        var sw = Stopwatch.StartNew();
        int rc = RunScriptToFile(matrixScript, args, logFile);
        if (rc is 2 or 3)
        {
            var why = LastLines(logFile);
            throw rc == 2 ? new CliUsageException($"kernel-matrix.sh refused {build.Spec}: {why}") : new CliEnvironmentException($"kernel-matrix.sh could not set up {build.Spec}: {why} (log: {logFile})");
        }
        var output = StepOutput(dir, target.StepFile)
            ?? throw new BisectNoResultException($"{build.Spec} gave no {target.StepFile} (kernel-matrix exit {rc}: timeout, panic or a failed step; log: {logFile}); the bisect cannot go past it");
        BisectAnswer a;
        try
        {
            a = target.AnswerFrom(File.ReadAllText(output), output);
        }
        catch (Exception e) when (e is FormatException or System.Text.Json.JsonException)
        {
            throw new BisectNoResultException($"{build.Spec}: {CliErrors.OneLine(e.Message)} (log: {logFile})");
        }
        log.WriteLine($"bisect: {build.Spec}: {a.Text} ({sw.Elapsed.TotalSeconds:F0} s)");
        return new BisectBuildResult(build, a, true, Seconds(output) ?? (int)sw.Elapsed.TotalSeconds, Path.GetDirectoryName(output)!);
    }

    /// <summary>The step output a shard directory holds (OUT/LABEL/FILE, non-empty), else null.</summary>
    internal static string? StepOutput(string shardDir, string file) =>
        Directory.Exists(shardDir)
            ? Directory.GetDirectories(shardDir).Select(d => Path.Combine(d, file)).Where(f => File.Exists(f) && new FileInfo(f).Length > 0).Order(StringComparer.Ordinal).FirstOrDefault()
            : null;

    private static int? Seconds(string stepOutput) =>
        File.Exists(Path.Combine(Path.GetDirectoryName(stepOutput)!, "seconds"))
        && int.TryParse(File.ReadAllText(Path.Combine(Path.GetDirectoryName(stepOutput)!, "seconds")).Trim(), CultureInfo.InvariantCulture, out var s) ? s : null;

    [GeneratedRegex(@"^[0-9A-Za-z][0-9A-Za-z.+~_-]*$")]
    private static partial Regex PlainKey();

    /// <summary>A build's shard directory name: a package version or release as it is; a path gets
    /// its file name and a hash of the full spec (two builds' bzImages are both called bzImage).</summary>
    public static string ShardKey(string spec)
    {
        if (PlainKey().IsMatch(spec))
            return spec;
        var name = Regex.Replace(Path.GetFileName(spec.Split(':')[0]), "[^0-9A-Za-z.+~_-]", "_");
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Path.GetFullPath(spec.Split(':')[0]) + ":" + string.Join(':', spec.Split(':').Skip(1)))))[..12];
        return $"local-{name}-{hash}";
    }

    /// <summary>The kernel-matrix series of a package version or release: 6.1.170-3 → 6.1;
    /// 6.12.100-1~deb12u1 and 6.12.100+deb12-amd64 → 6.12 (bookworm); 6.12.100-1 → 6.12-trixie;
    /// null when it does not start with X.Y.</summary>
    public static string? SeriesOf(string version)
    {
        var m = Regex.Match(version, @"^(\d+)\.(\d+)");
        if (!m.Success)
            return null;
        var s = $"{m.Groups[1].Value}.{m.Groups[2].Value}";
        if (s == "6.12" && !version.Contains("deb12", StringComparison.Ordinal))
            return "6.12-trixie";
        return s;
    }

    private static string UnknownTarget(string id) =>
        $"'{id}' is neither a probe row (the ids of uffdnative probe --json's behaviours, e.g. close-clears-wp) nor a check scenario (uffdnative check --list).";

    private static Exception Fail(int rc, string message) =>
        rc == 2 ? new CliUsageException(message) : new CliEnvironmentException(message);

    private static (int ExitCode, string Stdout, string Stderr) RunScript(string script, IReadOnlyList<string> args) =>
        CliProcesses.Bash([script, .. args], script, capture: true);

    // bash redirects: the script's output goes to the shard's log, not through this process.
    private static int RunScriptToFile(string script, IReadOnlyList<string> args, string logFile) =>
        CliProcesses.Bash(["-c", "log=$1; shift; exec bash \"$@\" >\"$log\" 2>&1", "bisect", logFile, script, .. args], script, capture: false).ExitCode;

    private static string LastLine(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? "(no message)";

    private static string LastLines(string file) =>
        File.Exists(file) ? string.Join(" | ", File.ReadLines(file).Where(l => l.Contains("error", StringComparison.OrdinalIgnoreCase) || l.Contains("kernel-matrix:", StringComparison.Ordinal)).TakeLast(2)) : "(no log)";
}

/// <summary>A build looked at gave no answer (its guest timed out or died): the search cannot go on. Exit code 1.</summary>
public sealed class BisectNoResultException(string message) : Exception(message);
