namespace UffdNative.Harness.Tests.Cli;

/// <summary>Input files for the bad-input table: malformed, truncated, deep, huge and crafted JSON (reports and
/// scenarios), an empty file, a directory, a FIFO, symbolic links (to a file, dangling, a loop), an immutable
/// directory (read-only even for root), and one good report and one good scenario; removed when the class ends.</summary>
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
        File.WriteAllText(Path.Combine(Dir, "null.json"), "null");
        File.WriteAllText(Path.Combine(Dir, "deep.json"), new string('[', 100_000) + new string(']', 100_000));
        File.WriteAllText(Path.Combine(Dir, "nan.json"), "{\"schemaVersion\": NaN}");
        File.WriteAllText(Path.Combine(Dir, "latin1.json"), "");
        File.WriteAllBytes(Path.Combine(Dir, "latin1.json"), [0x7b, 0x22, 0xe9, 0x22, 0x3a, 0x31, 0x7d]); // {"é":1} in Latin-1
        // Beyond the 64 MiB an input may have: sparse, so it costs nothing, and refused by its size before a read.
        using (var huge = File.Create(Path.Combine(Dir, "huge.json")))
            huge.SetLength(100L << 20);
        Directory.CreateDirectory(Path.Combine(Dir, "adir.json"));
        Directory.CreateDirectory(Path.Combine(Dir, "repro-dir"));
        File.WriteAllText(Path.Combine(Dir, "repro-dir", "keep.txt"), "an earlier result");
        Mkfifo(Path.Combine(Dir, "fifo"));
        File.CreateSymbolicLink(Path.Combine(Dir, "dangling.json"), Path.Combine(Dir, "no-such-target.json"));
        File.CreateSymbolicLink(Path.Combine(Dir, "loop1.json"), Path.Combine(Dir, "loop2.json"));
        File.CreateSymbolicLink(Path.Combine(Dir, "loop2.json"), Path.Combine(Dir, "loop1.json"));
        File.CreateSymbolicLink(Path.Combine(Dir, "fifo-link.json"), Path.Combine(Dir, "fifo"));
        Directory.CreateDirectory(Path.Combine(Dir, "immutable"));
        Exec("chattr", "+i", Path.Combine(Dir, "immutable"));

        // A real (small) report, for rows whose input is fine and whose output is not.
        var probe = CliRunner.Run("probe", "--rows", "wp-shmem-markers", "--json", "-o", Path.Combine(Dir, "report.json"));
        if (probe.ExitCode != 0)
            throw new InvalidOperationException($"could not make a probe report for the bad-input table:\n{probe}");
        var report = File.ReadAllText(Path.Combine(Dir, "report.json"));
        File.WriteAllText(Path.Combine(Dir, "truncated-report.json"), report[..(report.Length / 2)]);
        Report("report-null-lists.json", r => { r["openPaths"] = null; r["behaviours"] = null; });
        Report("report-future-schema.json", r => r["schemaVersion"] = 99);
        Report("report-huge-schema.json", r => r["schemaVersion"] = System.Text.Json.Nodes.JsonValue.Create(1e300));
        Report("report-other-tool.json", r => r["tool"] = "not-uffdnative");
        Report("report-no-kernel.json", r => r["kernelRelease"] = "");
        Report("report-wrong-types.json", r => r["behaviours"] = "many");

        // A good scenario, and crafted ones: each names one thing the validator must refuse before a run.
        var good = new Scenario
        {
            Name = "good",
            Memory = MemoryType.Anon,
            Mappings = [new MappingSpec("m0", MapKind.Anon, 4), new MappingSpec("src", MapKind.Anon, 4)],
            Uffds = [new UffdSpec("u0", UffdFeatures.None)],
            Ops = [new RegisterOp("u0", "m0", 0, 4, RegisterMode.Missing), new ReadOp("m0", 1), new CopyOp("u0", "m0", 2, 1, 0x10, false)],
        };
        File.WriteAllText(Path.Combine(Dir, "scenario.json"), good.ToJson());
        Scenario("overflow.json", s => { s["Ops"]![2]!["First"] = int.MaxValue; s["Ops"]![2]!["Count"] = 2; });
        Scenario("negative-count.json", s => s["Ops"]![2]!["Count"] = -1);
        Scenario("huge-mapping.json", s => s["Mappings"]![0]!["Pages"] = int.MaxValue);
        Scenario("file-offset-overflow.json", s => s["Mappings"]![0]!["FileOffset"] = int.MaxValue);
        Scenario("number-overflow.json", s => s["Ops"]![2]!["First"] = System.Text.Json.Nodes.JsonValue.Create(1e300));
        Scenario("unknown-op.json", s => s["Ops"]![1]!["op"] = "format-disk");
        Scenario("unknown-mapping.json", s => s["Ops"]![1]!["M"] = "elsewhere");
        Scenario("unknown-uffd.json", s => s["Ops"]![0]!["U"] = "u9");
        Scenario("stale-move-source.json", s => { s["Policy"]!["MoveSource"] = "gone"; });
        Scenario("move-without-source.json", s => { s["Policy"]!["Missing"] = "Move"; });
        Scenario("duplicate-mapping.json", s => s["Mappings"]![1]!["Name"] = "m0");
        Scenario("empty-name.json", s => s["Mappings"]![1]!["Name"] = "");
        Scenario("null-op.json", s => s["Ops"]![1] = null);
        Scenario("null-lists.json", s => s["Mappings"] = null);
        Scenario("bad-enum.json", s => s["Memory"] = "Floppy");
        Scenario("bad-mode-bits.json", s => s["Ops"]![0]!["Modes"] = 4096);
        Scenario("bad-features.json", s => s["Uffds"]![0]!["Features"] = System.Text.Json.Nodes.JsonValue.Create(1UL << 62));
        Scenario("too-many-ops.json", s => { var ops = s["Ops"]!.AsArray(); for (int i = 0; i < 1001; i++) ops.Add(System.Text.Json.Nodes.JsonNode.Parse("{\"op\":\"read\",\"M\":\"m0\",\"Page\":1}")); });
        Scenario("truncate-huge.json", s => s["Ops"]!.AsArray().Add(System.Text.Json.Nodes.JsonNode.Parse("{\"op\":\"truncate\",\"Pages\":2147483647}")));
        var text = File.ReadAllText(Path.Combine(Dir, "scenario.json"));
        File.WriteAllText(Path.Combine(Dir, "truncated-scenario.json"), text[..(text.Length / 2)]);
        File.WriteAllText(Path.Combine(Dir, "nan-scenario.json"), text.Replace("\"FilePages\": 0", "\"FilePages\": NaN", StringComparison.Ordinal));
    }

    private void Report(string name, Action<System.Text.Json.Nodes.JsonObject> change)
    {
        var r = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(Dir, "report.json")))!.AsObject();
        change(r);
        File.WriteAllText(Path.Combine(Dir, name), r.ToJsonString());
    }

    private void Scenario(string name, Action<System.Text.Json.Nodes.JsonObject> change)
    {
        var s = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(Dir, "scenario.json")))!.AsObject();
        change(s);
        File.WriteAllText(Path.Combine(Dir, name), s.ToJsonString());
    }

    private static void Mkfifo(string path)
    {
        var r = Exec("mkfifo", path);
        if (r.ExitCode != 0)
            throw new InvalidOperationException(r.ToString());
    }

    private static CliResult Exec(params string[] argv) => CliRunner.Exec(argv, timeoutMs: 30_000);

    /// <summary>Replaces {dir} in an argument with the fixture directory.</summary>
    public string[] Expand(string[] args) => args.Select(a => a.Replace("{dir}", Dir, StringComparison.Ordinal)).ToArray();

    /// <summary>Every entry under the fixture (symbolic links not followed) with its kind, size, time and
    /// content: equal before and after a row means nothing was written, replaced or left behind.</summary>
    public IReadOnlyList<string> Snapshot()
    {
        var list = new List<string>();
        foreach (var e in new DirectoryInfo(Dir).EnumerateFileSystemInfos("*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0, IgnoreInaccessible = false }))
        {
            // Never open a FIFO (it would block): its kind from stat.
            var kind = e.LinkTarget is not null ? "link" : UffdNative.Harness.Io.FileKinds.Of(e.FullName).Kind.ToString();
            string content = "";
            if (kind == "Regular" && e is FileInfo f && f.Length < (1 << 20))
                content = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(f.FullName)));
            list.Add($"{Path.GetRelativePath(Dir, e.FullName)} {kind} {(e is FileInfo fi && kind == "Regular" ? fi.Length : 0)} {e.LastWriteTimeUtc.Ticks} {content}");
        }
        list.Sort(StringComparer.Ordinal);
        return list;
    }

    public void Dispose()
    {
        Exec("chattr", "-i", Path.Combine(Dir, "immutable"));
        Directory.Delete(Dir, recursive: true);
    }
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
        // -- verbs, options, values
        { "unknown verb", ["frobnicate"], 2, "Unrecognized command or argument 'frobnicate'" },
        { "verb misspelt", ["prob"], 2, "Unrecognized command or argument 'prob'" },
        { "no verb at all", [], 2, "Required command was not provided" },
        { "an empty verb", [""], 2, "Unrecognized command or argument ''" },
        { "unknown option at the root", ["--frob"], 2, "Unrecognized command or argument '--frob'" },
        { "unknown option of probe", ["probe", "--frob"], 2, "Unrecognized command or argument '--frob'" },
        { "an option of another verb (check's --list-switches on probe)", ["probe", "--list-switches"], 2, "Unrecognized command or argument '--list-switches'" },
        { "check: a misspelt option", ["check", "--list-switch"], 2, "Unrecognized command or argument '--list-switch'" },
        { "unexpected argument to probe", ["probe", "extra"], 2, "Unrecognized command or argument 'extra'" },
        { "verbosity that is not a level", ["-v", "loud", "probe"], 2, "Argument 'loud' not recognized. Must be one of" },
        { "verbosity as a number", ["probe", "--verbosity", "3"], 2, "Argument '3' not recognized" },
        { "verbosity without its value", ["probe", "-v"], 2, "Required argument missing for option: '-v'" },
        { "verbosity empty", ["probe", "-v", ""], 2, "Argument '' not recognized" },
        { "log format that is not one", ["--log-format", "xml", "probe"], 2, "--log-format: 'xml' is not a format; use simple or json." },
        { "log format empty, on a verb", ["probe", "--log-format", ""], 2, "--log-format: '' is not a format; use simple or json." },
        // -- probe
        { "probe: two output formats", ["probe", "--json", "--markdown"], 2, "--json and --markdown are exclusive" },
        { "probe: unknown behaviour row", ["probe", "--rows", "no-such-row"], 2, "unknown row(s) no-such-row" },
        { "probe: an empty list of rows", ["probe", "--rows", ""], 2, "--rows: an empty list; give behaviour row ids" },
        { "probe: a list of only commas", ["probe", "--rows", ",,"], 2, "--rows: an empty list" },
        { "probe: output into a missing directory", ["probe", "--json", "--output", "{dir}/missing/probe.json"], 2, "--output: cannot write '{dir}/missing/probe.json': directory '{dir}/missing' does not exist." },
        { "probe: output is a directory", ["probe", "-o", "{dir}"], 2, "--output: '{dir}' is a directory; give a file name." },
        { "probe: output under a file", ["probe", "-o", "{dir}/array.json/probe.md"], 2, "--output: cannot write '{dir}/array.json/probe.md': '{dir}/array.json' is a file, not a directory." },
        { "probe: output where no file can be created", ["probe", "--rows", "wp-shmem-markers", "--json", "-o", "/proc/uffdnative-probe.json"], 2, "--output: cannot write '/proc/uffdnative-probe.json': no such file or directory" },
        { "probe: output an empty path", ["probe", "-o", ""], 2, "--output: an empty path; give a file name, or '-' for standard output." },
        { "probe: output /dev/full", ["probe", "-o", "/dev/full"], 2, "--output: '/dev/full' is a character device, not a regular file" },
        { "probe: output a FIFO", ["probe", "-o", "{dir}/fifo"], 2, "--output: '{dir}/fifo' is a FIFO (named pipe), not a regular file" },
        { "probe: output a dangling symbolic link", ["probe", "-o", "{dir}/dangling.json"], 2, "--output: '{dir}/dangling.json' is a symbolic link to a missing file" },
        { "probe: output a symbolic link loop", ["probe", "-o", "{dir}/loop1.json"], 2, "--output: cannot write '{dir}/loop1.json': too many levels of symbolic links" },
        { "probe: output in an immutable (read-only) directory", ["probe", "-o", "{dir}/immutable/probe.json"], 2, "--output: cannot write '{dir}/immutable/probe.json': directory '{dir}/immutable' is not writable (operation not permitted)" },
        { "probe: output on a read-only file system", ["probe", "-o", "/proc/sys/uffdnative.json"], 2, "--output: cannot write '/proc/sys/uffdnative.json'" },
        { "probe: output given twice", ["probe", "-o", "{dir}/a.json", "-o", "{dir}/b.json"], 2, "Option '-o' expects a single argument but 2 were provided" },
        { "probe: a path with a NUL-like name is just a name, but a missing parent is not", ["probe", "-o", "{dir}/no/such/parent/x"], 2, "directory '{dir}/no/such/parent' does not exist" },
        // -- compare
        { "compare: output where writing is refused", ["compare", "{dir}/report.json", "-o", "/sys/kernel/uffdnative-matrix.md"], 2, "--output: cannot write '/sys/kernel/uffdnative-matrix.md': permission denied" },
        { "compare: output /dev/full", ["compare", "{dir}/report.json", "-o", "/dev/full"], 2, "--output: '/dev/full' is a character device" },
        { "compare: output a FIFO", ["compare", "{dir}/report.json", "-o", "{dir}/fifo"], 2, "--output: '{dir}/fifo' is a FIFO (named pipe)" },
        { "compare: output into an immutable directory", ["compare", "{dir}/report.json", "-o", "{dir}/immutable/m.md"], 2, "is not writable (operation not permitted)" },
        { "compare: output an empty path", ["compare", "{dir}/report.json", "-o", ""], 2, "--output: an empty path" },
        { "compare: no reports", ["compare"], 2, "Required argument missing for command: 'compare'" },
        { "compare: an option compare does not have", ["compare", "--jsn"], 2, "unknown option '--jsn' of compare (its options: --markdown, --json, --output/-o, --html)" },
        { "compare: an unknown option after a report", ["compare", "{dir}/report.json", "--jsn"], 2, "unknown option '--jsn' of compare" },
        { "compare: missing report file", ["compare", "{dir}/nope.json"], 2, "reports: file not found: '{dir}/nope.json'." },
        { "compare: an empty path", ["compare", ""], 2, "reports: an empty path; give a file." },
        { "compare: malformed JSON", ["compare", "{dir}/malformed.json"], 2, "{dir}/malformed.json: not a probe report (malformed JSON" },
        { "compare: JSON that is not a report", ["compare", "{dir}/array.json"], 2, "{dir}/array.json: not a probe report" },
        { "compare: empty file", ["compare", "{dir}/empty.json"], 2, "{dir}/empty.json: not a probe report" },
        { "compare: JSON null", ["compare", "{dir}/null.json"], 2, "{dir}/null.json: not a probe report (JSON null)" },
        { "compare: an empty object", ["compare", "{dir}/object.json"], 2, "{dir}/object.json: not a uffdnative probe report" },
        { "compare: a text report instead of JSON", ["compare", "{dir}/text.json"], 2, "{dir}/text.json: not a probe report (malformed JSON" },
        { "compare: a directory as a report", ["compare", "{dir}/adir.json"], 2, "reports: '{dir}/adir.json' is a directory, not a file." },
        { "compare: a FIFO as a report (never opened, never blocks)", ["compare", "{dir}/fifo"], 2, "reports: '{dir}/fifo' is a FIFO (named pipe), not a regular file" },
        { "compare: a symbolic link to a FIFO", ["compare", "{dir}/fifo-link.json"], 2, "is a FIFO (named pipe)" },
        { "compare: a character device as a report", ["compare", "/dev/zero"], 2, "reports: '/dev/zero' is a character device, not a regular file" },
        { "compare: /dev/full as a report", ["compare", "/dev/full"], 2, "reports: '/dev/full' is a character device" },
        { "compare: a dangling symbolic link", ["compare", "{dir}/dangling.json"], 2, "reports: '{dir}/dangling.json' is a symbolic link to a missing file." },
        { "compare: a symbolic link loop", ["compare", "{dir}/loop1.json"], 2, "reports: cannot read '{dir}/loop1.json': too many levels of symbolic links" },
        { "compare: a huge file", ["compare", "{dir}/huge.json"], 2, "more than the 64 MiB accepted" },
        { "compare: deeply nested JSON", ["compare", "{dir}/deep.json"], 2, "{dir}/deep.json: not a probe report (malformed JSON" },
        { "compare: a truncated report", ["compare", "{dir}/truncated-report.json"], 2, "{dir}/truncated-report.json: not a probe report (malformed JSON" },
        { "compare: NaN in a report", ["compare", "{dir}/nan.json"], 2, "{dir}/nan.json: not a probe report (malformed JSON" },
        { "compare: a report that is not UTF-8", ["compare", "{dir}/latin1.json"], 2, "it is not UTF-8 text" },
        { "compare: a report with null lists", ["compare", "{dir}/report-null-lists.json"], 2, "{dir}/report-null-lists.json: not a probe report (malformed JSON" },
        { "compare: a report of a future schema", ["compare", "{dir}/report-future-schema.json"], 2, "probe report schema version 99 is not supported" },
        { "compare: a schema version beyond int", ["compare", "{dir}/report-huge-schema.json"], 2, "{dir}/report-huge-schema.json: not a probe report (malformed JSON" },
        { "compare: a report of another tool", ["compare", "{dir}/report-other-tool.json"], 2, "not a uffdnative probe report (tool 'not-uffdnative')" },
        { "compare: a report without a kernel", ["compare", "{dir}/report-no-kernel.json"], 2, "probe report has no kernelRelease" },
        { "compare: a report with a string for a list", ["compare", "{dir}/report-wrong-types.json"], 2, "not a probe report (malformed JSON" },
        { "compare: a good report then a missing one (nothing written)", ["compare", "{dir}/report.json", "{dir}/nope.json", "-o", "{dir}/m.md"], 2, "reports: file not found: '{dir}/nope.json'." },
        // -- bench
        { "bench: pages not a number", ["bench", "--pages", "abc"], 2, "--pages: 'abc' is not a positive page count" },
        { "bench: zero pages", ["bench", "--pages", "4096,0"], 2, "--pages: '0' is not a positive page count" },
        { "bench: negative pages", ["bench", "--pages", "-5"], 2, "--pages: '-5' is not a positive page count" },
        { "bench: pages out of range", ["bench", "--pages", "4096,99999999"], 2, "--pages: 99999999 is above the limit of 1048576 pages (4 GiB per region)" },
        { "bench: pages beyond a 64-bit number", ["bench", "--pages", "99999999999999999999999"], 2, "--pages: '99999999999999999999999' is not a positive page count" },
        { "bench: pages in floating point", ["bench", "--pages", "1e3"], 2, "--pages: '1e3' is not a positive page count" },
        { "bench: pages NaN", ["bench", "--pages", "NaN"], 2, "--pages: 'NaN' is not a positive page count" },
        { "bench: an empty list of pages", ["bench", "--pages", ""], 2, "--pages: an empty list; give page counts such as 4096,65536" },
        { "bench: a list of only commas", ["bench", "--pages", ", ,"], 2, "--pages: an empty list" },
        { "bench: pages given twice", ["bench", "--pages", "1", "--pages", "2"], 2, "Option '--pages' expects a single argument but 2 were provided" },
        { "bench: toucher count out of range", ["bench", "--touchers", "3"], 2, "Argument '3' not recognized. Must be one of: '1' '2'" },
        { "bench: repeat not a number", ["bench", "--repeat", "x"], 2, "Cannot parse argument 'x' for option '--repeat' as expected type 'System.Int32'" },
        { "bench: repeat zero", ["bench", "--repeat", "0"], 2, "--repeat must be between 1 and 1000 (got 0)." },
        { "bench: repeat beyond int", ["bench", "--repeat", "99999999999"], 2, "Cannot parse argument '99999999999' for option '--repeat'" },
        { "bench: negative read-ahead", ["bench", "--read-ahead", "-1"], 2, "--read-ahead must be between 0 and 511 (got -1)." },
        { "bench: unknown scenario", ["bench", "--scenario", "nope"], 2, "--scenario: unknown 'nope'" },
        { "bench: an empty scenario", ["bench", "--scenario", ""], 2, "--scenario: unknown ''" },
        { "bench: a feature the kernel does not offer (MINOR on anonymous memory)", ["bench", "--scenario", "minor/anon"], 2, "--scenario: unknown 'minor/anon' (one of: " },
        { "bench: unknown loop", ["bench", "--loop", "turbo"], 2, "Argument 'turbo' not recognized. Must be one of: 'managed' 'native' 'both'" },
        { "bench: unknown pinning", ["bench", "--pin", ""], 2, "Argument '' not recognized. Must be one of: 'none' 'same' 'split'" },
        // -- matrix (every row refused before any guest starts)
        { "matrix: unknown accelerator", ["matrix", "--accel", "fast"], 2, "Argument 'fast' not recognized. Must be one of: 'auto' 'kvm' 'tcg'" },
        { "matrix: timeout not a number", ["matrix", "--timeout", "soon"], 2, "Cannot parse argument 'soon' for option '--timeout'" },
        { "matrix: timeout NaN", ["matrix", "--timeout", "NaN"], 2, "Cannot parse argument 'NaN' for option '--timeout'" },
        { "matrix: missing script", ["matrix", "--script", "{dir}/no-such-kernel-matrix.sh"], 2, "scripts/kernel-matrix.sh not found" },
        { "bisect: neither a row nor a scenario", ["bisect", "no-such-row", "--series", "6.1"], 2, "'no-such-row' is neither a probe row" },
        { "bisect: no builds named", ["bisect", "close-clears-wp"], 2, "which builds? give --series (e.g. 6.1), --from/--to package versions, or --kernels" },
        { "bisect: missing script", ["bisect", "close-clears-wp", "--series", "6.1", "--script", "{dir}/no-such-kernel-matrix.sh"], 2, "scripts/kernel-matrix.sh not found" },
        // -- serve
        { "serve: no socket given", ["serve"], 2, "Option '--socket' is required." },
        { "serve: socket in a missing directory", ["serve", "--socket", "{dir}/missing/uffd.sock"], 2, "--socket: listen failed: ENOENT (No such file or directory) — socket {dir}/missing/uffd.sock" },
        { "serve: a source file that does not exist", ["serve", "--socket", "{dir}/uffd.sock", "--source", "file:{dir}/missing.img"], 2, "--source: the file {dir}/missing.img does not exist" },
        { "serve: unknown policy", ["serve", "--socket", "{dir}/uffd.sock", "--policy", "nope"], 2, "--policy: unknown 'nope' (one of missing-copy, " },
        { "serve: injected delay not a number", ["serve", "--socket", "{dir}/uffd.sock", "--inject-delay-ms", "abc"], 2, "--inject-delay-ms: 'abc' is not MAX or MIN..MAX milliseconds" },
        { "serve: sessions not a number", ["serve", "--socket", "{dir}/uffd.sock", "--sessions", "x"], 2, "Cannot parse argument 'x' for option '--sessions' as expected type 'System.Int32'" },
        { "serve: negative sessions", ["serve", "--socket", "{dir}/uffd.sock", "--sessions", "-1"], 2, "--sessions must be between 0 and 1000000 (got -1)." },
        { "serve: a zero heartbeat", ["serve", "--socket", "{dir}/uffd.sock", "--heartbeat-ms", "0"], 2, "--heartbeat-ms must be between 1 and 60000 (got 0)." },
        { "serve: negative read-ahead", ["serve", "--socket", "{dir}/uffd.sock", "--read-ahead", "-5"], 2, "--read-ahead must be between 0 and 511 (got -5)." },
        // -- soak
        { "soak: pages below the minimum", ["soak", "--pages", "100"], 2, "--pages >= 1024 (at most 1048576) and a multiple of 512" },
        { "soak: pages beyond the maximum", ["soak", "--pages", "99999999999"], 2, "--pages >= 1024 (at most 1048576) and a multiple of 512" },
        { "soak: zero threads", ["soak", "--threads", "0"], 2, "--threads 1..64" },
        { "soak: negative threads", ["soak", "--threads", "-1"], 2, "--threads 1..64" },
        { "soak: seconds not a number", ["soak", "--seconds", "abc"], 2, "Cannot parse argument 'abc' for option '--seconds' as expected type 'System.Int32'" },
        { "soak: seconds beyond int", ["soak", "--seconds", "99999999999"], 2, "Cannot parse argument '99999999999' for option '--seconds'" },
        // -- check
        { "check: unknown scenario", ["check", "--scenario", "nope"], 2, "unknown scenario(s) nope; see 'uffdnative check --list'" },
        { "check: an empty scenario name", ["check", "--scenario", ""], 2, "unknown scenario(s) ; see 'uffdnative check --list'" },
        { "check: profile that is not a kernel version", ["check", "--profile", "abc"], 2, "--profile: 'abc' is not a kernel release (expected MAJOR.MINOR[.PATCH][-suffix], e.g. 6.1 or 6.18.44-fc)." },
        { "check: profile beyond int", ["check", "--profile", "99999999999.1"], 2, "--profile: '99999999999.1' is not a kernel release" },
        { "check: profile with a word for a patch", ["check", "--profile", "99.99.banana"], 2, "--profile: '99.99.banana' is not a kernel release" },
        { "check: profile older than userfaultfd", ["check", "--profile", "1.0"], 2, "--profile: '1.0' is older than 4.3, the first kernel with userfaultfd; give 4.3 or later." },
        { "check: profile 4.2", ["check", "--profile", "4.2"], 2, "--profile: '4.2' is older than 4.3" },
        { "check: profile empty", ["check", "--profile", ""], 2, "--profile: '' is not a kernel release" },
        { "check: profile with a major above 99", ["check", "--profile", "100.1"], 2, "--profile: '100.1' is not a kernel release (major version above 99)." },
        { "check: profile given twice", ["check", "--profile", "6.1", "--profile", "6.12"], 2, "Option '--profile' expects a single argument but 2 were provided" },
        { "check: a behaviour switch that does not exist", ["check", "--profile-set", "nosuch=new"], 2, "unknown profile switch 'nosuch'; known: wp-shmem-markers, " },
        { "check: switch override without a value", ["check", "--profile-set", "wp-async"], 2, "profile override 'wp-async' must be name=new or name=old" },
        { "check: unknown memory type", ["check", "--memory", "floppy"], 2, "unknown memory type 'floppy' (anon, shmem, shmem-private, hugetlb, hugetlb-private)" },
        { "check: an empty memory type", ["check", "--memory", ""], 2, "unknown memory type ''" },
        // -- fuzz
        { "fuzz: no seed", ["fuzz", "--count", "5"], 2, "Option '--seed' is required." },
        { "fuzz: seed not a number", ["fuzz", "--seed", "x", "--count", "1"], 2, "Cannot parse argument 'x' for option '--seed' as expected type 'System.UInt64'" },
        { "fuzz: a negative seed", ["fuzz", "--seed", "-1", "--count", "1"], 2, "Cannot parse argument '-1' for option '--seed'" },
        { "fuzz: seed given twice", ["fuzz", "--seed", "1", "--seed", "2", "--count", "1"], 2, "Option '--seed' expects a single argument but 2 were provided" },
        { "fuzz: neither a count nor a time", ["fuzz", "--seed", "1"], 2, "fuzz needs exactly one of --count N or --seconds T" },
        { "fuzz: both a count and a time", ["fuzz", "--seed", "1", "--count", "5", "--seconds", "5"], 2, "fuzz needs exactly one of --count N or --seconds T" },
        { "fuzz: zero scenarios", ["fuzz", "--seed", "1", "--count", "0"], 2, "--count must be between 1 and 100000000 (got 0)." },
        { "fuzz: count beyond int", ["fuzz", "--seed", "1", "--count", "99999999999"], 2, "Cannot parse argument '99999999999' for option '--count'" },
        { "fuzz: negative time", ["fuzz", "--seed", "1", "--seconds", "-3"], 2, "--seconds: '-3' is not a number of seconds above 0 and at most 604800." },
        { "fuzz: zero time", ["fuzz", "--seed", "1", "--seconds", "0"], 2, "--seconds: '0' is not a number of seconds above 0" },
        { "fuzz: NaN seconds", ["fuzz", "--seed", "1", "--seconds", "NaN"], 2, "--seconds: 'NaN' is not a number of seconds above 0 and at most 604800." },
        { "fuzz: Infinity seconds", ["fuzz", "--seed", "1", "--seconds", "Infinity"], 2, "--seconds: 'Infinity' is not a number of seconds" },
        { "fuzz: -Infinity seconds", ["fuzz", "--seed", "1", "--seconds", "-Infinity"], 2, "--seconds: '-Infinity' is not a number of seconds" },
        { "fuzz: 1e308 seconds", ["fuzz", "--seed", "1", "--seconds", "1e308"], 2, "--seconds: '1e308' is not a number of seconds" },
        { "fuzz: seconds beyond a double", ["fuzz", "--seed", "1", "--seconds", "1e999"], 2, "--seconds: '1e999' is not a number of seconds" },
        { "fuzz: unknown injected bug", ["fuzz", "--seed", "1", "--count", "1", "--inject-bug", "nope"], 2, "unknown model bug 'nope' (one of ZapDropsFileMarker, " },
        { "fuzz: injected bug None", ["fuzz", "--seed", "1", "--count", "1", "--inject-bug", "None"], 2, "unknown model bug 'None'" },
        { "fuzz: injected bug as a number", ["fuzz", "--seed", "1", "--count", "1", "--inject-bug", "64"], 2, "unknown model bug '64'" },
        { "fuzz: profile older than userfaultfd", ["fuzz", "--seed", "1", "--count", "1", "--profile", "1.0"], 2, "--profile: '1.0' is older than 4.3" },
        { "fuzz: output /dev/full", ["fuzz", "--seed", "1", "--count", "1", "--output", "/dev/full"], 2, "--output: '/dev/full' is a character device, not a directory" },
        { "fuzz: output an existing file", ["fuzz", "--seed", "1", "--count", "1", "--output", "{dir}/report.json"], 2, "--output: '{dir}/report.json' is a regular file, not a directory" },
        { "fuzz: output a FIFO", ["fuzz", "--seed", "1", "--count", "1", "--output", "{dir}/fifo"], 2, "--output: '{dir}/fifo' is a FIFO (named pipe), not a directory" },
        { "fuzz: output an empty path", ["fuzz", "--seed", "1", "--count", "1", "--output", ""], 2, "--output: an empty path; give a directory." },
        { "fuzz: output under a missing directory", ["fuzz", "--seed", "1", "--count", "1", "--output", "{dir}/missing/deeper/repro"], 2, "--output: cannot write '{dir}/missing/deeper/repro': directory '{dir}/missing/deeper' does not exist." },
        { "fuzz: output in an immutable directory", ["fuzz", "--seed", "1", "--count", "1", "--output", "{dir}/immutable/repro"], 2, "directory '{dir}/immutable' is not writable (operation not permitted)" },
        // -- replay
        { "replay: no file", ["replay"], 2, "Required argument missing for command: 'replay'." },
        { "replay: an empty path", ["replay", ""], 2, "file: an empty path; give a file." },
        { "replay: missing file", ["replay", "{dir}/nope.json"], 2, "file: file not found: '{dir}/nope.json'." },
        { "replay: a directory", ["replay", "{dir}/adir.json"], 2, "file: '{dir}/adir.json' is a directory, not a file." },
        { "replay: a FIFO (never opened, never blocks)", ["replay", "{dir}/fifo"], 2, "file: '{dir}/fifo' is a FIFO (named pipe), not a regular file" },
        { "replay: /dev/zero", ["replay", "/dev/zero"], 2, "file: '/dev/zero' is a character device, not a regular file" },
        { "replay: a dangling symbolic link", ["replay", "{dir}/dangling.json"], 2, "file: '{dir}/dangling.json' is a symbolic link to a missing file." },
        { "replay: a huge file", ["replay", "{dir}/huge.json"], 2, "cannot read scenario '{dir}/huge.json': it is 104857600 bytes, more than the 64 MiB accepted" },
        { "replay: malformed JSON", ["replay", "{dir}/malformed.json"], 2, "cannot replay '{dir}/malformed.json': not valid scenario JSON at line 1, byte " },
        { "replay: JSON of another shape", ["replay", "{dir}/array.json"], 2, "cannot replay '{dir}/array.json': not valid scenario JSON at line 1, byte 2: The JSON value could not be converted to UffdNative.Harness.Scenarios.Scenario" },
        { "replay: JSON null", ["replay", "{dir}/null.json"], 2, "cannot replay '{dir}/null.json': not a scenario: the JSON is null" },
        { "replay: an empty JSON object", ["replay", "{dir}/object.json"], 2, "cannot replay '{dir}/object.json': not a scenario: it lacks mappings, uffds, policy or ops" },
        { "replay: a probe report instead of a scenario", ["replay", "{dir}/report.json"], 2, "cannot replay '{dir}/report.json': not a scenario" },
        { "replay: an empty file", ["replay", "{dir}/empty.json"], 2, "cannot replay '{dir}/empty.json': not valid scenario JSON" },
        { "replay: deeply nested JSON", ["replay", "{dir}/deep.json"], 2, "cannot replay '{dir}/deep.json': not valid scenario JSON" },
        { "replay: a truncated scenario", ["replay", "{dir}/truncated-scenario.json"], 2, "cannot replay '{dir}/truncated-scenario.json': not valid scenario JSON" },
        { "replay: NaN in a scenario", ["replay", "{dir}/nan-scenario.json"], 2, "cannot replay '{dir}/nan-scenario.json': not valid scenario JSON" },
        { "replay: not UTF-8", ["replay", "{dir}/latin1.json"], 2, "cannot read scenario '{dir}/latin1.json': it is not UTF-8 text" },
        { "replay: first + count beyond int (crafted: it once made the executor mprotect 8 TiB)", ["replay", "{dir}/overflow.json"], 2, "not a runnable scenario: op 2 (copy u0 m0+2147483647..2147483649 0x10): range m0+2147483647..2147483649 outside the mapping (4 pages)" },
        { "replay: a negative count", ["replay", "{dir}/negative-count.json"], 2, "outside the mapping (4 pages)" },
        { "replay: a mapping of int.MaxValue pages", ["replay", "{dir}/huge-mapping.json"], 2, "mapping 'm0': 2147483647 pages (1..512)" },
        { "replay: a file offset beyond the file limit", ["replay", "{dir}/file-offset-overflow.json"], 2, "mapping 'm0': file pages 2147483647..2147483651 outside 0..4096" },
        { "replay: a number beyond int", ["replay", "{dir}/number-overflow.json"], 2, "not valid scenario JSON" },
        { "replay: an unknown op", ["replay", "{dir}/unknown-op.json"], 2, "not valid scenario JSON at line 1, byte " },
        { "replay: an op on an unknown mapping", ["replay", "{dir}/unknown-mapping.json"], 2, "op 1 (read elsewhere+1): no mapping 'elsewhere'" },
        { "replay: an op on an unknown uffd", ["replay", "{dir}/unknown-uffd.json"], 2, "op 0 (register u9 m0+0..4 MISSING): no uffd 'u9'" },
        { "replay: a MoveSource that names no mapping", ["replay", "{dir}/stale-move-source.json"], 2, "MoveSource 'gone' is not a mapping of the scenario" },
        { "replay: MISSING policy Move without a source", ["replay", "{dir}/move-without-source.json"], 2, "MISSING policy Move needs an existing MoveSource mapping" },
        { "replay: a mapping declared twice", ["replay", "{dir}/duplicate-mapping.json"], 2, "mapping 'm0' declared twice" },
        { "replay: an empty mapping name", ["replay", "{dir}/empty-name.json"], 2, "mapping name empty" },
        { "replay: a null op", ["replay", "{dir}/null-op.json"], 2, "op 1 is null" },
        { "replay: null mappings", ["replay", "{dir}/null-lists.json"], 2, "not a scenario: it lacks mappings, uffds, policy or ops" },
        { "replay: an unknown memory type", ["replay", "{dir}/bad-enum.json"], 2, "not valid scenario JSON" },
        { "replay: unknown register mode bits", ["replay", "{dir}/bad-mode-bits.json"], 2, "unknown register mode bits 0x1000" },
        { "replay: unknown feature bits", ["replay", "{dir}/bad-features.json"], 2, "uffd 'u0': unknown feature bits 0x4000000000000000" },
        { "replay: more than 1000 ops", ["replay", "{dir}/too-many-ops.json"], 2, "1004 ops (at most 1000)" },
        { "replay: truncate to int.MaxValue pages", ["replay", "{dir}/truncate-huge.json"], 2, "truncate to 2147483647 pages (0..4096)" },
        { "replay: profile not a kernel release", ["replay", "{dir}/scenario.json", "--profile", "banana"], 2, "--profile: 'banana' is not a kernel release" },
        { "replay: C reproducer into /dev/full", ["replay", "{dir}/scenario.json", "--c", "/dev/full"], 2, "--c: '/dev/full' is a character device, not a directory" },
        { "replay: C reproducer into an existing file", ["replay", "{dir}/scenario.json", "--c", "{dir}/report.json"], 2, "--c: '{dir}/report.json' is a regular file, not a directory" },
        { "replay: C reproducer into an empty path", ["replay", "{dir}/scenario.json", "--c", ""], 2, "--c: an empty path; give a directory." },
        { "replay: C reproducer into an immutable directory", ["replay", "{dir}/scenario.json", "--c", "{dir}/immutable/c"], 2, "--c: cannot write '{dir}/immutable/c': directory '{dir}/immutable' is not writable" },
    };

    [Theory]
    [MemberData(nameof(Rows))]
    public void ABadInputGivesOneClearLineAndTheDocumentedExitCode(string name, string[] args, int exitCode, string says)
    {
        var before = files.Snapshot();
        var r = CliRunner.Run(files.Expand(args));
        var expected = says.Replace("{dir}", files.Dir, StringComparison.Ordinal);
        // Nothing written, replaced or left behind (no temporary file) in the fixture, whatever the row.
        Assert.Equal(before, files.Snapshot());
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
    public void TheTableHasAtLeast120RowsAndCoversEveryVerb()
    {
        var rows = Rows().Select(r => (string[])r[1]).ToList();
        Assert.True(rows.Count >= 120, $"{rows.Count} rows");
        var verbs = UffdNative.Cli.Infrastructure.CliApp.BuildRoot().Subcommands.Select(c => c.Name).ToList();
        foreach (var verb in verbs)
            Assert.True(rows.Any(a => a.Contains(verb)), $"no bad-input row for verb {verb}");
    }
}
