namespace UffdNative.Serving;

/// <summary>Non-cooperative events a server handles (index into the statistics' event counters).</summary>
public enum ServerEvent
{
    Fork = 0,
    Remap = 1,
    Remove = 2,
    Unmap = 3,
}

/// <summary>Why a fault loop ended (UFFD_LOOP_EXIT_*).</summary>
public enum FaultServerExitReason
{
    /// <summary>Still running (or never started).</summary>
    None = 0,
    /// <summary>Stop was requested.</summary>
    Stopped = 1,
    /// <summary>The process owning the memory exited (ESRCH/ENOMEM from an ioctl, or its pidfd).</summary>
    OwnerGone = 2,
    /// <summary>read() returned 0 or poll reported POLLHUP.</summary>
    EndOfFile = 3,
    /// <summary>An unrecoverable error; the uffd was closed so that no faulting thread stays blocked.</summary>
    Error = 4,
}

/// <summary>Where a loop failed (UFFD_LOOP_OP_*).</summary>
public enum LoopOperation
{
    None = 0,
    Read = 1,
    Poll = 2,
    Resolve = 3,
    Wake = 4,
    /// <summary>The policy failed (in the managed loop: it threw).</summary>
    Policy = 5,
    Event = 6,
    /// <summary>A fault of a kind no policy serves.</summary>
    NoPolicy = 7,
}

/// <summary>What to do with the child's uffd of a FORK event.</summary>
public enum ForkBehavior
{
    /// <summary>Close it: the child's ranges become ordinary memory in the child.</summary>
    Close,
    /// <summary>Serve it with a child server running the same policies (<see cref="FaultPolicy.ForForkChild"/>).</summary>
    Serve,
}
