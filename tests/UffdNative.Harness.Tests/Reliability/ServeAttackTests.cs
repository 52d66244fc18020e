using System.Buffers.Binary;

namespace UffdNative.Harness.Tests.Reliability;

/// <summary>
/// One `uffdnative serve` for the whole class, attacked as a local client would (issue 12): after each
/// attack serve is alive, its descriptor count is back to its baseline, the attacker got one error
/// frame naming the cause, and the next valid session is served.
/// </summary>
public sealed class ServeFixture : IDisposable
{
    public const int MaxClients = 4;
    public HandlerProcess Handler { get; }
    public int BaselineFds { get; }

    public ServeFixture()
    {
        Handler = HandlerProcess.Start(["--sessions", "0", "--max-clients", MaxClients.ToString(System.Globalization.CultureInfo.InvariantCulture), "--handshake-timeout-ms", "1000"]);
        // One valid session first: what the runtime opens lazily (threads' epolls, libraries) is then
        // part of the baseline.
        ServeAttackTests.ValidSession(Handler.SocketPath);
        R.Until(() => FdCount() == FdCount(), "a stable descriptor count");
        BaselineFds = FdCount();
        BaselineList = Fds();
    }

    /// <summary>serve's descriptors, less the assemblies the runtime opens as it loads them (lazily,
    /// on the first use of a code path: not the attack's doing).</summary>
    public int FdCount() => Fds().Count;

    public IReadOnlyList<string> Fds() => [.. Directory.GetFileSystemEntries($"/proc/{Handler.Pid}/fd").Select(f =>
    {
        try
        {
            return Path.GetFileName(f) + "->" + new FileInfo(f).LinkTarget;
        }
        catch (IOException)
        {
            return Path.GetFileName(f) + "->?";
        }
    }).Where(l => !l.EndsWith(".dll", StringComparison.Ordinal) && !l.EndsWith(".so", StringComparison.Ordinal)).Order(StringComparer.Ordinal)];

    public IReadOnlyList<string> BaselineList { get; private set; } = [];

    public void Dispose() => Handler.Dispose();
}

[Collection("serve-attacks")]
public sealed unsafe class ServeAttackTests(ServeFixture fx) : IClassFixture<ServeFixture>
{
    private const ulong Seed = 0x5eed;

    /// <summary>A valid session end to end: 16 pages served with missing-copy from a pattern.</summary>
    internal static void ValidSession(string socket)
    {
        using var map = Mapping.Anonymous(16 * R.Page);
        var uffd = R.Open(UffdFeatures.None);
        uffd.Register(map.Address, map.Length, RegisterMode.Missing);
        R.Within(60_000, () =>
        {
            using var session = ExternalHandler.Connect(socket, uffd, new ExternalHandlerOptions
            {
                Regions = [R.Region(map, "anon", "missing")],
                Policies = [PolicySpec.Of("missing-copy", new SourceSpec { Kind = "pattern", Seed = Seed })],
                OnFailure = WatchdogAction.Fail,
            });
            using var w = R.Read(map, 0, 16);
            R.JoinAll(20_000, w);
            Assert.True(session.Stop(10_000), $"state {session.State}, failure {session.Failure}");
            Assert.Equal(-1, R.Verify(map.Address, 16, Native.VerifyBase.Pattern, Seed));
        }, () => uffd.Dispose());
    }

    // ---- a raw client ---------------------------------------------------------------------------

    private static byte[] FrameBytes(string json)
    {
        var body = Encoding.UTF8.GetBytes(json);
        var b = new byte[4 + body.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(b, (uint)body.Length);
        body.CopyTo(b, 4);
        return b;
    }

    private int Connect()
    {
        int s = Shim.uffd_sock_connect(fx.Handler.SocketPath);
        Assert.True(s >= 0, $"connect: {Errno.Name(-s)}");
        return s;
    }

    private static void Send(int sock, byte[] bytes, params int[] fds)
    {
        fixed (byte* b = bytes)
        fixed (int* f = fds)
        {
            int r = Shim.uffd_sock_send(sock, b, bytes.Length, fds.Length > 0 ? f : null, fds.Length);
            Assert.True(r == 0 || r == -SocketErrno.EPIPE || r == -SocketErrno.ECONNRESET, $"send: {Errno.Name(-r)}");
        }
    }

    /// <summary>Every frame the handler sends until it closes (or 10 s).</summary>
    private static List<Frame> ReadAll(int sock)
    {
        var frames = new List<Frame>();
        using var ch = new FrameChannel(new SafeFdHandle(sock));
        long deadline = Environment.TickCount64 + 10_000;
        while (Environment.TickCount64 < deadline)
        {
            var st = ch.Receive((int)(deadline - Environment.TickCount64), out var f, out var extra);
            foreach (var fd in extra)
                Shim.uffd_close(fd);
            if (st != FrameChannel.ReceiveStatus.Frame)
                break;
            frames.Add(f!);
        }
        return frames;
    }

    /// <summary>Sends one frame with descriptors (closed here after sending) and returns the one error
    /// the handler answered with.</summary>
    private string Attack(byte[] bytes, params int[] fds)
    {
        int s = Connect();
        Send(s, bytes, fds);
        foreach (var fd in fds)
            Shim.uffd_close(fd);
        var frames = ReadAll(s);
        Assert.True(frames.Count == 1 && frames[0].Type == "error", $"expected one error frame, got [{string.Join(", ", frames.Select(f => f.Type + ":" + f.Message))}]");
        Assert.False(string.IsNullOrWhiteSpace(frames[0].Message));
        return frames[0].Message!;
    }

    private void AfterAttack()
    {
        Assert.False(fx.Handler.HasExited, "serve ended: " + string.Join(" | ", fx.Handler.Output.TakeLast(10)));
        Back("after the attack");
        ValidSession(fx.Handler.SocketPath);
        Back("after the next valid session");
    }

    private void Back(string when)
    {
        try
        {
            R.Until(() => fx.FdCount() <= fx.BaselineFds, "serve's descriptors back to the baseline");
        }
        catch (Exception)
        {
            var now = fx.Fds();
            throw new Xunit.Sdk.XunitException($"{when}: serve's descriptors not back to the baseline {fx.BaselineFds} (now {now.Count}): extra [{string.Join(", ", now.Except(fx.BaselineList))}]");
        }
    }

    private static string Handoff(string uffdFd = "0", string regions = "[{\"base_host_virt_addr\":1048576,\"size\":4096,\"offset\":0,\"page_size\":4096,\"memory\":\"anon\",\"modes\":[\"missing\"]}]", string extra = "") =>
        $"{{\"type\":\"handoff\",\"version\":1,\"uffd_fd\":{uffdFd},\"policies\":[{{\"name\":\"missing-zero\"}}],\"regions\":{regions}{extra}}}";

    private static string Region(string @base = "1048576", string size = "4096", string offset = "0", string memory = "anon", string more = "") =>
        $"{{\"base_host_virt_addr\":{@base},\"size\":{size},\"offset\":{offset},\"page_size\":4096,\"memory\":\"{memory}\",\"modes\":[\"missing\"]{more}}}";

    private static int Uffd()
    {
        var u = R.Open(UffdFeatures.None);
        int fd = Tmds.Linux.LibC.dup(u.Fd);
        u.Dispose();
        return fd;
    }

    private static int[] Pipe()
    {
        int* p = stackalloc int[2];
        Assert.Equal(0, Tmds.Linux.LibC.pipe2(p, Tmds.Linux.LibC.O_CLOEXEC | Tmds.Linux.LibC.O_NONBLOCK));
        return [p[0], p[1]];
    }

    private static int Memfd(long size, bool readOnly = false)
    {
        using var m = MemfdFile.Create("attack", size);
        if (readOnly)
        {
            using var ro = m.ReopenReadOnly();
            return Tmds.Linux.LibC.dup(ro.Fd);
        }
        return Tmds.Linux.LibC.dup(m.Fd);
    }

    private static byte[] CStr(string s) => Encoding.UTF8.GetBytes(s + "\0");

    private static int Open(string path, int flags = 0)
    {
        fixed (byte* p = CStr(path))
            return Tmds.Linux.LibC.open(p, flags | Tmds.Linux.LibC.O_CLOEXEC | Tmds.Linux.LibC.O_NONBLOCK);
    }

    private static int MkFifo(string path)
    {
        fixed (byte* p = CStr(path))
            return Tmds.Linux.LibC.mkfifo(p, 0x180);
    }

    /// <summary>Every kind of descriptor that is not a uffd, sent as the uffd.</summary>
    public static TheoryData<string> NotUffds => ["pipe", "eventfd", "socketpair", "memfd", "devnull", "epoll", "directory", "pidfd", "forged-fork-pipe"];

    [Theory]
    [MemberData(nameof(NotUffds))]
    public void ADescriptorThatIsNotAUffd(string kind)
    {
        int fd, other = -1;
        switch (kind)
        {
            case "pipe":
                var p = Pipe();
                (fd, other) = (p[0], p[1]);
                break;
            case "eventfd":
                fd = Tmds.Linux.LibC.eventfd(0, Tmds.Linux.LibC.EFD_NONBLOCK | Tmds.Linux.LibC.EFD_CLOEXEC);
                break;
            case "socketpair":
                int* sp = stackalloc int[2];
                Assert.Equal(0, Tmds.Linux.LibC.socketpair(Tmds.Linux.LibC.AF_UNIX, Tmds.Linux.LibC.SOCK_STREAM | Tmds.Linux.LibC.SOCK_NONBLOCK, 0, sp));
                (fd, other) = (sp[0], sp[1]);
                break;
            case "memfd":
                fd = Memfd(4096);
                break;
            case "devnull":
                fd = Open("/dev/null", Tmds.Linux.LibC.O_RDWR);
                break;
            case "epoll":
                fd = Tmds.Linux.LibC.epoll_create1(Tmds.Linux.LibC.EPOLL_CLOEXEC);
                break;
            case "directory":
                fd = Open("/tmp", Tmds.Linux.LibC.O_RDONLY | Tmds.Linux.LibC.O_DIRECTORY);
                break;
            case "pidfd":
                fd = Shim.uffd_pidfd_open(Environment.ProcessId);
                break;
            default:
                // A pipe carrying a forged FORK message whose "ufd" names the handler's listening
                // socket: read as a uffd it would make the handler close a descriptor of its choosing.
                var fp = Pipe();
                var msg = new byte[32];
                msg[0] = 0x13; // UFFD_EVENT_FORK
                BinaryPrimitives.WriteUInt32LittleEndian(msg.AsSpan(8), 3);
                fixed (byte* m = msg)
                    Assert.Equal(32L, (long)Tmds.Linux.LibC.write(fp[1], m, 32));
                (fd, other) = (fp[0], fp[1]);
                break;
        }
        Assert.True(fd >= 0, $"{kind}: {Errno.Name(System.Runtime.InteropServices.Marshal.GetLastPInvokeError())}");
        var err = Attack(FrameBytes(Handoff()), fd);
        if (other >= 0)
            Shim.uffd_close(other);
        Assert.Contains("not a userfaultfd", err, StringComparison.Ordinal);
        AfterAttack();
    }

    public static TheoryData<string, string> BadFrames => new()
    {
        { "garbage", "not a frame of this protocol" },
        { "json-null", "JSON null" },
        { "wrong-type-regions", "not a frame of this protocol" },
        { "wrong-type-version", "not a frame of this protocol" },
        { "not-handoff", "expected a handoff frame" },
        { "no-descriptors", "names none of the 0 descriptors" },
        { "version-2", "protocol version 2" },
        { "oversized", "at most" },
        { "truncated", "no handoff frame" },
        { "idle", "no handoff frame" },
        { "empty-regions", "no region" },
    };

    [Theory]
    [MemberData(nameof(BadFrames))]
    public void AFrameThatIsNotAHandoff(string kind, string expected)
    {
        string err;
        switch (kind)
        {
            case "garbage":
                err = Attack(FrameBytes("{not json!!!"));
                break;
            case "json-null":
                err = Attack(FrameBytes("null"));
                break;
            case "wrong-type-regions":
                err = Attack(FrameBytes("{\"type\":\"handoff\",\"regions\":\"everything\"}"), Uffd());
                break;
            case "wrong-type-version":
                err = Attack(FrameBytes("{\"type\":\"handoff\",\"version\":\"one\"}"), Uffd());
                break;
            case "not-handoff":
                err = Attack(FrameBytes("{\"type\":\"stop\"}"));
                break;
            case "no-descriptors":
                err = Attack(FrameBytes(Handoff()));
                break;
            case "version-2":
                err = Attack(FrameBytes(Handoff().Replace("\"version\":1", "\"version\":2", StringComparison.Ordinal)), Uffd());
                break;
            case "oversized":
                var big = new byte[8];
                BinaryPrimitives.WriteUInt32LittleEndian(big, 0xFFFFFFF0);
                err = Attack(big);
                break;
            case "truncated":
                var t = FrameBytes(Handoff());
                err = Attack(t[..(t.Length / 2)], Uffd());
                break;
            case "idle":
                int s = Connect();
                var frames = ReadAll(s);
                Assert.Single(frames);
                err = frames[0].Message!;
                break;
            default:
                err = Attack(FrameBytes(Handoff(regions: "[]")), Uffd());
                break;
        }
        Assert.Contains(expected, err, StringComparison.Ordinal);
        AfterAttack();
    }

    public static TheoryData<string, string> BadRegions => new()
    {
        { Region(size: "4611686018427387904"), "outside the user address space" },
        { Region(@base: "18446744073709547520", size: "8192"), "outside the user address space" },
        { Region(offset: "18446744073709547520", size: "8192"), "overflows" },
        { Region(size: "100"), "aligned" },
        { Region(@base: "1048577"), "aligned" },
        { Region(size: "0"), "non-empty" },
        { Region(@base: "0"), "outside the user address space" },
        { Region(memory: "gpu"), "is not anon or shmem" },
        { Region() + "," + Region(@base: "1052672", offset: "0"), "overlap in the source space" },
        { Region(size: "8192") + "," + Region(@base: "1052672", offset: "65536"), "overlap" },
        { Region(memory: "shmem", more: ",\"memfd\":7"), "names none of" },
        { "[" + string.Join(",", Enumerable.Range(0, 65).Select(i => Region(@base: (1048576 + i * 8192).ToString(System.Globalization.CultureInfo.InvariantCulture), offset: (i * 8192).ToString(System.Globalization.CultureInfo.InvariantCulture)))) + "]", "at most 64" },
    };

    [Theory]
    [MemberData(nameof(BadRegions))]
    public void ARegionThatCannotBeServed(string regions, string expected)
    {
        if (!regions.StartsWith('['))
            regions = "[" + regions + "]";
        var err = Attack(FrameBytes(Handoff(regions: regions)), Uffd());
        Assert.Contains(expected, err, StringComparison.Ordinal);
        AfterAttack();
    }

    [Theory]
    [InlineData("unregistered", "missing", "is not registered for missing")]
    [InlineData("registered-missing", "wp", "is not registered for wp")] // a mode the registration lacks
    [InlineData("half-registered", "missing", "is not registered for missing")]
    [InlineData("unmapped", "missing", "is not mapped in the connecting process")]
    public void ARegionTheClientDidNotRegisterIsRefused(string kind, string mode, string expected)
    {
        // The handler checks the regions against the peer's own registration (its smaps VmFlags), not
        // against the client's word.
        for (int attempt = 1; ; attempt++)
        {
            using var map = Mapping.Anonymous(4 * R.Page);
            using var u = R.Open(UffdFeatures.None);
            if (kind != "unregistered" && kind != "unmapped")
                u.Register(map.Address, kind == "half-registered" ? 2 * R.Page : map.Length, RegisterMode.Missing);
            ulong addr = map.Address;
            if (kind == "unmapped")
                Assert.Equal(0, map.Unmap());
            string region = $"[{{\"base_host_virt_addr\":{addr},\"size\":{4 * R.Page},\"offset\":0,\"page_size\":4096,\"memory\":\"anon\",\"modes\":[\"{mode}\"]}}]";
            var err = Attack(FrameBytes(Handoff(regions: region)), Tmds.Linux.LibC.dup(u.Fd));
            AfterAttack();
            // Another thread of this process (the runtime, a test running beside this one) may map the hole
            // again before the handler reads this process's maps: seen once in CI. Only then try a new hole.
            if (kind == "unmapped" && !err.Contains(expected, StringComparison.Ordinal) && attempt < 5 && VmaInfo.Overlapping(addr, 4 * R.Page).Any())
                continue;
            Assert.Contains(expected, err, StringComparison.Ordinal);
            return;
        }
    }

    public static TheoryData<string> BadFiles => ["memfd-empty", "memfd-offset-past-end", "memfd-is-a-pipe", "snapshot-empty", "snapshot-read-only", "source-path", "source-fifo", "owner-pid-1", "unknown-policy"];

    [Theory]
    [MemberData(nameof(BadFiles))]
    public void ADescriptorOrPathThatMustNotBeUsed(string kind)
    {
        string shm = Region(memory: "shmem", more: ",\"memfd\":1");
        string err;
        string expected;
        switch (kind)
        {
            case "memfd-empty":
                err = Attack(FrameBytes(Handoff(regions: "[" + shm + "]")), Uffd(), Memfd(0));
                expected = "has 0 bytes";
                break;
            case "memfd-offset-past-end":
                err = Attack(FrameBytes(Handoff(regions: "[" + Region(memory: "shmem", more: ",\"memfd\":1,\"memfd_offset\":1048576") + "]")), Uffd(), Memfd(4096));
                expected = "the region needs offset 1048576";
                break;
            case "memfd-is-a-pipe":
                var p = Pipe();
                err = Attack(FrameBytes(Handoff(regions: "[" + shm + "]")), Uffd(), p[0]);
                Shim.uffd_close(p[1]);
                expected = "not a memfd";
                break;
            case "snapshot-empty":
                err = Attack(FrameBytes(Handoff(extra: ",\"snapshot_fd\":1")), Uffd(), Memfd(0));
                expected = "the regions need";
                break;
            case "snapshot-read-only":
                err = Attack(FrameBytes(Handoff(extra: ",\"snapshot_fd\":1")), Uffd(), Memfd(1 << 20, readOnly: true));
                expected = "not open read-write";
                break;
            case "source-path":
                // The confused deputy: a root handler asked to copy /etc/shadow into the client's page.
                err = Attack(FrameBytes(Handoff().Replace("{\"name\":\"missing-zero\"}", "{\"name\":\"missing-copy\",\"source\":{\"kind\":\"file\",\"path\":\"/etc/shadow\"}}", StringComparison.Ordinal)), Uffd());
                expected = "may not name a file path";
                break;
            case "source-fifo":
                var dir = Path.GetDirectoryName(HandlerProcess.NewSocketPath("fifo"))!;
                var fifo = Path.Combine(dir, "f");
                Assert.Equal(0, MkFifo(fifo));
                int ff = Open(fifo, Tmds.Linux.LibC.O_RDWR);
                err = Attack(FrameBytes(Handoff().Replace("{\"name\":\"missing-zero\"}", "{\"name\":\"missing-copy\",\"source\":{\"kind\":\"fd\",\"fd\":1}}", StringComparison.Ordinal)), Uffd(), ff);
                File.Delete(fifo);
                Directory.Delete(dir);
                expected = "a source must be a regular file";
                break;
            case "owner-pid-1":
                // Cross-process read: serve must never read the memory of a process the client names.
                err = Attack(FrameBytes(Handoff(extra: ",\"owner_pid\":1")), Uffd());
                expected = "is not the connecting process";
                break;
            default:
                err = Attack(FrameBytes(Handoff().Replace("missing-zero", "rm-rf", StringComparison.Ordinal)), Uffd());
                expected = "unknown policy";
                break;
        }
        Assert.Contains(expected, err, StringComparison.Ordinal);
        AfterAttack();
    }

    [Fact]
    public void SixteenDescriptorsWithAGarbageFrameAreAllClosed()
    {
        var fds = Enumerable.Range(0, 16).Select(_ => Memfd(4096)).ToArray();
        var err = Attack(FrameBytes("]]]"), fds);
        Assert.Contains("not a frame of this protocol", err, StringComparison.Ordinal);
        AfterAttack();
    }

    [Fact]
    public void AFloodOfIdleConnectionsIsRefusedAsBusyAndThenServed()
    {
        // Connected back to back: the handler accepts in order, so the first MaxClients hold every place
        // (each until the 1 s handshake bound) while the rest arrive.
        var idle = Enumerable.Range(0, ServeFixture.MaxClients).Select(_ => Connect()).ToList();
        var extra = Enumerable.Range(0, 8).Select(_ => Connect()).ToList();
        foreach (var s in extra)
        {
            var frames = ReadAll(s);
            Assert.True(frames.Count == 1 && frames[0].Type == "error" && frames[0].Message!.Contains("busy", StringComparison.Ordinal), string.Join(", ", frames.Select(f => f.Message)));
        }
        foreach (var s in idle)
        {
            var frames = ReadAll(s); // each idle holder is refused at the handshake bound
            Assert.Single(frames);
            Assert.Contains("no handoff frame", frames[0].Message!, StringComparison.Ordinal);
        }
        AfterAttack();
    }

    [Fact]
    public void AClientThatVanishesMidSessionEndsOnlyItsSession()
    {
        using var map = Mapping.Anonymous(16 * R.Page);
        var uffd = R.Open(UffdFeatures.None);
        uffd.Register(map.Address, map.Length, RegisterMode.Missing);
        int s = Connect();
        Send(s, FrameBytes(Handoff(regions: "[" + Region(@base: map.Address.ToString(System.Globalization.CultureInfo.InvariantCulture), size: map.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)) + "]", extra: $",\"owner_pid\":{Environment.ProcessId}")), uffd.Fd);
        using (var ch = new FrameChannel(new SafeFdHandle(s)))
        {
            Assert.Equal(FrameChannel.ReceiveStatus.Frame, ch.Receive(10_000, out var ready, out _));
            Assert.Equal("ready", ready!.Type);
        } // closed without a stop: the unclean end of a client
        uffd.Dispose();
        AfterAttack();
    }

    [Fact]
    public void AnotherUidIsRefusedByTheSocketModeAndBySoPeercred()
    {
        var tool = Path.Combine(Path.GetDirectoryName(OwnerProcess.ToolPath())!, "uffd_as_user");
        string Run()
        {
            var psi = new ProcessStartInfo(tool) { RedirectStandardOutput = true, UseShellExecute = false };
            foreach (var a in new[] { "65534", "65534", fx.Handler.SocketPath, Handoff() })
                psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            string line = p.StandardOutput.ReadToEnd().Trim();
            Assert.True(p.WaitForExit(20_000));
            return line;
        }
        // The socket is 0600 in a 0700 directory: the kernel refuses the connect (EACCES).
        Assert.Equal("connect-error 13", Run());
        // Opened up by a careless operator: SO_PEERCRED still refuses uid 65534, with one error frame.
        var dir = Path.GetDirectoryName(fx.Handler.SocketPath)!;
        var dirMode = File.GetUnixFileMode(dir);
        var sockMode = File.GetUnixFileMode(fx.Handler.SocketPath);
        try
        {
            File.SetUnixFileMode(dir, dirMode | UnixFileMode.OtherExecute);
            File.SetUnixFileMode(fx.Handler.SocketPath, sockMode | UnixFileMode.OtherRead | UnixFileMode.OtherWrite);
            var line = Run();
            Assert.StartsWith("reply ", line, StringComparison.Ordinal);
            Assert.Contains("\"type\":\"error\"", line, StringComparison.Ordinal);
            Assert.Contains("uid 65534", line, StringComparison.Ordinal);
        }
        finally
        {
            File.SetUnixFileMode(dir, dirMode);
            File.SetUnixFileMode(fx.Handler.SocketPath, sockMode);
        }
        AfterAttack();
    }

    /// <summary>Random and mutated frames from a seed for a bounded time: serve never dies.</summary>
    [Fact]
    public void SeededProtocolFuzz()
    {
        var rng = new Random(1212);
        string[] seeds = [Handoff(), Handoff(regions: "[" + Region(memory: "shmem", more: ",\"memfd\":1") + "]"), Handoff(extra: ",\"snapshot_fd\":1"), "{\"type\":\"stop\"}"];
        long end = Environment.TickCount64 + 20_000;
        int frames = 0;
        while (Environment.TickCount64 < end)
        {
            byte[] bytes;
            int mode = rng.Next(4);
            if (mode == 0)
            {
                bytes = new byte[rng.Next(1, 200)];
                rng.NextBytes(bytes);
            }
            else
            {
                var b = Encoding.UTF8.GetBytes(seeds[rng.Next(seeds.Length)]);
                for (int k = rng.Next(1, 6); k > 0; k--)
                    b[rng.Next(b.Length)] = (byte)(mode == 1 ? rng.Next(256) : "0123456789{}[]\",:-e."[rng.Next(20)]);
                bytes = FrameBytes(Encoding.UTF8.GetString(b));
                if (mode == 3)
                    bytes = bytes[..rng.Next(1, bytes.Length)];
            }
            int[] fds = rng.Next(3) switch
            {
                0 => [],
                1 => [Uffd()],
                _ => [Uffd(), Memfd(rng.Next(2) * 8192)],
            };
            int s = Connect();
            Send(s, bytes, fds);
            foreach (var fd in fds)
                Shim.uffd_close(fd);
            // Whatever came back (an error, or nothing for a truncated frame): the connection ends.
            if (mode == 3)
                Shim.uffd_close(s);
            else
                ReadAll(s);
            frames++;
            Assert.False(fx.Handler.HasExited, $"serve died after {frames} fuzz frames");
        }
        Assert.True(frames > 50, $"{frames} frames in 20 s");
        AfterAttack();
    }
}
