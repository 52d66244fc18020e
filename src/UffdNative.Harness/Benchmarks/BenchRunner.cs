using System.Diagnostics;
using System.Runtime.InteropServices;
using UffdNative.Harness.Probing;

namespace UffdNative.Harness.Benchmarks;

/// <summary>
/// Runs the bench scenarios. Every run is verified (every page's content through the shim after the
/// uffd is closed, and the fault count); a repetition that fails verification makes its scenario report
/// the failure and no figure. Managed and native loops are measured alternately in the same process
/// and repetition, so their ratio is a same-run figure even on a noisy machine.
/// </summary>
public sealed unsafe class BenchRunner(BenchOptions options, Action<BenchProgress>? progress = null)
{
    private static readonly ulong Page = Mapping.PageSize;
    private const ulong BaseSeed = 0x5eed, TouchSeed = 0x70c4;

    private int step, steps;
    private ExternalBenchHost? externalHost;

    public IReadOnlyList<BenchCase> SelectedCases() =>
        options.Scenarios.Count == 0 ? BenchCase.All : [.. BenchCase.All.Where(c => options.Scenarios.Any(c.Matches))];

    public BenchReport Run(string commandLine = "")
    {
        var cases = SelectedCases();
        steps = cases.Sum(c => LoopsFor(c).Length) * options.Pages.Count * options.Repeat;
        step = 0;
        double loadBefore = LoadAverage();
        var results = new List<ScenarioResult>();
        using (externalHost = options.External ? new ExternalBenchHost(Cpus().Loop) : null)
            foreach (var pages in options.Pages)
                foreach (var c in cases)
                    results.Add(RunCase(c, pages));
        return new BenchReport
        {
            Kernel = KernelVersion.RunningRelease(),
            Cpus = Environment.ProcessorCount,
            CommandLine = commandLine,
            LoadBefore = loadBefore,
            LoadAfter = LoadAverage(),
            Options = options,
            Results = results,
            Checks = BenchChecks.Compute(results, options),
        };
    }

    private static double LoadAverage()
    {
        try
        {
            var first = File.ReadAllText("/proc/loadavg").Split(' ')[0];
            return double.Parse(first, System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return -1;
        }
    }

    private string[] LoopsFor(BenchCase c)
    {
        string[] loops = !c.UsesLoop ? ["none"] : options.Loop switch { BenchLoop.Managed => ["managed"], BenchLoop.Native => ["native"], _ => ["managed", "native"] };
        return options.External && ExternalBenchHost.Supports(c) ? [.. loops, "external"] : loops;
    }

    private ScenarioResult RunCase(BenchCase c, long pages)
    {
        var loops = LoopsFor(c);
        // Unmeasured warm-up of each loop (JIT, page cache of the binaries, first-use paths).
        foreach (var l in loops)
            RunOnce(c, l, Math.Min(pages, 2048), rep: -1);
        var ms = new List<Measurement>();
        for (int rep = 0; rep < options.Repeat; rep++)
        {
            // Alternate the order so neither loop always runs first.
            var order = rep % 2 == 0 ? loops : [.. loops.Reverse()];
            foreach (var l in order)
            {
                step++;
                ms.Add(RunOnce(c, l, pages, rep));
            }
        }
        var failed = ms.FirstOrDefault(m => m.Failure is not null);
        if (failed is not null)
            return new ScenarioResult { Scenario = c.Scenario, Memory = c.Memory, Pages = pages, Failure = $"{failed.Loop} rep {failed.Rep}: {failed.Failure}", Measurements = ms };
        var figures = loops.Select(l => Figures(l, [.. ms.Where(m => m.Loop == l)])).ToList();
        double? ratio = null, paired = null, cpu = null, p50 = null;
        if (loops.Contains("managed") && loops.Contains("native"))
        {
            ratio = figures[0].NsPerFault / figures[1].NsPerFault;
            var pairs = Enumerable.Range(0, options.Repeat).Select(rep =>
                ms.Single(m => m.Loop == "managed" && m.Rep == rep).NsPerFault / ms.Single(m => m.Loop == "native" && m.Rep == rep).NsPerFault).ToList();
            paired = Median(pairs);
            cpu = figures[0].CpuUsPerFault / figures[1].CpuUsPerFault;
            p50 = figures[0].P50Ns / figures[1].P50Ns;
        }
        var managed = figures.FirstOrDefault(f => f.Loop == "managed");
        var external = figures.FirstOrDefault(f => f.Loop == "external");
        return new ScenarioResult
        {
            Scenario = c.Scenario, Memory = c.Memory, Pages = pages, Loops = figures, ManagedNativeRatio = ratio, PairedRatio = paired,
            CpuRatio = cpu, P50Ratio = p50, Measurements = ms,
            ExternalManagedRatio = managed is not null && external is not null ? external.NsPerFault / managed.NsPerFault : null,
            ExternalManagedCpuRatio = managed is not null && external is not null ? external.CpuUsPerFault / managed.CpuUsPerFault : null,
        };
    }

    private static LoopFigures Figures(string loop, List<Measurement> ms)
    {
        var ns = ms.Select(m => m.NsPerFault).ToList();
        double med = Median(ns);
        double faults = Median([.. ms.Select(m => (double)m.Faults)]);
        return new LoopFigures
        {
            Loop = loop,
            Reps = ms.Count,
            Faults = (ulong)faults,
            NsPerFault = med,
            FaultsPerSecond = Median([.. ms.Select(m => m.Faults * 1e9 / m.WallNs)]),
            PagesPerSecond = Median([.. ms.Select(m => m.Pages * 1e9 / m.WallNs)]),
            NsPerPage = Median([.. ms.Select(m => (double)m.WallNs / m.Pages)]),
            P50Ns = Median([.. ms.Select(m => (double)m.P50Ns)]),
            P99Ns = Median([.. ms.Select(m => (double)m.P99Ns)]),
            P999Ns = Median([.. ms.Select(m => (double)m.P999Ns)]),
            CpuUsPerFault = Median([.. ms.Select(m => (m.LoopCpuNs + m.TouchCpuNs) / 1000.0 / Math.Max(1UL, m.Faults))]),
            LoopCpuUsPerFault = Median([.. ms.Select(m => m.LoopCpuNs / 1000.0 / Math.Max(1UL, m.Faults))]),
            KernelFaultsPerPage = Median([.. ms.Select(m => (double)m.TouchKernelFaults / m.Pages)]),
            ContextSwitchesPerFault = Median([.. ms.Select(m => (double)(m.LoopContextSwitches + m.TouchContextSwitches) / Math.Max(1UL, m.Faults))]),
            ServiceP50Ns = Median([.. ms.Select(m => (double)m.ServiceP50Ns)]),
            ServiceP99Ns = Median([.. ms.Select(m => (double)m.ServiceP99Ns)]),
            Spread = med == 0 ? 0 : (ns.Max() - ns.Min()) / med,
            ScanMs = ms[0].ScanNs is null ? null : Median([.. ms.Select(m => m.ScanNs!.Value / 1e6)]),
            ScanPages = ms[0].ScanPages,
        };
    }

    internal static double Median(List<double> xs)
    {
        if (xs.Count == 0)
            return 0;
        xs.Sort();
        return xs.Count % 2 == 1 ? xs[xs.Count / 2] : (xs[xs.Count / 2 - 1] + xs[xs.Count / 2]) / 2;
    }

    private (int Loop, int Touch) Cpus() => options.Pin switch
    {
        BenchPin.Same => (0, 0),
        BenchPin.Split => (0, Math.Min(1, Environment.ProcessorCount - 1)),
        _ => (-1, -1),
    };

    // ---- one run ----------------------------------------------------------------------------------

    private sealed class Setup : IDisposable
    {
        public MemfdFile? File;
        public Mapping? Map;
        public Userfaultfd? Uffd;
        public nint Source, Store;
        public ulong Len;
        public FaultServer? Server;
        public NativeFaultLoop? Native;
        public PageSource? PageSource;
        public SnapshotStore? SnapshotStore;
        public AsyncWriteTracking? Tracker;
        public ExternalBenchLoop? External;

        public void Dispose()
        {
            External?.Dispose();
            Server?.Dispose();
            Native?.Dispose();
            Tracker?.Dispose();
            Uffd?.Dispose();
            Map?.Dispose();
            File?.Dispose();
            PageSource?.Dispose();
            SnapshotStore?.Dispose();
            if (Source != 0)
                NativeMemory.AlignedFree((void*)Source);
            if (Store != 0)
                NativeMemory.AlignedFree((void*)Store);
        }
    }

    private Measurement RunOnce(BenchCase c, string loop, long pages, int rep)
    {
        ulong len = (ulong)pages * Page;
        bool needsSource = c.Scenario is "missing-copy" or "read-ahead";
        bool snapshot = c.Scenario == "wp-snapshot";
        if (options.Warmup)
            WarmUp(len * (needsSource || snapshot ? 2UL : 1UL));
        using var s = new Setup { Len = len };
        var (loopCpu, touchCpu) = Cpus();
        var touchMode = c.Scenario == "missing-zero" ? TouchMode.Read : TouchMode.Write;

        // Memory, content and registration, all before the clock starts.
        if (c.Scenario == "minor")
        {
            s.File = MemfdFile.Create("bench-minor", (long)len);
            using (var alias = s.File.MapShared())
                Accessor.Fill(alias.Address, len, BaseSeed); // the page cache holds the content
            s.Map = s.File.MapShared();
        }
        else if (c.Memory == "shmem")
        {
            // Sealed against shrinking, as a VMM seals guest memory (QEMU's memfd backend): an external
            // handler may then map it for the wp-snapshot copy (docs/security.md); in-process it changes nothing.
            s.File = MemfdFile.CreateSealedAgainstShrinking("bench-" + c.Scenario, (long)len);
            s.Map = s.File.MapShared();
        }
        else
        {
            s.Map = Mapping.Anonymous(len);
        }
        if (needsSource)
        {
            s.Source = (nint)NativeMemory.AlignedAlloc((nuint)len, (nuint)Page);
            Accessor.Fill((ulong)s.Source, len, BaseSeed);
        }
        if (c.Scenario is "wp" or "wp-snapshot" || c.Id == "async/anon")
            Accessor.Fill(s.Map.Address, len, BaseSeed); // populated before protection
        var features = c.Scenario switch
        {
            "wp" or "wp-snapshot" => UffdFeatures.PageFaultFlagWp | UffdFeatures.WpHugetlbfsShmem,
            "minor" => UffdFeatures.MinorShmem,
            "async" => UffdFeatures.WpAsync,
            _ when c.Memory == "shmem" => UffdFeatures.MissingShmem,
            _ => UffdFeatures.None,
        };
        var mode = c.Scenario switch
        {
            "wp" or "wp-snapshot" or "async" => RegisterMode.WriteProtect,
            "minor" => RegisterMode.Minor,
            _ => RegisterMode.Missing,
        };
        if (c.Scenario != "baseline")
        {
            s.Uffd = Userfaultfd.Open(OpenPolicy.Here.Options(features));
            s.Uffd.Register(s.Map.Address, len, mode);
            if (c.Scenario is "wp" or "wp-snapshot")
                if (!s.Uffd.WriteProtect(s.Map.Address, len, protect: true))
                    throw new InvalidOperationException("WRITEPROTECT answered EAGAIN with no event producer");
        }
        if (c.Scenario == "async")
        {
            s.Tracker = new AsyncWriteTracking(s.Uffd!, s.Map.Address, len);
            s.Tracker.Arm();
        }
        if (snapshot)
        {
            if (loop == "native")
            {
                s.Store = (nint)NativeMemory.AlignedAlloc((nuint)len, (nuint)Page);
                NativeMemory.Clear((void*)s.Store, (nuint)len); // touched now, not while measuring
            }
            else if (loop == "managed")
            {
                s.SnapshotStore = new SnapshotStore(len);
                NativeMemory.Clear((void*)s.SnapshotStore.Address, (nuint)len);
            }
        }

        // The loop.
        if (loop == "managed")
        {
            FaultPolicy policy = c.Scenario switch
            {
                "missing-copy" => new MissingCopy(s.PageSource = PageSource.FromBuffer(s.Source, len)),
                "read-ahead" => new ReadAhead(s.PageSource = PageSource.FromBuffer(s.Source, len), options.ReadAhead),
                "missing-zero" => new MissingZero(),
                "wp" => new WpUnprotect(),
                "wp-snapshot" => new WpSnapshot(s.SnapshotStore!),
                "minor" => new MinorContinue(),
                _ => throw new InvalidOperationException(c.Id),
            };
            s.Server = new FaultServer(s.Uffd!, new FaultServerOptions
            {
                Policies = [policy],
                Ranges = [new ServedRange(s.Map.Address, len)],
                Cpu = loopCpu,
                ThreadName = "bench-managed-loop",
            });
            s.Server.Start();
        }
        else if (loop == "external")
        {
            s.External = ExternalBenchLoop.Start(externalHost!, c, s.Uffd!, s.Map, s.File, BaseSeed, options.ReadAhead);
        }
        else if (loop == "native")
        {
            s.Native = NativeFaultLoop.Start(s.Uffd!, new NativeLoopOptions
            {
                Policy = c.Scenario switch
                {
                    "missing-copy" => NativePolicy.MissingCopy,
                    "read-ahead" => NativePolicy.ReadAhead,
                    "missing-zero" => NativePolicy.MissingZero,
                    "wp" => NativePolicy.WpUnprotect,
                    "wp-snapshot" => NativePolicy.WpSnapshot,
                    "minor" => NativePolicy.MinorContinue,
                    _ => throw new InvalidOperationException(c.Id),
                },
                RangeStart = s.Map.Address,
                RangeLength = len,
                Source = s.Source,
                Snapshot = s.Store,
                ReadAheadPages = options.ReadAhead,
                Cpu = loopCpu,
            });
        }

        // The touchers: released together, each touching its share of the pages in order. No GC may
        // pause the managed loop while they run (the native one cannot be paused by it): collect now,
        // then measure inside a no-GC region.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        bool noGc = GC.TryStartNoGCRegion(32 << 20);
        List<TouchResult> touch;
        string? failure;
        try
        {
            (touch, failure) = Touch(c, loop, s, pages, touchMode, touchCpu, rep);
        }
        finally
        {
            if (noGc && System.Runtime.GCSettings.LatencyMode == System.Runtime.GCLatencyMode.NoGCRegion)
                GC.EndNoGCRegion();
        }
        if (failure is not null)
            return new Measurement { Loop = loop, Rep = rep, Pages = pages, Failure = failure };

        // Stop the loop (it closes the uffd), then verify: nothing can block any more.
        FaultStatistics? st = null;
        if (s.Server is not null)
        {
            if (!s.Server.Stop(30_000))
                return new Measurement { Loop = loop, Rep = rep, Pages = pages, Failure = "the managed loop did not stop" };
            st = s.Server.Statistics;
        }
        else if (s.Native is not null)
        {
            if (!s.Native.Stop(30_000))
                return new Measurement { Loop = loop, Rep = rep, Pages = pages, Failure = "the native loop did not stop" };
            st = s.Native.Statistics;
        }
        else if (s.External is not null)
        {
            st = s.External.Stop(30_000, out var stopFailure);
            if (st is null)
                return new Measurement { Loop = loop, Rep = rep, Pages = pages, Failure = stopFailure };
        }
        long? scanNs = null;
        long? scanPages = null;
        bool? scanExact = null;
        if (c.Scenario == "async")
        {
            var t0 = Stopwatch.GetTimestamp();
            var regions = s.Tracker!.Collect();
            scanNs = (long)Stopwatch.GetElapsedTime(t0).TotalNanoseconds;
            scanPages = regions.Sum(r => (long)r.Pages(Page));
            scanExact = regions.Count == 1 && regions[0].Start == s.Map.Address && regions[0].End == s.Map.Address + len;
            string? subsetFailure = AsyncSubsetCheck(s, pages);
            if (scanExact != true || subsetFailure is not null)
                return new Measurement { Loop = loop, Rep = rep, Pages = pages, Failure = subsetFailure ?? $"the scan returned {scanPages} pages in {regions.Count} regions, expected exactly the {pages} written" };
        }
        s.Uffd?.Dispose();

        string? verify = VerifyContent(c, s, pages, touchMode) ?? VerifyCounts(c, st, pages);
        if (st is not null && st.ExitReason != FaultServerExitReason.Stopped)
            verify ??= $"the loop ended with {st.ExitReason} ({st.ErrorOperation}, errno {st.Error})";
        var latency = HistogramSnapshot.Merge(touch.Select(t => t.Latency.ToSnapshot()));
        ulong faults = st?.Faults ?? (ulong)pages;
        return new Measurement
        {
            Loop = loop,
            Rep = rep,
            Pages = pages,
            Faults = faults,
            PagesResolved = st?.PagesResolved ?? 0,
            WallNs = touch.Max(t => t.EndNs) - touch.Min(t => t.StartNs),
            LoopCpuNs = st?.LoopUsage.CpuNs ?? 0,
            LoopContextSwitches = st?.LoopUsage.ContextSwitches ?? 0,
            TouchCpuNs = touch.Sum(t => t.Usage.CpuNs),
            TouchContextSwitches = touch.Sum(t => t.Usage.ContextSwitches),
            TouchKernelFaults = touch.Sum(t => t.Usage.MinorFaults + t.Usage.MajorFaults),
            P50Ns = latency.Percentile(0.50),
            P99Ns = latency.Percentile(0.99),
            P999Ns = latency.Percentile(0.999),
            ServiceP50Ns = s.External?.ServiceP50Ns ?? st?.ServiceTime.Percentile(0.50) ?? 0,
            ServiceP99Ns = s.External?.ServiceP99Ns ?? st?.ServiceTime.Percentile(0.99) ?? 0,
            Batches = st?.Batches ?? 0,
            ScanNs = scanNs,
            ScanPages = scanPages,
            ScanExact = scanExact,
            Failure = verify,
            Latency = latency,
        };
    }

    private (List<TouchResult> Results, string? Failure) Touch(BenchCase c, string loop, Setup s, long pages, TouchMode mode, int cpu, int rep)
    {
        int n = (int)Math.Min(options.Touchers, pages);
        var handles = new nint[n];
        long share = pages / n;
        for (int i = 0; i < n; i++)
        {
            long first = i * share, count = i == n - 1 ? pages - first : share;
            var cfg = new TouchConfig { Addr = s.Map!.PageAddress(first), Pages = (ulong)count, FirstPage = (ulong)first, Seed = TouchSeed, Mode = (int)mode, Cpu = cpu };
            handles[i] = HarnessNative.uffd_toucher_start(&cfg);
            if (handles[i] == 0)
                throw new InvalidOperationException("could not start a toucher thread");
        }
        foreach (var h in handles)
            HarnessNative.uffd_toucher_go(h);
        var results = new List<TouchResult>();
        var deadline = Stopwatch.GetTimestamp() + Stopwatch.Frequency * 120;
        foreach (var h in handles)
        {
            TouchResult r;
            while (HarnessNative.uffd_toucher_join(h, 200, &r) != 0)
            {
                if (progress is not null)
                {
                    ulong done = 0;
                    foreach (var x in handles)
                        done += HarnessNative.uffd_toucher_progress(x);
                    ulong faults = s.Server?.FaultCount ?? s.Native?.FaultCount ?? done; // allocation-free: no GC while measuring
                    progress(new BenchProgress(c.Id, loop, pages, rep, options.Repeat, done, (ulong)pages, faults, step, steps));
                }
                if (Stopwatch.GetTimestamp() > deadline)
                {
                    // A toucher stuck in a fault: closing the uffd releases it (then it can be joined).
                    s.Server?.Stop(1000);
                    s.Native?.Stop(1000);
                    s.External?.Dispose();
                    s.Uffd?.Dispose();
                    foreach (var x in handles)
                        HarnessNative.uffd_toucher_join(x, 10_000, null);
                    foreach (var x in handles)
                        HarnessNative.uffd_toucher_free(x);
                    return (results, "a toucher did not finish within 120 s");
                }
            }
            results.Add(r);
        }
        foreach (var h in handles)
            HarnessNative.uffd_toucher_free(h);
        return (results, null);
    }

    private static string? VerifyContent(BenchCase c, Setup s, long pages, TouchMode mode)
    {
        var b = c.Scenario is "baseline" or "missing-zero" || c.Id == "async/anon-unpopulated" ? VerifyBase.Zero : VerifyBase.Pattern;
        var spec = new VerifySpec { Addr = s.Map!.Address, Pages = (ulong)pages, Base = (int)b, BaseSeed = BaseSeed, TouchSeed = TouchSeed, Touched = mode == TouchMode.Write ? 1 : 0 };
        ulong got, word;
        long bad = HarnessNative.uffd_verify_pages(&spec, &got, &word);
        if (bad >= 0)
            return $"page {bad} word {word} holds 0x{got:x}, not the expected content";
        if (c.Scenario == "wp-snapshot")
        {
            // The store holds every page's content from before its write.
            var store = s.External is { StoreAddress: not 0 } ext ? ext.StoreAddress : s.Store != 0 ? s.Store : s.SnapshotStore!.Address;
            var sspec = new VerifySpec { Addr = (ulong)store, Pages = (ulong)pages, Base = (int)VerifyBase.Pattern, BaseSeed = BaseSeed };
            bad = HarnessNative.uffd_verify_pages(&sspec, &got, &word);
            if (bad >= 0)
                return $"snapshot page {bad} word {word} holds 0x{got:x}, not the pre-write content";
        }
        return null;
    }

    private string? VerifyCounts(BenchCase c, FaultStatistics? st, long pages)
    {
        if (st is null)
            return null;
        ulong p = (ulong)pages;
        switch (c.Scenario)
        {
            case "read-ahead":
                ulong min = (p + (ulong)options.ReadAhead) / ((ulong)options.ReadAhead + 1);
                if (st.MissingFaults < min || st.MissingFaults > p || st.PagesResolved != p)
                    return $"read-ahead: {st.MissingFaults} faults and {st.PagesResolved} pages installed for {p} pages (expected faults in [{min}, {p}] and {p} pages)";
                return null;
            case "wp-snapshot":
                if (st.SnapshotPages != p)
                    return $"{st.SnapshotPages} pages saved, expected {p}";
                goto default;
            default:
                var kind = c.Scenario switch { "wp" or "wp-snapshot" => Messages.FaultKind.WriteProtect, "minor" => Messages.FaultKind.Minor, _ => Messages.FaultKind.Missing };
                if (st.FaultsOf(kind) != p || st.Faults != p)
                    return $"{st.Faults} faults ({st.FaultsOf(kind)} {kind}), expected exactly {p}";
                return null;
        }
    }

    /// <summary>async, after the full first-write pass and its scan: rewrite every third page, then one
    /// scan must return exactly those pages.</summary>
    private static string? AsyncSubsetCheck(Setup s, long pages)
    {
        var ops = new List<AccessOp>();
        for (long i = 0; i < pages; i += 3)
            ops.Add(Access.Op.Write64(s.Map!.PageAddress(i) + (ulong)(i % 512) * 8, Accessor.PatternWord(TouchSeed, (ulong)i)));
        using (var w = new Access.NativeWorker(ops.ToArray()))
            if (!w.Join(60_000))
                return "the subset writer did not finish";
        var regions = s.Tracker!.Collect();
        long expected = 0;
        foreach (var r in regions)
            for (ulong a = r.Start; a < r.End; a += Page)
            {
                long i = (long)((a - s.Map!.Address) / Page);
                if (i % 3 != 0)
                    return $"the scan reported page {i}, which was not written";
                expected++;
            }
        long want = (pages + 2) / 3;
        return expected == want ? null : $"the scan reported {expected} written pages, expected exactly {want}";
    }

    /// <summary>Populates and frees len bytes, so that the measured first touches do not also fault on
    /// the host (this VM returns freed memory to it).</summary>
    private static void WarmUp(ulong len)
    {
        using var m = Mapping.Anonymous(len);
        Accessor.Run(Op.TouchWrite(m.Address, len, 1));
    }
}

/// <summary>The issue's acceptance checks, from figures of one run.</summary>
public static class BenchChecks
{
    public static List<BenchCheck> Compute(List<ScenarioResult> results, BenchOptions o)
    {
        var checks = new List<BenchCheck>();
        ScenarioResult? Find(string s, string m, long pages) => results.FirstOrDefault(r => r.Scenario == s && r.Memory == m && r.Pages == pages && r.Failure is null);
        foreach (var pages in o.Pages)
        {
            foreach (var s in new[] { "missing-copy", "wp", "minor" })
                if (Find(s, "shmem", pages) is { ManagedNativeRatio: { } ratio } r)
                    checks.Add(new BenchCheck($"{s}/shmem managed/native ({pages} pages)", ratio, "<= 1.05", ratio <= 1.05,
                        $"median managed {r.Loops[0].NsPerFault:F0} ns/fault, native {r.Loops[1].NsPerFault:F0}; paired median {r.PairedRatio:F3}; " +
                        $"cpu/fault ratio {r.CpuRatio:F3} (loop thread alone {r.Loops[0].LoopCpuUsPerFault / r.Loops[1].LoopCpuUsPerFault:F3}), p50 ratio {r.P50Ratio:F3}; spread {r.Loops[0].Spread:P0}/{r.Loops[1].Spread:P0}; pin {o.Pin.ToString().ToLowerInvariant()}"));
            foreach (var m in new[] { "anon", "shmem" })
                if (Find("read-ahead", m, pages) is { } ra && Find("baseline", m, pages) is { } bl)
                    foreach (var f in ra.Loops)
                    {
                        double v = f.PagesPerSecond / bl.Loops[0].PagesPerSecond;
                        checks.Add(new BenchCheck($"read-ahead/{m} ({f.Loop}) pages/s vs baseline ({pages} pages)", v, "> 1", v > 1,
                            $"{f.PagesPerSecond:F0} vs {bl.Loops[0].PagesPerSecond:F0} pages/s, read-ahead {o.ReadAhead}"));
                    }
            foreach (var m in new[] { "anon", "anon-unpopulated" })
                if (Find("async", m, pages) is { } a && Find("baseline", "anon", pages) is { } b)
                {
                    double v = a.Loops[0].NsPerPage / b.Loops[0].NsPerPage;
                    checks.Add(new BenchCheck($"async/{m} first write vs baseline/anon first-touch write ({pages} pages)", v, "<= 1.5", v <= 1.5,
                        $"{a.Loops[0].NsPerPage:F0} vs {b.Loops[0].NsPerPage:F0} ns/page; one scan of {a.Loops[0].ScanPages} pages took {a.Loops[0].ScanMs:F2} ms and returned exactly the written pages"));
                }
        }
        if (o.Pages.Count > 1)
        {
            var wp = results.Where(r => r.Scenario == "wp" && r.Memory == "shmem" && r.Failure is null).ToList();
            if (wp.Count > 1)
                foreach (var loop in wp[0].Loops.Select(l => l.Loop))
                {
                {
                    var ns = wp.Select(r => r.Loops.First(l => l.Loop == loop).NsPerFault).ToList();
                    double med = BenchRunner.Median([.. ns]);
                    double dev = ns.Max(x => Math.Abs(x - med) / med);
                    checks.Add(new BenchCheck($"wp/shmem ns/fault flat across {string.Join(",", wp.Select(r => r.Pages))} pages ({loop})", dev, "<= 0.15", dev <= 0.15,
                        "max deviation from the median; " + string.Join(", ", wp.Select(r => $"{r.Pages}: {r.Loops.First(l => l.Loop == loop).NsPerFault:F0}")) + " ns/fault"));
                    var cpu = wp.Select(r => r.Loops.First(l => l.Loop == loop).CpuUsPerFault).ToList();
                    double cmed = BenchRunner.Median([.. cpu]);
                    double cdev = cpu.Max(x => Math.Abs(x - cmed) / cmed);
                    checks.Add(new BenchCheck($"wp/shmem CPU µs/fault flat across the same sizes ({loop}, less load-sensitive)", cdev, "<= 0.15", cdev <= 0.15,
                        string.Join(", ", wp.Select(r => $"{r.Pages}: {r.Loops.First(l => l.Loop == loop).CpuUsPerFault:F2}")) + " µs/fault"));
                }
                }
        }
        return checks;
    }
}
