using System.Runtime.InteropServices;

namespace UffdNative.Harness.Native;

/// <summary>
/// Every entry point of libuffdharness.so (native/harness/uffd_harness.h), declared once: the native
/// twin loop, toucher threads, content verification and the soak touchers — native code only the
/// harness and the tests use, never shipped with the binding. Each returns &gt;= 0 or -errno. None
/// carries [SuppressGCTransition]: any of them may block or fault.
/// </summary>
public static unsafe partial class HarnessNative
{
    public const string Library = "uffdharness";

    static HarnessNative() => HarnessLayout.EnsureVerified();

    // uffd_loop.c: the histogram, the native twin loop, touchers, verification
    [LibraryImport(Library)] public static partial int uffd_hist_index(ulong value);
    [LibraryImport(Library)] public static partial void uffd_hist_record(UffdHist* h, ulong value);
    [LibraryImport(Library)] public static partial nint uffd_loop_start(LoopConfig* cfg, int* err);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] public static partial nint uffd_signal_storm_start(string comm, int periodUs);
    [LibraryImport(Library)] public static partial long uffd_signal_storm_stop(nint storm, long* handled, long* targets);
    [LibraryImport(Library)] public static partial int uffd_loop_stats(nint loop, UffdLoopStats* stats);
    [LibraryImport(Library)] public static partial int uffd_loop_stop(nint loop, int timeoutMs);
    [LibraryImport(Library)] public static partial int uffd_loop_free(nint loop);
    [LibraryImport(Library)] public static partial nint uffd_toucher_start(TouchConfig* cfg);
    [LibraryImport(Library)] public static partial int uffd_toucher_go(nint toucher);
    [LibraryImport(Library)] public static partial ulong uffd_toucher_progress(nint toucher);
    [LibraryImport(Library)] public static partial int uffd_toucher_join(nint toucher, int timeoutMs, TouchResult* result);
    [LibraryImport(Library)] public static partial int uffd_toucher_free(nint toucher);
    [LibraryImport(Library)] public static partial long uffd_verify_pages(VerifySpec* spec, ulong* got, ulong* word);

    // uffd_soak.c
    [LibraryImport(Library)] public static partial nint uffd_soak_start(SoakConfig* cfg, int* err);
    [LibraryImport(Library)] public static partial int uffd_soak_go(nint soak);
    [LibraryImport(Library)] public static partial int uffd_soak_pause(nint soak, int timeoutMs);
    [LibraryImport(Library)] public static partial int uffd_soak_sweep(nint soak, uint mask, int* kinds);
    [LibraryImport(Library)] public static partial int uffd_soak_sweeps_done(nint soak, uint gen);
    [LibraryImport(Library)] public static partial int uffd_soak_stop(nint soak, int timeoutMs);
    [LibraryImport(Library)] public static partial int uffd_soak_thread_stats(nint soak, int index, SoakThreadStats* stats);
    [LibraryImport(Library)] public static partial int uffd_soak_failure(nint soak, int index, SoakFailure* failure);
    [LibraryImport(Library)] public static partial long uffd_soak_now_ns();
    [LibraryImport(Library)] public static partial ulong uffd_soak_region_addr(nint soak, int region);
    [LibraryImport(Library)] public static partial int uffd_soak_lock(nint soak, int region, int write);
    [LibraryImport(Library)] public static partial int uffd_soak_unlock(nint soak, int region);
    [LibraryImport(Library)] public static partial int uffd_soak_set_base(nint soak, int region, ulong addr);
    [LibraryImport(Library)] public static partial int uffd_soak_advise(nint soak, int region, ulong first, ulong count, int advice, int discards);
    [LibraryImport(Library)] public static partial int uffd_soak_free(nint soak);

    // uffd_pin.c: io_uring long-term pins (IoUringPin)
    [LibraryImport(Library)] public static partial int uffd_pin(ulong addr, ulong len, int* stage);
    [LibraryImport(Library)] public static partial int uffd_unpin(int ring);

    // uffd_child_fn.c: the UFFD_CHILD_CALL steps (IoUringPin.ChildPin, ChildVm)
    [LibraryImport(Library)] public static partial ulong uffd_child_fn_of(int which);

    /// <summary>Verifies pages [0, pages) at addr: word w of page i is the pattern of baseSeed (word
    /// index i*512 + w) or zero, except, when touched, word (i % 512) := pattern(touchSeed, i) (what a
    /// write toucher leaves). -1 when every page matches, else the first bad page.</summary>
    public static long VerifyPages(ulong addr, long pages, VerifyBase b, ulong baseSeed, bool touched = false, ulong touchSeed = 0) =>
        VerifyPages(addr, pages, b, baseSeed, touched, touchSeed, out _, out _);

    public static long VerifyPages(ulong addr, long pages, VerifyBase b, ulong baseSeed, bool touched, ulong touchSeed, out ulong got, out ulong word)
    {
        var spec = new VerifySpec { Addr = addr, Pages = (ulong)pages, Base = (int)b, BaseSeed = baseSeed, Touched = touched ? 1 : 0, TouchSeed = touchSeed };
        ulong g, w;
        long r = uffd_verify_pages(&spec, &g, &w);
        got = g;
        word = w;
        return r;
    }
}

/// <summary>Constants of the harness ABI (each one is in the harness layout table).</summary>
public static class HarnessAbi
{
    public const int Version = 2;
    /// <summary>UFFD_CHILD_CALL (native/uffd_shim.h): a fork child's step that runs a harness function.</summary>
    public const int ChildCall = 14;
    public const int PinStageSetup = 1;
    public const int PinStageRegister = 2;
    /// <summary>UFFD_CHILD_FN_*: which UFFD_CHILD_CALL step uffd_child_fn_of gives.</summary>
    public const int ChildFnPin = 0;
    public const int ChildFnUnpinAll = 1;
    public const int ChildFnMremap = 2;
    public const int ChildFnMadvise = 3;
    public const int ChildFnSigbusLoop = 4;
    public const int ChildSigbusWp = 1;
    public const int ChildSigbusWpFile = 2;
    public const int ChildSigbusHuge = 4;
    /// <summary>The first word of the page the sigbus loop COPYs for page p of mapping m is this + (m &lt;&lt; 8) + p: the
    /// scenario handler's tag (HandlerPolicy.CopyTag; a test holds the two equal).</summary>
    public const long ChildSigbusTagBase = 0xC0000;
}

// The shim's structs the harness library writes (struct uffd_hist, uffd_thread_usage, uffd_loop_stats
// from native/uffd_shim.h) are declared once, in src/Shared/NativeMirror.cs, which the binding compiles
// too; here they are public (TouchResult carries them) and gain what the harness converts them to.
// HarnessLayout proves them against the shim's own layout table.

public unsafe partial struct UffdHist
{
    public readonly Serving.HistogramSnapshot ToSnapshot()
    {
        fixed (ulong* b = Buckets)
            return new Serving.HistogramSnapshot(new ReadOnlySpan<ulong>(b, LoopAbi.HistBuckets), Count, Sum, Max);
    }
}

public partial struct UffdThreadUsage
{
    public readonly long CpuNs => UtimeNs + StimeNs;
    public readonly long ContextSwitches => Vcsw + Ivcsw;

    public readonly Serving.ThreadUsage ToUsage() => new(UtimeNs, StimeNs, Vcsw, Ivcsw, MinorFaults, MajorFaults);
}

public unsafe partial struct UffdLoopStats
{
    /// <summary>The binding's statistics type, filled from the native loop's counters.</summary>
    public readonly Serving.FaultStatistics ToStatistics() => new()
    {
        MissingFaults = Faults[0],
        WriteProtectFaults = Faults[1],
        MinorFaults = Faults[2],
        ForkEvents = Events[0],
        RemapEvents = Events[1],
        RemoveEvents = Events[2],
        UnmapEvents = Events[3],
        Messages = Messages,
        Reads = Reads,
        Polls = Polls,
        Batches = Batches,
        MaxBatch = MaxBatch,
        Runs = Runs,
        ResolveIoctls = ResolveIoctls,
        WakeIoctls = WakeIoctls,
        PagesResolved = PagesResolved,
        Eexist = Eexist,
        Eagain = Eagain,
        Partial = Partial,
        Enoent = Enoent,
        DeferredMax = DeferredMax,
        SnapshotPages = SnapshotPages,
        ZeroPages = ZeroPages,
        LoopUsage = new Serving.ThreadUsage(LoopUtimeNs, LoopStimeNs, LoopVcsw, LoopIvcsw, 0, 0),
        Running = State == LoopAbi.StateRunning,
        Exited = State == LoopAbi.StateExited,
        ExitReason = (Serving.FaultServerExitReason)ExitReason,
        Error = Error,
        ErrorOperation = (Serving.LoopOperation)ErrorOp,
        ServiceTime = Service.ToSnapshot(),
    };
}

/// <summary>The native loop's policy (UFFD_POLICY_*).</summary>
public enum NativePolicy
{
    MissingCopy = 1,
    MissingZero = 2,
    WpUnprotect = 3,
    WpSnapshot = 4,
    MinorContinue = 5,
    ReadAhead = 6,
    Async = 7,
}

[StructLayout(LayoutKind.Sequential)]
public struct LoopConfig
{
    public int Uffd;
    public int Policy;
    public int Cpu;
    public int MaxMsgs;
    public int RetryMs;
    public int Reserved;
    public ulong RangeStart;
    public ulong RangeLen;
    public ulong Source;
    public ulong Snapshot;
    public ulong ReadAhead;
}

/// <summary>UFFD_TOUCH_*.</summary>
public enum TouchMode
{
    Read = 1,
    Write = 2,
}

[StructLayout(LayoutKind.Sequential)]
public struct TouchConfig
{
    public ulong Addr;
    public ulong Pages;
    public ulong FirstPage;
    public ulong Seed;
    public int Mode;
    public int Cpu;
}

[StructLayout(LayoutKind.Sequential)]
public struct TouchResult
{
    public long StartNs;
    public long EndNs;
    public ulong Pages;
    public ulong Checksum;
    public UffdThreadUsage Usage;
    public UffdHist Latency;
}

/// <summary>UFFD_VERIFY_*.</summary>
public enum VerifyBase
{
    Zero = 0,
    Pattern = 1,
}

[StructLayout(LayoutKind.Sequential)]
public struct VerifySpec
{
    public ulong Addr;
    public ulong Pages;
    public ulong BaseSeed;
    public ulong TouchSeed;
    public int Base;
    public int Touched;
}

/// <summary>struct uffd_soak_region_config (40 bytes, asserted in uffd_soak.c).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct SoakRegionConfig
{
    public ulong Addr;
    public ulong Pages;
    public ulong Seed;
    public int Base;
    public int MayRemove;
    public int Weight;
    public int WritePct;
}

/// <summary>struct uffd_soak_config.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct SoakConfig
{
    public const int MaxRegions = 8;
    public const int MaxThreads = 64;
    public int Threads;
    public int Regions;
    public ulong Seed;
    public SoakRegions Region;
}

[System.Runtime.CompilerServices.InlineArray(SoakConfig.MaxRegions)]
public struct SoakRegions
{
    private SoakRegionConfig first;
}

[StructLayout(LayoutKind.Sequential)]
public struct SoakThreadStats
{
    public ulong Ops;
    public ulong Reads;
    public ulong Writes;
    public ulong Verified;
    public ulong Inconclusive;
    public ulong Lost;
    public ulong Corrupt;
    public ulong SweepPages;
    public long OpStartNs;
    public ulong OpAddr;
    public int State;
    public int Tid;
}

[StructLayout(LayoutKind.Sequential)]
public struct SoakFailure
{
    public int Kind;
    public int Region;
    public int Thread;
    public int Reserved;
    public ulong Page;
    public ulong Word;
    public ulong Got;
    public ulong Expected;
}

/// <summary>Constants of the soak section (UFFD_SOAK_*).</summary>
public static class SoakAbi
{
    public const int Running = 0, Parked = 1, Done = 2;
    public const int SweepRead = 0, SweepWrite = 1;
    public const int Lost = 1, Corrupt = 2;
}
