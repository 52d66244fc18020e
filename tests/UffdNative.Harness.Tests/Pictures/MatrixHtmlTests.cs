using System.Net;

namespace UffdNative.Harness.Tests.Pictures;

/// <summary>
/// The matrix page (<c>compare --html</c>, which <c>matrix --html</c> shares) built from real reports:
/// this kernel's <c>probe --json</c> and <c>check --json</c>, and a second kernel derived from them (one
/// behaviour and one check cell changed, a C reproducer beside its check.json), so that rows differ.
/// Rendered in headless Chromium (scripts/render-page.sh, which installs Debian's chromium when
/// missing): the screenshot is not blank and shows the page's colours; the DOM holds every kernel and
/// every row, exactly the differing rows are marked, and the divergence links its reproducer.
/// </summary>
public sealed partial class MatrixHtmlTests : IDisposable
{
    private readonly string root = Path.Combine(Path.GetTempPath(), "uffdnative-html-test-" + Guid.NewGuid().ToString("N")[..8]);

    public MatrixHtmlTests() => Directory.CreateDirectory(root);

    public void Dispose() => Directory.Delete(root, recursive: true);

    private sealed record Fixture(string Page, ProbeReport HostProbe, ProbeReport OtherProbe, CheckReport HostCheck, CheckReport OtherCheck, CheckCell Diverged, string Repro);

    /// <summary>OTHER_RELEASE is the derived kernel's release.</summary>
    private const string OtherRelease = "6.1.0-derived-amd64";

    private Fixture Build(bool withRepro = true)
    {
        var host = Path.Combine(root, "host");
        var other = Path.Combine(root, "other");
        Directory.CreateDirectory(host);
        Directory.CreateDirectory(other);
        var probe = CliRunner.Run("probe", "--json");
        Assert.True(probe.ExitCode is 0 or 1, probe.ToString()); // 1: a flagged row, still a report
        var check = CliRunner.Run("check", "--json");
        Assert.True(check.ExitCode is 0 or 1, check.ToString());
        File.WriteAllText(Path.Combine(host, "probe.json"), probe.Stdout);
        File.WriteAllText(Path.Combine(host, "check.json"), check.Stdout);
        var hostProbe = ProbeReport.FromJson(probe.Stdout);
        var hostCheck = JsonSerializer.Deserialize(check.Stdout, CheckJsonContext.Default.CheckReport)!;
        Assert.NotEmpty(hostProbe.Behaviours);
        Assert.NotEmpty(hostCheck.Results);

        // The other kernel: its release, one behaviour observed the other way, one check cell diverged.
        var b0 = hostProbe.Behaviours[0];
        var flipped = b0 with { Kind = "observed", Value = !(b0.Value ?? false), Observed = "derived for the test" };
        var otherProbe = hostProbe with
        {
            KernelRelease = OtherRelease,
            Behaviours = [flipped, .. hostProbe.Behaviours.Skip(1)],
        };
        int i0 = hostCheck.Results.FindIndex(c => c.Status != "diverged");
        Assert.True(i0 >= 0, "every check cell diverged on this kernel: no cell to change");
        var c0 = hostCheck.Results[i0];
        var diverged = c0 with { Status = "diverged", Reason = null, DivergenceOp = "2: wp u0 m0+0", Aspect = "pagemap m0", Expected = "A...", Actual = "a..." };
        var otherCheck = hostCheck with
        {
            KernelRelease = OtherRelease,
            Results = [.. hostCheck.Results.Take(i0), diverged, .. hostCheck.Results.Skip(i0 + 1)],
            Passed = hostCheck.Passed - (c0.Status == "pass" ? 1 : 0),
            Diverged = hostCheck.Diverged + 1,
        };
        File.WriteAllText(Path.Combine(other, "probe.json"), otherProbe.ToJson());
        File.WriteAllText(Path.Combine(other, "check.json"), JsonSerializer.Serialize(otherCheck, CheckJsonContext.Default.CheckReport));
        var repro = Path.Combine(other, MatrixHtml.ReproducerPath(diverged.Scenario, diverged.Memory));
        if (withRepro)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(repro)!);
            File.WriteAllText(repro, "int main(void) { return 1; }\n");
        }

        var page = Path.Combine(root, "matrix.html");
        var r = CliRunner.Run("compare", "--html", page,
            Path.Combine(host, "probe.json"), Path.Combine(host, "check.json"), Path.Combine(other, "probe.json"), Path.Combine(other, "check.json"));
        Assert.True(r.ExitCode == 1, r.ToString()); // the divergence is flagged
        Assert.Equal($"matrix page: {page} (2 kernels)", Assert.Single(r.StderrLines));
        return new Fixture(page, hostProbe, otherProbe, hostCheck, otherCheck, diverged, repro);
    }

    private static string Render(string page, string? screenshot, string? dom)
    {
        string[] args = [Repo.PathOf("scripts/render-page.sh"), page, "--window-size", "1400,1000",
            .. screenshot is null ? Array.Empty<string>() : ["--screenshot", screenshot], .. dom is null ? Array.Empty<string>() : ["--dom", dom]];
        var r = CliRunner.Exec(args, timeoutMs: 600_000);
        // Chromium absent and not installable here: the test fails saying so (it is not skipped).
        Assert.True(r.ExitCode == 0, $"scripts/render-page.sh exited {r.ExitCode}: {r.Stderr.Trim()}");
        return r.Stderr;
    }

    [Fact]
    public void ChromiumRendersThePageWithEveryKernelAndRowAndTheDifferencesMarked()
    {
        var f = Build();
        var shot = Path.Combine(root, "matrix.png");
        var domFile = Path.Combine(root, "matrix.dom.html");
        Render(f.Page, shot, domFile);

        var png = PngFacts.Read(shot);
        Assert.Equal((1400, 1000), (png.Width, png.Height));
        png.AssertNotBlank("the matrix page screenshot");
        // The page's own colours reached the screen: the summary's pass green and a differing row's yellow.
        Assert.Contains(0xd9f2d9u, png.Colours);
        Assert.Contains(0xfff3b0u, png.Colours);

        var dom = File.ReadAllText(domFile);
        var sections = Sections(dom);
        string[] kernels = [f.HostProbe.KernelRelease, OtherRelease];
        foreach (var id in new[] { "probe", "check" })
            Assert.Equal(kernels, KernelHeaders().Matches(sections[id]).Select(m => WebUtility.HtmlDecode(m.Groups[1].Value)));

        // Every probe row, and exactly the differing ones marked.
        var matrix = ReportComparer.Build([f.HostProbe, f.OtherProbe]);
        var probeRows = RowMarks(sections["probe"]);
        Assert.Equal(matrix.Rows.Select(r => (r.Key, r.Differs)), probeRows);
        Assert.Contains((f.HostProbe.Behaviours[0].Id, true), probeRows);
        Assert.Contains(("kernel release", true), probeRows);

        // Every check cell (scenario × memory), the changed one alone marked, with its reproducer linked.
        var checkRows = RowMarks(sections["check"]);
        Assert.Equal(f.HostCheck.Results.Select(c => (c.Scenario, c.Scenario == f.Diverged.Scenario && c.Memory == f.Diverged.Memory)), checkRows);
        var href = $"other/repro/{f.Diverged.Scenario}-{f.Diverged.Memory}/repro.c";
        Assert.Contains($"<a class=\"repro\" href=\"{href}\">C reproducer</a>", sections["check"], StringComparison.Ordinal);
        Assert.Equal(Path.GetFullPath(f.Repro), Path.GetFullPath(Path.Combine(root, href)));
        Assert.Contains("at op 2: wp u0 m0+0: pagemap m0 expected A..., actual a...", WebUtility.HtmlDecode(sections["check"]), StringComparison.Ordinal);
    }

    [Fact]
    public void ThePageIsSelfContainedAndLinksNoReproducerThatIsAbsent()
    {
        var f = Build(withRepro: false);
        var html = File.ReadAllText(f.Page);
        foreach (var external in new[] { "src=", "<link", "url(", "@import", "http://", "https://" })
            Assert.DoesNotContain(external, html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("class=\"repro\"", html, StringComparison.Ordinal);
        Assert.Contains("<td class=\"diverged\"", html, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(root, "*.tmp", SearchOption.AllDirectories)); // written atomically
    }

    [Fact]
    public void AnEmptyReportIsOneLineAndExit2()
    {
        var empty = Path.Combine(root, "k", "check.json");
        Directory.CreateDirectory(Path.GetDirectoryName(empty)!);
        File.WriteAllText(empty, "");
        var page = Path.Combine(root, "page.html");
        var r = CliRunner.Run("compare", "--html", page, empty);
        Assert.Equal(2, r.ExitCode);
        Assert.Equal($"uffdnative: --html: {empty}: empty (the step that writes it produced nothing: see its .stderr)", Assert.Single(r.StderrLines));
        Assert.False(File.Exists(page));
    }

    [Fact]
    public void MatrixHtmlBuildsThePageFromTheScriptsOutputDirectoryAndKeepsItsStatus()
    {
        // A stand-in for scripts/kernel-matrix.sh (as the verb's own tests use): it writes this kernel's
        // real reports where the script would (OUT/host/) and exits 1, "a step failed".
        var reports = Path.Combine(root, "reports");
        Directory.CreateDirectory(reports);
        File.WriteAllText(Path.Combine(reports, "probe.json"), CliRunner.Run("probe", "--json").Stdout);
        File.WriteAllText(Path.Combine(reports, "check.json"), CliRunner.Run("check", "--json").Stdout);
        var fake = Path.Combine(root, "fake-matrix.sh");
        File.WriteAllText(fake, "printf '%s\\n' \"$@\" > \"$(dirname \"$0\")/args\"\n" +
            $"mkdir -p \"$2/host\" && cp {reports}/probe.json {reports}/check.json \"$2/host/\"; exit 1\n");
        var outDir = Path.Combine(root, "km");
        var page = Path.Combine(root, "km.html");
        var r = CliRunner.Run("matrix", "--script", fake, "--out", outDir, "--no-install", "--html", page, "host");
        Assert.True(r.ExitCode == 1, r.ToString());
        Assert.Equal(["--out", outDir, "--no-install", "--cli", AppContext.BaseDirectory.TrimEnd('/'), "host"], File.ReadAllLines(Path.Combine(root, "args")));
        Assert.Contains($"matrix page: {page} (1 kernel)", r.Stderr, StringComparison.Ordinal);
        var html = File.ReadAllText(page);
        var release = ProbeReport.FromJson(File.ReadAllText(Path.Combine(reports, "probe.json"))).KernelRelease;
        Assert.Contains($"<th class=\"k\">{WebUtility.HtmlEncode(release)}</th>", html, StringComparison.Ordinal);
        Assert.Contains("<h2 id=\"check\">", html, StringComparison.Ordinal);
    }

    /// <summary>The page's sections by their h2 id (summary, probe, probe-nobody, check).</summary>
    private static Dictionary<string, string> Sections(string dom) =>
        SectionStart().Split(dom).Skip(1).Chunk(2).ToDictionary(p => p[0], p => p[1]);

    /// <summary>Each table row's key (its th.r) and whether it is marked as differing.</summary>
    private static List<(string, bool)> RowMarks(string section) =>
        [.. Row().Matches(section).Select(m => (WebUtility.HtmlDecode(m.Groups[2].Value), m.Groups[1].Value == " class=\"differs\""))];

    [GeneratedRegex("<h2 id=\"([a-z-]+)\">")]
    private static partial Regex SectionStart();

    [GeneratedRegex("<th class=\"k\">([^<]*)</th>")]
    private static partial Regex KernelHeaders();

    [GeneratedRegex("<tr( class=\"differs\")?><td class=\"d\">[^<]*</td><td class=\"s\">[^<]*</td><th class=\"r\">([^<]*)</th>")]
    private static partial Regex Row();
}
