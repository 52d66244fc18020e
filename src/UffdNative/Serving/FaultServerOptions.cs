using Microsoft.Extensions.Logging;

namespace UffdNative.Serving;

/// <summary>How a <see cref="FaultServer"/> serves one uffd.</summary>
public sealed record FaultServerOptions
{
    /// <summary>At most one policy per fault kind. A fault of a kind without a policy is an
    /// unrecoverable error (the server stops and closes the uffd).</summary>
    public IReadOnlyList<FaultPolicy> Policies { get; init; } = [];

    /// <summary>The ranges served, with their source offsets (needed by MissingCopy, ReadAhead and
    /// WpSnapshot; more can be added while running with <see cref="FaultServer.Track"/>).</summary>
    public IReadOnlyList<ServedRange> Ranges { get; init; } = [];

    /// <summary>Messages per read(2) (the reused buffer's size).</summary>
    public int MaxMessagesPerRead { get; init; } = 64;

    /// <summary>Poll timeout while faults are deferred on EAGAIN: deferred work needs a bounded wait,
    /// or the loop can sleep forever once the queue is drained (buildbuddy PR #12673).</summary>
    public int RetryPollMs { get; init; } = 1;

    /// <summary>Pin the loop thread to this CPU (-1: not pinned).</summary>
    public int Cpu { get; init; } = -1;

    /// <summary>Serve a FORK child's uffd with a child server, or close it.</summary>
    public ForkBehavior OnFork { get; init; } = ForkBehavior.Close;

    /// <summary>Close the uffd when the server stops on request (after serving what was pending). On
    /// every other ending (error, owner gone, end of file) the uffd is closed regardless, so that no
    /// faulting thread stays blocked; with false, a stop that leaves deferred faults closes it too.</summary>
    public bool CloseUffdOnStop { get; init; } = true;

    /// <summary>The process that owns the registered memory when it is another one (a uffd received
    /// over a socket, or a FORK child's): its exit ends the loop even when no fault is in flight
    /// (after the mm is gone, poll() and read() on the uffd stay silent, reference §1.8).</summary>
    public int? OwnerPid { get; init; }

    /// <summary>How many non-blocking passes a stop may use to serve what is pending.</summary>
    public int StopDrainPasses { get; init; } = 64;

    /// <summary>Where the server logs (category of one's choice); null: <see cref="UffdLogging.LoggerFactory"/>'s
    /// <c>UffdNative.Serving.FaultServer</c>. The kernel calls are logged under <c>UffdNative.Kernel</c> either way.</summary>
    public ILogger? Logger { get; init; }

    /// <summary>Called on the loop thread with the range table after the events of a read changed it
    /// (REMAP, REMOVE, UNMAP) and before any fault of that read is resolved: an external handler
    /// acknowledges the new table to its client here, so a takeover never starts from a table older than
    /// a fault the handler resolved. Must return promptly (a bounded send).</summary>
    internal Action<IReadOnlyList<ServedRange>>? RangesChanged { get; init; }

    public string ThreadName { get; init; } = "uffd-fault-server";

    /// <summary>After every batch the loop thread records GC.GetAllocatedBytesForCurrentThread (see
    /// <see cref="FaultServer.LoopAllocatedBytes"/>): the tests' proof that the loop allocates nothing.</summary>
    internal bool TrackAllocations { get; init; }
}

/// <summary>How and why a server ended.</summary>
public sealed record FaultServerExit(FaultServerExitReason Reason, int Errno, LoopOperation Operation, Exception? Exception, string Message)
{
    public bool IsError => Reason == FaultServerExitReason.Error;
    public override string ToString() => Message;
}
