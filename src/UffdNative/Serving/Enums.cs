using UffdNative.Interop;

namespace UffdNative.Serving;

/// <summary>Non-cooperative events a server handles (index into the statistics' event counters).</summary>
public enum ServerEvent
{
    Fork = LoopAbi.EventFork,
    Remap = LoopAbi.EventRemap,
    Remove = LoopAbi.EventRemove,
    Unmap = LoopAbi.EventUnmap,
}

/// <summary>Why a fault loop ended (UFFD_LOOP_EXIT_*).</summary>
public enum FaultServerExitReason
{
    /// <summary>Still running (or never started).</summary>
    None = LoopAbi.Running,
    /// <summary>Stop was requested.</summary>
    Stopped = LoopAbi.ExitStopped,
    /// <summary>The process owning the memory exited (ESRCH from an ioctl, or its pidfd).</summary>
    OwnerGone = LoopAbi.ExitOwnerGone,
    /// <summary>read() returned 0 or poll reported POLLHUP.</summary>
    EndOfFile = LoopAbi.ExitEndOfFile,
    /// <summary>An unrecoverable error; the uffd was closed so that no faulting thread stays blocked.</summary>
    Error = LoopAbi.ExitError,
    /// <summary>A fill ioctl kept failing with ENOMEM (the kernel could not allocate or charge a page)
    /// after bounded retries with backoff; the uffd was closed as for <see cref="Error"/>.</summary>
    AllocationFailure = LoopAbi.ExitAllocationFailure,
}

/// <summary>Where a loop failed (UFFD_LOOP_OP_*).</summary>
public enum LoopOperation
{
    None = LoopAbi.OpNone,
    Read = LoopAbi.OpRead,
    Poll = LoopAbi.OpPoll,
    Resolve = LoopAbi.OpResolve,
    Wake = LoopAbi.OpWake,
    /// <summary>The policy failed (in the managed loop: it threw).</summary>
    Policy = LoopAbi.OpPolicy,
    Event = LoopAbi.OpEvent,
    /// <summary>A fault of a kind no policy serves.</summary>
    NoPolicy = LoopAbi.OpNoPolicy,
}

/// <summary>What to do with the child's uffd of a FORK event.</summary>
public enum ForkBehavior
{
    /// <summary>Close it: the child's ranges become ordinary memory in the child.</summary>
    Close,
    /// <summary>Serve it with a child server running the same policies (<see cref="FaultPolicy.ForForkChild"/>).</summary>
    Serve,
}

/// <summary>A thread's CPU time, context switches and page faults (getrusage RUSAGE_THREAD).</summary>
public readonly record struct ThreadUsage(long UtimeNs, long StimeNs, long Vcsw, long Ivcsw, long MinorFaults, long MajorFaults)
{
    public long CpuNs => UtimeNs + StimeNs;
    public long ContextSwitches => Vcsw + Ivcsw;

    public static ThreadUsage operator -(ThreadUsage a, ThreadUsage b) =>
        new(a.UtimeNs - b.UtimeNs, a.StimeNs - b.StimeNs, a.Vcsw - b.Vcsw, a.Ivcsw - b.Ivcsw, a.MinorFaults - b.MinorFaults, a.MajorFaults - b.MajorFaults);

    /// <summary>The calling thread's usage.</summary>
    internal static unsafe ThreadUsage Current()
    {
        UffdThreadUsage u;
        Shim.uffd_thread_usage(&u);
        return new(u.UtimeNs, u.StimeNs, u.Vcsw, u.Ivcsw, u.MinorFaults, u.MajorFaults);
    }

    public static ThreadUsage operator +(ThreadUsage a, ThreadUsage b) =>
        new(a.UtimeNs + b.UtimeNs, a.StimeNs + b.StimeNs, a.Vcsw + b.Vcsw, a.Ivcsw + b.Ivcsw, a.MinorFaults + b.MinorFaults, a.MajorFaults + b.MajorFaults);
}
