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
    /// <summary>A connection that sends no handoff within this bound is refused (an idle holder
    /// frees its place).</summary>
    public int HandshakeTimeoutMs { get; init; } = 5_000;
    /// <summary>Every frame to a client must leave within this bound (a client that never reads
    /// cannot hold the handler).</summary>
    public int SendTimeoutMs { get; init; } = 2_000;
    /// <summary>The most regions one handoff may describe.</summary>
    public int MaxRegions { get; init; } = 64;
}

/// <summary>How one handler session ended.</summary>
public sealed record HandlerSessionResult(int ClientPid, FaultServerExitReason Reason, string Message, HandlerStats Stats, bool ClientStopped)
{
    public bool IsError => Reason == FaultServerExitReason.Error;
}

/// <summary>
/// The handler's listening socket (docs/security.md): created 0600 whatever the umask, in a directory
/// only the handler's user (or root) can write, with a lock file beside it (PATH.lock) that says a
/// handler created the socket. <c>--socket</c> never destroys anything: an existing PATH is replaced
/// only when it is a socket, its lock file was there before (a handler made it) and nobody answers on
/// it; anything else (a file, a FIFO, a device, a symlink, a live socket) is an error.
/// </summary>
public sealed class HandlerListener : IDisposable
{
    private readonly SafeFdHandle socket;
    private readonly SafeFdHandle lockFd;
    private readonly (ulong Dev, ulong Ino) identity;

    public string Path { get; }
    public string LockPath => Path + ".lock";
    internal SafeFdHandle Socket => socket;

    private HandlerListener(SafeFdHandle socket, SafeFdHandle lockFd, string path, (ulong, ulong) identity)
    {
        this.socket = socket;
        this.lockFd = lockFd;
        Path = path;
        this.identity = identity;
    }

    private static UffdException Refused(string path, int errno, string what, string fix) => new("listen", errno, $"socket {path}: {what}", fix);

    /// <summary>Binds and listens (see the class remarks for what is refused). Throws
    /// <see cref="UffdException"/> with one line naming the cause and the fix.</summary>
    public static HandlerListener Listen(string path) => Listen(path, 64);

    /// <inheritdoc cref="Listen(string)"/>
    public static unsafe HandlerListener Listen(string path, int backlog)
    {
        path = System.IO.Path.GetFullPath(path);
        if (System.Text.Encoding.UTF8.GetByteCount(path) > 107)
            throw Refused(path, SocketErrno.ENAMETOOLONG, "a Unix socket path has at most 107 bytes", "choose a shorter path");
        var dir = System.IO.Path.GetDirectoryName(path) ?? "/";
        CheckDirectory(dir, path);
        string lockPath = path + ".lock";
        FileInfoNative li;
        bool lockExisted = Shim.uffd_path_info(lockPath, 0, &li) == 0;
        int lfd = Shim.uffd_lock_path(lockPath);
        if (lfd == -Errno.EAGAIN)
            throw Refused(path, Errno.EBUSY, $"a handler is already listening on it (it holds {lockPath})", "stop it or choose another --socket path");
        if (lfd < 0)
            throw Refused(path, -lfd, $"cannot create the lock file {lockPath} ({Errno.Name(-lfd)})", "the socket's directory must be writable by this user");
        var lockHandle = new SafeFdHandle(lfd);
        try
        {
            FileInfoNative pi;
            if (Shim.uffd_path_info(path, 0, &pi) == 0)
            {
                if (pi.Type != FileInfoNative.Socket)
                    throw Refused(path, Errno.EEXIST, $"the path exists and is {pi.TypeName}", "serve never removes what it did not create: remove it yourself or choose another path");
                int probe = Shim.uffd_sock_connect(path);
                if (probe >= 0)
                {
                    Shim.uffd_close(probe);
                    throw Refused(path, SocketErrno.EADDRINUSE, "something is listening on it", "stop it or choose another --socket path");
                }
                if (!lockExisted)
                    throw Refused(path, Errno.EEXIST, "a socket nobody answers, without the lock file a handler leaves beside its socket", "serve removes only sockets it created: remove it yourself or choose another path");
                if (Shim.uffd_unlink(path) is int u && u < 0 && u != -Errno.ENOENT)
                    throw Refused(path, -u, $"cannot remove the stale socket ({Errno.Name(-u)})", "");
            }
            int fd = Shim.uffd_sock_listen_mode(path, backlog, 0x180 /* 0600 */);
            if (fd < 0)
                throw Refused(path, -fd, $"cannot listen ({Errno.Name(-fd)})", fd == -SocketErrno.EADDRINUSE ? "another process created it meanwhile: choose another path" : "");
            var sock = new SafeFdHandle(fd);
            FileInfoNative si;
            Shim.uffd_path_info(path, 0, &si);
            return new HandlerListener(sock, lockHandle, path, (si.Dev, si.Ino));
        }
        catch
        {
            lockHandle.Dispose();
            if (!lockExisted)
                Shim.uffd_unlink(lockPath);
            throw;
        }
    }

    /// <summary>The socket's directory: a directory (not a symlink), owned by root or this user, and
    /// writable by nobody else (no one can replace the socket, or pre-create its path or lock).</summary>
    private static unsafe void CheckDirectory(string dir, string path)
    {
        int d = Shim.uffd_open_dir(dir);
        if (d < 0)
            throw Refused(path, -d, $"the directory {dir} cannot be opened", d == -Errno.ENOENT ? $"create it, writable only by this user (mkdir -m 0700 {dir})" : "the socket's directory must be a directory, not a symlink");
        FileInfoNative info;
        int r = Shim.uffd_fd_info(d, &info);
        Shim.uffd_close(d);
        UffdException.Check(r, "fstat(socket directory)");
        uint euid = Shim.uffd_geteuid();
        if (info.Uid != 0 && info.Uid != euid)
            throw Refused(path, Errno.EPERM, $"the directory {dir} belongs to uid {info.Uid}, not to this user ({euid}) or root", "put the socket in a directory of this user, e.g. /run/uffdnative (0700)");
        if ((info.Mode & 0x12 /* 0022 */) != 0)
            throw Refused(path, Errno.EPERM, $"the directory {dir} is writable by others (mode 0{Convert.ToString(info.Mode & 0xFFF, 8)})", "put the socket in a directory only this user can write, e.g. /run/uffdnative (0700)");
    }

    /// <summary>Waits up to timeoutMs (&lt; 0: forever) for a client; -ETIMEDOUT, the fd, or -errno.</summary>
    internal int AcceptFd(int timeoutMs) => Shim.uffd_sock_accept(socket.Fd, timeoutMs);

    /// <summary>Waits up to timeoutMs (&lt; 0: forever) for a client. Null on timeout. The session
    /// takes its peer from the kernel (SO_PEERCRED); authorization is <see cref="HandlerServer"/>'s.</summary>
    public HandlerSession? Accept(HandlerHostOptions options, int timeoutMs = -1)
    {
        int fd = AcceptFd(timeoutMs);
        if (fd == -Errno.ETIMEDOUT)
            return null;
        UffdException.Check(fd, "accept");
        return new HandlerSession(new FrameChannel(new SafeFdHandle(fd), FrameChannel.MaxClientFrame, options.SendTimeoutMs), options);
    }

    /// <summary>Closes the socket and removes its path and lock file, only if they are still the
    /// ones this listener created.</summary>
    public unsafe void Dispose()
    {
        if (socket.IsClosed)
            return;
        socket.Dispose();
        FileInfoNative si;
        if (Shim.uffd_path_info(Path, 0, &si) == 0 && si.Type == FileInfoNative.Socket && (si.Dev, si.Ino) == identity)
            Shim.uffd_unlink(Path);
        // Unlinked while held: a handler starting now either waits for nothing (a new file) or finds
        // this inode gone (uffd_lock_path checks it is still the file at the path).
        Shim.uffd_unlink(LockPath);
        lockFd.Dispose();
    }
}

/// <summary>
/// One client of a handler: receives the handoff (the uffd and the regions), validates every field
/// and descriptor before adopting anything, serves it, sends a heartbeat with the loop's counters
/// every period and the ranges whenever events changed them, and ends when the client asks (stop),
/// goes away (end of file: the session stops), or the loop ends by itself (the owner exited, or an
/// error): a final frame then says how. Whatever goes wrong ends this session only: every exception is
/// caught here and answered with one error frame.
/// </summary>
public sealed class HandlerSession : IDisposable
{
    private readonly FrameChannel channel;
    private readonly HandlerHostOptions options;
    private readonly ILogger? logger;
    private readonly List<int> fds = [];
    private readonly List<IDisposable> owned = [];
    private FaultServer? server;
    private SafeFdHandle? peerPidfd;
    private volatile bool cancel;

    public int ClientPid { get; private set; }
    public int ClientUid { get; private set; } = -1;
    /// <summary>The process whose memory is served: always the peer itself (its pidfd), never a number
    /// the client claims.</summary>
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

    /// <summary>Ends a running session as if the client had asked to stop (e.g. on SIGTERM): the
    /// client gets a final frame saying the handler stopped, and takes its configured action.</summary>
    public void Cancel() => cancel = true;

    /// <summary>Runs the session to its end on the calling thread. Never throws.</summary>
    public HandlerSessionResult Run(Action<HandlerSession>? started = null)
    {
        try
        {
            return RunCore(started);
        }
        catch (Exception e)
        {
            // The session boundary: whatever the exception, this session ends and the process goes on.
            logger?.LogWarning(e, "session of pid {Pid} failed", ClientPid);
            if (server is null)
                return Refuse(Describe(e));
            StopServer();
            var message = "the handler's session failed: " + Describe(e);
            channel.TrySend(new Frame { Type = "error", Pid = Environment.ProcessId, Message = message });
            return new HandlerSessionResult(ClientPid, FaultServerExitReason.Error, message, new HandlerStats(), false);
        }
    }

    private static string Describe(Exception e) => e is UffdException or ArgumentException ? e.Message : $"{e.GetType().Name}: {e.Message}";

    private void StopServer()
    {
        try
        {
            if (server is { } s && !s.Stop(5_000))
                logger?.LogError("the loop of pid {Pid}'s session did not stop within 5 s", ClientPid);
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private unsafe HandlerSessionResult RunCore(Action<HandlerSession>? started)
    {
        var peer = channel.Peer();
        ClientPid = peer.Pid;
        ClientUid = peer.Uid;
        int pfd = Shim.uffd_sock_peer_pidfd(channel.Socket.Fd);
        if (pfd == -SocketErrno.ENOPROTOOPT)
            pfd = Shim.uffd_pidfd_open(peer.Pid); // before 6.5: the pid as of connect, checked alive below
        if (pfd < 0)
            return Refuse($"the connecting process (pid {peer.Pid}) cannot be identified ({Errno.Name(-pfd)}): it must stay alive for its session");
        peerPidfd = new SafeFdHandle(pfd);
        var st = channel.Receive(options.HandshakeTimeoutMs, out var handoff, out var got);
        fds.AddRange(got);
        if (st != FrameChannel.ReceiveStatus.Frame)
            return Refuse(st == FrameChannel.ReceiveStatus.Timeout ? $"no handoff frame within {options.HandshakeTimeoutMs} ms" : "the connection ended before a handoff frame");
        if (handoff!.Type != "handoff")
            return Refuse($"expected a handoff frame, got '{Truncate(handoff.Type)}'");
        int heartbeat = Setup(handoff);
        if (channel.TrySend(new Frame { Type = "ready", Pid = Environment.ProcessId, Policies = [.. PolicyNames.Select(n => new PolicySpec { Name = n })], Ranges = [.. server!.Ranges.Select(RangeInfo.From)] }) < 0)
        {
            StopServer();
            return new HandlerSessionResult(ClientPid, FaultServerExitReason.Stopped, "the client went away before ready", HandlerStats.From(server.Statistics), true);
        }
        started?.Invoke(this);
        return Serve(heartbeat);
    }

    private static string Truncate(string? s) => s is null ? "" : s.Length <= 40 ? s : s[..40] + "...";

    private HandlerSessionResult Refuse(string message)
    {
        // A refused handoff adopts nothing: every descriptor it carried is closed (Dispose).
        channel.TrySend(new Frame { Type = "error", Pid = Environment.ProcessId, Message = message });
        return new HandlerSessionResult(ClientPid, FaultServerExitReason.Error, "refused: " + message, new HandlerStats(), false);
    }

    private int Setup(Frame h)
    {
        var v = HandoffValidation.Validate(h, fds, ClientPid, options);
        Regions = v.Regions;
        OwnerPid = ClientPid;
        ulong extent = v.Extent;

        var specs = options.Policies ?? h.Policies ?? [];
        if (specs.Count == 0)
            throw new ArgumentException("no policy: the client asked for none and the handler was given none (--policy)");
        if (specs.Count > 8)
            throw new ArgumentException($"{specs.Count} policies (at most 8)");
        bool trusted = options.Policies is not null; // the operator's, not the client's
        var policies = new List<FaultPolicy>();
        foreach (var spec in specs)
        {
            FaultPolicy p = spec.Name switch
            {
                "missing-copy" => new MissingCopy(Own(HandlerSources.Create(spec.Source, fds, extent, trusted))),
                "read-ahead" => new ReadAhead(Own(HandlerSources.Create(spec.Source, fds, extent, trusted)), spec.ReadAhead is > 0 and <= 512 ? spec.ReadAhead : 15),
                "missing-zero" => new MissingZero(),
                "wp-unprotect" => new WpUnprotect(),
                "wp-snapshot" => new ExternalWpSnapshot(Own(new RegionContent(v.Regions, fds, ClientPid, peerPidfd!)),
                    Own(h.SnapshotFd is { } sf ? SnapshotTarget.ForMemfd(fds[sf], extent) : new LocalSnapshotTarget(SharedSnapshotStore.Local(extent)))),
                "minor-continue" => new MinorContinue(),
                _ => throw new ArgumentException($"unknown policy '{Truncate(spec.Name)}' (one of {string.Join(", ", PolicySpec.Names)})"),
            };
            if (options.PolicyDecorator is { } decorate)
                p = decorate(p);
            policies.Add(p);
        }
        PolicyNames = [.. policies.Select(p => p.Name)];

        HandoffValidation.CheckRegistered(v.Regions, ClientPid);
        // Adopt the uffd last: everything above may refuse, and then nothing was adopted.
        int uffdFd = fds[h.UffdFd];
        fds[h.UffdFd] = -1;
        var uffd = Userfaultfd.Adopt(uffdFd, v.UffdFeatures, nonBlocking: true);
        try
        {
            server = new FaultServer(uffd, new FaultServerOptions
            {
                Policies = policies,
                Ranges = [.. v.Regions.Select(r => new ServedRange(r.BaseHostVirtAddr, r.Size, r.Offset))],
                OwnerPid = OwnerPid,
                Logger = logger,
                ThreadName = "uffd-handler",
                RangesChanged = AcknowledgeRanges,
            });
        }
        catch
        {
            uffd.Dispose();
            throw;
        }
        // The loop's pidfd was opened by number: it names the peer only if the peer still lives now.
        if (Shim.uffd_pidfd_exited(peerPidfd!.Fd) != 0)
            throw new ArgumentException($"the connecting process (pid {ClientPid}) exited during the handoff");
        server.Start();
        return h.HeartbeatMs is > 0 and <= 60_000 ? h.HeartbeatMs : options.HeartbeatMs;
    }

    /// <summary>On the loop thread, after a REMAP/REMOVE/UNMAP changed the table and before the next fault
    /// is resolved: the client's takeover starts from this table (it drains every frame before it acts),
    /// so no fault this handler resolved lies outside what the client knows.</summary>
    private void AcknowledgeRanges(IReadOnlyList<ServedRange> table) =>
        channel.TrySend(new Frame { Type = "ranges", Ranges = [.. table.Select(RangeInfo.From)] });

    private T Own<T>(T d) where T : IDisposable
    {
        owned.Add(d);
        return d;
    }

    private HandlerSessionResult Serve(int heartbeatMs)
    {
        var s = server!;
        long seq = 0;
        bool clientStopped = false, clientGone = false, cancelled = false;
        long next = Environment.TickCount64;
        while (!s.Completion.IsCompleted)
        {
            if (cancel)
            {
                cancelled = true;
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
                // The range table is acknowledged by the loop itself (AcknowledgeRanges), never from
                // here: a heartbeat's older table could overtake the loop's newer one.
                next = now + heartbeatMs;
            }
            FrameChannel.ReceiveStatus st;
            Frame? frame;
            int[] extra;
            try
            {
                st = channel.Receive((int)Math.Max(1, Math.Min(heartbeatMs, next - Environment.TickCount64)), out frame, out extra);
            }
            catch (UffdException e)
            {
                // A malformed frame after the handoff: the client broke the protocol; stop serving it.
                s.Stop();
                channel.TrySend(new Frame { Type = "error", Pid = Environment.ProcessId, Message = e.Message });
                return new HandlerSessionResult(ClientPid, FaultServerExitReason.Error, "protocol error: " + e.Message, HandlerStats.From(s.Statistics), true);
            }
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
        s.Completion.Wait(10_000);
        var exit = s.Exit ?? new FaultServerExit(FaultServerExitReason.Error, 0, LoopOperation.None, null, "the loop did not end within 10 s");
        var final = HandlerStats.From(s.Statistics);
        // Stopped by the handler's side (SIGTERM), not by the client: say so, so the client acts.
        string message = cancelled ? "the handler was stopped (SIGTERM) while the client still had registered ranges" : exit.Message;
        if (!clientGone)
            channel.TrySend(new Frame { Type = "final", Pid = Environment.ProcessId, Exit = cancelled ? HandlerStoppedExit : exit.Reason.ToString(), Message = message, Stats = final, Ranges = [.. s.Ranges.Select(RangeInfo.From)] });
        return new HandlerSessionResult(ClientPid, exit.Reason, message, final, clientStopped || clientGone);
    }

    /// <summary>The final frame's exit when the handler stopped the session on its own side.</summary>
    internal const string HandlerStoppedExit = "HandlerStopped";

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
        peerPidfd?.Dispose();
        channel.Dispose();
    }
}
