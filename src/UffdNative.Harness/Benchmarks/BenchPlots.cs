using System.Globalization;
using ScottPlot;
using UffdNative.Harness.Output;

namespace UffdNative.Harness.Benchmarks;

/// <summary>Why the plots cannot be written: <see cref="Environment"/> when this machine lacks something
/// (a native library, fonts), else the directory was refused (a usage error).</summary>
public sealed class BenchPlotException(string message, bool environment, Exception? inner = null) : Exception(message, inner)
{
    public bool Environment { get; } = environment;
}

/// <summary>
/// <c>bench --plot DIR</c>: charts of one bench report, drawn with ScottPlot (SkiaSharp underneath).
/// <list type="bullet">
/// <item><c>cdf-SCENARIO-MEMORY-PAGESp.png/.svg</c>: per loop scenario and region size, the CDF of the
/// touch latency the touchers saw (all repetitions merged), one curve per loop (managed, native,
/// external), the x axis logarithmic.</item>
/// <item><c>ns-per-fault.png/.svg</c>: median wall ns per fault over the region size (pages), one line per
/// scenario and loop: flat lines are the expected shape; a single size gives single points.</item>
/// </list>
/// Every file is written atomically (temporary file, then rename). DIR must be missing, empty, or one an
/// earlier <c>--plot</c> run made (it holds <see cref="Marker"/>): then files of the same names are
/// replaced and reported as replaced; any other non-empty directory is refused.
/// </summary>
public static class BenchPlots
{
    public const string Marker = ".uffdnative-plots";
    public const int Width = 800, Height = 500;

    /// <summary>One file written: its path and whether it replaced one of an earlier run.</summary>
    public readonly record struct Written(string Path, bool Replaced);

    private static readonly Dictionary<string, Color> LoopColours = new()
    {
        ["managed"] = Color.FromHex("#1f77b4"),
        ["native"] = Color.FromHex("#ff7f0e"),
        ["external"] = Color.FromHex("#2ca02c"),
        ["none"] = Color.FromHex("#7f7f7f"),
    };

    /// <summary>Makes <paramref name="dir"/> ready for plots (created with its marker when missing or
    /// empty), or throws naming why it is refused. Call it before the bench runs.</summary>
    public static void PrepareDirectory(string dir)
    {
        var full = Path.GetFullPath(dir);
        if (File.Exists(full))
            throw new BenchPlotException($"--plot: '{full}' is a file; give a directory (missing, empty, or one an earlier --plot run wrote)", environment: false);
        try
        {
            if (Directory.Exists(full) && Directory.EnumerateFileSystemEntries(full).Any() && !File.Exists(Path.Combine(full, Marker)))
                throw new BenchPlotException($"--plot: '{full}' is not empty and no earlier --plot run made it (no {Marker}); give a new or empty directory", environment: false);
            Directory.CreateDirectory(full);
            var marker = Path.Combine(full, Marker);
            if (!File.Exists(marker))
                AtomicFile.WriteText(marker, "Made by uffdnative bench --plot: a later --plot run may replace the plots here.\n");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BenchPlotException($"--plot: cannot use '{full}': {e.Message}", environment: false, e);
        }
    }

    /// <summary>Draws one small chart in memory, so that a missing native library or font is reported
    /// before a bench runs for minutes. Throws <see cref="BenchPlotException"/> (environment) naming the fix.</summary>
    public static void CheckRenderer()
    {
        try
        {
            // Without fonts Skia's font manager still lists a family, whose typeface is empty: no text is drawn.
            var fonts = SkiaSharp.SKFontManager.Default;
            if (!fonts.GetFontFamilies().Any(f => { using var t = fonts.MatchFamily(f); return t is { GlyphCount: > 0 }; }))
                throw new BenchPlotException("--plot: SkiaSharp finds no fonts (it reads /usr/share/fonts), so the charts would have no text. Fix: apt-get install --no-install-recommends fonts-dejavu-core", environment: true);
            var p = new Plot();
            p.Add.Scatter(new double[] { 0, 1 }, new double[] { 0, 1 });
            p.GetImage(32, 32).GetImageBytes(ImageFormat.Png);
        }
        catch (Exception e) when (NativeLibraryMissing(e) is { } lib)
        {
            throw new BenchPlotException($"--plot: the native library {lib} (SkiaSharp, used by ScottPlot) cannot be loaded: {Innermost(e).Message.Split('\n')[0]}. " +
                "Fix: run a linux-x64 build that carries it (dotnet publish -r linux-x64 copies runtimes/linux-x64/native), on glibc", environment: true, e);
        }
    }

    private static string? NativeLibraryMissing(Exception e)
    {
        for (Exception? x = e; x is not null; x = x.InnerException)
            if (x is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
                return x.Message.Contains("HarfBuzz", StringComparison.OrdinalIgnoreCase) ? "libHarfBuzzSharp.so" : "libSkiaSharp.so";
        return null;
    }

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is not null)
            e = e.InnerException;
        return e;
    }

    /// <summary>Writes the charts of <paramref name="report"/> into <paramref name="dir"/> (see the class
    /// comment); <see cref="PrepareDirectory"/> must have accepted it. SVG too when <paramref name="svg"/>.</summary>
    public static List<Written> Write(BenchReport report, string dir, bool svg = true)
    {
        var written = new List<Written>();
        void Save(Plot plot, string name)
        {
            var png = Path.Combine(dir, name + ".png");
            written.Add(new Written(png, AtomicFile.Write(png, plot.GetImage(Width, Height).GetImageBytes(ImageFormat.Png))));
            if (svg)
            {
                var path = Path.Combine(dir, name + ".svg");
                written.Add(new Written(path, AtomicFile.WriteText(path, plot.GetSvgXml(Width, Height))));
            }
        }
        try
        {
            foreach (var r in report.Results.Where(r => r.Failure is null))
                if (LatencyCdf(r) is { } cdf)
                    Save(cdf, $"cdf-{r.Scenario}-{r.Memory}-{r.Pages}p");
            if (NsPerFault(report) is { } nsf)
                Save(nsf, "ns-per-fault");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BenchPlotException($"--plot: cannot write into '{Path.GetFullPath(dir)}': {e.Message}", environment: false, e);
        }
        return written;
    }

    /// <summary>The latency CDF of one scenario at one size: one curve per loop that served it, from the
    /// merged histograms of its repetitions. Null when no measurement kept a histogram.</summary>
    public static Plot? LatencyCdf(ScenarioResult r)
    {
        var loops = r.Measurements.Where(m => m.Latency is { Count: > 0 }).GroupBy(m => m.Loop).ToList();
        if (loops.Count == 0)
            return null;
        var plot = NewPlot();
        foreach (var g in loops)
        {
            var h = HistogramSnapshot.Merge(g.Select(m => m.Latency!));
            var (xs, ys) = Cdf(h);
            var s = plot.Add.Scatter(xs.Select(Math.Log10).ToArray(), ys);
            s.LegendText = string.Create(CultureInfo.InvariantCulture, $"{LoopName(g.Key)}: p50 {h.Percentile(0.5) / 1000.0:F1} µs, p99 {h.Percentile(0.99) / 1000.0:F1} µs ({h.Count} touches)");
            s.Color = LoopColours.GetValueOrDefault(g.Key, Colors.Black);
            s.MarkerSize = 0;
            s.LineWidth = 2;
            s.ConnectStyle = ConnectStyle.StepHorizontal;
        }
        LogAxis(plot.Axes.Bottom);
        plot.Axes.SetLimitsY(0, 1.02);
        plot.Title($"{r.Scenario}/{r.Memory}, {r.Pages} pages: touch latency CDF");
        plot.XLabel("latency of one touch (µs, log scale)");
        plot.YLabel("fraction of touches ≤ x");
        plot.ShowLegend(Alignment.LowerRight);
        return plot;
    }

    /// <summary>ns per fault (median over the repetitions) over the region size, one line per scenario and loop.</summary>
    public static Plot? NsPerFault(BenchReport report)
    {
        var series = report.Results.Where(r => r.Failure is null)
            .SelectMany(r => r.Loops.Where(l => l.Loop != "none" && l.Faults > 0).Select(l => (Name: $"{r.Scenario}/{r.Memory} {LoopName(l.Loop)}", r.Pages, l.NsPerFault, l.Loop)))
            .GroupBy(x => x.Name).ToList();
        if (series.Count == 0)
            return null;
        var plot = NewPlot();
        var palette = new ScottPlot.Palettes.Category10();
        int i = 0;
        foreach (var g in series)
        {
            var pts = g.OrderBy(x => x.Pages).ToList();
            var s = plot.Add.Scatter(pts.Select(x => Math.Log10(x.Pages)).ToArray(), pts.Select(x => x.NsPerFault).ToArray());
            s.LegendText = g.Key;
            s.Color = palette.GetColor(i++);
            s.MarkerSize = 8;
            s.LineWidth = 2;
            // Loops told apart by marker shape (Skia's SVG backend drops dash patterns, with a warning on stderr).
            s.MarkerShape = pts[0].Loop switch { "native" => MarkerShape.FilledSquare, "external" => MarkerShape.FilledTriangleUp, _ => MarkerShape.FilledCircle };
        }
        var sizes = report.Results.Select(r => r.Pages).Distinct().Order().ToList();
        plot.Axes.Bottom.SetTicks([.. sizes.Select(p => Math.Log10(p))], [.. sizes.Select(p => p.ToString("#,0", CultureInfo.InvariantCulture))]);
        plot.Axes.SetLimitsX(Math.Log10(sizes[0]) - 0.3, Math.Log10(sizes[^1]) + 0.3);
        plot.Axes.SetLimitsY(0, series.SelectMany(g => g).Max(x => x.NsPerFault) * 1.15);
        plot.Title(sizes.Count > 1 ? "ns per fault over region size (medians)" : $"ns per fault at {sizes[0]} pages (one size: pass --pages A,B,C for a sweep)");
        plot.XLabel("region size (pages of 4 KiB, log scale)");
        plot.YLabel("wall ns per fault");
        plot.ShowLegend(Edge.Right);
        return plot;
    }

    /// <summary>A new plot in a sans-serif font this machine has (Skia's font manager otherwise picks
    /// the first family it finds, often a serif one).</summary>
    private static Plot NewPlot()
    {
        var plot = new Plot();
        if (Sans.Value is { } family)
            plot.Font.Set(family);
        return plot;
    }

    private static readonly Lazy<string?> Sans = new(() =>
    {
        var families = SkiaSharp.SKFontManager.Default.GetFontFamilies();
        return new[] { "DejaVu Sans", "Liberation Sans", "Noto Sans", "Open Sans" }.FirstOrDefault(f => families.Contains(f, StringComparer.OrdinalIgnoreCase));
    });

    /// <summary>The CDF points of a histogram: for each non-empty bucket, its upper bound (capped by the
    /// maximum, in µs) and the fraction of values up to it.</summary>
    public static (double[] Xs, double[] Ys) Cdf(HistogramSnapshot h)
    {
        var xs = new List<double>();
        var ys = new List<double>();
        ulong seen = 0;
        for (int i = 0; i < LatencyHistogram.Buckets; i++)
        {
            ulong n = h.BucketCount(i);
            if (n == 0)
                continue;
            if (xs.Count == 0)
            {
                // The curve starts at 0 just below the first value.
                xs.Add(Math.Max(LatencyHistogram.LowerBound(i), 1) / 1000.0);
                ys.Add(0);
            }
            seen += n;
            xs.Add(Math.Max(Math.Min(LatencyHistogram.UpperBound(i), h.Max), 1) / 1000.0);
            ys.Add((double)seen / h.Count);
        }
        return (xs.ToArray(), ys.ToArray());
    }

    private static string LoopName(string loop) => loop == "none" ? "no handler" : loop;

    /// <summary>An axis whose values are log10 of the data: decades labelled with the data's value, log-spaced minor ticks.</summary>
    private static void LogAxis(IAxis axis)
    {
        axis.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
        {
            MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
            IntegerTicksOnly = true,
            LabelFormatter = v => Math.Pow(10, v).ToString("#,0.###", CultureInfo.InvariantCulture),
        };
    }
}
