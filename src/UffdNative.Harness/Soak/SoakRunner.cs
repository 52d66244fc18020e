using System.Diagnostics;
using System.Text.Json.Serialization;
using UffdNative.Harness.Probing;

namespace UffdNative.Harness.Soak;

public sealed record SoakOptions
{
    public int Seconds { get; init; } = 60;
    public int Threads { get; init; } = 4;
    /// <summary>Stop early once this many faults were served (0: run for the time bound).</summary>
    public ulong Faults { get; init; }
    public long PagesPerRegion { get; init; } = 4096;
    /// <summary>Seconds between accounting checkpoints (touchers and churn paused, exact sweeps).</summary>
    public double EpochSeconds { get; init; } = 1.0;
    /// <summary>An access or churn call blocked this long counts as hung.</summary>
    public int HangMs { get; init; } = 10_000;
    public ulong Seed { get; init; } = 1;
    public bool Fork { get; init; } = true;
}

/// <summary>Totals of a soak run. <see cref="Passed"/>: lost, corrupt, hung and accounting errors all 0.</summary>
public sealed record SoakResult
{
    public double Seconds { get; init; }
    public int Threads { get; init; }
    public ulong Faults { get; init; }
    public double FaultsPerSecond { get; init; }
    public ulong MissingFaults { get; init; }
    public ulong WpFaults { get; init; }
    public ulong MinorFaults { get; init; }
    public ulong ChildFaults { get; init; }
    public ulong PagesVerified { get; init; }
    public ulong Writes { get; init; }
    public ulong Inconclusive { get; init; }
    public ulong Lost { get; init; }
    public ulong Corrupt { get; init; }
    public ulong Hung { get; init; }
    public ulong AccountingErrors { get; init; }
    public ulong Eagain { get; init; }
    public ulong Eexist { get; init; }
    public ulong RemoveEvents { get; init; }
    public ulong RemapEvents { get; init; }
    public ulong ForkEvents { get; init; }
    public ulong Protects { get; init; }
    public int Epochs { get; init; }
    public int ExactSweeps { get; init; }
    public List<string> Problems { get; init; } = [];
    public bool Passed => Lost == 0 && Corrupt == 0 && Hung == 0 && AccountingErrors == 0;
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(SoakResult))]
public sealed partial class SoakJsonContext : JsonSerializerContext;

/// <summary>
/// `uffdnative soak`: four regions, each with its own uffd and managed fault loop — anonymous MISSING
/// (copy from a pattern source; discards, moves and forks), shmem WP (unprotect; protect churn), shmem
/// MINOR (continue; PTE-zap churn) and shmem MISSING (zero; hole-punch churn) — T native toucher
/// threads writing unique stamps and verifying whole pages (native/uffd_soak.c), and one churn thread
/// per kind of event-producing call, never on a loop thread. Every checkpoint pauses everything and
/// checks the fault accounting exactly: no fault outstanding in any uffd, every fault message read
/// resolved once, and a sweep over freshly protected (WP) and freshly zapped (MINOR) regions must
/// produce exactly one fault per page. Always bounded in time; a blocked access is reported as hung
/// and released by closing the uffds.
/// </summary>
public sealed unsafe class SoakRunner(SoakOptions o, Action<string>? progress = null)
{
    private static readonly ulong Page = Mapping.PageSize;
    private const int A = 0, B = 1, C = 2, D = 3, F = 4;
    private const int MadvDontNeed = 4, MadvRemove = 9;

    private sealed class Region
    {
        public required string Name;
        public MemfdFile? File;
        public required Mapping Map;
        public required Userfaultfd Uffd;
        public required FaultServer Server;
        public ulong Seed;
        public ulong Len => Map.Length;
    }

    private readonly List<Region> regions = [];
    private readonly List<string> problems = [];
    private nint soak;
    private volatile bool churnPaused, churnStop;
    private int churnIdle;
    private long churnOpStart; // ms tick of the churn call in progress (max over threads is enough)
    private ulong protects, hung, accounting;
    private PageSource? sourceA, sourceF;

    private void Problem(string p)
    {
        lock (problems)
            if (problems.Count < 50)
                problems.Add(p);
    }

    public SoakResult Run()
    {
        if (o.Threads < 1 || o.Threads > SoakConfig.MaxThreads)
            throw new ArgumentOutOfRangeException(nameof(o), $"threads must be 1..{SoakConfig.MaxThreads}");
        var sw = Stopwatch.StartNew();
        long pages = o.PagesPerRegion;
        ulong len = (ulong)pages * Page;
        // The monitor itself makes blocking calls (the checkpoint's madvise waits for a loop to read its
        // event): a last-resort deadline releases everything if the run overstays its bound.
        using var done = new ManualResetEventSlim();
        var backstop = new Thread(() =>
        {
            if (!done.Wait(o.Seconds * 1000 + o.HangMs * 6 + 30_000))
                ReportHang($"the run overstayed its time bound ({o.Seconds} s)");
        }) { IsBackground = true, Name = "soak-backstop" };
        backstop.Start();
        try
        {
            Setup(len);
            var cfg = new SoakConfig { Threads = o.Threads, Regions = regions.Count, Seed = o.Seed };
            for (int i = 0; i < regions.Count; i++)
                cfg.Region[i] = new SoakRegionConfig
                {
                    Addr = regions[i].Map.Address,
                    Pages = (ulong)pages,
                    Seed = regions[i].Seed,
                    Base = i == D ? (int)VerifyBase.Zero : (int)VerifyBase.Pattern,
                    MayRemove = i is A or D ? 1 : 0,
                    Weight = i == F ? 0 : 1, // F is only read by fork children
                    WritePct = i == B ? 70 : 50,
                };
            int err;
            soak = HarnessNative.uffd_soak_start(&cfg, &err);
            if (soak == 0)
                throw new UffdException("start soak threads", -err, "", "");
            HarnessNative.uffd_soak_go(soak);
            var churn = StartChurn(pages);
            int epochs = 0, exact = 0;
            long end = Environment.TickCount64 + o.Seconds * 1000L;
            long nextEpoch = Environment.TickCount64 + (long)(o.EpochSeconds * 1000);
            long nextReport = Environment.TickCount64 + 1000;
            while (Environment.TickCount64 < end && hung == 0)
            {
                Thread.Sleep(20); // the monitor's sampling period, not a synchronisation
                CheckHangs();
                ulong faults = TotalFaults();
                if (Environment.TickCount64 >= nextReport)
                {
                    var t = Totals();
                    progress?.Invoke($"t={sw.Elapsed.TotalSeconds:F0}s faults {faults} ({faults / Math.Max(0.001, sw.Elapsed.TotalSeconds):F0}/s) verified {t.Verified} writes {t.Writes} lost {t.Lost} corrupt {t.Corrupt} hung {hung} accounting {accounting}");
                    nextReport += 1000;
                }
                if (o.Faults > 0 && faults >= o.Faults)
                    break;
                if (Environment.TickCount64 >= nextEpoch)
                {
                    epochs++;
                    if (Checkpoint(pages))
                        exact++;
                    nextEpoch = Environment.TickCount64 + (long)(o.EpochSeconds * 1000);
                }
            }
            StopChurn(churn);
            if (hung == 0)
                FinalSweep();
            var totals = Totals();
            return Finish(sw.Elapsed.TotalSeconds, epochs, exact, totals);
        }
        finally
        {
            Teardown();
            done.Set();
        }
    }

    // ---- setup ----------------------------------------------------------------------------------

    private void Setup(ulong len)
    {
        ulong seed = o.Seed * 0x1000;
        // A: anonymous, MISSING, copied from a pattern source; discards, moves and forks.
        var mapA = Mapping.Anonymous(len);
        var uA = Userfaultfd.Open(OpenPolicy.Here.Options(UffdFeatures.EventRemove | UffdFeatures.EventRemap | UffdFeatures.ThreadId));
        uA.Register(mapA.Address, len, RegisterMode.Missing);
        ulong seedA = seed + 1;
        sourceA = PageSource.FromDelegate((offset, dest) => Accessor.PatternFill(dest, seedA, offset / 8), len);
        AddRegion("anon-missing", null, mapA, uA, seedA, new MissingCopy(sourceA), ForkBehavior.Close);

        // B: shmem, WP, unprotect; protect churn.
        var fB = MemfdFile.Create("soak-wp", (long)len);
        fB.WritePattern(0, (long)len, seed + 2);
        var mapB = fB.MapShared();
        var uB = Userfaultfd.Open(OpenPolicy.Here.Options(UffdFeatures.PageFaultFlagWp | UffdFeatures.WpHugetlbfsShmem | UffdFeatures.ThreadId));
        uB.Register(mapB.Address, len, RegisterMode.WriteProtect);
        uB.WriteProtect(mapB.Address, len, protect: true);
        AddRegion("shmem-wp", fB, mapB, uB, seed + 2, new WpUnprotect(), ForkBehavior.Close);

        // C: shmem, MINOR, continue; PTE-zap churn (content stays in the page cache).
        var fC = MemfdFile.Create("soak-minor", (long)len);
        fC.WritePattern(0, (long)len, seed + 3);
        var mapC = fC.MapShared();
        var uC = Userfaultfd.Open(OpenPolicy.Here.Options(UffdFeatures.MinorShmem | UffdFeatures.EventRemove | UffdFeatures.ThreadId));
        uC.Register(mapC.Address, len, RegisterMode.Minor);
        AddRegion("shmem-minor", fC, mapC, uC, seed + 3, new MinorContinue(), ForkBehavior.Close);

        // D: shmem, MISSING, zero; hole-punch churn.
        var fD = MemfdFile.Create("soak-zero", (long)len);
        var mapD = fD.MapShared();
        var uD = Userfaultfd.Open(OpenPolicy.Here.Options(UffdFeatures.MissingShmem | UffdFeatures.EventRemove | UffdFeatures.ThreadId));
        uD.Register(mapD.Address, len, RegisterMode.Missing);
        AddRegion("shmem-missing-zero", fD, mapD, uD, 0, new MissingZero(), ForkBehavior.Close);

        // F: anonymous, MISSING, EVENT_FORK (only when forks are churned: it needs CAP_SYS_PTRACE, §1.2),
        // served to fork children by child servers. Forks get a uffd
        // of their own, whose loop does nothing else: glibc's fork() holds the malloc locks while the
        // kernel waits for the FORK message to be read, so the reading loop must never need malloc
        // (managed allocation, JIT, GC) before that read — a loop busy with other events might.
        var mapF = Mapping.Anonymous(len);
        var uF = Userfaultfd.Open(OpenPolicy.Here.Options((o.Fork ? UffdFeatures.EventFork : UffdFeatures.None) | UffdFeatures.ThreadId));
        uF.Register(mapF.Address, len, RegisterMode.Missing);
        ulong seedF = seed + 5;
        sourceF = PageSource.FromDelegate((offset, dest) => Accessor.PatternFill(dest, seedF, offset / 8), len);
        AddRegion("anon-fork", null, mapF, uF, seedF, new MissingCopy(sourceF), ForkBehavior.Serve);
    }

    private void AddRegion(string name, MemfdFile? file, Mapping map, Userfaultfd uffd, ulong seed, FaultPolicy policy, ForkBehavior fork)
    {
        var server = new FaultServer(uffd, new FaultServerOptions
        {
            Policies = [policy],
            Ranges = [new ServedRange(map.Address, map.Length)],
            OnFork = fork,
            ThreadName = "soak-" + name,
        });
        server.Start();
        regions.Add(new Region { Name = name, File = file, Map = map, Uffd = uffd, Server = server, Seed = seed });
    }

    // ---- churn: event-producing calls and protection changes, each on its own thread ---------------

    private List<Thread> StartChurn(long pages)
    {
        var threads = new List<Thread>
        {
            Churn("discard-anon", 1, r => Advise(A, r, pages, MadvDontNeed, discards: true)),
            Churn("protect-wp", 1, r => Protect(r, pages)),
            Churn("zap-minor", 1, r => Advise(C, r, pages, MadvDontNeed, discards: false)),
            Churn("punch-zero", 1, r => Advise(D, r, pages, MadvRemove, discards: true)),
            Churn("remap-anon", 200, _ => Remap()),
        };
        if (o.Fork)
            threads.Add(Churn("fork", 500, r => ForkCheck(r, pages)));
        return threads;
    }

    private Thread Churn(string name, int periodMs, Action<Random> op)
    {
        var t = new Thread(() =>
        {
            var rng = new Random(HashCode.Combine(name, (int)o.Seed));
            bool idle = false;
            while (!churnStop)
            {
                if (churnPaused)
                {
                    if (!idle)
                    {
                        Interlocked.Increment(ref churnIdle);
                        idle = true;
                    }
                    Thread.Sleep(1);
                    continue;
                }
                if (idle)
                {
                    Interlocked.Decrement(ref churnIdle);
                    idle = false;
                }
                Volatile.Write(ref churnOpStart, Environment.TickCount64);
                try
                {
                    op(rng);
                }
                catch (Exception e) when (e is UffdException or InvalidOperationException)
                {
                    Problem($"churn {name}: {e.Message}");
                    Interlocked.Increment(ref accounting);
                }
                Volatile.Write(ref churnOpStart, 0);
                Thread.Sleep(periodMs); // pacing of the churn, not a synchronisation
            }
            if (!idle)
                Interlocked.Increment(ref churnIdle);
        }) { IsBackground = true, Name = "soak-churn-" + name };
        t.Start();
        return t;
    }

    private void Advise(int region, Random rng, long pages, int advice, bool discards)
    {
        long count = rng.NextInt64(1, 257), first = rng.NextInt64(0, pages - count);
        int r = HarnessNative.uffd_soak_advise(soak, region, (ulong)first, (ulong)count, advice, discards ? 1 : 0);
        if (r < 0)
            throw new UffdException($"madvise({advice}) on {regions[region].Name}", -r, "", "");
    }

    private void Protect(Random rng, long pages)
    {
        long count = rng.NextInt64(1, 513), first = rng.NextInt64(0, pages - count);
        var b = regions[B];
        if (!b.Uffd.WriteProtect(b.Map.PageAddress(first), (ulong)count * Page, protect: true))
            throw new InvalidOperationException("WRITEPROTECT answered EAGAIN on a uffd without events");
        Interlocked.Increment(ref protects);
    }

    private void Remap()
    {
        var a = regions[A];
        HarnessNative.uffd_soak_lock(soak, A, 1);
        try
        {
            // A fresh reservation, replaced by the move; the old range is simply unmapped.
            var reservation = Mapping.Reserve(a.Len);
            int r = a.Map.TryRemap(a.Len, reservation);
            if (r < 0)
            {
                reservation.Dispose();
                throw new UffdException("mremap", -r, "", "");
            }
            HarnessNative.uffd_soak_set_base(soak, A, a.Map.Address);
        }
        finally
        {
            HarnessNative.uffd_soak_unlock(soak, A);
        }
    }

    private void ForkCheck(Random rng, long pages)
    {
        var f = regions[F];
        var picks = Enumerable.Range(0, 4).Select(_ => rng.NextInt64(0, pages)).ToArray();
        ulong[] addrs = [.. picks.Select(p => f.Map.Address + (ulong)p * Page + WordOf(p) * 8)];
        // EVENT_FORK: this blocks until F's loop read the FORK message; its child server serves the
        // child's faults (F is never touched here, so every read in the child faults).
        using (var child = ForkedChild.Start([.. addrs.Select(ChildOps.Read64), ChildOps.Exit(0)]))
        {
            for (int i = 0; i < picks.Length; i++)
            {
                var r = child.WaitFor(i, o.HangMs);
                ulong want = Accessor.PatternWord(f.Seed, (ulong)picks[i] * 512 + WordOf(picks[i]));
                if (r.Ret < 0 || r.Sigbus != 0 || r.Value != want)
                {
                    Problem($"fork child read page {picks[i]} of {f.Name}: 0x{r.Value:x} (ret {r.Ret}, sigbus {r.Sigbus}), expected 0x{want:x}");
                    Interlocked.Increment(ref accounting);
                }
            }
            child.Finish(o.HangMs);
        }
        // The child is gone; its server would otherwise wait forever (after the mm exits, a uffd's
        // poll stays silent, §1.8, and the FORK message names no pid to watch).
        foreach (var c in f.Server.Children)
            if (c.IsRunning)
                c.Stop(1000);
    }

    /// <summary>A base word of page p that is not its stamp slot.</summary>
    private static ulong WordOf(long p) => (ulong)(p % 512) == 1 ? 2UL : 1UL;

    private bool PauseChurn(bool pause)
    {
        churnPaused = pause;
        if (!pause)
            return true;
        long deadline = Environment.TickCount64 + o.HangMs;
        int expected = o.Fork ? 6 : 5;
        while (Volatile.Read(ref churnIdle) < expected)
        {
            if (Environment.TickCount64 > deadline)
            {
                ReportHang("a churn call (an event-producing syscall) did not return");
                return false;
            }
            Thread.Sleep(1);
        }
        return true;
    }

    private void StopChurn(List<Thread> threads)
    {
        churnStop = true;
        foreach (var t in threads)
            if (!t.Join(o.HangMs))
                ReportHang($"churn thread {t.Name} did not stop");
    }

    // ---- checkpoints --------------------------------------------------------------------------------

    /// <summary>Pauses everything and checks the accounting; then re-arms B (protect all) and C (zap
    /// all) and lets the touchers sweep them: exactly one fault per page each. True when the exact
    /// sweep ran and matched.</summary>
    private bool Checkpoint(long pages)
    {
        if (!PauseChurn(true))
            return false;
        try
        {
            if (HarnessNative.uffd_soak_pause(soak, o.HangMs) != 0)
            {
                ReportHang("a toucher did not reach the checkpoint (blocked in an access)");
                return false;
            }
            CheckQuiescent("checkpoint");
            var b = regions[B];
            var c = regions[C];
            if (!b.Uffd.WriteProtect(b.Map.Address, b.Len, protect: true))
                throw new InvalidOperationException("WRITEPROTECT answered EAGAIN on a uffd without events");
            int r = HarnessNative.uffd_soak_advise(soak, C, 0, (ulong)pages, MadvDontNeed, 0);
            if (r < 0)
                throw new UffdException("madvise(DONTNEED) of the minor region", -r, "", "");
            // The zap's REMOVE event is read by C's loop before the madvise returns: the loop is idle now.
            ulong wp0 = b.Server.Statistics.WriteProtectFaults, minor0 = c.Server.Statistics.MinorFaults;
            int* kinds = stackalloc int[SoakConfig.MaxRegions];
            kinds[B] = SoakAbi.SweepWrite;
            kinds[C] = SoakAbi.SweepRead;
            uint gen = (uint)HarnessNative.uffd_soak_sweep(soak, (1u << B) | (1u << C), kinds);
            HarnessNative.uffd_soak_go(soak);
            long deadline = Environment.TickCount64 + o.HangMs * 3L;
            while (HarnessNative.uffd_soak_sweeps_done(soak, gen) < o.Threads)
            {
                if (Environment.TickCount64 > deadline)
                {
                    ReportHang("a sweep did not finish");
                    return false;
                }
                CheckHangs();
                Thread.Sleep(1);
            }
            ulong wp = b.Server.Statistics.WriteProtectFaults - wp0, minor = c.Server.Statistics.MinorFaults - minor0;
            bool ok = wp == (ulong)pages && minor == (ulong)pages;
            if (!ok)
            {
                Problem($"sweep accounting: {wp} WP faults and {minor} MINOR faults for {pages} freshly protected / zapped pages each (expected exactly {pages})");
                Interlocked.Increment(ref accounting);
            }
            return ok;
        }
        finally
        {
            HarnessNative.uffd_soak_go(soak);
            PauseChurn(false);
        }
    }

    /// <summary>With every toucher parked and no churn: nothing may be outstanding in any uffd, and
    /// every fault message a loop read must have been resolved exactly once.</summary>
    private void CheckQuiescent(string when)
    {
        foreach (var r in regions)
        {
            var info = r.Uffd.IsDisposed ? default : r.Uffd.ReadFdInfo();
            // A resolution wakes its thread before the loop records it as resolved: give the loop a
            // (bounded) moment to finish the run it is in before comparing the counters.
            var st = r.Server.Statistics;
            long settle = Environment.TickCount64 + 2000;
            while (st.Faults != st.ServiceTime.Count && !st.Exited && Environment.TickCount64 < settle)
            {
                Thread.Yield();
                st = r.Server.Statistics;
            }
            if (info.Total != 0)
            {
                Problem($"{when}: {r.Name} has {info.Total} faults outstanding ({info.Pending} unread) with every toucher parked");
                Interlocked.Increment(ref accounting);
            }
            if (st.Faults != st.ServiceTime.Count)
            {
                Problem($"{when}: {r.Name} read {st.Faults} fault messages but resolved {st.ServiceTime.Count}");
                Interlocked.Increment(ref accounting);
            }
            if (st.Exited)
            {
                Problem($"{when}: {r.Name}'s loop ended: {st.ExitReason} ({st.ErrorOperation}, errno {st.Error})");
                Interlocked.Increment(ref accounting);
            }
        }
    }

    private void FinalSweep()
    {
        if (HarnessNative.uffd_soak_pause(soak, o.HangMs) != 0)
        {
            ReportHang("a toucher did not stop for the final sweep");
            return;
        }
        int* kinds = stackalloc int[SoakConfig.MaxRegions];
        uint gen = (uint)HarnessNative.uffd_soak_sweep(soak, 0xF, kinds); // read-verify every page of A..D (F is only read by fork children)
        HarnessNative.uffd_soak_go(soak);
        long deadline = Environment.TickCount64 + o.HangMs * 3L;
        while (HarnessNative.uffd_soak_sweeps_done(soak, gen) < o.Threads)
        {
            if (Environment.TickCount64 > deadline)
            {
                ReportHang("the final sweep did not finish");
                return;
            }
            Thread.Sleep(1);
        }
        if (HarnessNative.uffd_soak_pause(soak, o.HangMs) == 0)
            CheckQuiescent("end");
    }

    // ---- hangs ------------------------------------------------------------------------------------

    private void CheckHangs()
    {
        long now = HarnessNative.uffd_soak_now_ns();
        for (int i = 0; i < o.Threads; i++)
        {
            SoakThreadStats s;
            HarnessNative.uffd_soak_thread_stats(soak, i, &s);
            if (s.OpStartNs != 0 && now - s.OpStartNs > o.HangMs * 1_000_000L)
            {
                ReportHang($"toucher {i} (tid {s.Tid}) blocked {(now - s.OpStartNs) / 1_000_000} ms in an access at 0x{s.OpAddr:x}");
                return;
            }
        }
        long c = Volatile.Read(ref churnOpStart);
        if (c != 0 && Environment.TickCount64 - c > o.HangMs)
            ReportHang($"a churn call blocked {Environment.TickCount64 - c} ms");
    }

    private void ReportHang(string what)
    {
        if (Interlocked.Increment(ref hung) == 1)
        {
            foreach (var r in regions)
                Problem($"at the hang: {r.Name}: {(r.Uffd.IsDisposed ? "closed" : r.Uffd.ReadFdInfo().ToString())}; {r.Server.Statistics}");
        }
        Problem("HUNG: " + what);
        // Release everything: closing the uffds wakes every blocked thread (they then resolve normally).
        foreach (var r in regions)
        {
            r.Server.Stop(1000);
            r.Uffd.Dispose();
        }
    }

    // ---- totals -----------------------------------------------------------------------------------

    private ulong TotalFaults()
    {
        ulong n = 0;
        foreach (var r in regions)
            n += r.Server.FaultCount;
        return n;
    }

    private (ulong Verified, ulong Writes, ulong Lost, ulong Corrupt, ulong Inconclusive) Totals()
    {
        ulong v = 0, w = 0, l = 0, c = 0, inc = 0;
        for (int i = 0; i < o.Threads; i++)
        {
            SoakThreadStats s;
            HarnessNative.uffd_soak_thread_stats(soak, i, &s);
            v += s.Verified;
            w += s.Writes;
            l += s.Lost;
            c += s.Corrupt;
            inc += s.Inconclusive;
        }
        return (v, w, l, c, inc);
    }

    private SoakResult Finish(double seconds, int epochs, int exact, (ulong Verified, ulong Writes, ulong Lost, ulong Corrupt, ulong Inconclusive) t)
    {
        for (int i = 0; i < o.Threads; i++)
        {
            SoakFailure f;
            if (HarnessNative.uffd_soak_failure(soak, i, &f) == 1)
                Problem($"{(f.Kind == SoakAbi.Lost ? "LOST" : "CORRUPT")}: {regions[f.Region].Name} page {f.Page} word {f.Word}: 0x{f.Got:x}, expected 0x{f.Expected:x} (toucher {f.Thread})");
        }
        ulong childFaults = 0;
        foreach (var c in regions[F].Server.Children)
            childFaults += c.Statistics.Faults;
        var st = regions.Select(r => r.Server.Statistics).ToList();
        ulong faults = (ulong)st.Sum(s => (decimal)s.Faults) + childFaults;
        return new SoakResult
        {
            Seconds = seconds,
            Threads = o.Threads,
            Faults = faults,
            FaultsPerSecond = faults / Math.Max(0.001, seconds),
            MissingFaults = st[A].MissingFaults + st[D].MissingFaults,
            WpFaults = st[B].WriteProtectFaults,
            MinorFaults = st[C].MinorFaults,
            ChildFaults = childFaults,
            PagesVerified = t.Verified,
            Writes = t.Writes,
            Inconclusive = t.Inconclusive,
            Lost = t.Lost,
            Corrupt = t.Corrupt,
            Hung = hung,
            AccountingErrors = accounting,
            Eagain = (ulong)st.Sum(s => (decimal)s.Eagain),
            Eexist = (ulong)st.Sum(s => (decimal)s.Eexist),
            RemoveEvents = (ulong)st.Sum(s => (decimal)s.RemoveEvents),
            RemapEvents = st[A].RemapEvents,
            ForkEvents = st[F].ForkEvents,
            Protects = protects,
            Epochs = epochs,
            ExactSweeps = exact,
            Problems = [.. problems],
        };
    }

    private void Teardown()
    {
        if (soak != 0)
        {
            if (HarnessNative.uffd_soak_stop(soak, 5000) != 0)
            {
                // Still inside an access: closing the uffds releases it.
                foreach (var r in regions)
                    r.Uffd.Dispose();
                HarnessNative.uffd_soak_stop(soak, 10_000);
            }
            if (HarnessNative.uffd_soak_free(soak) == 0)
                soak = 0;
        }
        foreach (var r in regions)
        {
            r.Server.Stop(10_000);
            if (!r.Server.Statistics.Exited || r.Server.Exit?.Reason is not (FaultServerExitReason.Stopped or null))
                if (r.Server.Exit is { IsError: true } x)
                    Problem($"{r.Name}'s loop ended with an error: {x.Message}");
            r.Server.Dispose();
            r.Uffd.Dispose();
            r.Map.Dispose();
            r.File?.Dispose();
        }
        sourceA?.Dispose();
        sourceF?.Dispose();
    }
}
