using Microsoft.Extensions.Logging;
using UffdNative.Interop;
using UffdNative.Memory;
using UffdNative.Serving.Policies;

namespace UffdNative.Serving.External;

/// <summary>What the handler process was told on its own command line.</summary>
public sealed record HandlerHostOptions
{
    /// <summary>Policies that replace the ones the client asked for (null: serve what the client asked).</summary>
    public IReadOnlyList<PolicySpec>? Policies { get; init; }
    /// <summary>Wraps every policy the handler builds for a session (instrumentation, tracing, or the
    /// harness's injected delays and failures); null: the policies as they are.</summary>
    public Func<FaultPolicy, FaultPolicy>? PolicyDecorator { get; init; }
    /// <summary>Heartbeat period when the client does not ask for one.</summary>
    public int HeartbeatMs { get; init; } = 50;
    public ILogger? Logger { get; init; }
}

/// <summary>How one handler session ended.</summary>
public sealed record HandlerSessionResult(int ClientPid, FaultServerExitReason Reason, string Message, HandlerStats Stats, bool ClientStopped)
{
    public bool IsError => Reason == FaultServerExitReason.Error;
}

/// <summary>
/// The handler side of the external-handler protocol: listens on a Unix socket path, accepts clients,
/// and serves each one's uffd with a <see cref="FaultServer"/> (`uffdnative serve` is a thin wrapper).
/// </summary>
public sealed class HandlerListener : IDisposable
{
    private readonly SafeFdHandle socket;

    public string Path { get; }

    private HandlerListener(SafeFdHandle socket, string path)
    {
        this.socket = socket;
        Path = path;
    }

    /// <summary>Binds and listens. A stale socket file (nobody listening) is replaced; a live one is
    /// an error.</summary>
    public static HandlerListener Listen(string path)
    {
        int fd = Shim.uffd_sock_listen(path, 16);
        if (fd == -SocketErrno.EADDRINUSE)
        {
            int probe = Shim.uffd_sock_connect(path);
            if (probe >= 0)
            {
                Shim.uffd_close(probe);
                throw new UffdException("bind", SocketErrno.EADDRINUSE, $"a handler is already listening on {path}", "use another --socket path");
            }
            File.Delete(path);
            fd = Shim.uffd_sock_listen(path, 16);
        }
        UffdException.Check(fd, "listen", e => ($"socket {path}", e == SocketErrno.ENAMETOOLONG ? "a Unix socket path has at most 107 bytes" : ""));
        return new HandlerListener(new SafeFdHandle(fd), path);
    }

    /// <summary>Waits up to timeoutMs (&lt; 0: forever) for a client. Null on timeout.</summary>
    public HandlerSession? Accept(HandlerHostOptions options, int timeoutMs = -1)
    {
        int fd = Shim.uffd_sock_accept(socket.Fd, timeoutMs);
        if (fd == -Errno.ETIMEDOUT)
            return null;
        UffdException.Check(fd, "accept");
        return new HandlerSession(new FrameChannel(new SafeFdHandle(fd)), options);
    }

    public void Dispose()
    {
        socket.Dispose();
        try
        {
            File.Delete(Path);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>
/// One client of a handler: receives the handoff (the uffd and the regions), serves it, sends a
/// heartbeat with the loop's counters every period and the ranges whenever events changed them, and
/// ends when the client asks (stop), goes away (end of file: the session stops), or the loop ends by
/// itself (the owner exited, or an error): a final frame then says how.
/// </summary>
public sealed class HandlerSession : IDisposable
{
    private readonly FrameChannel channel;
    private readonly HandlerHostOptions options;
    private readonly ILogger? logger;
    private readonly List<int> fds = [];
    private readonly List<IDisposable> owned = [];
    private FaultServer? server;
    private volatile bool cancel;

    public int ClientPid { get; private set; }
    public int OwnerPid { get; private set; }
    public IReadOnlyList<HandoffRegion> Regions { get; private set; } = [];
    public IReadOnlyList<string> PolicyNames { get; private set; } = [];
    public FaultServer? Server => server;

    internal HandlerSession(FrameChannel channel, HandlerHostOptions options)
    {
        this.channel = channel;
        this.options = options;
        logger = options.Logger;
    }

    /// <summary>Ends a running session as if the client had asked to stop (e.g. on SIGTERM).</summary>
    public void Cancel() => cancel = true;

    /// <summary>Runs the session to its end on the calling thread.</summary>
    public HandlerSessionResult Run(Action<HandlerSession>? started = null)
    {
        var peer = channel.Peer();
        ClientPid = peer.Pid;
        Frame? handoff;
        int[] got;
        var st = channel.Receive(10_000, out handoff, out got);
        fds.AddRange(got);
        if (st != FrameChannel.ReceiveStatus.Frame || handoff!.Type != "handoff")
            return Refuse(st == FrameChannel.ReceiveStatus.Frame ? $"expected a handoff frame, got '{handoff!.Type}'" : $"no handoff frame ({st})");
        int heartbeat;
        try
        {
            heartbeat = Setup(handoff);
        }
        catch (Exception e) when (e is UffdException or ArgumentException or InvalidOperationException)
        {
            return Refuse(e.Message);
        }
        channel.Send(new Frame { Type = "ready", Pid = Environment.ProcessId, Policies = [.. PolicyNames.Select(n => new PolicySpec { Name = n })], Ranges = [.. server!.Ranges.Select(RangeInfo.From)] });
        started?.Invoke(this);
        return Serve(heartbeat);
    }

    private HandlerSessionResult Refuse(string message)
    {
        channel.TrySend(new Frame { Type = "error", Pid = Environment.ProcessId, Message = message });
        return new HandlerSessionResult(ClientPid, FaultServerExitReason.Error, "refused: " + message, new HandlerStats(), false);
    }

    private int Setup(Frame h)
    {
        if (h.Version != Frame.ProtocolVersion)
            throw new ArgumentException($"protocol version {h.Version}; this handler speaks {Frame.ProtocolVersion}");
        if (h.UffdFd < 0 || h.UffdFd >= fds.Count)
            throw new ArgumentException($"the handoff names descriptor {h.UffdFd} as the uffd but carried {fds.Count}");
        var regions = h.Regions ?? [];
        if (regions.Count == 0)
            throw new ArgumentException("the handoff describes no region");
        foreach (var r in regions)
        {
            if (r.PageSize != Mapping.PageSize || r.Size == 0 || r.Size % r.PageSize != 0 || r.BaseHostVirtAddr % r.PageSize != 0)
                throw new ArgumentException($"region 0x{r.BaseHostVirtAddr:x} size {r.Size} page {r.PageSize}: must be non-empty and aligned to {Mapping.PageSize}");
            if (r.Memfd is { } m && (m < 0 || m >= fds.Count))
                throw new ArgumentException($"region 0x{r.BaseHostVirtAddr:x} names memfd #{m}, not among the {fds.Count} descriptors");
        }
        var sorted = regions.OrderBy(r => r.Offset).ToList();
        for (int i = 1; i < sorted.Count; i++)
            if (sorted[i].Offset < sorted[i - 1].Offset + sorted[i - 1].Size)
                throw new ArgumentException($"regions overlap in the source space (offsets 0x{sorted[i - 1].Offset:x} and 0x{sorted[i].Offset:x})");
        Regions = regions;
        OwnerPid = h.OwnerPid > 0 ? h.OwnerPid : ClientPid;
        ulong extent = regions.Max(r => r.Offset + r.Size);

        int uffdFd = fds[h.UffdFd];
        fds[h.UffdFd] = -1; // the Userfaultfd owns it now
        var uffd = Userfaultfd.Adopt(uffdFd, (UffdFeatures)h.Features, nonBlocking: true);
        EnsureNonBlocking(uffdFd);

        var specs = options.Policies ?? h.Policies ?? [];
        if (specs.Count == 0)
            throw new ArgumentException("no policy: the client asked for none and the handler was given none (--policy)");
        var policies = new List<FaultPolicy>();
        foreach (var spec in specs)
        {
            FaultPolicy p = spec.Name switch
            {
                "missing-copy" => new MissingCopy(Own(HandlerSources.Create(spec.Source, fds, extent))),
                "read-ahead" => new ReadAhead(Own(HandlerSources.Create(spec.Source, fds, extent)), spec.ReadAhead > 0 ? spec.ReadAhead : 15),
                "missing-zero" => new MissingZero(),
                "wp-unprotect" => new WpUnprotect(),
                "wp-snapshot" => new ExternalWpSnapshot(Own(new RegionContent(regions, fds, OwnerPid)),
                    Own(h.SnapshotFd is { } sf ? SharedSnapshotStore.Map(fds[sf], extent) : SharedSnapshotStore.Local(extent))),
                "minor-continue" => new MinorContinue(),
                _ => throw new ArgumentException($"unknown policy '{spec.Name}' (one of {string.Join(", ", PolicySpec.Names)})"),
            };
            if (options.PolicyDecorator is { } decorate)
                p = decorate(p);
            policies.Add(p);
        }
        PolicyNames = [.. policies.Select(p => p.Name)];
        server = new FaultServer(uffd, new FaultServerOptions
        {
            Policies = policies,
            Ranges = [.. regions.Select(r => new ServedRange(r.BaseHostVirtAddr, r.Size, r.Offset))],
            OwnerPid = OwnerPid,
            Logger = logger,
            ThreadName = "uffd-handler",
        });
        server.Start();
        return h.HeartbeatMs > 0 ? h.HeartbeatMs : options.HeartbeatMs;
    }

    private static unsafe void EnsureNonBlocking(int fd)
    {
        int fl = Tmds.Linux.LibC.fcntl(fd, Tmds.Linux.LibC.F_GETFL);
        if (fl >= 0 && (fl & Tmds.Linux.LibC.O_NONBLOCK) == 0)
            Tmds.Linux.LibC.fcntl(fd, Tmds.Linux.LibC.F_SETFL, fl | Tmds.Linux.LibC.O_NONBLOCK);
    }

    private T Own<T>(T d) where T : IDisposable
    {
        owned.Add(d);
        return d;
    }

    private HandlerSessionResult Serve(int heartbeatMs)
    {
        var s = server!;
        long seq = 0;
        ServedRange[]? sentRanges = null;
        ulong sentRemoves = 0;
        bool clientStopped = false, clientGone = false;
        long next = Environment.TickCount64;
        while (!s.Completion.IsCompleted)
        {
            if (cancel)
            {
                clientStopped = true;
                s.Stop();
                break;
            }
            long now = Environment.TickCount64;
            if (now >= next)
            {
                var stats = s.Statistics;
                if (channel.TrySend(new Frame { Type = "heartbeat", Seq = ++seq, Stats = HandlerStats.From(stats) }) < 0)
                {
                    clientGone = true;
                    s.Stop();
                    break;
                }
                var table = (ServedRange[])s.Ranges;
                if (!ReferenceEquals(table, sentRanges) || stats.RemoveEvents != sentRemoves)
                {
                    if (sentRanges is not null || stats.RemoveEvents != 0)
                        channel.TrySend(new Frame { Type = "ranges", Seq = seq, Ranges = [.. table.Select(RangeInfo.From)] });
                    sentRanges = table;
                    sentRemoves = stats.RemoveEvents;
                }
                next = now + heartbeatMs;
            }
            var st = channel.Receive((int)Math.Max(1, Math.Min(heartbeatMs, next - Environment.TickCount64)), out var frame, out var extra);
            foreach (var fd in extra)
                Shim.uffd_close(fd);
            if (st == FrameChannel.ReceiveStatus.EndOfFile)
            {
                // The client went away without a stop: serve what is pending and end.
                clientGone = true;
                s.Stop();
                break;
            }
            if (st == FrameChannel.ReceiveStatus.Frame && frame!.Type == "stop")
            {
                clientStopped = true;
                s.Stop();
                break;
            }
        }
        s.Completion.Wait(30_000);
        var exit = s.Exit!;
        var final = HandlerStats.From(s.Statistics);
        if (!clientGone)
            channel.TrySend(new Frame { Type = "final", Pid = Environment.ProcessId, Exit = exit.Reason.ToString(), Message = exit.Message, Stats = final, Ranges = [.. s.Ranges.Select(RangeInfo.From)] });
        return new HandlerSessionResult(ClientPid, exit.Reason, exit.Message, final, clientStopped || clientGone);
    }

    public void Dispose()
    {
        server?.Dispose();
        foreach (var d in owned)
            d.Dispose();
        owned.Clear();
        foreach (var fd in fds)
            if (fd >= 0)
                Shim.uffd_close(fd);
        fds.Clear();
        channel.Dispose();
    }
}
