namespace UffdNative.Harness.Tests.Cli;

/// <summary>Input files for the bad-input table: a malformed JSON, JSON that is not a report, an
/// empty file, a directory, and one good report; removed when the class ends.</summary>
public sealed class BadInputFiles : IDisposable
{
    public string Dir { get; } = Directory.CreateTempSubdirectory("uffdnative-badinput-").FullName;

    public BadInputFiles()
    {
        File.WriteAllText(Path.Combine(Dir, "malformed.json"), "{\"schemaVersion\": 2, \"openPaths\": [ {\"path\": \"syscall\",, } ");
        File.WriteAllText(Path.Combine(Dir, "array.json"), "[1, 2, 3]");
        File.WriteAllText(Path.Combine(Dir, "empty.json"), "");
        File.WriteAllText(Path.Combine(Dir, "text.json"), "kernel 6.18.44\nopen syscall OK\n");
        File.WriteAllText(Path.Combine(Dir, "object.json"), "{}");
        Directory.CreateDirectory(Path.Combine(Dir, "adir.json"));
        // A real (small) report, for rows whose input is fine and whose output is not.
        var probe = CliRunner.Run("probe", "--rows", "wp-shmem-markers", "--json", "-o", Path.Combine(Dir, "report.json"));
        if (probe.ExitCode != 0)
            throw new InvalidOperationException($"could not make a probe report for the bad-input table:\n{probe}");
    }

    /// <summary>Replaces {dir} in an argument with the fixture directory.</summary>
    public string[] Expand(string[] args) => args.Select(a => a.Replace("{dir}", Dir, StringComparison.Ordinal)).ToArray();

    public void Dispose() => Directory.Delete(Dir, recursive: true);
}

/// <summary>
/// The table of bad inputs: each row is a command line a person could type, the documented exit
/// code (2 usage; 3 environment) and what the one line on stderr must say. Every row must give
/// exactly that exit code, exactly one stderr line starting "uffdnative: ", nothing on stdout and
/// no stack trace.
/// </summary>
public sealed class BadInputTests(BadInputFiles files) : IClassFixture<BadInputFiles>
{
    public static TheoryData<string, string[], int, string> Rows() => new()
    {
        // name, arguments, exit code, the stderr line contains
        { "unknown verb", ["frobnicate"], 2, "Unrecognized command or argument 'frobnicate'" },
        { "verb misspelt", ["prob"], 2, "Unrecognized command or argument 'prob'" },
        { "no verb at all", [], 2, "Required command was not provided" },
        { "unknown option at the root", ["--frob"], 2, "Unrecognized command or argument '--frob'" },
        { "unknown option of probe", ["probe", "--frob"], 2, "Unrecognized command or argument '--frob'" },
        { "unexpected argument to probe", ["probe", "extra"], 2, "Unrecognized command or argument 'extra'" },
        { "verbosity that is not a level", ["-v", "loud", "probe"], 2, "Argument 'loud' not recognized. Must be one of" },
        { "verbosity as a number", ["probe", "--verbosity", "3"], 2, "Argument '3' not recognized" },
        { "verbosity without its value", ["probe", "-v"], 2, "Required argument missing for option: '-v'" },
        { "probe: two output formats", ["probe", "--json", "--markdown"], 2, "--json and --markdown are exclusive" },
        { "probe: unknown behaviour row", ["probe", "--rows", "no-such-row"], 2, "unknown row(s) no-such-row" },
        { "probe: output into a missing directory", ["probe", "--json", "--output", "{dir}/missing/probe.json"], 2, "--output: cannot write '{dir}/missing/probe.json': directory '{dir}/missing' does not exist." },
        { "probe: output is a directory", ["probe", "-o", "{dir}"], 2, "--output: '{dir}' is a directory; give a file name." },
        { "probe: output under a file", ["probe", "-o", "{dir}/array.json/probe.md"], 2, "--output: cannot write '{dir}/array.json/probe.md': '{dir}/array.json' is a file, not a directory." },
        { "probe: output where no file can be created", ["probe", "--json", "-o", "/proc/uffdnative-probe.json"], 2, "--output: cannot write '/proc/uffdnative-probe.json': no such file or directory" },
        { "compare: output where writing is refused", ["compare", "{dir}/report.json", "-o", "/sys/kernel/uffdnative-matrix.md"], 2, "--output: cannot write '/sys/kernel/uffdnative-matrix.md': permission denied" },
        { "compare: no reports", ["compare"], 2, "Required argument missing for command: 'compare'" },
        { "compare: missing report file", ["compare", "{dir}/nope.json"], 2, "{dir}/nope.json: cannot read (no such file)" },
        { "compare: malformed JSON", ["compare", "{dir}/malformed.json"], 2, "{dir}/malformed.json: not a probe report (malformed JSON" },
        { "compare: JSON that is not a report", ["compare", "{dir}/array.json"], 2, "{dir}/array.json: not a probe report" },
        { "compare: empty file", ["compare", "{dir}/empty.json"], 2, "{dir}/empty.json: not a probe report" },
        { "compare: a text report instead of JSON", ["compare", "{dir}/text.json"], 2, "{dir}/text.json: not a probe report (malformed JSON" },
        { "compare: a directory as a report", ["compare", "{dir}/adir.json"], 2, "{dir}/adir.json" },
        { "bench: pages not a number", ["bench", "--pages", "abc"], 2, "--pages: 'abc' is not a positive page count" },
        { "bench: zero pages", ["bench", "--pages", "4096,0"], 2, "--pages: '0' is not a positive page count" },
        { "bench: negative pages", ["bench", "--pages", "-5"], 2, "--pages: '-5' is not a positive page count" },
        { "bench: pages out of range", ["bench", "--pages", "4096,99999999"], 2, "--pages: 99999999 is above the limit of 1048576 pages (4 GiB per region)" },
        { "bench: toucher count out of range", ["bench", "--touchers", "3"], 2, "Argument '3' not recognized. Must be one of: '1' '2'" },
        { "bench: repeat not a number", ["bench", "--repeat", "x"], 2, "Cannot parse argument 'x' for option '--repeat' as expected type 'System.Int32'" },
        { "bench: repeat zero", ["bench", "--repeat", "0"], 2, "--repeat must be >= 1" },
        { "bench: unknown scenario", ["bench", "--scenario", "nope"], 2, "--scenario: unknown 'nope'" },
        { "bench: a feature the kernel does not offer (MINOR on anonymous memory)", ["bench", "--scenario", "minor/anon"], 2, "--scenario: unknown 'minor/anon' (one of: " },
        { "bench: unknown loop", ["bench", "--loop", "turbo"], 2, "Argument 'turbo' not recognized. Must be one of: 'managed' 'native' 'both'" },
        { "matrix: unknown accelerator", ["matrix", "--accel", "fast"], 2, "Argument 'fast' not recognized. Must be one of: 'auto' 'kvm' 'tcg'" },
        { "matrix: timeout not a number", ["matrix", "--timeout", "soon"], 2, "Cannot parse argument 'soon' for option '--timeout'" },
        { "matrix: missing script", ["matrix", "--script", "{dir}/no-such-kernel-matrix.sh"], 2, "scripts/kernel-matrix.sh not found" },
        { "bisect: neither a row nor a scenario", ["bisect", "no-such-row", "--series", "6.1"], 2, "'no-such-row' is neither a probe row" },
        { "bisect: no builds named", ["bisect", "close-clears-wp"], 2, "which builds? give --series (e.g. 6.1), --from/--to package versions, or --kernels" },
        { "bisect: missing script", ["bisect", "close-clears-wp", "--series", "6.1", "--script", "{dir}/no-such-kernel-matrix.sh"], 2, "scripts/kernel-matrix.sh not found" },
        { "serve: no socket given", ["serve"], 2, "Option '--socket' is required." },
        { "serve: socket in a missing directory", ["serve", "--socket", "{dir}/missing/uffd.sock"], 2, "--socket: listen failed: ENOENT (No such file or directory) — socket {dir}/missing/uffd.sock" },
        { "serve: a source file that does not exist", ["serve", "--socket", "{dir}/uffd.sock", "--source", "file:{dir}/missing.img"], 2, "--source: the file {dir}/missing.img does not exist" },
        { "serve: unknown policy", ["serve", "--socket", "{dir}/uffd.sock", "--policy", "nope"], 2, "--policy: unknown 'nope' (one of missing-copy, " },
        { "serve: injected delay not a number", ["serve", "--socket", "{dir}/uffd.sock", "--inject-delay-ms", "abc"], 2, "--inject-delay-ms: 'abc' is not MAX or MIN..MAX milliseconds" },
        { "serve: sessions not a number", ["serve", "--socket", "{dir}/uffd.sock", "--sessions", "x"], 2, "Cannot parse argument 'x' for option '--sessions' as expected type 'System.Int32'" },
        { "soak: pages below the minimum", ["soak", "--pages", "100"], 2, "--pages >= 1024 and a multiple of 512" },
        { "soak: zero threads", ["soak", "--threads", "0"], 2, "--threads 1..64" },
        { "soak: seconds not a number", ["soak", "--seconds", "abc"], 2, "Cannot parse argument 'abc' for option '--seconds' as expected type 'System.Int32'" },
        { "check: unknown scenario", ["check", "--scenario", "nope"], 2, "unknown scenario(s) nope; see 'uffdnative check --list'" },
        { "check: profile that is not a kernel version", ["check", "--profile", "abc"], 2, "'abc' is not a kernel release (expected e.g. 6.1 or 6.18.44-fc)" },
        { "check: a behaviour switch that does not exist", ["check", "--profile-set", "nosuch=new"], 2, "unknown profile switch 'nosuch'; known: wp-shmem-markers, " },
        { "check: switch override without a value", ["check", "--profile-set", "wp-async"], 2, "profile override 'wp-async' must be name=new or name=old" },
        { "check: unknown memory type", ["check", "--memory", "floppy"], 2, "unknown memory type 'floppy' (anon, shmem, shmem-private, hugetlb, hugetlb-private)" },
        { "fuzz: no seed", ["fuzz", "--count", "5"], 2, "Option '--seed' is required." },
        { "fuzz: seed not a number", ["fuzz", "--seed", "x", "--count", "1"], 2, "Cannot parse argument 'x' for option '--seed' as expected type 'System.UInt64'" },
        { "fuzz: neither a count nor a time", ["fuzz", "--seed", "1"], 2, "fuzz needs exactly one of --count N or --seconds T" },
        { "fuzz: zero scenarios", ["fuzz", "--seed", "1", "--count", "0"], 2, "--count and --seconds must be positive" },
        { "fuzz: negative time", ["fuzz", "--seed", "1", "--seconds", "-3"], 2, "--count and --seconds must be positive" },
        { "fuzz: unknown injected bug", ["fuzz", "--seed", "1", "--count", "1", "--inject-bug", "nope"], 2, "unknown model bug 'nope'" },
        { "replay: no file", ["replay"], 2, "Required argument missing for command: 'replay'." },
        { "replay: missing file", ["replay", "{dir}/nope.json"], 2, "cannot replay '{dir}/nope.json': Could not find file" },
        { "replay: malformed JSON", ["replay", "{dir}/malformed.json"], 2, "cannot replay '{dir}/malformed.json': ',' is an invalid start of a property name." },
        { "replay: JSON of another shape", ["replay", "{dir}/array.json"], 2, "cannot replay '{dir}/array.json': The JSON value could not be converted to UffdNative.Harness.Scenarios.Scenario." },
        { "replay: an empty JSON object", ["replay", "{dir}/object.json"], 2, "cannot replay '{dir}/object.json': not a scenario (it lacks mappings, uffds, policy or ops" },
        { "replay: a probe report instead of a scenario", ["replay", "{dir}/report.json"], 2, "cannot replay '{dir}/report.json': not a scenario" },
        { "replay: an empty file", ["replay", "{dir}/empty.json"], 2, "cannot replay '{dir}/empty.json': " },
    };

    [Theory]
    [MemberData(nameof(Rows))]
    public void ABadInputGivesOneClearLineAndTheDocumentedExitCode(string name, string[] args, int exitCode, string says)
    {
        var r = CliRunner.Run(files.Expand(args));
        var expected = says.Replace("{dir}", files.Dir, StringComparison.Ordinal);
        Assert.True(r.ExitCode == exitCode, $"{name}: expected exit {exitCode}\n{r}");
        var line = Assert.Single(r.StderrLines);
        Assert.StartsWith("uffdnative: ", line, StringComparison.Ordinal);
        Assert.Contains(expected, line, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", r.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", r.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("(Parameter '", r.Stderr, StringComparison.Ordinal); // ArgumentException's suffix is for programmers
        Assert.Equal("", r.Stdout);
    }

    [Fact]
    public void TheTableHasAtLeastTwentyRowsAndCoversEveryVerb()
    {
        var rows = Rows().Select(r => (string[])r[1]).ToList();
        Assert.True(rows.Count >= 20, $"{rows.Count} rows");
        var verbs = UffdNative.Cli.Infrastructure.CliApp.BuildRoot().Subcommands.Select(c => c.Name).ToList();
        foreach (var verb in verbs)
            Assert.True(rows.Any(a => a.Contains(verb)), $"no bad-input row for verb {verb}");
    }
}
