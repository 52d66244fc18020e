using Microsoft.Extensions.Logging;
using UffdNative.Interop;

namespace UffdNative.Serving.External;

/// <summary>What `uffdnative serve` (or any host of <see cref="HandlerServer"/>) is configured with.</summary>
public sealed record HandlerServerOptions
{
    /// <summary>The socket path (see <see cref="HandlerListener"/> for what is refused there).</summary>
    public required string SocketPath { get; init; }
    public HandlerHostOptions Host { get; init; } = new();
    /// <summary>End after this many sessions were served (a handoff accepted); 0: until stopped.
    /// Refused and idle connections do not count.</summary>
    public int Sessions { get; init; } = 1;
    /// <summary>The most connections at once (each a session thread while it lasts); more are
    /// refused with an error frame.</summary>
    public int MaxClients { get; init; } = 16;
    /// <summary>Besides the handler's own uid and root, peers of this primary gid may connect.</summary>
    public int? AllowedGid { get; init; }
    /// <summary>Stop when this process ends (the parent that started the handler), watched through
    /// its pidfd; 0: no watch.</summary>
    public int ParentPid { get; init; }
    /// <summary>How long a stop waits for the sessions to end before it returns anyway.</summary>
    public int StopTimeoutMs { get; init; } = 5_000;
    /// <summary>One line per event (listening, session start and end, refusals).</summary>
    public Action<string>? Output { get; init; }
}

/// <summary>
/// The multi-session external handler (`uffdnative serve` is a thin wrapper): listens, authenticates
/// every connection (SO_PEERCRED: the handler's uid, root, or <see cref="HandlerServerOptions.AllowedGid"/>),
/// bounds the connections at once, runs each session on a thread of its own, and stops within
/// <see cref="HandlerServerOptions.StopTimeoutMs"/> when asked (SIGTERM), when its parent ends, or
/// after the sessions it was told to serve. One session's failure ends that session only.
/// </summary>
public sealed class HandlerServer : IDisposable
{
    private readonly HandlerListener listener;
    private readonly HandlerServerOptions options;
    private readonly List<(Thread Thread, HandlerSession Session)> running = [];
    private readonly List<HandlerSessionResult> results = [];
    private readonly SafeFdHandle? parent;
    private int active, served, refused;

    public string SocketPath => listener.Path;
    /// <summary>Connections being served or handshaking now.</summary>
    public int ActiveConnections => Volatile.Read(ref active);
    /// <summary>Connections refused so far (unauthorized, over the limit, or a refused handoff).</summary>
    public int Refused => Volatile.Read(ref refused);

    public IReadOnlyList<HandlerSessionResult> Results
    {
        get
        {
            lock (results)
                return [.. results];
        }
    }

    private HandlerServer(HandlerListener listener, HandlerServerOptions options, SafeFdHandle? parent)
    {
        this.listener = listener;
        this.options = options;
        this.parent = parent;
    }

    /// <summary>Checks the options and starts listening. Throws <see cref="UffdException"/> (one line:
    /// cause and fix) when the socket path is refused, <see cref="ArgumentException"/> for bad options.</summary>
    public static HandlerServer Listen(HandlerServerOptions options)
    {
        if (options.MaxClients < 1)
            throw new ArgumentException($"MaxClients {options.MaxClients}: at least 1");
        if (options.Sessions < 0)
            throw new ArgumentException($"Sessions {options.Sessions}: 0 (no limit) or more");
        SafeFdHandle? parent = null;
        if (options.ParentPid > 0)
            parent = new SafeFdHandle(UffdException.Check(Shim.uffd_parent_pidfd(options.ParentPid), "pidfd_open(parent)", e => ($"parent {options.ParentPid}", "the parent is gone or is not this process's parent")));
        try
        {
            return new HandlerServer(HandlerListener.Listen(options.SocketPath), options, parent);
        }
        catch
        {
            parent?.Dispose();
            throw;
        }
    }

    private readonly ILogger logger = UffdLogging.LoggerFactory.CreateLogger<HandlerServer>();

    private void Say(string line)
    {
        logger.LogDebug("handler server: {Line}", line);
        options.Output?.Invoke(line);
    }

    /// <summary>Serves until cancelled, the parent ends, or the configured sessions were served; then
    /// stops every session (bounded) and returns the results.</summary>
    public IReadOnlyList<HandlerSessionResult> Run(CancellationToken cancel)
    {
        Say($"listening on {listener.Path}");
        while (!cancel.IsCancellationRequested && (options.Sessions == 0 || Volatile.Read(ref served) < options.Sessions || ActiveConnections > 0))
        {
            if (parent is not null && Shim.uffd_pidfd_exited(parent.Fd) != 0)
            {
                Say("the parent process ended: stopping");
                break;
            }
            if (options.Sessions > 0 && Volatile.Read(ref served) >= options.Sessions)
            {
                // Served what it was told to: wait for those sessions to end, take no more.
                Thread.Sleep(50);
                Reap();
                continue;
            }
            int fd = listener.AcceptFd(200);
            if (fd == -Errno.ETIMEDOUT || fd == -Errno.EINTR || fd == -Errno.EAGAIN)
            {
                Reap();
                continue;
            }
            if (fd < 0)
            {
                // EMFILE/ENFILE/ENOMEM: no descriptor for this one now; the next accept may succeed.
                Say($"accept failed: {Errno.Name(-fd)}");
                Thread.Sleep(100);
                continue;
            }
            Admit(new SafeFdHandle(fd));
            Reap();
        }
        StopAll();
        lock (results)
            return [.. results];
    }

    private unsafe void Admit(SafeFdHandle sock)
    {
        var channel = new FrameChannel(sock, FrameChannel.MaxClientFrame, options.Host.SendTimeoutMs);
        PeerCredentials peer;
        try
        {
            peer = channel.Peer();
        }
        catch (UffdException e)
        {
            channel.Dispose();
            Say($"refused a connection: {e.Message}");
            Interlocked.Increment(ref refused);
            return;
        }
        uint me = Shim.uffd_geteuid();
        bool allowed = peer.Uid == 0 || peer.Uid == me || (options.AllowedGid is { } g && peer.Gid == g);
        string? why = !allowed ? $"uid {peer.Uid} (gid {peer.Gid}) may not use this handler: only uid {me}, root{(options.AllowedGid is { } ag ? $" or gid {ag}" : "")}"
            : ActiveConnections >= options.MaxClients ? $"busy: {options.MaxClients} connections already (the handler's limit); retry later" : null;
        if (why is not null)
        {
            // A refusal is one bounded frame; the connection's descriptors (SCM_RIGHTS) are never read.
            channel.TrySend(new Frame { Type = "error", Pid = Environment.ProcessId, Message = why });
            channel.Dispose();
            Interlocked.Increment(ref refused);
            Say($"refused pid {peer.Pid}: {why}");
            return;
        }
        var session = new HandlerSession(channel, options.Host);
        Interlocked.Increment(ref active);
        var t = new Thread(() => RunSession(session)) { IsBackground = true, Name = "handler-session" };
        lock (running)
            running.Add((t, session));
        t.Start();
    }

    private void RunSession(HandlerSession session)
    {
        try
        {
            var r = session.Run(s =>
            {
                Interlocked.Increment(ref served);
                Say($"session {s.ClientPid}: owner {s.OwnerPid}, {s.Regions.Count} regions ({s.Regions.Sum(x => (long)x.Size) >> 20} MiB), policies {string.Join(", ", s.PolicyNames)}");
            });
            if (r.Message.StartsWith("refused: ", StringComparison.Ordinal))
                Interlocked.Increment(ref refused);
            lock (results)
                results.Add(r);
            Say($"session {r.ClientPid} ended: {r.Reason} — {r.Message}; {r.Stats}");
        }
        finally
        {
            session.Dispose();
            Interlocked.Decrement(ref active);
        }
    }

    private void Reap()
    {
        lock (running)
            running.RemoveAll(x => !x.Thread.IsAlive);
    }

    private void StopAll()
    {
        List<(Thread Thread, HandlerSession Session)> all;
        lock (running)
            all = [.. running];
        foreach (var (_, s) in all)
            s.Cancel();
        long deadline = Environment.TickCount64 + options.StopTimeoutMs;
        foreach (var (t, _) in all)
            if (!t.Join((int)Math.Max(0, deadline - Environment.TickCount64)))
                Say($"a session did not end within {options.StopTimeoutMs} ms of the stop; leaving it to the process exit");
    }

    public void Dispose()
    {
        StopAll();
        listener.Dispose();
        parent?.Dispose();
    }
}
