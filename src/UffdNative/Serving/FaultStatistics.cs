using UffdNative.Interop;
using UffdNative.Messages;

namespace UffdNative.Serving;

/// <summary>
/// A copy of a fault loop's statistics (managed or native: both write struct uffd_loop_stats). Taking
/// one while the loop runs is safe: every counter is one aligned 64-bit word written by the loop
/// thread only, so each value is exact, though counters may be a few faults apart from each other.
/// </summary>
public sealed class FaultStatistics
{
    public ulong MissingFaults { get; }
    public ulong WriteProtectFaults { get; }
    public ulong MinorFaults { get; }
    public ulong Faults => MissingFaults + WriteProtectFaults + MinorFaults;
    public ulong ForkEvents { get; }
    public ulong RemapEvents { get; }
    public ulong RemoveEvents { get; }
    public ulong UnmapEvents { get; }
    public ulong Messages { get; }
    public ulong Reads { get; }
    public ulong Polls { get; }
    public ulong Batches { get; }
    public ulong MaxBatch { get; }
    public ulong Runs { get; }
    public ulong ResolveIoctls { get; }
    public ulong WakeIoctls { get; }
    public ulong PagesResolved { get; }
    public ulong Eexist { get; }
    public ulong Eagain { get; }
    public ulong Partial { get; }
    public ulong Enoent { get; }
    public ulong DeferredMax { get; }
    public ulong SnapshotPages { get; }
    public ulong ZeroPages { get; }
    /// <summary>The loop thread's CPU time and context switches over its whole life (set when it ends).</summary>
    public ThreadUsage LoopUsage { get; }
    public bool Running { get; }
    public bool Exited { get; }
    public FaultServerExitReason ExitReason { get; }
    public int Error { get; }
    public LoopOperation ErrorOperation { get; }
    /// <summary>Per fault: nanoseconds from the read that returned it to its resolution.</summary>
    public HistogramSnapshot ServiceTime { get; }

    public unsafe FaultStatistics(in UffdLoopStats s)
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
        LoopUsage = new ThreadUsage { UtimeNs = s.LoopUtimeNs, StimeNs = s.LoopStimeNs, Vcsw = s.LoopVcsw, Ivcsw = s.LoopIvcsw };
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
