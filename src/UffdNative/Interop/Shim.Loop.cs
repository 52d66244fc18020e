using System.Runtime.InteropServices;

namespace UffdNative.Interop;

// native/uffd_shim.h, section "uffd_loop.c: the native twin loop". The managed FaultServer writes the
// same statistics struct the native loop writes, so one reader serves both.

public static unsafe partial class Shim
{
    [LibraryImport(Library)] public static partial int uffd_hist_index(ulong value);
    [LibraryImport(Library)] public static partial void uffd_hist_record(UffdHist* h, ulong value);
    [LibraryImport(Library)] public static partial int uffd_loop_wait(int fd, int stopfd, int timeoutMs, UffdMsg* buf, int max, UffdLoopStats* stats, int* mask);
    [LibraryImport(Library)] public static partial int uffd_thread_usage(ThreadUsage* usage);
    [LibraryImport(Library)] public static partial void uffd_copy_memory(void* dst, void* src, ulong len);
    [LibraryImport(Library)] public static partial nint uffd_loop_start(LoopConfig* cfg, int* err);
    [LibraryImport(Library)] public static partial int uffd_loop_stats(nint loop, UffdLoopStats* stats);
    [LibraryImport(Library)] public static partial int uffd_loop_stop(nint loop, int timeoutMs);
    [LibraryImport(Library)] public static partial int uffd_loop_free(nint loop);
    [LibraryImport(Library)] public static partial nint uffd_toucher_start(TouchConfig* cfg);
    [LibraryImport(Library)] public static partial int uffd_toucher_go(nint toucher);
    [LibraryImport(Library)] public static partial ulong uffd_toucher_progress(nint toucher);
    [LibraryImport(Library)] public static partial int uffd_toucher_join(nint toucher, int timeoutMs, TouchResult* result);
    [LibraryImport(Library)] public static partial int uffd_toucher_free(nint toucher);
    [LibraryImport(Library)] public static partial long uffd_verify_pages(VerifySpec* spec, ulong* got, ulong* word);
    [LibraryImport(Library)] public static partial int uffd_pidfd_open(int pid);
}

/// <summary>Constants of the loop section of the ABI (each one is in the layout table).</summary>
public static class LoopAbi
{
    public const int HistBuckets = 2304;
    /// <summary>uffd_loop_wait: read() returned 0 (end of file).</summary>
    public const int WaitEof = 16;
    public const int StateCreated = 0, StateRunning = 1, StateExited = 2;
}

/// <summary>struct uffd_hist: a fixed log-linear histogram (see <see cref="Serving.LatencyHistogram"/>).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct UffdHist
{
    public ulong Count;
    public ulong Sum;
    public ulong Max;
    public fixed ulong Buckets[LoopAbi.HistBuckets];
}

/// <summary>struct uffd_loop_stats: written by one loop thread, copied by anyone.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct UffdLoopStats
{
    public fixed ulong Faults[3];
    public fixed ulong Events[4];
    public ulong Messages;
    public ulong Reads;
    public ulong Polls;
    public ulong Batches;
    public ulong MaxBatch;
    public ulong Runs;
    public ulong ResolveIoctls;
    public ulong WakeIoctls;
    public ulong PagesResolved;
    public ulong Eexist;
    public ulong Eagain;
    public ulong Partial;
    public ulong Enoent;
    public ulong DeferredMax;
    public ulong SnapshotPages;
    public ulong ZeroPages;
    public long LoopUtimeNs;
    public long LoopStimeNs;
    public long LoopVcsw;
    public long LoopIvcsw;
    public int State;
    public int ExitReason;
    public int Error;
    public int ErrorOp;
    public UffdHist Service;
}

[StructLayout(LayoutKind.Sequential)]
public struct ThreadUsage
{
    public long UtimeNs;
    public long StimeNs;
    public long Vcsw;
    public long Ivcsw;
    public long MinorFaults;
    public long MajorFaults;

    public readonly long CpuNs => UtimeNs + StimeNs;
    public readonly long ContextSwitches => Vcsw + Ivcsw;

    public static ThreadUsage operator -(ThreadUsage a, ThreadUsage b) =>
        new() { UtimeNs = a.UtimeNs - b.UtimeNs, StimeNs = a.StimeNs - b.StimeNs, Vcsw = a.Vcsw - b.Vcsw, Ivcsw = a.Ivcsw - b.Ivcsw, MinorFaults = a.MinorFaults - b.MinorFaults, MajorFaults = a.MajorFaults - b.MajorFaults };

    public static ThreadUsage operator +(ThreadUsage a, ThreadUsage b) =>
        new() { UtimeNs = a.UtimeNs + b.UtimeNs, StimeNs = a.StimeNs + b.StimeNs, Vcsw = a.Vcsw + b.Vcsw, Ivcsw = a.Ivcsw + b.Ivcsw, MinorFaults = a.MinorFaults + b.MinorFaults, MajorFaults = a.MajorFaults + b.MajorFaults };

    /// <summary>getrusage(RUSAGE_THREAD) of the calling thread.</summary>
    public static unsafe ThreadUsage Current()
    {
        ThreadUsage u;
        Shim.uffd_thread_usage(&u);
        return u;
    }
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
    public ThreadUsage Usage;
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
