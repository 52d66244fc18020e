namespace UffdNative.Harness.Tests.Probing;

public class CompareTests
{
    /// <summary>Two crafted reports: "A" an 18-row 6.18-like host, "B" a 6.1-like kernel with
    /// features 0x1fff, PAGEMAP_SCAN → ENOTTY, close-clears-wp backported.</summary>
    private static (ProbeReport A, ProbeReport B) Crafted()
    {
        BehaviourResult Row(string id, string kind, bool? value, string verdict, string observed) => new()
        {
            Id = id, Section = "§3", Title = id, Kind = kind, Value = value, Effective = kind == "not-supported" ? false : value,
            Observed = observed, Verdict = verdict, Mainline = true,
        };
        var a = new ProbeReport
        {
            KernelRelease = "6.18.44-fc-v669", Kernel = "6.18.44", MainlineVersion = "6.18",
            Environment = new EnvironmentReport { Uid = 0, CapSysPtrace = true, UnprivilegedUserfaultfd = 0 },
            OpenPaths = [new("syscall", true, "OK", "", ""), new("device", true, "OK", "", "")],
            UsablePath = "device",
            Features = new FeatureReport { Supported = 0x1ffff, Expected = 0x1ffff, Verdict = "as-expected", ApiIoctls = 0x8000000000000003 },
            RegisterMasks = [new("anon", "MISSING", "OK", 0x13c, "OK", 0x13c, "as-expected", "")],
            Behaviours =
            [
                Row("close-clears-wp", "observed", true, "as-expected", "wp=0 after close"),
                Row("pagemap-scan", "observed", true, "as-expected", "OK (1 region, the present page)"),
                Row("poison", "observed", true, "as-expected", "POISON OK"),
            ],
            Summary = new ProbeSummary { AsExpected = 3 },
        };
        var b = a with
        {
            KernelRelease = "6.1.0-56-amd64", Kernel = "6.1.0", MainlineVersion = "6.1",
            Features = a.Features with { Supported = 0x1fff, Expected = 0x1fff },
            RegisterMasks = [new("anon", "MISSING", "OK", 0x1c, "OK", 0x1c, "as-expected", "")],
            Behaviours =
            [
                Row("close-clears-wp", "observed", true, "backported", "wp=0 after close"),
                Row("pagemap-scan", "observed", false, "as-expected", "ENOTTY"),
                Row("poison", "not-supported", null, "as-expected", "not supported by this kernel (UFFDIO_API: EINVAL)"),
            ],
            Summary = new ProbeSummary { AsExpected = 2, Backported = 1 },
        };
        return (a, b);
    }

    [Fact]
    public void MatrixMarksExactlyTheRowsThatDiffer()
    {
        var (a, b) = Crafted();
        var m = ReportComparer.Build([b, a]);
        Assert.Equal(["6.1.0-56-amd64", "6.18.44-fc-v669"], m.Columns);
        MatrixRow Get(string section, string key) => m.Rows.Single(r => r.Section == section && r.Key == key);
        Assert.True(Get("features", "UFFDIO_API features").Differs);
        Assert.Equal(["0x1fff", "0x1ffff"], Get("features", "UFFDIO_API features").Cells);
        Assert.True(Get("features", "MOVE").Differs);
        Assert.False(Get("features", "EXACT_ADDRESS").Differs);
        Assert.True(Get("register", "anon MISSING").Differs);
        Assert.Equal(["old", "new"], Get("behaviour", "pagemap-scan").Cells);
        Assert.True(Get("behaviour", "pagemap-scan").Differs);
        Assert.Equal(["not supported", "new"], Get("behaviour", "poison").Cells);
        // Same behaviour, different verdict: not a differing row, but the backport is annotated.
        var close = Get("behaviour", "close-clears-wp");
        Assert.False(close.Differs);
        Assert.Equal(["backported", ""], close.Notes);
        Assert.False(Get("open", "syscall").Differs);
        Assert.Empty(m.Flagged);

        var md = ReportComparer.Markdown(m);
        Assert.Contains("| **≠** | behaviour | **pagemap-scan** | **old** | **new** |", md);
        Assert.Contains("| | behaviour | close-clears-wp | new (backported) | new |", md);
        Assert.Contains("| **≠** | features | **UFFDIO_API features** | **0x1fff** | **0x1ffff** |", md);
        Assert.Contains("| | Section | Row | `6.1.0-56-amd64` | `6.18.44-fc-v669` |", md);

        var table = ReportComparer.Table(m);
        Assert.Contains("* behaviour pagemap-scan", table);
        Assert.Contains("  behaviour close-clears-wp", table);
        Assert.Contains($"{m.Rows.Count} rows, {m.DifferingRows} differ (marked *).", table);
    }

    [Fact]
    public void RegressedRowsAreListedAndDuplicateKernelsGetDistinctColumns()
    {
        var (a, _) = Crafted();
        var bad = a with
        {
            Environment = a.Environment with { Uid = 65534 },
            Behaviours = [.. a.Behaviours.Select(x => x.Id == "poison" ? x with { Value = false, Effective = false, Verdict = "regressed", Observed = "POISON: EINVAL" } : x)],
        };
        var m = ReportComparer.Build([a, bad]);
        Assert.Equal(["6.18.44-fc-v669 (uid 0)", "6.18.44-fc-v669 (uid 65534)"], m.Columns);
        Assert.Equal(["6.18.44-fc-v669 (uid 65534): poison REGRESSED/UNEXPECTED (POISON: EINVAL)"], m.Flagged);
        Assert.Contains("**Flagged (regressed/unexpected or failed):**", ReportComparer.Markdown(m));
    }

    [Fact]
    public void CompareCommandExitCodes()
    {
        var (a, b) = Crafted();
        var dir = Path.Combine(Path.GetTempPath(), "uffdnative-compare-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        try
        {
            string Write(string name, string text)
            {
                var p = Path.Combine(dir, name);
                File.WriteAllText(p, text);
                return p;
            }
            var pa = Write("a.json", a.ToJson());
            var pb = Write("b.json", b.ToJson());
            var ok = CliRunner.Run(["compare", pb, pa, "--markdown"]);
            Assert.True(ok.ExitCode == 0, ok.Stderr);
            Assert.Contains("| **≠** | behaviour | **pagemap-scan** | **old** | **new** |", ok.Stdout);
            Assert.Equal("", ok.Stderr);

            var term = CliRunner.Run(["compare", pb, pa]);
            Assert.Equal(0, term.ExitCode);
            Assert.Contains("* behaviour pagemap-scan", term.Stdout);

            var missing = Path.Combine(dir, "missing.json");
            var r1 = CliRunner.Run(["compare", pa, missing]);
            Assert.Equal(2, r1.ExitCode);
            Assert.Equal($"uffdnative: reports: file not found: '{missing}'.\n", r1.Stderr);
            Assert.Equal("", r1.Stdout);

            var broken = Write("broken.json", "{\"schemaVersion\": 2, \"tool\": ");
            var r2 = CliRunner.Run(["compare", pa, broken]);
            Assert.Equal(2, r2.ExitCode);
            Assert.StartsWith($"uffdnative: {broken}: not a probe report (malformed JSON", r2.Stderr);
            Assert.Single(r2.Stderr.TrimEnd('\n').Split('\n'));

            var old = Write("old.json", "{\"schemaVersion\": 1, \"tool\": \"uffdnative\", \"kernelRelease\": \"6.1\"}");
            var r3 = CliRunner.Run(["compare", old]);
            Assert.Equal(2, r3.ExitCode);
            Assert.Equal($"uffdnative: {old}: probe report schema version 1 is not supported (this uffdnative reads version 3)\n", r3.Stderr);

            var regressed = Write("regressed.json", (a with { Behaviours = [.. a.Behaviours.Select(x => x with { Verdict = "regressed" })] }).ToJson());
            var r4 = CliRunner.Run(["compare", pa, regressed, "-o", Path.Combine(dir, "m.md"), "--markdown"]);
            Assert.Equal(1, r4.ExitCode);
            Assert.Contains("**Flagged (regressed/unexpected or failed):**", File.ReadAllText(Path.Combine(dir, "m.md")));

            var none = CliRunner.Run(["compare"]);
            Assert.Equal(2, none.ExitCode);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
