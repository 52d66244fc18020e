using System.Runtime.InteropServices;
using UffdNative.Uapi;

namespace UffdNative.Interop;

// native/uffd_shim.h, section "uffd_wait.c: what every fault loop shares". The managed FaultServer
// writes struct uffd_loop_stats; the harness's native twin loop (libuffdharness.so) writes the same.

internal static unsafe partial class Shim
{
    [LibraryImport(Library)] internal static partial int uffd_loop_wait(int fd, int stopfd, int timeoutMs, UffdMsg* buf, int max, UffdLoopStats* stats, int* mask);
    [LibraryImport(Library)] internal static partial int uffd_thread_usage(UffdThreadUsage* usage);
    [LibraryImport(Library)] internal static partial void uffd_copy_memory(void* dst, void* src, ulong len);
    [LibraryImport(Library)] internal static partial int uffd_pidfd_open(int pid);
}

/// <summary>Constants of the wait section of the ABI (each one is in the layout table). The serving
/// engine's public enums take their values from here, so the numbers are written once.</summary>
internal static class LoopAbi
{
    internal const int HistBuckets = 2304;
    /// <summary>uffd_loop_wait: read() returned 0 (end of file).</summary>
    internal const int WaitEof = 16;
    internal const int StateCreated = 0, StateRunning = 1, StateExited = 2;
    /// <summary>UFFD_KIND_*: index of uffd_loop_stats.faults.</summary>
    internal const int KindMissing = 0, KindWriteProtect = 1, KindMinor = 2;
    /// <summary>UFFD_EV_*: index of uffd_loop_stats.events.</summary>
    internal const int EventFork = 0, EventRemap = 1, EventRemove = 2, EventUnmap = 3;
    /// <summary>UFFD_LOOP_RUNNING and UFFD_LOOP_EXIT_*: uffd_loop_stats.exit_reason.</summary>
    internal const int Running = 0, ExitStopped = 1, ExitOwnerGone = 2, ExitEndOfFile = 3, ExitError = 4;
    /// <summary>UFFD_LOOP_OP_*: uffd_loop_stats.error_op.</summary>
    internal const int OpNone = 0, OpRead = 1, OpPoll = 2, OpResolve = 3, OpWake = 4, OpPolicy = 5, OpEvent = 6, OpNoPolicy = 7;
}

/// <summary>struct uffd_hist: a fixed log-linear histogram (bucket index: uffd_shim.h).</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct UffdHist
{
    public ulong Count;
    public ulong Sum;
    public ulong Max;
    public fixed ulong Buckets[LoopAbi.HistBuckets];
}

/// <summary>struct uffd_loop_stats: written by one loop thread, copied by anyone.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct UffdLoopStats
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

/// <summary>struct uffd_thread_usage: getrusage(RUSAGE_THREAD) of one thread.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct UffdThreadUsage
{
    public long UtimeNs;
    public long StimeNs;
    public long Vcsw;
    public long Ivcsw;
    public long MinorFaults;
    public long MajorFaults;
}
