using UffdNative.Interop;
using UffdNative.Messages;

namespace UffdNative.Serving;

/// <summary>
/// A copy of a fault loop's statistics (the managed FaultServer's, or any other loop's that writes
/// struct uffd_loop_stats: the harness's native twin loop does). Taking
/// one while the loop runs is safe: every counter is one aligned 64-bit word written by the loop
/// thread only, so each value is exact, though counters may be a few faults apart from each other.
/// </summary>
public sealed class FaultStatistics
{
    public ulong MissingFaults { get; init; }
    public ulong WriteProtectFaults { get; init; }
    public ulong MinorFaults { get; init; }
    public ulong Faults => MissingFaults + WriteProtectFaults + MinorFaults;
    public ulong ForkEvents { get; init; }
    public ulong RemapEvents { get; init; }
    public ulong RemoveEvents { get; init; }
    public ulong UnmapEvents { get; init; }
    public ulong Messages { get; init; }
    public ulong Reads { get; init; }
    public ulong Polls { get; init; }
    public ulong Batches { get; init; }
    public ulong MaxBatch { get; init; }
    public ulong Runs { get; init; }
    public ulong ResolveIoctls { get; init; }
    public ulong WakeIoctls { get; init; }
    public ulong PagesResolved { get; init; }
    public ulong Eexist { get; init; }
    public ulong Eagain { get; init; }
    public ulong Partial { get; init; }
    public ulong Enoent { get; init; }
    public ulong DeferredMax { get; init; }
    public ulong SnapshotPages { get; init; }
    public ulong ZeroPages { get; init; }
    /// <summary>The loop thread's CPU time and context switches over its whole life (set when it ends).</summary>
    public ThreadUsage LoopUsage { get; init; }
    public bool Running { get; init; }
    public bool Exited { get; init; }
    public FaultServerExitReason ExitReason { get; init; }
    public int Error { get; init; }
    public LoopOperation ErrorOperation { get; init; }
    /// <summary>Per fault: nanoseconds from the read that returned it to its resolution.</summary>
    public HistogramSnapshot ServiceTime { get; init; }

    /// <summary>Statistics with every counter zero (set them with init: e.g. from another loop's report).</summary>
    public FaultStatistics()
    {
        ServiceTime = HistogramSnapshot.Empty;
    }

    internal unsafe FaultStatistics(in UffdLoopStats s)
    {
        MissingFaults = s.Faults[(int)FaultKind.Missing];
        WriteProtectFaults = s.Faults[(int)FaultKind.WriteProtect];
        MinorFaults = s.Faults[(int)FaultKind.Minor];
        ForkEvents = s.Events[(int)ServerEvent.Fork];
        RemapEvents = s.Events[(int)ServerEvent.Remap];
        RemoveEvents = s.Events[(int)ServerEvent.Remove];
        UnmapEvents = s.Events[(int)ServerEvent.Unmap];
        Messages = s.Messages;
        Reads = s.Reads;
        Polls = s.Polls;
        Batches = s.Batches;
        MaxBatch = s.MaxBatch;
        Runs = s.Runs;
        ResolveIoctls = s.ResolveIoctls;
        WakeIoctls = s.WakeIoctls;
        PagesResolved = s.PagesResolved;
        Eexist = s.Eexist;
        Eagain = s.Eagain;
        Partial = s.Partial;
        Enoent = s.Enoent;
        DeferredMax = s.DeferredMax;
        SnapshotPages = s.SnapshotPages;
        ZeroPages = s.ZeroPages;
        LoopUsage = new ThreadUsage(s.LoopUtimeNs, s.LoopStimeNs, s.LoopVcsw, s.LoopIvcsw, 0, 0);
        Running = s.State == LoopAbi.StateRunning;
        Exited = s.State == LoopAbi.StateExited;
        ExitReason = (FaultServerExitReason)s.ExitReason;
        Error = s.Error;
        ErrorOperation = (LoopOperation)s.ErrorOp;
        ServiceTime = new HistogramSnapshot(s.Service);
    }

    public ulong FaultsOf(FaultKind kind) => kind switch
    {
        FaultKind.Missing => MissingFaults,
        FaultKind.WriteProtect => WriteProtectFaults,
        _ => MinorFaults,
    };

    public override string ToString() =>
        $"faults {Faults} (missing {MissingFaults}, wp {WriteProtectFaults}, minor {MinorFaults}), events fork {ForkEvents} remap {RemapEvents} remove {RemoveEvents} unmap {UnmapEvents}, " +
        $"reads {Reads}, polls {Polls}, batches {Batches} (max {MaxBatch}), runs {Runs}, ioctls {ResolveIoctls}+{WakeIoctls} wake, pages {PagesResolved}, " +
        $"eexist {Eexist}, eagain {Eagain}, partial {Partial}, enoent {Enoent}";
}
