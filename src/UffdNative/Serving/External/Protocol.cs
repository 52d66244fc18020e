using System.Buffers.Binary;
using System.Text.Json;
using System.Text.Json.Serialization;
using UffdNative.Interop;

namespace UffdNative.Serving.External;

/// <summary>
/// One region of the client's memory the handler serves, in Firecracker's shape
/// (<c>GuestRegionUffdMapping{base_host_virt_addr, size, offset, page_size}</c>) plus what a handler
/// of any policy needs: the memory type, the registration modes (the client registered them) and,
/// for shmem, which of the frame's descriptors is the memfd and at which file offset the region maps.
/// <see cref="Offset"/> is the region's place in the source and snapshot spaces: regions must not
/// overlap there.
/// </summary>
public sealed record HandoffRegion
{
    public ulong BaseHostVirtAddr { get; init; }
    public ulong Size { get; init; }
    public ulong Offset { get; init; }
    public ulong PageSize { get; init; } = 4096;
    /// <summary>"anon" or "shmem".</summary>
    public string Memory { get; init; } = "anon";
    /// <summary>Any of "missing", "wp", "minor".</summary>
    public List<string> Modes { get; init; } = [];
    /// <summary>Index of the region's memfd among the frame's descriptors (shmem), or null.</summary>
    public int? Memfd { get; init; }
    /// <summary>File offset of the memfd at which the region is mapped (default: 0).</summary>
    public ulong MemfdOffset { get; init; }

    public bool Has(string mode) => Modes.Contains(mode, StringComparer.Ordinal);
    public ulong End => BaseHostVirtAddr + Size;
}

/// <summary>Where MISSING content comes from, in the handler: "zero" (the pattern of nothing),
/// "pattern" (the shim's pattern of <see cref="Seed"/>, word index = source offset / 8), "fd" (a
/// descriptor of the frame read with pread at the source offset), or "file" (a path on the handler's
/// side).</summary>
public sealed record SourceSpec
{
    public string Kind { get; init; } = "zero";
    public ulong Seed { get; init; }
    public int? Fd { get; init; }
    public string? Path { get; init; }

    public override string ToString() => Kind switch
    {
        "pattern" => $"pattern:{Seed}",
        "file" => $"file:{Path}",
        "fd" => $"fd:{Fd}",
        _ => Kind,
    };
}

/// <summary>A policy by name: missing-copy, missing-zero, read-ahead, wp-unprotect, wp-snapshot,
/// minor-continue.</summary>
public sealed record PolicySpec
{
    public string Name { get; init; } = "";
    public SourceSpec? Source { get; init; }
    public int ReadAhead { get; init; }

    public static readonly IReadOnlyList<string> Names = ["missing-copy", "missing-zero", "read-ahead", "wp-unprotect", "wp-snapshot", "minor-continue"];

    public static PolicySpec Of(string name, SourceSpec? source = null, int readAhead = 0) => new() { Name = name, Source = source, ReadAhead = readAhead };
}

/// <summary>Counters of the handler's loop, as sent in heartbeats and the final frame.</summary>
public sealed record HandlerStats
{
    public ulong Faults { get; init; }
    public ulong Missing { get; init; }
    public ulong Wp { get; init; }
    public ulong Minor { get; init; }
    /// <summary>Fault messages resolved (each once, EEXIST and ENOENT included).</summary>
    public ulong Resolved { get; init; }
    public ulong PagesResolved { get; init; }
    public ulong Eexist { get; init; }
    public ulong Eagain { get; init; }
    public ulong Enoent { get; init; }
    public ulong SnapshotPages { get; init; }
    public ulong ZeroPages { get; init; }
    public ulong Events { get; init; }
    public ulong ServiceP50Ns { get; init; }
    public ulong ServiceP99Ns { get; init; }
    public long LoopCpuNs { get; init; }

    public static HandlerStats From(FaultStatistics s) => new()
    {
        Faults = s.Faults,
        Missing = s.MissingFaults,
        Wp = s.WriteProtectFaults,
        Minor = s.MinorFaults,
        Resolved = s.ServiceTime.Count,
        PagesResolved = s.PagesResolved,
        Eexist = s.Eexist,
        Eagain = s.Eagain,
        Enoent = s.Enoent,
        SnapshotPages = s.SnapshotPages,
        ZeroPages = s.ZeroPages,
        Events = s.ForkEvents + s.RemapEvents + s.RemoveEvents + s.UnmapEvents,
        ServiceP50Ns = s.ServiceTime.Count > 0 ? s.ServiceTime.Percentile(0.5) : 0,
        ServiceP99Ns = s.ServiceTime.Count > 0 ? s.ServiceTime.Percentile(0.99) : 0,
        LoopCpuNs = s.LoopUsage.CpuNs,
    };

    public override string ToString() =>
        $"faults {Faults} (missing {Missing}, wp {Wp}, minor {Minor}), resolved {Resolved}, pages {PagesResolved}, eexist {Eexist}, eagain {Eagain}, enoent {Enoent}, snapshot {SnapshotPages}, events {Events}";
}

/// <summary>A served range as the handler has it now (REMAP moves it, UNMAP forgets it, REMOVE marks
/// pages to be served as zero): what a takeover needs to continue where the handler stopped.</summary>
public sealed record RangeInfo
{
    public ulong Start { get; init; }
    public ulong Length { get; init; }
    public ulong SourceOffset { get; init; }
    /// <summary>Removed page runs as [first page, page count) pairs.</summary>
    public List<long[]> Removed { get; init; } = [];

    public static RangeInfo From(ServedRange r)
    {
        var removed = new List<long[]>();
        long i = 0;
        while (i < r.Pages)
        {
            if (!r.IsRemoved(i))
            {
                i++;
                continue;
            }
            long j = i;
            while (j < r.Pages && r.IsRemoved(j))
                j++;
            removed.Add([i, j - i]);
            i = j;
        }
        return new RangeInfo { Start = r.Start, Length = r.Length, SourceOffset = r.SourceOffset, Removed = removed };
    }

    public ServedRange ToServedRange()
    {
        var r = new ServedRange(Start, Length, SourceOffset);
        foreach (var run in Removed)
            for (long p = run[0]; p < run[0] + run[1]; p++)
                r.SetRemoved(p, true);
        return r;
    }
}

/// <summary>
/// Every frame of the protocol, both directions (one record; <see cref="Type"/> says which fields
/// matter). Client → handler: "handoff" (with the descriptors), "stop". Handler → client: "ready",
/// "heartbeat", "ranges", "final", "error". Version 1.
/// </summary>
public sealed record Frame
{
    public const int ProtocolVersion = 1;

    public string Type { get; init; } = "";
    public int Version { get; init; } = ProtocolVersion;
    public int Pid { get; init; }
    /// <summary>handoff: the process that owns the registered memory (its exit ends the session).</summary>
    public int OwnerPid { get; init; }
    /// <summary>handoff: the features enabled on the uffd.</summary>
    public ulong Features { get; init; }
    /// <summary>handoff: which descriptor of the frame is the uffd.</summary>
    public int UffdFd { get; init; }
    public int HeartbeatMs { get; init; }
    public List<PolicySpec>? Policies { get; init; }
    public List<HandoffRegion>? Regions { get; init; }
    /// <summary>handoff: the memfd the wp-snapshot store lives in (data, then a saved-page bitmap).</summary>
    public int? SnapshotFd { get; init; }
    public long Seq { get; init; }
    public HandlerStats? Stats { get; init; }
    public List<RangeInfo>? Ranges { get; init; }
    /// <summary>final: how the handler's loop ended (a <see cref="FaultServerExitReason"/> name).</summary>
    public string? Exit { get; init; }
    public string? Message { get; init; }
}

/// <summary>The process at the other end of a Unix socket, as the kernel saw it at connect/listen.</summary>
internal readonly record struct PeerCredentials(int Pid, int Uid, int Gid);

/// <summary>errno values of the socket calls (x86-64 Linux).</summary>
internal static class SocketErrno
{
    public const int EPIPE = 32, ENAMETOOLONG = 36, ENOPROTOOPT = 92, EADDRINUSE = 98, ECONNRESET = 104, ECONNREFUSED = 111;
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(Frame))]
internal sealed partial class ProtocolJson : JsonSerializerContext;

/// <summary>
/// Length-prefixed JSON frames over a connected Unix stream socket: a little-endian u32 length, then
/// that many bytes of UTF-8 JSON. Descriptors travel as SCM_RIGHTS with the first byte of a frame and
/// are handed to the caller with the frame they arrived in. Send is thread-safe; one thread receives.
/// </summary>
internal sealed unsafe class FrameChannel : IDisposable
{
    public const int MaxFrame = 16 << 20;
    /// <summary>What a handler accepts from a client: a handoff of the most regions it takes fits in
    /// a few KiB; a larger length prefix is refused before anything is allocated for it.</summary>
    public const int MaxClientFrame = 256 << 10;

    private readonly object sendLock = new();
    private byte[] buffer = new byte[4 << 10];
    private int filled;
    private readonly List<int> fds = [];
    private readonly int[] received = new int[Shim.SockMaxFds];
    private readonly int maxFrame;
    private readonly int sendTimeoutMs;

    public SafeFdHandle Socket { get; }

    // maxFrame: the largest frame received. sendTimeoutMs: every frame must leave within this bound
    // (< 0: none): a peer that never reads cannot hold the sender (the handler bounds its sends).
    public FrameChannel(SafeFdHandle socket, int maxFrame = MaxFrame, int sendTimeoutMs = -1)
    {
        Socket = socket;
        this.maxFrame = maxFrame;
        this.sendTimeoutMs = sendTimeoutMs;
    }

    /// <summary>Descriptors received and not yet handed out with a frame.</summary>
    public int PendingDescriptors => fds.Count;

    public static FrameChannel Connect(string path) =>
        new(new SafeFdHandle(UffdException.Check(Shim.uffd_sock_connect(path), "connect", e => ($"socket {path}", e is Errno.ENOENT or SocketErrno.ECONNREFUSED ? "start the handler first: uffdnative serve --socket " + path : ""))));

    /// <summary>The peer process (SO_PEERCRED).</summary>
    public PeerCredentials Peer()
    {
        PeerCred c;
        UffdException.Check(Shim.uffd_sock_peer(Socket.Fd, &c), "SO_PEERCRED");
        return new PeerCredentials(c.Pid, c.Uid, c.Gid);
    }

    /// <summary>Sends a frame, with descriptors (not closed here). Returns 0 or -errno (EPIPE when the
    /// peer is gone).</summary>
    public int TrySend(Frame frame, ReadOnlySpan<int> descriptors = default)
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(frame, ProtocolJson.Default.Frame);
        var bytes = new byte[4 + json.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, (uint)json.Length);
        json.CopyTo(bytes, 4);
        lock (sendLock)
        {
            if (Socket.IsClosed)
                return -Errno.EBADF;
            fixed (byte* b = bytes)
            fixed (int* f = descriptors)
                return Shim.uffd_sock_send_timed(Socket.Fd, b, bytes.Length, f, descriptors.Length, sendTimeoutMs);
        }
    }

    public void Send(Frame frame, ReadOnlySpan<int> descriptors = default) =>
        UffdException.Check(TrySend(frame, descriptors), $"send {frame.Type} frame");

    public enum ReceiveStatus { Frame, Timeout, EndOfFile }

    /// <summary>Receives the next frame, waiting up to timeoutMs (&lt; 0: forever). The descriptors
    /// that arrived with it are owned by the caller.</summary>
    public ReceiveStatus Receive(int timeoutMs, out Frame? frame, out int[] descriptors)
    {
        frame = null;
        descriptors = [];
        long deadline = timeoutMs < 0 ? long.MaxValue : Environment.TickCount64 + timeoutMs;
        while (true)
        {
            if (TryTake(out frame, out descriptors))
                return ReceiveStatus.Frame;
            if (filled == buffer.Length)
                Array.Resize(ref buffer, buffer.Length * 2);
            int wait = deadline == long.MaxValue ? -1 : (int)Math.Max(0, deadline - Environment.TickCount64);
            int n, nfd;
            fixed (int* got = received)
            fixed (byte* b = &buffer[filled])
                n = Shim.uffd_sock_recv(Socket.Fd, b, buffer.Length - filled, got, Shim.SockMaxFds, &nfd, wait);
            for (int i = 0; i < nfd; i++)
                fds.Add(received[i]);
            if (n == -Errno.ETIMEDOUT)
                return ReceiveStatus.Timeout;
            if (n == -SocketErrno.ECONNRESET)
                return ReceiveStatus.EndOfFile;
            UffdException.Check(n, "recvmsg");
            if (n == 0)
                return ReceiveStatus.EndOfFile;
            filled += n;
        }
    }

    private bool TryTake(out Frame? frame, out int[] descriptors)
    {
        frame = null;
        descriptors = [];
        if (filled < 4)
            return false;
        uint len = BinaryPrimitives.ReadUInt32LittleEndian(buffer);
        if (len > maxFrame)
            throw new UffdException("receive frame", Errno.EPROTO, $"a frame of {len} bytes (at most {maxFrame})", "the peer does not speak this protocol");
        if (filled < 4 + len)
        {
            if (buffer.Length < 4 + len)
                Array.Resize(ref buffer, (int)(4 + len));
            return false;
        }
        try
        {
            frame = JsonSerializer.Deserialize(new ReadOnlySpan<byte>(buffer, 4, (int)len), ProtocolJson.Default.Frame);
        }
        catch (JsonException e)
        {
            throw new UffdException("receive frame", Errno.EPROTO, $"a frame of {len} bytes that is not a frame of this protocol: {e.Message}", "send one JSON object per frame (protocol version " + Frame.ProtocolVersion + ")");
        }
        if (frame is null)
            throw new UffdException("receive frame", Errno.EPROTO, "a frame that is JSON null", "send one JSON object per frame");
        Buffer.BlockCopy(buffer, 4 + (int)len, buffer, 0, filled - 4 - (int)len);
        filled -= 4 + (int)len;
        descriptors = [.. fds];
        fds.Clear();
        return true;
    }

    public void Dispose()
    {
        lock (sendLock)
            Socket.Dispose();
        foreach (var fd in fds)
            Shim.uffd_close(fd);
        fds.Clear();
    }
}
