using Microsoft.Extensions.Logging;
using UffdNative.Interop;
using UffdNative.Uapi;

namespace UffdNative.Serving.External;

/// <summary>What the client does when its handler dies, stalls or fails.</summary>
public enum WatchdogAction
{
    /// <summary>Stop the faulting side with a clear error instead of hanging: every fault from then on
    /// is failed — a missing or minor page is poisoned (UFFDIO_POISON: the access gets SIGBUS,
    /// BUS_MCEERR_AR, at the address), a write-protect fault gets SIGBUS on its thread (tgkill with the
    /// message's thread id) — and <see cref="ExternalHandler.Failure"/> says why.</summary>
    Fail,
    /// <summary>Serve in-process from now on with the fallback policies, starting from the handler's
    /// last reported ranges; faults the dead handler had read but not resolved are woken and re-fault
    /// into the new loop.</summary>
    Takeover,
    /// <summary>Close the uffd: the kernel wakes every waiter and resolves normally from then on. Only
    /// where nothing is lost — write-protect tracking. Refused for MISSING or MINOR registrations, whose
    /// pages the kernel would fill with zeros (or the page cache) instead of the served content.</summary>
    Release,
}

public enum HandlerFailureKind
{
    /// <summary>The control socket reached end of file without a final frame.</summary>
    SocketClosed,
    /// <summary>The handler process exited (its pidfd became readable) without a final frame.</summary>
    ProcessExited,
    /// <summary>Faults were outstanding and the handler resolved none of them for the stall deadline.</summary>
    Stalled,
    /// <summary>The handler's loop ended with an error (its final frame says which).</summary>
    HandlerError,
    /// <summary>The handler stopped the session on its own side (SIGTERM) while the client still had
    /// registered ranges: a loss of service like any other, never a normal end.</summary>
    HandlerStopped,
    /// <summary>The handler's fills kept failing with ENOMEM (its final frame's exit is
    /// <see cref="FaultServerExitReason.AllocationFailure"/>): the kernel could not allocate the pages.</summary>
    AllocationFailure,
}

public sealed record HandlerFailure(HandlerFailureKind Kind, string Message, long DetectedAtMs)
{
    public override string ToString() => $"{Kind}: {Message}";
}

public enum ExternalHandlerState
{
    /// <summary>The handler serves.</summary>
    Serving,
    /// <summary>The handler ended by itself or on request and said so (a final frame: stopped, the
    /// owner exited, end of file).</summary>
    Ended,
    /// <summary>The handler failed; the client fails every fault (<see cref="WatchdogAction.Fail"/>).</summary>
    Failing,
    /// <summary>The handler failed; the client serves in-process.</summary>
    TakenOver,
    /// <summary>The handler failed; the client closed the uffd.</summary>
    Released,
}

public sealed record ExternalHandlerOptions
{
    /// <summary>The regions handed over, as registered on the uffd.</summary>
    public required IReadOnlyList<HandoffRegion> Regions { get; init; }
    /// <summary>What the handler should serve (a handler started with --policy overrides this).</summary>
    public IReadOnlyList<PolicySpec> Policies { get; init; } = [];
    public WatchdogAction OnFailure { get; init; } = WatchdogAction.Fail;
    /// <summary>Takeover: the policies of the in-process loop (created when it is needed).</summary>
    public Func<IReadOnlyList<FaultPolicy>>? TakeoverPolicies { get; init; }
    /// <summary>Faults outstanding with no resolution for this long count as a stalled handler (which
    /// is then killed and replaced by the action).</summary>
    public int StallDeadlineMs { get; init; } = 3000;
    public int HeartbeatMs { get; init; } = 50;
    public int ReadyTimeoutMs { get; init; } = 15_000;
    /// <summary>Descriptors sent after the uffd (index 1, 2, ...): memfds, source files, the snapshot store.</summary>
    public IReadOnlyList<int> ExtraFds { get; init; } = [];
    /// <summary>Index (among all descriptors sent, the uffd being 0) of the snapshot store memfd.</summary>
    public int? SnapshotFd { get; init; }
    /// <summary>The process that owns the registered memory (default: this one).</summary>
    public int OwnerPid { get; init; }
    /// <summary>Where the session logs; null: <see cref="UffdLogging.LoggerFactory"/>'s <c>UffdNative.Serving.External.ExternalHandler</c>.</summary>
    public ILogger? Logger { get; init; }
}

/// <summary>
/// The client side of the external handler: hands a uffd and its regions to a handler process over a
/// Unix socket (SCM_RIGHTS, Firecracker's shape) and watches it. A dead handler hangs its faulting
/// process forever (Firecracker's documentation, issue #3506), so a watchdog thread follows three
/// signals — end of file on the control socket, the handler's pidfd, and a stall deadline on faults
/// outstanding in the uffd (fdinfo) that no heartbeat shows progress on — and takes the configured
/// <see cref="WatchdogAction"/>. A stalled or half-dead handler is SIGKILLed first, so the client is
/// the only holder of the uffd before it acts.
///
/// The session owns the uffd from <see cref="Connect(string, Userfaultfd, ExternalHandlerOptions)"/> on: it is closed by <see cref="Dispose"/>, by
/// Release, or by the takeover loop when that ends.
/// </summary>
public sealed class ExternalHandler : IDisposable
{
    private readonly Userfaultfd uffd;
    private readonly ExternalHandlerOptions options;
    private readonly FrameChannel channel;
    private readonly SafeFdHandle pidfd;
    private readonly Thread watchdog;
    private readonly object gate = new();
    private readonly TaskCompletionSource<ExternalHandlerState> completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool disposing;
    private volatile ExternalHandlerState state = ExternalHandlerState.Serving;
    private IReadOnlyList<RangeInfo> ranges;
    private HandlerStats? lastStats;
    private long heartbeats;
    private Frame? final;
    private HandlerFailure? failure;
    private FaultServer? takeover;
    private FailingLoop? failing;

    public int HandlerPid { get; }
    public ExternalHandlerState State => state;
    public HandlerFailure? Failure => Volatile.Read(ref failure);
    /// <summary>The handler's final frame, when it sent one.</summary>
    public Frame? Final => Volatile.Read(ref final);
    /// <summary>The latest counters the handler reported (heartbeat or final).</summary>
    public HandlerStats? Stats => Volatile.Read(ref lastStats);
    public long Heartbeats => Interlocked.Read(ref heartbeats);
    /// <summary>The ranges as the handler last reported them.</summary>
    public IReadOnlyList<RangeInfo> Ranges
    {
        get
        {
            lock (gate)
                return ranges;
        }
    }
    public FaultServer? TakeoverServer => takeover;
    /// <summary>Faults failed by the Fail action so far.</summary>
    public long FailedFaults => failing?.Failed ?? 0;
    public Userfaultfd Uffd => uffd;
    /// <summary>Completes when the session left <see cref="ExternalHandlerState.Serving"/> (with the new state).</summary>
    public Task<ExternalHandlerState> Completion => completion.Task;

    private ExternalHandler(Userfaultfd uffd, ExternalHandlerOptions options, FrameChannel channel, SafeFdHandle pidfd, int handlerPid, IReadOnlyList<RangeInfo> ranges)
    {
        this.uffd = uffd;
        // Without a logger of its own, the session logs where the binding does (UffdLogging).
        this.options = options.Logger is null ? options with { Logger = UffdLogging.LoggerFactory.CreateLogger<ExternalHandler>() } : options;
        this.channel = channel;
        this.pidfd = pidfd;
        HandlerPid = handlerPid;
        this.ranges = ranges;
        watchdog = new Thread(Watch) { IsBackground = true, Name = "uffd-handler-watchdog" };
    }

    /// <summary>Checks that the action can be taken on these regions (see <see cref="WatchdogAction"/>).
    /// Throws <see cref="ArgumentException"/> with the reason otherwise.</summary>
    public static void Validate(Userfaultfd uffd, ExternalHandlerOptions o)
    {
        if (o.Regions.Count == 0)
            throw new ArgumentException("no region to hand over");
        switch (o.OnFailure)
        {
            case WatchdogAction.Release:
                foreach (var r in o.Regions)
                    foreach (var mode in new[] { "missing", "minor" })
                        if (r.Has(mode))
                            throw new ArgumentException(
                                $"WatchdogAction.Release would lose data: region 0x{r.BaseHostVirtAddr:x} (+{r.Size} bytes) is registered {mode.ToUpperInvariant()}, and closing the uffd " +
                                (mode == "missing" ? "makes the kernel fill its missing pages with zeros instead of the content the handler serves" : "makes the kernel map the page cache without the handler's say") +
                                ". Release is allowed only for write-protect tracking; use Takeover (serve in-process) or Fail.");
                break;
            case WatchdogAction.Takeover when o.TakeoverPolicies is null:
                throw new ArgumentException("WatchdogAction.Takeover needs TakeoverPolicies (the in-process loop's policies)");
            case WatchdogAction.Fail when o.Regions.Any(r => r.Has("wp")) && (uffd.Features & UffdFeatures.ThreadId) == 0:
                throw new ArgumentException("WatchdogAction.Fail on write-protect regions signals the faulting thread, which needs the uffd opened with UFFD_FEATURE_THREAD_ID");
        }
    }

    /// <summary>Connects to a handler listening on socketPath, hands the uffd over, waits for it to
    /// serve, and starts the watchdog. The session owns the uffd from here on.</summary>
    public static ExternalHandler Connect(string socketPath, Userfaultfd uffd, ExternalHandlerOptions options)
    {
        Validate(uffd, options);
        if (!uffd.NonBlocking)
            throw new ArgumentException("the uffd must be non-blocking (the handler polls it)", nameof(uffd));
        return Connect(FrameChannel.Connect(socketPath), uffd, options);
    }

    /// <summary>Like <see cref="Connect(string, Userfaultfd, ExternalHandlerOptions)"/> on a connection
    /// to the handler that the owner of the memory made (and passed to this supervisor): the handler
    /// serves only the process that connected (SO_PEERCRED), so a supervisor of another process's
    /// memory speaks on the owner's connection, with <see cref="ExternalHandlerOptions.OwnerPid"/> the
    /// owner's pid. The session owns the connection from here on.</summary>
    public static ExternalHandler Connect(SafeFdHandle connection, Userfaultfd uffd, ExternalHandlerOptions options)
    {
        Validate(uffd, options);
        if (!uffd.NonBlocking)
            throw new ArgumentException("the uffd must be non-blocking (the handler polls it)", nameof(uffd));
        return Connect(new FrameChannel(connection), uffd, options);
    }

    private static ExternalHandler Connect(FrameChannel channel, Userfaultfd uffd, ExternalHandlerOptions options)
    {
        SafeFdHandle? pidfd = null;
        try
        {
            var peer = channel.Peer();
            pidfd = new SafeFdHandle(UffdException.Check(Shim.uffd_pidfd_open(peer.Pid), "pidfd_open", e => ($"handler process {peer.Pid}", "pidfd_open needs Linux 5.3+")));
            int[] fds = [uffd.Fd, .. options.ExtraFds];
            channel.Send(new Frame
            {
                Type = "handoff",
                Pid = Environment.ProcessId,
                OwnerPid = options.OwnerPid > 0 ? options.OwnerPid : Environment.ProcessId,
                Features = (ulong)uffd.Features,
                UffdFd = 0,
                HeartbeatMs = options.HeartbeatMs,
                Policies = [.. options.Policies],
                Regions = [.. options.Regions],
                SnapshotFd = options.SnapshotFd,
            }, fds);
            var st = channel.Receive(options.ReadyTimeoutMs, out var reply, out var extra);
            foreach (var fd in extra)
                Shim.uffd_close(fd);
            if (st != FrameChannel.ReceiveStatus.Frame)
                throw new UffdException("external handler", Errno.ETIMEDOUT, $"the handler (pid {peer.Pid}) sent no ready frame ({st})", "check the handler's output");
            if (reply!.Type == "error")
                throw new UffdException("external handler", Errno.EINVAL, $"the handler (pid {peer.Pid}) refused the handoff: {reply.Message}", "");
            if (reply.Type != "ready")
                throw new UffdException("external handler", Errno.EPROTO, $"expected ready, got '{reply.Type}'", "");
            var session = new ExternalHandler(uffd, options, channel, pidfd, peer.Pid, reply.Ranges ?? []);
            session.options.Logger!.LogInformation("uffd {Fd} handed to the external handler (pid {Pid}): {Regions} regions, heartbeat {HeartbeatMs} ms, on failure {Action}",
                uffd.Fd, peer.Pid, options.Regions.Count, options.HeartbeatMs, options.OnFailure);
            session.watchdog.Start();
            return session;
        }
        catch
        {
            pidfd?.Dispose();
            channel.Dispose();
            throw;
        }
    }

    // ---- the watchdog -------------------------------------------------------------------------------

    private void Watch()
    {
        int tick = Math.Clamp(options.HeartbeatMs, 5, 50);
        long lastProgress = Environment.TickCount64;
        ulong lastResolved = 0;
        try
        {
            while (!disposing)
            {
                // Messages first: a final frame that arrived together with the end of file wins.
                var st = channel.Receive(tick, out var frame, out var extra);
                foreach (var fd in extra)
                    Shim.uffd_close(fd);
                if (st == FrameChannel.ReceiveStatus.Frame)
                {
                    if (OnFrame(frame!))
                        return;
                    continue;
                }
                if (st == FrameChannel.ReceiveStatus.EndOfFile)
                {
                    Fail(HandlerFailureKind.SocketClosed, $"the handler (pid {HandlerPid}) closed its control socket without a final frame");
                    return;
                }
                if ((Shim.uffd_poll(pidfd.Fd, -1, 0) & (int)PollEvents.Readable) != 0)
                {
                    // Drain what it sent before it died (a final frame says it ended on purpose).
                    while (channel.Receive(0, out frame, out extra) == FrameChannel.ReceiveStatus.Frame)
                        if (OnFrame(frame!))
                            return;
                    Fail(HandlerFailureKind.ProcessExited, $"the handler process {HandlerPid} exited without a final frame");
                    return;
                }
                // Stall: faults outstanding in the uffd and no resolution reported for the deadline.
                long now = Environment.TickCount64;
                var info = uffd.ReadFdInfo();
                ulong resolved = Stats?.Resolved ?? 0;
                if (info.Total == 0 || resolved != lastResolved)
                {
                    lastProgress = now;
                    lastResolved = resolved;
                }
                else if (now - lastProgress > options.StallDeadlineMs)
                {
                    Fail(HandlerFailureKind.Stalled, $"{info.Total} faults outstanding ({info.Pending} unread) and the handler (pid {HandlerPid}) resolved none for {now - lastProgress} ms (deadline {options.StallDeadlineMs} ms)");
                    return;
                }
            }
        }
        catch (Exception e) when (e is UffdException or IOException)
        {
            if (!disposing)
                Fail(HandlerFailureKind.SocketClosed, $"the control channel failed: {e.Message}");
        }
    }

    /// <summary>True when the session is over.</summary>
    private bool OnFrame(Frame f)
    {
        switch (f.Type)
        {
            case "heartbeat":
                Volatile.Write(ref lastStats, f.Stats);
                Interlocked.Increment(ref heartbeats);
                return false;
            case "ranges":
                lock (gate)
                    ranges = f.Ranges ?? [];
                return false;
            case "final":
                Volatile.Write(ref final, f);
                if (f.Stats is not null)
                    Volatile.Write(ref lastStats, f.Stats);
                if (f.Ranges is not null)
                    lock (gate)
                        ranges = f.Ranges;
                if (f.Exit == nameof(FaultServerExitReason.Error))
                {
                    Fail(HandlerFailureKind.HandlerError, $"the handler's loop failed: {f.Message}");
                    return true;
                }
                if (f.Exit == nameof(FaultServerExitReason.AllocationFailure))
                {
                    Fail(HandlerFailureKind.AllocationFailure, $"allocation failure in the handler (pid {HandlerPid}): {f.Message}");
                    return true;
                }
                if (f.Exit == HandlerSession.HandlerStoppedExit)
                {
                    Fail(HandlerFailureKind.HandlerStopped, $"the handler (pid {HandlerPid}) stopped serving: {f.Message}");
                    return true;
                }
                state = ExternalHandlerState.Ended;
                completion.TrySetResult(state);
                return true;
            default:
                return false;
        }
    }

    private void Fail(HandlerFailureKind kind, string message)
    {
        if (disposing)
            return;
        var f = new HandlerFailure(kind, message, Environment.TickCount64);
        Volatile.Write(ref failure, f);
        options.Logger?.LogError("external handler failed: {Failure}; action {Action}", f, options.OnFailure);
        // The client must be the only holder of the uffd before it acts: kill what is left of the
        // handler and wait for the process to be gone (its descriptors are closed by then).
        EnsureHandlerGone();
        try
        {
            switch (options.OnFailure)
            {
                case WatchdogAction.Takeover:
                    StartTakeover();
                    state = ExternalHandlerState.TakenOver;
                    break;
                case WatchdogAction.Release:
                    uffd.Dispose();
                    state = ExternalHandlerState.Released;
                    break;
                default:
                    failing = FailingLoop.Start(uffd, options.OwnerPid > 0 ? options.OwnerPid : Environment.ProcessId, [.. Ranges.Select(r => (r.Start, r.Length))]);
                    state = ExternalHandlerState.Failing;
                    break;
            }
        }
        catch (Exception e)
        {
            // Whatever failed, no faulting thread may stay blocked: release as the last resort.
            options.Logger?.LogError(e, "watchdog action {Action} failed; closing the uffd", options.OnFailure);
            uffd.Dispose();
            state = ExternalHandlerState.Released;
        }
        completion.TrySetResult(state);
    }

    private void EnsureHandlerGone()
    {
        if ((Shim.uffd_poll(pidfd.Fd, -1, 0) & (int)PollEvents.Readable) != 0)
            return;
        int r = Shim.uffd_pidfd_send_signal(pidfd.Fd, 9);
        if (r < 0 && r != -Errno.ESRCH)
            options.Logger?.LogWarning("could not SIGKILL the handler {Pid}: {Errno}", HandlerPid, Errno.Name(-r));
        Shim.uffd_poll(pidfd.Fd, -1, 10_000);
    }

    private void StartTakeover()
    {
        var policies = options.TakeoverPolicies!();
        var served = Ranges.Count > 0 ? [.. Ranges.Select(r => r.ToServedRange())] : options.Regions.Select(r => new ServedRange(r.BaseHostVirtAddr, r.Size, r.Offset)).ToList();
        int owner = options.OwnerPid > 0 ? options.OwnerPid : Environment.ProcessId;
        takeover = new FaultServer(uffd, new FaultServerOptions
        {
            Policies = policies,
            Ranges = served,
            OwnerPid = owner != Environment.ProcessId ? owner : null,
            Logger = options.Logger,
            ThreadName = "uffd-takeover",
        });
        takeover.Start();
        // Faults the handler read but never resolved will not be delivered again: wake them, so they
        // re-fault into the new loop (an unresolved waiter re-faults with a new message, §1.4).
        foreach (var r in served)
        {
            var w = new UffdioRange(r.Start, r.Length);
            uffd.TryWake(ref w);
        }
    }

    /// <summary>Asks the handler to stop (it serves what is pending, then sends its final frame) and
    /// waits for that. True when it ended that way.</summary>
    public bool Stop(int timeoutMs = 10_000)
    {
        if (state != ExternalHandlerState.Serving)
            return state == ExternalHandlerState.Ended;
        channel.TrySend(new Frame { Type = "stop" });
        return Completion.Wait(timeoutMs) && state == ExternalHandlerState.Ended;
    }

    public void Dispose()
    {
        disposing = true;
        if (state == ExternalHandlerState.Serving)
            channel.TrySend(new Frame { Type = "stop" });
        if (watchdog.IsAlive && Thread.CurrentThread != watchdog)
            watchdog.Join(5000);
        takeover?.Dispose();
        failing?.Dispose();
        channel.Dispose();
        pidfd.Dispose();
        uffd.Dispose();
        completion.TrySetResult(state);
    }
}
