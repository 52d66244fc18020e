using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using UffdNative.Cli.Infrastructure;
using UffdNative.Harness.Benchmarks;

namespace UffdNative.Cli.Commands;

public static class BenchCommand
{
    public const long MaxPages = 1L << 20;

    public static Command Create()
    {
        var pages = new Option<string>("--pages") { Description = "Pages per run; a comma-separated list runs each size (e.g. 4096,65536,262144).", DefaultValueFactory = _ => "65536" };
        var touchers = new Option<int>("--touchers") { Description = "Native toucher threads (1 or 2), each touching its half of the pages in order.", DefaultValueFactory = _ => 1 };
        touchers.AcceptOnlyFromAmong("1", "2");
        var loop = new Option<string>("--loop") { Description = "Which fault loop serves: managed (FaultServer), native (uffd_loop.c), or both alternately in the same run.", DefaultValueFactory = _ => "both" };
        loop.AcceptOnlyFromAmong("managed", "native", "both");
        var pin = new Option<string>("--pin") { Description = "CPU placement: none, same (loop and touchers on CPU 0), split (loop on 0, touchers on 1). Only same-regime ratios mean anything.", DefaultValueFactory = _ => "same" };
        pin.AcceptOnlyFromAmong("none", "same", "split");
        var repeat = CliOptions.Int("--repeat", "Measured repetitions per scenario and loop (figures are medians)", 5, 1, 1000);
        var warmup = new Option<bool>("--warmup") { Description = "Populate and free the memory each run needs just before it (this VM hands freed memory back to its host)." };
        var json = new Option<bool>("--json") { Description = "Write the report as JSON on stdout." };
        var scenario = new Option<string[]>("--scenario") { Description = "Only these scenarios: a name (baseline, missing-copy, missing-zero, wp, wp-snapshot, minor, read-ahead, async) or name/memory (e.g. wp/shmem). Repeatable.", AllowMultipleArgumentsPerToken = true };
        var external = new Option<bool>("--external") { Description = "Also measure every loop scenario served by an external handler process (uffdnative serve), against the in-process loops of the same run." };
        var plot = new Option<string?>("--plot") { Description = "Also draw charts into DIR (PNG and SVG): touch-latency CDFs per scenario and loop, ns/fault over region size. DIR must be new, empty, or an earlier --plot's (its plots are replaced)." };
        var readAhead = CliOptions.Int("--read-ahead", "read-ahead: pages installed after the faulting one (N)", 63, 0, 511);
        var cmd = new Command("bench", "Measure the managed and the native fault loop side by side on the real kernel; every run verifies every page's content and the fault count.")
        {
            pages, touchers, loop, pin, repeat, warmup, json, scenario, readAhead, external, plot,
        };
        cmd.SetAction(pr =>
        {
            var sizes = new List<long>();
            foreach (var part in CliOptions.NonEmptyList("--pages", pr.GetValue(pages)!, "page counts such as 4096,65536"))
            {
                if (!long.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out var p) || p < 1)
                    throw new CliUsageException($"--pages: '{part}' is not a positive page count");
                // A run maps the region and its source (and a snapshot store) at once.
                if (p > MaxPages)
                    throw new CliUsageException($"--pages: {p} is above the limit of {MaxPages} pages (4 GiB per region)");
                sizes.Add(p);
            }
            var filters = pr.GetValue(scenario) ?? [];
            foreach (var f in filters)
                if (!BenchCase.All.Any(c => c.Matches(f)))
                    throw new CliUsageException($"--scenario: unknown '{f}' (one of: {string.Join(", ", BenchCase.All.Select(c => c.Id))}, or a name alone)");
            var options = new BenchOptions
            {
                Pages = sizes,
                Touchers = pr.GetValue(touchers),
                Loop = Enum.Parse<BenchLoop>(pr.GetValue(loop)!, ignoreCase: true),
                Pin = Enum.Parse<BenchPin>(pr.GetValue(pin)!, ignoreCase: true),
                Repeat = pr.GetValue(repeat),
                Warmup = pr.GetValue(warmup),
                ReadAhead = pr.GetValue(readAhead),
                Scenarios = filters,
                External = pr.GetValue(external),
            };
            // Refused directories and a renderer that cannot load fail now, not after the run.
            if (pr.GetValue(plot) is { } plotDir)
                BenchPlotsCli.Prepare(plotDir);
            var report = CliProgress.Run("bench", 0, pr.GetValue(json), sink =>
                new BenchRunner(options, p => sink.Update(p.Step, p.Steps, ProgressText(p))).Run("uffdnative bench " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1).SkipWhile(a => a == "bench"))));
            if (pr.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(report, BenchJsonContext.Default.BenchReport));
            else
                Print(report);
            if (pr.GetValue(plot) is { } dir)
                BenchPlotsCli.Write(report, dir);
            return report.Failed ? ExitCodes.Failure : ExitCodes.Ok;
        });
        return cmd;
    }

    private static string ProgressText(BenchProgress p) =>
        $"{p.Case} {p.Loop} {p.Pages} pages {(p.Rep < 0 ? "warm-up" : $"rep {p.Rep + 1}/{p.Reps}")}: {p.Done}/{p.Total} touched, {p.Faults} faults";

    private static string F<T>(T value, string? format = null) where T : IFormattable => value.ToString(format, CultureInfo.InvariantCulture);

    private static void Print(BenchReport r)
    {
        var o = r.Options!;
        Console.WriteLine($"kernel {r.Kernel}, {r.Cpus} CPUs; pin {o.Pin.ToString().ToLowerInvariant()}, touchers {o.Touchers}, repeat {o.Repeat}, warmup {(o.Warmup ? "on" : "off")}, read-ahead {o.ReadAhead}");
        Console.WriteLine("Figures are medians over the repetitions; latency percentiles are per touch, seen by the toucher thread;");
        Console.WriteLine("cpu µs/f counts the loop and the touchers, loop µs/f the loop thread alone, kf/pg the kernel page faults the touchers took per page.");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"load average {r.LoadBefore:F2} before, {r.LoadAfter:F2} after") +
            (Math.Max(r.LoadBefore, r.LoadAfter) > 1.5 ? ": the machine was busy — wall-time figures are noisy; CPU µs/fault and p50 are disturbed far less." : "."));
        Console.WriteLine();
        var rows = new List<string[]>();
        var notes = new List<string>();
        foreach (var s in r.Results)
        {
            string id = $"{s.Scenario}/{s.Memory}";
            if (s.Failure is not null)
            {
                notes.Add($"{id} {s.Pages} pages: FAILED VERIFICATION: {s.Failure}");
                continue;
            }
            foreach (var f in s.Loops)
            {
                string ratio = f.Loop == "managed" && s.ManagedNativeRatio is { } x ? x.ToString("F3", CultureInfo.InvariantCulture) : "";
                rows.Add([id, F(s.Pages), f.Loop, F(f.Faults), F(f.FaultsPerSecond, "F0"), F(f.PagesPerSecond, "F0"), F(f.NsPerFault, "F0"), F(f.P50Ns, "F0"), F(f.P99Ns, "F0"), F(f.P999Ns, "F0"),
                    F(f.CpuUsPerFault, "F2"), F(f.LoopCpuUsPerFault, "F2"), F(f.ContextSwitchesPerFault, "F2"), F(f.KernelFaultsPerPage, "F2"), F(f.Spread, "P0"), ratio]);
                if (f.Loop == "external" && s.ExternalManagedRatio is { } er)
                    notes.Add(string.Create(CultureInfo.InvariantCulture, $"{id} {s.Pages} pages: external/managed: {er:F2}x ns/fault, {s.ExternalManagedCpuRatio:F2}x CPU µs/fault (same run)"));
                if (f.ScanMs is { } ms)
                    notes.Add(string.Create(CultureInfo.InvariantCulture, $"{id} {s.Pages} pages: scan of the range: {ms:F2} ms, returned exactly the {f.ScanPages} written pages (and a later subset exactly)"));
            }
        }
        CliConsole.WriteTable(["scenario", "pages", "loop", "faults", "faults/s", "pages/s", "ns/fault", "p50", "p99", "p999", "cpu µs/f", "loop µs/f", "csw/f", "kf/pg", "spread", "m/n"], rows);
        foreach (var n in notes)
            Console.WriteLine(n);
        if (r.Checks.Count > 0)
        {
            Console.WriteLine();
            Console.WriteLine("checks (same run):");
            foreach (var c in r.Checks)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {(c.Pass ? "PASS" : "MISS")} {c.Name}: {c.Value:F3} (target {c.Target}) — {c.Detail}"));
        }
        if (r.Failed)
            Console.WriteLine("\nAt least one scenario failed verification: its figures are not reported.");
    }
}
