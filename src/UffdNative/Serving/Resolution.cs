using UffdNative.Messages;

namespace UffdNative.Serving;

/// <summary>Which ioctl a server issued while resolving (see <see cref="ResolutionIoctl"/>).</summary>
public enum ResolutionIoctlKind
{
    Copy,
    ZeroPage,
    /// <summary>UFFDIO_WRITEPROTECT (the policies only ever un-protect).</summary>
    WriteProtect,
    Continue,
    Move,
    Wake,
    /// <summary>UFFDIO_POISON (<see cref="Policies.MissingCopy.PoisonedPages"/>).</summary>
    Poison,
}

/// <summary>
/// One ioctl a <see cref="FaultServer"/> issued while resolving faults, as recorded in stepped mode
/// (<see cref="FaultServer.ResolvePending()"/>): the range and the mode bits as passed, the kernel's
/// answer (0 or -errno) and the progress it reported (bytes copied, zeroed, mapped or moved; the whole
/// length for a successful WRITEPROTECT or WAKE; a partial result has both, reference §1.4).
/// </summary>
public readonly record struct ResolutionIoctl(ResolutionIoctlKind Kind, ulong Start, ulong Length, ulong Mode, int Result, long Bytes)
{
    public int Errno => Result < 0 ? -Result : 0;

    public bool Succeeded => Result == 0;

    /// <summary>Mode DONTWAKE (bit 0 for COPY, ZEROPAGE, CONTINUE, MOVE and POISON; bit 1 for WRITEPROTECT).</summary>
    public bool DontWake => Kind switch
    {
        ResolutionIoctlKind.Wake => false,
        ResolutionIoctlKind.WriteProtect => (Mode & (ulong)WriteProtectMode.DontWake) != 0,
        _ => (Mode & 1UL) != 0,
    };

    /// <summary>COPY or CONTINUE with MODE_WP (the page is installed write-protected), or a WRITEPROTECT
    /// that protects.</summary>
    public bool WriteProtect => Kind switch
    {
        ResolutionIoctlKind.Copy => (Mode & (ulong)CopyMode.WriteProtect) != 0,
        ResolutionIoctlKind.Continue => (Mode & (ulong)ContinueMode.WriteProtect) != 0,
        ResolutionIoctlKind.WriteProtect => (Mode & (ulong)WriteProtectMode.WriteProtect) != 0,
        _ => false,
    };

    /// <summary>Whether this ioctl woke the threads faulting at address: a successful WAKE over it, an
    /// un-protect without DONTWAKE over it, or a resolving ioctl without DONTWAKE whose progress covers
    /// it (the kernel wakes exactly the range it resolved, partial results included, reference §1.4).</summary>
    public bool Woke(ulong address) => Kind switch
    {
        ResolutionIoctlKind.Wake => Result == 0 && address - Start < Length,
        ResolutionIoctlKind.WriteProtect => Result == 0 && !DontWake && !WriteProtect && address - Start < Length,
        _ => !DontWake && Bytes > 0 && address >= Start && address - Start < (ulong)Bytes,
    };
}

/// <summary>What became of a fault in one stepped call.</summary>
public enum FaultOutcome
{
    /// <summary>Resolved by the policy (an EEXIST answer counts: another path resolved the page, and the
    /// server woke it).</summary>
    Resolved,
    /// <summary>EAGAIN without progress (an event is unread, or the range is changing): the fault stays
    /// pending and the next call retries it.</summary>
    Deferred,
    /// <summary>ENOENT: the range is gone; the server woke the thread and forgot the fault.</summary>
    Dropped,
    /// <summary>The server ended before resolving it (an error, the owner gone, no policy for its kind):
    /// see <see cref="FaultServer.Exit"/>. The uffd is closed, which releases the thread.</summary>
    Failed,
}

/// <summary>A run of contiguous faulting pages of one kind that the server resolved together, with every
/// ioctl it issued for it (the policy's steps and the final WAKE), in order.</summary>
public sealed record ResolvedRun(ulong Start, ulong Length, FaultKind Kind, IReadOnlyList<ResolutionIoctl> Ioctls, FaultOutcome Outcome)
{
    public ulong End => Start + Length;

    /// <summary>With <see cref="FaultOutcome.Deferred"/>: the first address still pending (pages before
    /// it were resolved).</summary>
    public ulong DeferredFrom { get; init; } = ulong.MaxValue;
}

/// <summary>
/// One message a stepped <see cref="FaultServer"/> read, and what it did with it. Faults carry the
/// run that resolved them (several faults coalesced into one run share it), their outcome, and whether
/// the faulting thread was woken; events (FORK, REMAP, REMOVE, UNMAP) were applied to the server's
/// ranges as in the running loop.
/// </summary>
public sealed record Resolution
{
    public required UffdEventKind Kind { get; init; }

    /// <summary>The message, typed; null for FORK (the child's fd belongs to <see cref="ForkChild"/>,
    /// or was closed with <see cref="ForkBehavior.Close"/>).</summary>
    public UffdMessage? Message { get; init; }

    public PageFault? Fault => Message as PageFault;

    /// <summary>A fault an earlier call deferred, retried in this one (its message was read then).</summary>
    public bool Retried { get; init; }

    /// <summary>For a fault: the run that resolved it (null when the server ended first).</summary>
    public ResolvedRun? Run { get; init; }

    /// <summary>For a fault: what became of it.</summary>
    public FaultOutcome? Outcome { get; init; }

    /// <summary>For a fault: whether an ioctl of this call woke the faulting thread.</summary>
    public bool Woken { get; init; }

    /// <summary>For FORK with <see cref="ForkBehavior.Serve"/>: the child's server, also stepped (call its
    /// <see cref="FaultServer.ResolvePending()"/> to serve the child's faults).</summary>
    public FaultServer? ForkChild { get; init; }
}

/// <summary>What one stepped call records: the ioctls of each run, and which messages they served.</summary>
internal sealed class ResolutionLog
{
    private readonly struct Entry(int index, ulong page, FaultKind kind)
    {
        public readonly int Index = index;
        public readonly ulong Page = page;
        public readonly FaultKind Kind = kind;
    }

    private readonly List<ResolvedRun> runs = [];
    private readonly List<Entry> faults = [];
    private List<ResolutionIoctl> current = [];
    private ulong runStart, runEnd;
    private FaultKind runKind;
    private bool endedBefore;

    public List<Resolution> Results { get; private set; } = [];

    public void Begin()
    {
        runs.Clear();
        faults.Clear();
        Results = [];
    }

    public void Add(ResolutionIoctlKind kind, ulong start, ulong len, ulong mode, ResolveResult r) =>
        current.Add(new ResolutionIoctl(kind, start, len, mode, r.Ret, r.Bytes));

    public void AddWake(ulong start, ulong len, int ret) =>
        current.Add(new ResolutionIoctl(ResolutionIoctlKind.Wake, start, len, 0, ret, ret == 0 ? (long)len : 0));

    public void AddFault(PageFault message, ulong page, FaultKind kind, bool retried)
    {
        faults.Add(new Entry(Results.Count, page, kind));
        Results.Add(new Resolution { Kind = UffdEventKind.PageFault, Message = message, Retried = retried });
    }

    public void AddEvent(UffdEventKind kind, UffdMessage? message, FaultServer? child = null) =>
        Results.Add(new Resolution { Kind = kind, Message = message, ForkChild = child });

    public void BeginRun(ulong start, ulong end, FaultKind kind, bool ended)
    {
        current = [];
        runStart = start;
        runEnd = end;
        runKind = kind;
        endedBefore = ended;
    }

    public void EndRun(bool resolved, ulong deferFrom, bool ended)
    {
        FaultOutcome outcome = !resolved ? FaultOutcome.Deferred
            : ended && !endedBefore ? FaultOutcome.Failed
            : current.Count > 0 && current[^1].Errno == UffdNative.Errno.ENOENT
              || current.Count > 1 && current[^1].Kind == ResolutionIoctlKind.Wake && current[^2].Errno == UffdNative.Errno.ENOENT ? FaultOutcome.Dropped
            : FaultOutcome.Resolved;
        runs.Add(new ResolvedRun(runStart, runEnd - runStart, runKind, current, outcome) { DeferredFrom = resolved ? ulong.MaxValue : deferFrom });
    }

    /// <summary>Gives each fault its run, outcome and whether it was woken.</summary>
    public List<Resolution> Complete()
    {
        foreach (var f in faults)
        {
            ResolvedRun? run = null;
            foreach (var r in runs)
                if (r.Kind == f.Kind && f.Page >= r.Start && f.Page < r.End)
                    run = r;
            var outcome = run is null ? FaultOutcome.Failed
                : run.Outcome == FaultOutcome.Deferred && f.Page < run.DeferredFrom ? FaultOutcome.Resolved
                : run.Outcome;
            bool woken = false;
            if (run is not null)
                foreach (var io in run.Ioctls)
                    woken |= io.Woke(f.Page);
            Results[f.Index] = Results[f.Index] with { Run = run, Outcome = outcome, Woken = woken };
        }
        return Results;
    }
}
