using UffdNative.Harness.Benchmarks;

namespace UffdNative.Harness.Tests.Pictures;

/// <summary>
/// <c>bench --plot DIR</c> end to end: a short real bench (missing-copy/anon: every kernel with
/// userfaultfd has it), two sizes, then the files: named as documented, valid PNGs of the documented
/// size that are not blank, SVGs, nothing temporary left, and the directory rules.
/// </summary>
public sealed class BenchPlotTests : IDisposable
{
    private readonly string root = Path.Combine(Path.GetTempPath(), "uffdnative-plot-test-" + Guid.NewGuid().ToString("N")[..8]);

    public BenchPlotTests() => Directory.CreateDirectory(root);

    public void Dispose() => Directory.Delete(root, recursive: true);

    private static CliResult Bench(string dir) =>
        CliRunner.Run("bench", "--pages", "64,256", "--repeat", "1", "--scenario", "missing-copy/anon", "--plot", dir);

    [Fact]
    public void WritesNonBlankPngsAndSvgsThenReplacesOnlyItsOwn()
    {
        var dir = Path.Combine(root, "plots");
        var r = Bench(dir);
        Assert.True(r.ExitCode == 0, r.ToString());
        string[] expected = ["cdf-missing-copy-anon-64p", "cdf-missing-copy-anon-256p", "ns-per-fault"];
        Assert.Equal(
            expected.SelectMany(n => new[] { n + ".png", n + ".svg" }).Append(BenchPlots.Marker).Order(StringComparer.Ordinal),
            Directory.GetFiles(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        foreach (var name in expected)
        {
            var png = PngFacts.Read(Path.Combine(dir, name + ".png"));
            Assert.Equal((BenchPlots.Width, BenchPlots.Height), (png.Width, png.Height));
            png.AssertNotBlank(name + ".png");
            var svg = File.ReadAllText(Path.Combine(dir, name + ".svg"));
            Assert.StartsWith("<?xml", svg.TrimStart(), StringComparison.Ordinal);
            Assert.Contains("<svg", svg, StringComparison.Ordinal);
        }
        // The loops' curves are drawn in their colours (managed blue, native orange).
        var cdf = PngFacts.Read(Path.Combine(dir, "cdf-missing-copy-anon-256p.png"));
        Assert.Contains(0x1f77b4u, cdf.Colours);
        Assert.Contains(0xff7f0eu, cdf.Colours);
        Assert.Contains("plots: 6 files in", r.Stderr, StringComparison.Ordinal);

        // A second run into the same directory replaces its files, and says so.
        var again = Bench(dir);
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Contains("(6 replaced those of an earlier --plot run)", again.Stderr, StringComparison.Ordinal);
        Assert.Contains("ns-per-fault.png (replaced)", again.Stderr, StringComparison.Ordinal);
        Assert.Equal(7, Directory.GetFiles(dir).Length); // no temporary file left behind
    }

    [Fact]
    public void RefusesAForeignNonEmptyDirectoryBeforeRunning()
    {
        var dir = Path.Combine(root, "foreign");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "mine.txt"), "keep");
        var r = Bench(dir);
        Assert.Equal(2, r.ExitCode);
        var line = Assert.Single(r.StderrLines);
        Assert.Equal($"uffdnative: --plot: '{dir}' is not empty and no earlier --plot run made it (no {BenchPlots.Marker}); give a new or empty directory", line);
        Assert.Equal("", r.Stdout); // refused before the bench ran
        Assert.Equal(["mine.txt"], Directory.GetFiles(dir).Select(Path.GetFileName));
    }

    [Fact]
    public void WithoutFontsSaysSoInOneLineAndExits3()
    {
        // A private mount namespace where /usr/share/fonts is empty: the host's mounts are untouched.
        var dir = Path.Combine(root, "nofonts");
        var r = CliRunner.Exec(["unshare", "--mount", "--propagation", "private", "sh", "-c",
            "mount -t tmpfs none /usr/share/fonts && exec \"$0\" \"$@\"", CliRunner.DotnetHost, CliRunner.CliDll(),
            "bench", "--pages", "64", "--repeat", "1", "--scenario", "missing-copy/anon", "--plot", dir]);
        Assert.Equal(3, r.ExitCode);
        Assert.Equal("uffdnative: --plot: SkiaSharp finds no fonts (it reads /usr/share/fonts), so the charts would have no text. Fix: apt-get install --no-install-recommends fonts-dejavu-core",
            Assert.Single(r.StderrLines));
    }
}
