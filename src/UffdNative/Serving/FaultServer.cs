using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using UffdNative.Interop;
using UffdNative.Memory;
using UffdNative.Messages;
using UffdNative.Uapi;

namespace UffdNative.Serving;

/// <summary>
/// The managed fault-servicing loop: one handler thread serving one uffd with a policy per fault kind.
///
/// Each iteration waits once (a non-blocking read first, then poll over the uffd and a stop eventfd,
/// reading up to <see cref="FaultServerOptions.MaxMessagesPerRead"/> messages into a reused native
/// buffer), applies the events of the read (FORK, REMAP, REMOVE, UNMAP: never dropped), then sorts,
/// de-duplicates and coalesces the faults into runs of contiguous pages of one kind and resolves each
/// run with one policy ioctl that also wakes it. When a run needs several ioctls (partial progress,
/// EEXIST inside it, staged sources) the later ones use DONTWAKE and the run gets one WAKE at the end.
///
/// Errno rules (reference userspace-anchors §A.3): EEXIST → another path resolved the page, wake it
/// anyway; EAGAIN without progress → an event is unread: read it, defer the faults and retry with a
/// bounded poll timeout; ENOENT → the range is gone: wake and drop; ESRCH → the owner exited: stop
/// cleanly; ENOMEM → an allocation failure: retried with backoff, then stop with
/// <see cref="FaultServerExitReason.AllocationFailure"/> (<see cref="ClassifyResolveErrno"/>); read()==0 or POLLHUP → stop. Anything else, a policy exception included, stops the
/// server and closes the uffd, so the kernel wakes every faulting thread and no thread stays blocked.
///
/// The loop allocates nothing per fault: messages, pending faults and statistics live in buffers made
/// at start; statistics are the same struct the native twin loop (native/uffd_loop.c) writes, readable
/// while running through <see cref="Statistics"/>. The loop thread only calls the shim (read, poll,
/// ioctls, native copies); it never touches registered memory (ARCHITECTURE.md rule 2). Never run
/// event-producing calls (fork, mremap, madvise, munmap on registered ranges) on the loop thread.
/// </summary>
public sealed unsafe class FaultServer : IDisposable
{
    private struct Pending
    {
        public ulong Addr;
        public long T0;
        public int Kind;
        public ulong Flags;
    }

    private static readonly ulong PageSize = Mapping.PageSize;
    private static readonly double NsPerTick = 1e9 / Stopwatch.Frequency;
    private static readonly bool TicksAreNs = Stopwatch.Frequency == 1_000_000_000; // Linux: CLOCK_MONOTONIC in ns

    private readonly Userfaultfd uffd;
    private readonly FaultServerOptions options;
    private readonly ILogger logger;
    private readonly FaultPolicy?[] byKind = new FaultPolicy?[3];
    private readonly EventFd stopEvent;
    private readonly SafeFdHandle? pidfd;
    private readonly SafeFdHandle? epoll;
    private readonly int waitFd;
    private readonly int fd;
    private readonly object gate = new();
    private readonly List<FaultServer> children = [];
    private readonly TaskCompletionSource<FaultServerExit> completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private UffdLoopStats* stats;
    private UffdMsg* msgs;
    private Pending[] pending = new Pending[256];
    private int pendingCount;
    private volatile ServedRange[] ranges;
    private volatile bool stopRequested;
    private bool ending;
    private Thread? thread;
    private FaultServerExit? exit;
    private long allocatedBytes = -1;
    private int drainPasses;
    private ServedRange? lastRange;
    private ServedRange[]? lastTable;
    // Dispose safety: the server holds its uffd's handle from construction until the loop has ended
    // (or, never started, until Dispose), so the descriptor number the loop passes to the kernel is
    // always this uffd; statistics and Dispose take statsGate, so a reader never copies freed memory.
    private readonly object statsGate = new();
    private int uffdHeld;
    private volatile bool disposed;
    // Stepped mode (ResolvePending()): the caller's thread drives the server; log records what it does.
    private bool stepped;
    private ResolutionLog? log;

    public FaultServer(Userfaultfd uffd, FaultServerOptions options)
    {
        ArgumentNullException.ThrowIfNull(uffd);
        ArgumentNullException.ThrowIfNull(options);
        if (!uffd.NonBlocking)
            throw new ArgumentException("the uffd must be non-blocking: poll() on a blocking uffd always reports POLLERR (reference §1.5)", nameof(uffd));
        if (options.MaxMessagesPerRead is < 1 or > 1024)
            throw new ArgumentOutOfRangeException(nameof(options), "MaxMessagesPerRead must be 1..1024");
        foreach (var p in options.Policies)
        {
            if (byKind[(int)p.Kind] is not null)
                throw new ArgumentException($"two policies for {p.Kind} faults: {byKind[(int)p.Kind]!.Name} and {p.Name}", nameof(options));
            byKind[(int)p.Kind] = p;
        }
        this.uffd = uffd;
        this.options = options;
        fd = uffd.Lease(); // held until the loop ends: see ReleaseUffd
        uffdHeld = 1;
        logger = options.Logger ?? UffdLogging.LoggerFactory.CreateLogger<FaultServer>();
        ranges = [.. options.Ranges];
        stopEvent = new EventFd();
        waitFd = stopEvent.Fd;
        if (options.OwnerPid is { } pid)
        {
            // Wait on an epoll of (stop eventfd, owner pidfd): one more fd without another wait call.
            pidfd = new SafeFdHandle(UffdException.Check(Shim.uffd_pidfd_open(pid), "pidfd_open", e => ($"process {pid}", "pidfd_open needs Linux 5.3+ and a live process")));
            epoll = new SafeFdHandle(Tmds.Linux.LibC.epoll_create1(Tmds.Linux.LibC.EPOLL_CLOEXEC));
            if (epoll.IsInvalid)
                throw new UffdException("epoll_create1", Marshal.GetLastPInvokeError(), "", "");
            AddToEpoll(stopEvent.Fd);
            AddToEpoll(pidfd.Fd);
            waitFd = epoll.Fd;
        }
        stats = (UffdLoopStats*)NativeMemory.AllocZeroed((nuint)sizeof(UffdLoopStats));
        msgs = (UffdMsg*)NativeMemory.AllocZeroed((nuint)(options.MaxMessagesPerRead * sizeof(UffdMsg)));
        // Whoever disposes the uffd while the loop runs gets what closing it always meant: the loop
        // stops (it holds the handle, so the close itself happens when the loop lets go).
        uffd.OnDisposing(RequestStop);
    }

    private void ReleaseUffd()
    {
        if (Interlocked.Exchange(ref uffdHeld, 0) == 1)
            uffd.Unlease();
    }

    private void RequestStop()
    {
        stopRequested = true;
        try
        {
            if (!stopEvent.Handle.IsClosed)
                stopEvent.Signal();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private T Alive<T>(T value)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        return value;
    }

    private void AddToEpoll(int member)
    {
        var ev = new Tmds.Linux.epoll_event { events = Tmds.Linux.LibC.EPOLLIN };
        ev.data.fd = member;
        if (Tmds.Linux.LibC.epoll_ctl(epoll!.Fd, Tmds.Linux.LibC.EPOLL_CTL_ADD, member, &ev) < 0)
            throw new UffdException("epoll_ctl", Marshal.GetLastPInvokeError(), "", "");
    }

    // Every member but Dispose throws ObjectDisposedException once the server is disposed.
    public Userfaultfd Uffd => Alive(uffd);
    public FaultServerOptions Options => Alive(options);
    public bool IsRunning => Alive(thread) is { IsAlive: true };

    /// <summary>How the server ended, or null while it runs.</summary>
    public FaultServerExit? Exit => Alive(Volatile.Read(ref exit));

    /// <summary>Completes when the loop has ended (with how it ended), whatever the reason.</summary>
    public Task<FaultServerExit> Completion => Alive(completion.Task);

    /// <summary>A copy of the statistics; safe while running and against a concurrent Dispose.</summary>
    public FaultStatistics Statistics
    {
        get
        {
            lock (statsGate)
            {
                ObjectDisposedException.ThrowIf(disposed, this);
                return new FaultStatistics(*stats);
            }
        }
    }

    /// <summary>Page-fault messages read so far (all kinds): a cheap live counter that allocates nothing.</summary>
    public ulong FaultCount
    {
        get
        {
            lock (statsGate)
            {
                ObjectDisposedException.ThrowIf(disposed, this);
                return stats->Faults[0] + stats->Faults[1] + stats->Faults[2];
            }
        }
    }

    /// <summary>Servers started for FORK children (ForkBehavior.Serve).</summary>
    public IReadOnlyList<FaultServer> Children
    {
        get
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            lock (gate)
                return [.. children];
        }
    }

    /// <summary>The served ranges as they are now (after REMAP/UNMAP).</summary>
    public IReadOnlyList<ServedRange> Ranges => Alive(ranges);

    /// <summary>GC.GetAllocatedBytesForCurrentThread of the loop thread after its last batch (with
    /// <see cref="FaultServerOptions.TrackAllocations"/>), else -1. For the tests' allocation check.</summary>
    internal long LoopAllocatedBytes => Interlocked.Read(ref allocatedBytes);

    /// <summary>Adds a served range (any thread, any time).</summary>
    public void Track(ServedRange range)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        lock (gate)
            ranges = [.. ranges, range];
    }

    public void Start()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (thread is not null)
            throw new InvalidOperationException("the server was already started");
        if (stepped)
            throw new InvalidOperationException("the server is driven step by step (ResolvePending was called): it cannot also run its own loop");
        thread = new Thread(Run) { IsBackground = true, Name = options.ThreadName };
        thread.Start();
        if (logger.IsEnabled(LogLevel.Information))
            Log.Started(logger, fd, string.Join(", ", options.Policies.Select(p => p.Name)), ranges.Length, options.Cpu);
    }

    /// <summary>Requests a stop: the loop serves what is pending, then ends (closing the uffd unless
    /// CloseUffdOnStop is false). Waits up to timeoutMs; true when the loop has ended.</summary>
    public bool Stop(int timeoutMs = 10_000)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (stepped)
        {
            EndStepped(FaultServerExitReason.Stopped, 0, LoopOperation.None, null);
            return true;
        }
        RequestStop();
        var t = thread;
        if (t is null || t == Thread.CurrentThread)
            return t is null;
        return t.Join(timeoutMs);
    }

    // ---- stepped mode -------------------------------------------------------------------------------

    /// <summary>
    /// Stepped mode: instead of <see cref="Start"/>, the caller's thread drives the server one step at a
    /// time. Each call reads the messages pending now (never waits), applies the events and resolves the
    /// faults exactly as the running loop does — same policies, coalescing, errno rules and wakes, faults
    /// an earlier call deferred retried first — and returns what it did: one <see cref="Resolution"/> per
    /// message in read order, each fault with every ioctl of its run (range, mode, result) and whether
    /// its thread was woken. For tests, conformance checks and handlers that must log every decision; the
    /// running loop records nothing. An unrecoverable error ends the server as in the loop (the uffd is
    /// closed, <see cref="Exit"/> says why); later calls return nothing. <see cref="Stop"/> ends it.
    /// FORK children (<see cref="ForkBehavior.Serve"/>) are stepped servers too (<see cref="Resolution.ForkChild"/>).
    /// Allocates; not for the hot path.
    /// </summary>
    public IReadOnlyList<Resolution> ResolvePending()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (thread is not null)
            throw new InvalidOperationException("the server runs its own loop (Start was called): ResolvePending is for a server driven step by step");
        ObjectDisposedException.ThrowIf(stats == null, this);
        stepped = true;
        if (ending)
            return [];
        if (stats->State == LoopAbi.StateCreated)
            stats->State = LoopAbi.StateRunning;
        int mask;
        int n = Shim.uffd_loop_wait(fd, waitFd, 0, msgs, options.MaxMessagesPerRead, stats, &mask);
        if (n == 0 && pendingCount == 0 && (mask & LoopAbi.WaitEof) == 0)
            return []; // nothing to do: one read, no allocation
        log ??= new ResolutionLog();
        log.Begin();
        try
        {
            for (int k = 0; k < pendingCount; k++)
            {
                ref var p = ref pending[k];
                log.AddFault(new PageFault(p.Addr, (PageFaultFlags)p.Flags, 0), p.Addr, (FaultKind)p.Kind, retried: true);
            }
            var ctx = new FaultContext(fd, stats, log);
            if (n < 0)
                End(FaultServerExitReason.Error, -n, LoopOperation.Read, null);
            int forks = 0;
            for (int i = 0; i < n; i++)
            {
                ref UffdMsg m = ref msgs[i];
                if (m.Event == (byte)UffdEventKind.PageFault)
                {
                    var f = (PageFault)UffdMessage.FromRaw(m);
                    log.AddFault(f, f.PageAddress(PageSize), f.FaultKind, retried: false);
                }
                else if (m.Event == (byte)UffdEventKind.Fork)
                {
                    forks++;
                    log.AddEvent(UffdEventKind.Fork, null); // the fd is never wrapped here: the child server owns it
                }
                else
                {
                    log.AddEvent((UffdEventKind)m.Event, UffdMessage.FromRaw(m));
                }
            }
            int before = Children.Count;
            bool debug = logger.IsEnabled(LogLevel.Debug);
            if (n > 0)
                Dispatch(n, debug);
            if (forks > 0)
            {
                // Children were added in the order of their FORK messages.
                var all = Children;
                int c = before;
                for (int i = 0; i < log.Results.Count && c < all.Count; i++)
                    if (log.Results[i].Kind == UffdEventKind.Fork)
                        log.Results[i] = log.Results[i] with { ForkChild = all[c++] };
            }
            if (pendingCount > 0 && !ending)
                ResolvePending(in ctx, debug);
            if (n == 0 && (mask & LoopAbi.WaitEof) != 0)
                End(FaultServerExitReason.EndOfFile, 0, LoopOperation.Read, null);
        }
        catch (Exception e)
        {
            End(FaultServerExitReason.Error, e is UffdException u ? u.Errno : 0, LoopOperation.Policy, e);
        }
        var results = log.Complete();
        if (ending)
            Finish(ThreadUsage.Current()); // no loop thread: a stepped server reports no loop CPU
        return results;
    }

    private void EndStepped(FaultServerExitReason reason, int errno, LoopOperation op, Exception? exception)
    {
        if (stats == null || Volatile.Read(ref exit) is not null)
            return;
        End(reason, errno, op, exception);
        Finish(ThreadUsage.Current());
    }

    // ---- the loop ---------------------------------------------------------------------------------

    private void Run()
    {
        var u0 = ThreadUsage.Current();
        try
        {
            if (options.Cpu >= 0)
                UffdException.Check(Shim.uffd_pin_thread(options.Cpu), "sched_setaffinity");
            stats->State = LoopAbi.StateRunning;
            Loop();
        }
        catch (Exception e)
        {
            End(FaultServerExitReason.Error, e is UffdException u ? u.Errno : 0, LoopOperation.Policy, e);
        }
        finally
        {
            Finish(u0);
        }
    }

    // The loop itself has no exception handling of its own: on x64 the JIT does not inline P/Invoke
    // transitions inside try regions, so the hot calls must not be in one (exceptions from a policy
    // propagate to Run, which ends the server).
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private void Loop()
    {
        var ctx = new FaultContext(fd, stats);
        int max = options.MaxMessagesPerRead;
        bool trackAlloc = options.TrackAllocations;
        while (!ending)
        {
            bool stopping = stopRequested;
            int timeout = stopping ? 0 : pendingCount > 0 ? options.RetryPollMs : -1;
            int mask;
            int n = Shim.uffd_loop_wait(fd, waitFd, timeout, msgs, max, stats, &mask);
            if (n < 0)
            {
                End(FaultServerExitReason.Error, -n, LoopOperation.Read, null);
                return;
            }
            bool debug = logger.IsEnabled(LogLevel.Debug); // once per wait: a disabled logger costs one check
            if (n > 0)
                Dispatch(n, debug);
            if (pendingCount > 0 && !ending)
                ResolvePending(in ctx, debug);
            if (ending)
                return;
            if (stopping && (n == 0 || ++drainPasses > options.StopDrainPasses))
            {
                End(FaultServerExitReason.Stopped, 0, LoopOperation.None, null);
                return;
            }
            if ((mask & (int)PollEvents.Stop) != 0 && !stopRequested && OwnerExited())
            {
                End(FaultServerExitReason.OwnerGone, Errno.ESRCH, LoopOperation.Poll, null);
                return;
            }
            if (n == 0 && (mask & ((int)PollEvents.HangUp | LoopAbi.WaitEof)) != 0)
            {
                End(FaultServerExitReason.EndOfFile, 0, LoopOperation.Read, null);
                return;
            }
            if ((mask & (int)PollEvents.Error) != 0)
            {
                End(FaultServerExitReason.Error, Errno.EBADF, LoopOperation.Poll, null);
                return;
            }
            if (trackAlloc)
                Interlocked.Exchange(ref allocatedBytes, GC.GetAllocatedBytesForCurrentThread());
        }
    }

    private bool OwnerExited() => pidfd is not null && (Shim.uffd_poll(pidfd.Fd, -1, 0) & (int)PollEvents.Readable) != 0;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Dispatch(int n, bool debug)
    {
        long t0 = Stopwatch.GetTimestamp();
        bool layout = false;
        for (int i = 0; i < n && !ending; i++)
        {
            ref UffdMsg m = ref msgs[i];
            if (m.Event == (byte)UffdEventKind.PageFault)
            {
                ulong f = m.PagefaultFlags;
                int kind = (f & (ulong)PageFaultFlags.WriteProtect) != 0 ? (int)FaultKind.WriteProtect
                    : (f & (ulong)PageFaultFlags.Minor) != 0 ? (int)FaultKind.Minor : (int)FaultKind.Missing;
                stats->Faults[kind]++;
                if (pendingCount == pending.Length)
                    Array.Resize(ref pending, pending.Length * 2); // bounded by the number of faulting threads
                ref var p = ref pending[pendingCount++];
                p.Addr = m.PagefaultAddress & ~(PageSize - 1);
                p.T0 = t0;
                p.Kind = kind;
                p.Flags = f;
                if (debug)
                    Log.Fault(logger, m.PagefaultAddress, (FaultKind)kind, f, m.PagefaultPtid);
            }
            else
            {
                OnEvent(ref m, debug);
                layout |= m.Event is (byte)UffdEventKind.Remap or (byte)UffdEventKind.Remove or (byte)UffdEventKind.Unmap;
            }
        }
        if (layout && !ending)
            options.RangesChanged?.Invoke(ranges);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void ResolvePending(in FaultContext ctx, bool debug)
    {
        var w = pending;
        int n = pendingCount, keep = 0;
        // Insertion sort by (address, kind): batches are small and usually in order already.
        for (int i = 1; i < n; i++)
        {
            var x = w[i];
            int j = i - 1;
            while (j >= 0 && (w[j].Addr > x.Addr || (w[j].Addr == x.Addr && w[j].Kind > x.Kind)))
            {
                w[j + 1] = w[j];
                j--;
            }
            w[j + 1] = x;
        }
        var table = ranges;
        int idx = 0;
        while (idx < n && !ending)
        {
            ulong start = w[idx].Addr, end = start + PageSize;
            int kind = w[idx].Kind, j = idx + 1;
            var range = lastRange is { } lr && lr.Contains(start) && ReferenceEquals(table, lastTable) ? lr : FindRange(table, start);
            lastRange = range;
            lastTable = table;
            ulong limit = range?.End ?? ulong.MaxValue;
            while (j < n && w[j].Kind == kind && (w[j].Addr == end - PageSize || (w[j].Addr == end && end < limit)))
            {
                if (w[j].Addr == end)
                    end += PageSize;
                j++;
            }
            ulong deferFrom = end;
            log?.BeginRun(start, end, (FaultKind)kind, ending);
            bool resolved = ResolveRun(in ctx, (FaultKind)kind, start, end, range, ref deferFrom, debug);
            log?.EndRun(resolved, deferFrom, ending);
            long t = Stopwatch.GetTimestamp();
            for (int k = idx; k < j; k++)
            {
                if (!resolved && w[k].Addr >= deferFrom)
                    w[keep++] = w[k];
                else
                    LatencyHistogram.Record(&stats->Service, TicksAreNs ? (ulong)(t - w[k].T0) : (ulong)((t - w[k].T0) * NsPerTick));
            }
            if (!resolved && debug)
                Log.Deferred(logger, deferFrom, j - idx);
            idx = j;
        }
        pendingCount = keep;
        if ((ulong)keep > stats->DeferredMax)
            stats->DeferredMax = (ulong)keep;
    }

    private static ServedRange? FindRange(ServedRange[] table, ulong addr)
    {
        for (int i = 0; i < table.Length; i++)
            if (table[i].Contains(addr))
                return table[i];
        return null;
    }

    /// <summary>Resolves [start, end). True when resolved or dropped; false when the rest from
    /// deferFrom on was deferred (EAGAIN without progress).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private bool ResolveRun(in FaultContext ctx, FaultKind kind, ulong start, ulong end, ServedRange? range, ref ulong deferFrom, bool debug)
    {
        var policy = byKind[(int)kind];
        if (policy is null)
        {
            End(FaultServerExitReason.Error, Errno.EINVAL, LoopOperation.NoPolicy, null, $"a {kind} fault at 0x{start:x} and no policy serves {kind} faults");
            return true;
        }
        stats->Runs++;
        ulong pos = start;
        bool dontWake = false, needWake = false;
        int enomem = 0;
        while (pos < end)
        {
            var r = policy.Resolve(in ctx, new FaultRun(pos, end - pos, kind, range), dontWake);
            if (r.Bytes > 0)
            {
                ulong done = Math.Min((ulong)r.Bytes, end - pos); // read-ahead may go past the run
                stats->PagesResolved += (ulong)r.Bytes / PageSize;
                if (r.Ret < 0)
                    stats->Partial++;
                if (dontWake)
                    needWake = true;
                pos += done;
                dontWake = true;
                continue;
            }
            if (r.Ret == 0)
            {
                pos += PageSize; // nothing to do for this page
                dontWake = true;
                continue;
            }
            switch (ClassifyResolveErrno(-r.Ret))
            {
                case ResolveErrnoOutcome.Exists:
                    stats->Eexist++;
                    if (debug)
                        Log.Exists(logger, pos);
                    needWake = true;
                    pos += PageSize;
                    dontWake = true;
                    continue;
                case ResolveErrnoOutcome.RetryAfterEvents:
                    stats->Eagain++;
                    if (needWake && pos > start)
                        Wake(start, pos - start);
                    deferFrom = pos;
                    return false;
                case ResolveErrnoOutcome.RangeGone:
                    stats->Enoent++;
                    if (debug)
                        Log.Gone(logger, start, (end - start) / PageSize);
                    Wake(start, end - start);
                    return true;
                case ResolveErrnoOutcome.OwnerGone:
                    End(FaultServerExitReason.OwnerGone, -r.Ret, LoopOperation.Resolve, null);
                    return true;
                case ResolveErrnoOutcome.AllocationFailure when enomem < LoopAbi.EnomemRetries:
                    Thread.Sleep(1 << enomem++); // 1, 2, 4, 8, 16 ms: reclaim may free a page meanwhile
                    continue;
                case ResolveErrnoOutcome.AllocationFailure:
                    End(FaultServerExitReason.AllocationFailure, -r.Ret, LoopOperation.Resolve, null,
                        $"allocation failure: {policy.Name} at 0x{pos:x} (+{(end - pos) / PageSize} pages, {kind}) got ENOMEM {enomem + 1} times (retried with backoff)");
                    return true;
                default:
                    End(FaultServerExitReason.Error, -r.Ret, LoopOperation.Resolve, null,
                        $"{policy.Name} failed at 0x{pos:x} (+{(end - pos) / PageSize} pages, {kind}): {Errno.Name(-r.Ret)} ({Errno.Describe(-r.Ret)})" +
                        (-r.Ret == Errno.EFAULT && range is null ? " — the fault is outside every served range" : ""));
                    return true;
            }
        }
        if (needWake)
            Wake(start, end - start);
        if (debug)
            Log.RunResolved(logger, start, (end - start) / PageSize, kind);
        return true;
    }

    /// <summary>What a resolution ioctl's errno means to the loop (reference userspace-anchors §A.3).
    /// ENOMEM is an allocation failure — the folio or its memory-cgroup charge in mfill_atomic, or (7.1+) a
    /// shmem fill beyond i_size — never the owner's exit: that is ESRCH (mmget_not_zero failed).</summary>
    internal static ResolveErrnoOutcome ClassifyResolveErrno(int errno) => errno switch
    {
        Errno.EEXIST => ResolveErrnoOutcome.Exists,
        Errno.EAGAIN => ResolveErrnoOutcome.RetryAfterEvents,
        Errno.ENOENT => ResolveErrnoOutcome.RangeGone,
        Errno.ESRCH => ResolveErrnoOutcome.OwnerGone,
        Errno.ENOMEM => ResolveErrnoOutcome.AllocationFailure,
        _ => ResolveErrnoOutcome.Error,
    };

    internal enum ResolveErrnoOutcome
    {
        /// <summary>EEXIST: another path resolved the page; wake it anyway.</summary>
        Exists,
        /// <summary>EAGAIN: an event is unread; read it and retry.</summary>
        RetryAfterEvents,
        /// <summary>ENOENT: the range is gone; wake and drop.</summary>
        RangeGone,
        /// <summary>ESRCH: the owner's mm is gone.</summary>
        OwnerGone,
        /// <summary>ENOMEM: retried with backoff, then the server ends.</summary>
        AllocationFailure,
        Error,
    }

    private void Wake(ulong start, ulong len)
    {
        var w = new UffdioRange(start, len);
        stats->WakeIoctls++;
        int r = Shim.uffd_wake(fd, &w);
        log?.AddWake(start, len, r);
        if (KernelLog.Enabled)
            KernelLog.Range("UFFDIO_WAKE", fd, w, r);
        if (r < 0)
            End(FaultServerExitReason.Error, -r, LoopOperation.Wake, null);
    }

    // ---- events -----------------------------------------------------------------------------------

    private void OnEvent(ref UffdMsg m, bool debug)
    {
        switch ((UffdEventKind)m.Event)
        {
            case UffdEventKind.Fork:
                stats->Events[(int)ServerEvent.Fork]++;
                OnFork((int)m.ForkUfd);
                break;
            case UffdEventKind.Remap:
                stats->Events[(int)ServerEvent.Remap]++;
                if (debug)
                    Log.Remap(logger, m.RemapFrom, m.RemapTo, m.RemapLen);
                Remap(m.RemapFrom, m.RemapTo, m.RemapLen);
                break;
            case UffdEventKind.Remove:
                stats->Events[(int)ServerEvent.Remove]++;
                if (debug)
                    Log.Remove(logger, m.RemoveStart, m.RemoveEnd);
                MarkRemoved(m.RemoveStart, m.RemoveEnd);
                break;
            case UffdEventKind.Unmap:
                stats->Events[(int)ServerEvent.Unmap]++;
                if (debug)
                    Log.Unmap(logger, m.RemoveStart, m.RemoveEnd);
                Forget(m.RemoveStart, m.RemoveEnd);
                break;
            default:
                End(FaultServerExitReason.Error, Errno.EPROTO, LoopOperation.Event, null, $"unknown uffd message event 0x{m.Event:x}");
                break;
        }
    }

    private void OnFork(int childFd)
    {
        if (logger.IsEnabled(LogLevel.Information))
            Log.Fork(logger, childFd, options.OnFork);
        if (options.OnFork == ForkBehavior.Close || stopRequested)
        {
            Shim.uffd_close(childFd);
            return;
        }
        var childUffd = Userfaultfd.Adopt(childFd, uffd.Features);
        try
        {
            var child = new FaultServer(childUffd, options with
            {
                Policies = [.. options.Policies.Select(p => p.ForForkChild())],
                Ranges = [.. ranges.Select(r => r.Slice(0, r.Length, r.Start))],
                OwnerPid = null,
                ThreadName = options.ThreadName + "/child",
                TrackAllocations = false,
            });
            lock (gate)
                children.Add(child);
            if (!stepped)
                child.Start(); // a stepped server's children are stepped by its caller (Resolution.ForkChild)
        }
        catch
        {
            childUffd.Dispose();
            throw;
        }
    }

    private void Remap(ulong from, ulong to, ulong len) => Cut(from, from + len, to);

    private void Forget(ulong start, ulong end) => Cut(start, end, null);

    /// <summary>Splits the served ranges at [start, end): what lies outside stays; what lies inside moves to
    /// <paramref name="to"/> (REMAP) or, with none, is no longer served (UNMAP).</summary>
    private void Cut(ulong start, ulong end, ulong? to)
    {
        lock (gate)
        {
            var list = new List<ServedRange>();
            foreach (var r in ranges)
            {
                ulong s = Math.Max(r.Start, start), e = Math.Min(r.End, end);
                if (s >= e)
                {
                    list.Add(r);
                    continue;
                }
                if (r.Start < s)
                    list.Add(r.Slice(0, s - r.Start, r.Start));
                if (to is { } dest)
                    list.Add(r.Slice(s - r.Start, e - s, dest + (s - start)));
                if (e < r.End)
                    list.Add(r.Slice(e - r.Start, r.End - e, e));
            }
            ranges = [.. list];
        }
    }

    private void MarkRemoved(ulong start, ulong end)
    {
        foreach (var r in ranges)
        {
            ulong s = Math.Max(r.Start, start & ~(PageSize - 1)), e = Math.Min(r.End, end);
            for (ulong a = s; a < e; a += PageSize)
                r.SetRemoved(r.PageIndex(a), true);
        }
    }

    // ---- ending -----------------------------------------------------------------------------------

    private void End(FaultServerExitReason reason, int errno, LoopOperation op, Exception? exception, string? message = null)
    {
        if (ending)
            return;
        ending = true;
        stats->ExitReason = (int)reason;
        stats->Error = errno;
        stats->ErrorOp = (int)op;
        message ??= reason switch
        {
            FaultServerExitReason.Stopped => "stopped on request",
            FaultServerExitReason.OwnerGone => $"the process owning the memory exited ({(op == LoopOperation.Poll ? "its pidfd" : Errno.Name(errno) + " from an ioctl")})",
            FaultServerExitReason.EndOfFile => "end of file on the uffd (read returned 0 or POLLHUP)",
            FaultServerExitReason.AllocationFailure => $"allocation failure ({Errno.Name(errno)} from an ioctl)",
            _ when exception is not null => $"the policy threw {exception.GetType().Name}: {exception.Message}",
            _ => $"{op} failed: {Errno.Name(errno)} ({Errno.Describe(errno)})",
        };
        Volatile.Write(ref exit, new FaultServerExit(reason, errno, op, exception, message));
    }

    private void Finish(ThreadUsage u0)
    {
        if (!ending)
            End(FaultServerExitReason.Error, 0, LoopOperation.None, null, "the loop ended unexpectedly");
        var x = exit!;
        // Every ending but a clean requested stop closes the uffd: the kernel then wakes every thread
        // still blocked on it and they resolve normally (reference §1.5 close()).
        bool close = options.CloseUffdOnStop || x.Reason != FaultServerExitReason.Stopped || pendingCount > 0;
        if (close)
            uffd.Dispose();
        ReleaseUffd(); // the last hold: a close requested by anyone happens now
        List<FaultServer> kids;
        lock (gate)
            kids = [.. children];
        foreach (var c in kids)
            if (!c.disposed) // a child its owner disposed already has ended (and Stop would throw)
                c.Stop();
        var u1 = ThreadUsage.Current();
        var d = u1 - u0;
        stats->LoopUtimeNs = d.UtimeNs;
        stats->LoopStimeNs = d.StimeNs;
        stats->LoopVcsw = d.Vcsw;
        stats->LoopIvcsw = d.Ivcsw;
        Volatile.Write(ref stats->State, LoopAbi.StateExited);
        if (x.IsError)
            Log.Failed(logger, x.Exception, fd, x.Message);
        else if (logger.IsEnabled(LogLevel.Information))
            Log.Ended(logger, fd, x.Message);
        completion.TrySetResult(x);
    }

    public void Dispose()
    {
        if (disposed)
            return;
        if (stepped)
            Stop();
        if (thread is not null && !Stop())
        {
            disposed = true; // still running: keep its buffers alive rather than free them under it
            return;
        }
        List<FaultServer> kids;
        lock (gate)
            kids = [.. children];
        foreach (var c in kids)
            c.Dispose();
        ReleaseUffd(); // never started: the hold taken at construction
        lock (statsGate)
        {
            disposed = true;
            if (stats != null)
            {
                NativeMemory.Free(stats);
                stats = null;
            }
        }
        stopEvent.Dispose();
        epoll?.Dispose();
        pidfd?.Dispose();
        if (msgs != null)
        {
            NativeMemory.Free(msgs);
            msgs = null;
        }
    }
}
