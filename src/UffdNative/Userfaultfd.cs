using System.Globalization;
using UffdNative.Interop;
using UffdNative.Uapi;

namespace UffdNative;

/// <summary>How to create the uffd (reference §1.1).</summary>
public enum UffdOpenPath
{
    /// <summary>Device, then syscall, then syscall with UFFD_USER_MODE_ONLY (if allowed).</summary>
    Auto,
    Syscall,
    /// <summary>The syscall with UFFD_USER_MODE_ONLY: always permitted, but kernel-mode faults
    /// (a read(2) into the range) fail with EFAULT instead of producing a message.</summary>
    SyscallUserModeOnly,
    /// <summary>/dev/userfaultfd + USERFAULTFD_IOC_NEW (Linux 6.1+): file permissions only.</summary>
    Device,
    /// <summary>Not opened here: delivered by a FORK event, or received from another process.</summary>
    Adopted,
}

/// <summary>One attempt to open a uffd: the path, and 0 or the errno with its explanation.</summary>
public sealed record UffdOpenAttempt(UffdOpenPath Path, int Errno, string Detail, string Remedy)
{
    public bool Succeeded => Errno == 0;
    public override string ToString() => Succeeded ? $"{Path}: ok" : $"{Path}: {UffdNative.Errno.Name(Errno)} — {Detail}";
}

public sealed record UffdOpenOptions
{
    public UffdOpenPath Path { get; init; } = UffdOpenPath.Auto;
    public bool CloseOnExec { get; init; } = true;
    /// <summary>Non-blocking is required for poll-based loops: poll on a blocking uffd reports POLLERR.</summary>
    public bool NonBlocking { get; init; } = true;
    /// <summary>Add UFFD_USER_MODE_ONLY to whichever path is used.</summary>
    public bool UserModeOnly { get; init; }
    /// <summary>Whether <see cref="UffdOpenPath.Auto"/> may end with a user-mode-only uffd.</summary>
    public bool AllowUserModeOnlyFallback { get; init; } = true;
    /// <summary>Features that must be enabled; opening fails naming each missing one and its kernel version.</summary>
    public UffdFeatures RequiredFeatures { get; init; }
    /// <summary>Features enabled when this kernel supports them.</summary>
    public UffdFeatures OptionalFeatures { get; init; }
}

/// <summary>fdinfo of a uffd: pending (unread) faults, total (unread + read-but-unresolved), the API line.</summary>
public readonly record struct UffdFdInfo(long Pending, long Total, ulong ContextFeatures, ulong Ioctls)
{
    /// <summary>Bit 31 of the context features: UFFDIO_API has succeeded on this fd.</summary>
    public bool Initialized => (ContextFeatures & 0x80000000UL) != 0;
}

/// <summary>
/// A userfaultfd: the handle, the handshake, every ioctl, message reads.
/// The typed methods turn normal outcomes (EEXIST, EAGAIN, partial progress) into results
/// (<see cref="FillResult"/>) and everything else into <see cref="UffdException"/>. The raw
/// <c>TryXxx</c> methods pass the kernel's struct (<c>UffdNative.Uapi</c>) and return 0 or -errno
/// unchanged, output fields included, for probes and conformance checks.
/// </summary>
public sealed unsafe class Userfaultfd : IDisposable
{
    private static UffdFeatures? cachedSupported;

    private readonly SafeFdHandle handle;
    private readonly UffdOpenPath openedVia;
    private readonly IReadOnlyList<UffdOpenAttempt> attempts;
    private readonly bool userModeOnly, nonBlocking;
    private UffdFeatures features, supportedFeatures;
    private UffdIoctls apiIoctls;
    private Action? disposing;

    /// <summary>The descriptor. Every member but <see cref="IsDisposed"/> and <see cref="Dispose"/>
    /// throws <see cref="ObjectDisposedException"/> once disposed; each call into the kernel holds the
    /// handle (DangerousAddRef) for its duration, so a concurrent Dispose defers the close and no
    /// stale descriptor number ever reaches the kernel.</summary>
    public SafeFdHandle Handle => Alive(handle);
    public int Fd => Alive(handle).Fd;
    public UffdOpenPath OpenedVia => Alive(openedVia);
    public IReadOnlyList<UffdOpenAttempt> Attempts => Alive(attempts);
    public bool UserModeOnly => Alive(userModeOnly);
    public bool NonBlocking => Alive(nonBlocking);
    /// <summary>The features enabled on this fd.</summary>
    public UffdFeatures Features { get => Alive(features); private set => features = value; }
    /// <summary>Everything the kernel supports (what UFFDIO_API reported).</summary>
    public UffdFeatures SupportedFeatures { get => Alive(supportedFeatures); private set => supportedFeatures = value; }
    public UffdIoctls ApiIoctls { get => Alive(apiIoctls); private set => apiIoctls = value; }
    public bool IsDisposed => handle.IsClosed;

    private Userfaultfd(SafeFdHandle handle, UffdOpenPath via, IReadOnlyList<UffdOpenAttempt> attempts, bool userModeOnly, bool nonBlocking)
    {
        this.handle = handle;
        openedVia = via;
        this.attempts = attempts;
        this.userModeOnly = userModeOnly;
        this.nonBlocking = nonBlocking;
    }

    private T Alive<T>(T value)
    {
        ObjectDisposedException.ThrowIf(handle.IsClosed, this);
        return value;
    }

    /// <summary>Holds the handle for one call into the kernel: the descriptor number it returns stays
    /// this uffd until <see cref="Unlease"/>, whatever another thread disposes meanwhile.</summary>
    internal int Lease()
    {
        bool added = false;
        handle.DangerousAddRef(ref added); // ObjectDisposedException once closed
        return handle.Fd;
    }

    internal void Unlease() => handle.DangerousRelease();

    /// <summary>Called once when this uffd is disposed (a server running on it stops, then releases
    /// its hold, and the descriptor is closed).</summary>
    internal void OnDisposing(Action action)
    {
        lock (handle)
            disposing += action;
    }

    // ---- opening ------------------------------------------------------------------------------

    /// <summary>Opens a uffd and enables the requested features (query on a throwaway fd first,
    /// because UFFDIO_API succeeds once per fd, reference §1.2).</summary>
    public static Userfaultfd Open(UffdOpenOptions? options = null)
    {
        options ??= new UffdOpenOptions();
        var (fd, via, attempts, umo) = OpenFd(options);
        var uffd = new Userfaultfd(new SafeFdHandle(fd), via, attempts, umo, options.NonBlocking);
        try
        {
            var supported = QuerySupportedFeatures(options);
            var missing = options.RequiredFeatures & ~supported;
            if (missing != 0)
            {
                throw new UffdException("UFFDIO_API", Errno.EINVAL,
                    $"this kernel ({KernelVersion.RunningRelease()}) does not support {UffdFeatureInfo.Describe(missing)}",
                    "use a kernel that has them, or make them optional");
            }
            uffd.Handshake(options.RequiredFeatures | (options.OptionalFeatures & supported), supported);
            return uffd;
        }
        catch
        {
            uffd.Dispose();
            throw;
        }
    }

    /// <summary>Wraps an fd this process already owns (a FORK event's fd, one received over a socket,
    /// or one <see cref="OpenRaw"/> opened: then UFFDIO_API has not run on it, reference §1.2 rule 7).
    /// The features are those of the context it came from.</summary>
    public static Userfaultfd Adopt(int fd, UffdFeatures features, bool nonBlocking = true)
    {
        var u = new Userfaultfd(new SafeFdHandle(fd), UffdOpenPath.Adopted, [], false, nonBlocking)
        {
            Features = features,
            SupportedFeatures = features,
            ApiIoctls = UffdIoctls.Register | UffdIoctls.Unregister | UffdIoctls.Api,
        };
        return u;
    }

    private void Handshake(UffdFeatures request, UffdFeatures supported)
    {
        var api = new UffdioApi { Api = (ulong)Uffd.Api, Features = (ulong)request };
        int r = TryApi(ref api);
        if (r < 0)
        {
            var (d, rem) = Remedies.Api(request, supported, -r, KernelVersion.Running());
            throw new UffdException("UFFDIO_API", -r, d, rem);
        }
        // The kernel writes back *all* supported features, not the enabled subset (§1.2 rule 5).
        SupportedFeatures = (UffdFeatures)api.Features;
        Features = request;
        if ((request & UffdFeatures.WpAsync) != 0)
            Features |= UffdFeatures.WpUnpopulated; // implied by the kernel (§1.2 rule 3)
        ApiIoctls = (UffdIoctls)api.Ioctls;
        if ((ApiIoctls & (UffdIoctls.Register | UffdIoctls.Unregister)) != (UffdIoctls.Register | UffdIoctls.Unregister))
            throw new UffdException("UFFDIO_API", Errno.EINVAL, $"the kernel offers ioctls 0x{(ulong)ApiIoctls:x} without REGISTER/UNREGISTER", "use a kernel with working userfaultfd");
    }

    /// <summary>Features this kernel supports, from UFFDIO_API(features=0) on a throwaway fd (cached).</summary>
    public static UffdFeatures QuerySupportedFeatures(UffdOpenOptions? options = null)
    {
        if (cachedSupported is { } c)
            return c;
        var o = (options ?? new UffdOpenOptions()) with { NonBlocking = true };
        var (fd, _, _, _) = OpenFd(o);
        using var h = new SafeFdHandle(fd);
        var api = new UffdioApi { Api = (ulong)Uffd.Api };
        int r = Shim.uffd_api(fd, &api);
        if (KernelLog.Enabled)
            KernelLog.Api(fd, 0, api, r);
        UffdException.Check(r, "UFFDIO_API (query)", e => Remedies.Api(0, 0, e, KernelVersion.Running()));
        cachedSupported = (UffdFeatures)api.Features;
        return cachedSupported.Value;
    }

    /// <summary>One open attempt on one path, as the kernel answers it: an fd or -errno.</summary>
    public static int OpenRaw(UffdOpenPath path, int flags, out int stage)
    {
        stage = 0;
        int fd = path switch
        {
            UffdOpenPath.Syscall => Shim.uffd_open_syscall(flags),
            UffdOpenPath.SyscallUserModeOnly => Shim.uffd_open_syscall(flags | Uffd.UserModeOnly),
            UffdOpenPath.Device => Shim.uffd_open_device(null, flags, out stage),
            _ => throw new ArgumentOutOfRangeException(nameof(path), path, "Auto and Adopted are not single open paths"),
        };
        if (KernelLog.Enabled)
            KernelLog.Open(path, flags, fd);
        return fd;
    }

    private static (int Fd, UffdOpenPath Via, List<UffdOpenAttempt> Attempts, bool UserModeOnly) OpenFd(UffdOpenOptions o)
    {
        int flags = (o.CloseOnExec ? Uffd.OCloexec : 0) | (o.NonBlocking ? Uffd.ONonblock : 0) | (o.UserModeOnly ? Uffd.UserModeOnly : 0);
        UffdOpenPath[] order = o.Path switch
        {
            UffdOpenPath.Auto when o.UserModeOnly => [UffdOpenPath.Device, UffdOpenPath.Syscall],
            // The device needs no sysctl or capability, only file access; the syscall needs privilege
            // or the sysctl; user-mode-only always works but narrows semantics, so it comes last.
            UffdOpenPath.Auto => o.AllowUserModeOnlyFallback ? [UffdOpenPath.Device, UffdOpenPath.Syscall, UffdOpenPath.SyscallUserModeOnly] : [UffdOpenPath.Device, UffdOpenPath.Syscall],
            UffdOpenPath.Adopted => throw new ArgumentException("Adopted is not an open path; use Userfaultfd.Adopt", nameof(o)),
            var p => [p],
        };
        var attempts = new List<UffdOpenAttempt>();
        var kernel = KernelVersion.Running();
        foreach (var path in order)
        {
            int fd = OpenRaw(path, flags, out int stage);
            if (fd >= 0)
            {
                attempts.Add(new UffdOpenAttempt(path, 0, "ok", ""));
                return (fd, path, attempts, o.UserModeOnly || path == UffdOpenPath.SyscallUserModeOnly);
            }
            var (detail, remedy) = Remedies.Open(path == UffdOpenPath.Syscall && o.UserModeOnly ? UffdOpenPath.SyscallUserModeOnly : path, -fd, stage, kernel);
            attempts.Add(new UffdOpenAttempt(path, -fd, detail, remedy));
        }
        var last = attempts[^1];
        var summary = attempts.Count == 1 ? last.Detail : string.Join("; ", attempts.Select(a => $"{a.Path}: {Errno.Name(a.Errno)} ({a.Detail})"));
        throw new UffdException("open userfaultfd", last.Errno, summary, string.Join("; or ", attempts.Select(a => a.Remedy).Distinct()))
        {
            Data = { ["attempts"] = attempts },
        };
    }

    // ---- raw ioctls: the kernel's answer, unchanged -----------------------------------------------

    // Each logs the call with its arguments and result at Debug (UffdLogging) when enabled: one flag test otherwise.
    public int TryApi(ref UffdioApi api)
    {
        int fd = Lease();
        try
        {
            ulong requested = api.Features;
            int r;
            fixed (UffdioApi* p = &api) r = Shim.uffd_api(fd, p);
            if (KernelLog.Enabled)
                KernelLog.Api(fd, requested, api, r);
            return r;
        }
        finally { Unlease(); }
    }

    private int TryRegister(ref UffdioRegister reg) => Leased(ref reg, &Shim.uffd_register, &KernelLog.Register);

    public int TryUnregister(ref UffdioRange r) => Leased(ref r, &Shim.uffd_unregister, &LogUnregister);

    public int TryWake(ref UffdioRange r) => Leased(ref r, &Shim.uffd_wake, &LogWake);

    public int TryCopy(ref UffdioCopy c) => Leased(ref c, &Shim.uffd_copy, &LogCopy);

    public int TryZeroPage(ref UffdioZeropage z) => Leased(ref z, &Shim.uffd_zeropage, &LogZeroPage);

    public int TryWriteProtect(ref UffdioWriteprotect w) => Leased(ref w, &Shim.uffd_writeprotect, &KernelLog.WriteProtect);

    public int TryContinue(ref UffdioContinue c) => Leased(ref c, &Shim.uffd_continue, &LogContinue);

    public int TryPoison(ref UffdioPoison c) => Leased(ref c, &Shim.uffd_poison, &LogPoison);

    public int TryMove(ref UffdioMove m) => Leased(ref m, &Shim.uffd_move, &LogMove);

    /// <summary>One raw ioctl on the leased descriptor: the shim call on arg in place, then its Debug line
    /// (UffdLogging) when enabled.</summary>
    private int Leased<T>(ref T arg, delegate*<int, T*, int> ioctl, delegate*<int, in T, int, void> log) where T : unmanaged
    {
        int fd = Lease();
        try
        {
            int r;
            fixed (T* p = &arg) r = ioctl(fd, p);
            if (KernelLog.Enabled)
                log(fd, in arg, r);
            return r;
        }
        finally { Unlease(); }
    }

    private static void LogUnregister(int fd, in UffdioRange r, int rc) => KernelLog.Range("UFFDIO_UNREGISTER", fd, r, rc);
    private static void LogWake(int fd, in UffdioRange r, int rc) => KernelLog.Range("UFFDIO_WAKE", fd, r, rc);
    internal static void LogCopy(int fd, in UffdioCopy c, int r) => KernelLog.Transfer("UFFDIO_COPY", fd, c.Dst, c.Src, c.Len, c.Mode, r, "copy", c.Copy);
    internal static void LogZeroPage(int fd, in UffdioZeropage z, int r) => KernelLog.Fill("UFFDIO_ZEROPAGE", fd, z.Range, z.Mode, r, "zeropage", z.Zeropage);
    internal static void LogContinue(int fd, in UffdioContinue c, int r) => KernelLog.Fill("UFFDIO_CONTINUE", fd, c.Range, c.Mode, r, "mapped", c.Mapped);
    internal static void LogPoison(int fd, in UffdioPoison c, int r) => KernelLog.Fill("UFFDIO_POISON", fd, c.Range, c.Mode, r, "updated", c.Updated);
    internal static void LogMove(int fd, in UffdioMove m, int r) => KernelLog.Transfer("UFFDIO_MOVE", fd, m.Dst, m.Src, m.Len, m.Mode, r, "move", m.Move);

    /// <summary>Any request number: what a kernel does with an ioctl it may not know.</summary>
    internal int TryIoctlRaw(ulong request, void* arg) { int fd = Lease(); try { return Shim.uffd_ioctl_raw(fd, request, arg); } finally { Unlease(); } }

    // ---- typed ioctls -------------------------------------------------------------------------------

    /// <summary>Registers [start, start+len) and returns the ioctls the kernel offers for it.</summary>
    public UffdIoctls Register(ulong start, ulong len, RegisterMode mode)
    {
        int r = TryRegister(start, len, mode, out var ioctls);
        if (r < 0)
        {
            var (d, rem) = Remedies.Register(start, len, mode, Features, SupportedFeatures, -r, KernelVersion.Running());
            throw new UffdException($"UFFDIO_REGISTER({mode})", -r, d, rem);
        }
        return ioctls;
    }

    public int TryRegister(ulong start, ulong len, RegisterMode mode, out UffdIoctls ioctls)
    {
        var reg = new UffdioRegister { Range = new UffdioRange(start, len), Mode = (ulong)mode };
        int r = TryRegister(ref reg);
        ioctls = r == 0 ? (UffdIoctls)reg.Ioctls : UffdIoctls.None;
        return r;
    }

    /// <summary>Unregisters the range. Also clears its uffd-wp bits and markers (since ~6.0, §1.4).</summary>
    public void Unregister(ulong start, ulong len)
    {
        var r = new UffdioRange(start, len);
        UffdException.Check(TryUnregister(ref r), "UFFDIO_UNREGISTER", e => e == Errno.EINVAL
            ? ("the range is invalid or registered with another userfaultfd (refused since ~6.17)", "unregister through the uffd that registered it")
            : Remedies.Generic("UFFDIO_UNREGISTER", e));
    }

    /// <summary>Wakes every thread blocked on a fault in the range. An unresolved waiter re-faults
    /// and produces a new message (§1.4).</summary>
    public void Wake(ulong start, ulong len)
    {
        var r = new UffdioRange(start, len);
        UffdException.Check(TryWake(ref r), "UFFDIO_WAKE");
    }

    /// <summary>UFFDIO_COPY from src (an ordinary, never-registered buffer) to dst.</summary>
    public FillResult Copy(ulong dst, ulong src, ulong len, CopyMode mode = CopyMode.None)
        => Fill("UFFDIO_COPY", new UffdioCopy { Dst = dst, Src = src, Len = len, Mode = (ulong)mode }, static (Userfaultfd u, ref UffdioCopy c) => u.TryCopy(ref c), static c => c.Copy, len);

    /// <summary>UFFDIO_ZEROPAGE: the zero page on anonymous and private mappings, a zeroed page-cache page on
    /// shared shmem; refused on hugetlb (EINVAL). Results and errors as for <see cref="Copy"/> (reference §1.4).</summary>
    public FillResult ZeroPage(ulong start, ulong len, ZeroPageMode mode = ZeroPageMode.None)
        => Fill("UFFDIO_ZEROPAGE", new UffdioZeropage { Range = new UffdioRange(start, len), Mode = (ulong)mode }, static (Userfaultfd u, ref UffdioZeropage z) => u.TryZeroPage(ref z), static z => z.Zeropage, len);

    /// <summary>UFFDIO_CONTINUE (MINOR faults): maps the page already in the page cache; EFAULT where there is
    /// none, EEXIST where one is mapped; MODE_WP (6.4+) maps it write-protected (reference §1.4).</summary>
    public FillResult Continue(ulong start, ulong len, ContinueMode mode = ContinueMode.None)
        => Fill("UFFDIO_CONTINUE", new UffdioContinue { Range = new UffdioRange(start, len), Mode = (ulong)mode }, static (Userfaultfd u, ref UffdioContinue c) => u.TryContinue(ref c), static c => c.Mapped, len);

    /// <summary>UFFDIO_POISON (6.6+): installs poison markers; a later access raises SIGBUS. EEXIST where the
    /// PTE is not none, a WP marker included (reference §1.4).</summary>
    public FillResult Poison(ulong start, ulong len, PoisonMode mode = PoisonMode.None)
        => Fill("UFFDIO_POISON", new UffdioPoison { Range = new UffdioRange(start, len), Mode = (ulong)mode }, static (Userfaultfd u, ref UffdioPoison c) => u.TryPoison(ref c), static c => c.Updated, len);

    /// <summary>UFFDIO_MOVE (6.8+, anonymous private memory only): moves the pages from src to dst instead of
    /// copying them (reference §1.4).</summary>
    public FillResult Move(ulong dst, ulong src, ulong len, MoveMode mode = MoveMode.None)
        => Fill("UFFDIO_MOVE", new UffdioMove { Dst = dst, Src = src, Len = len, Mode = (ulong)mode }, static (Userfaultfd u, ref UffdioMove m) => u.TryMove(ref m), static m => m.Move, len);

    private delegate int FillIoctl<T>(Userfaultfd u, ref T arg) where T : struct;

    /// <summary>A fill ioctl and its result: the rc, and the field the kernel writes back (bytes done or -errno).</summary>
    private FillResult Fill<T>(string name, T arg, FillIoctl<T> ioctl, Func<T, long> field, ulong len) where T : struct
    {
        int r = ioctl(this, ref arg);
        return FillResult.From(name, r, field(arg), len);
    }

    /// <summary>Protects (or un-protects) the range. Returns false when an unread event blocks the
    /// change (EAGAIN, §1.6): read events, then retry.</summary>
    public bool WriteProtect(ulong start, ulong len, bool protect, bool dontWake = false)
    {
        var w = new UffdioWriteprotect
        {
            Range = new UffdioRange(start, len),
            Mode = (ulong)((protect ? WriteProtectMode.WriteProtect : 0) | (dontWake ? WriteProtectMode.DontWake : 0)),
        };
        int r = TryWriteProtect(ref w);
        if (r == -Errno.EAGAIN)
            return false;
        UffdException.Check(r, protect ? "UFFDIO_WRITEPROTECT(protect)" : "UFFDIO_WRITEPROTECT(unprotect)", e => e switch
        {
            Errno.ENOENT => ("a page range not registered in WP mode (or not mapped) was given", "register the range with RegisterMode.WriteProtect first"),
            _ => Remedies.Generic("UFFDIO_WRITEPROTECT", e),
        });
        return true;
    }

    // ---- messages -----------------------------------------------------------------------------------

    /// <summary>Reads as many messages as fit in one read(2). Returns the count, 0 when none is
    /// pending (EAGAIN on a non-blocking fd), or -1 at end of file. Allocates nothing.</summary>
    public int ReadMessages(Span<UffdMsg> buffer)
    {
        int fd = Lease();
        try
        {
            return ReadMessages(fd, buffer);
        }
        finally
        {
            Unlease();
        }
    }

    private static int ReadMessages(int fd, Span<UffdMsg> buffer)
    {
        fixed (UffdMsg* p = buffer)
        {
            int r = Shim.uffd_read_msgs(fd, p, buffer.Length);
            if (r > 0)
                return r;
            if (r == 0)
                return -1;
            if (r == -Errno.EAGAIN)
                return 0;
            UffdException.Check(r, "read(uffd)", e => e == Errno.EINVAL
                ? ("UFFDIO_API has not succeeded on this fd, or the buffer is smaller than one message", "complete the handshake first")
                : Remedies.Generic("read(uffd)", e));
            return 0;
        }
    }

    /// <summary>Reads and types the pending messages (allocates; a loop that must not allocate reads raw <see cref="UffdMsg"/>s with <see cref="ReadMessages(Span{UffdMsg})"/>).</summary>
    public List<Messages.UffdMessage> ReadTyped(int max = 64)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        var buf = new UffdMsg[max];
        int n = ReadMessages(buf);
        var list = new List<Messages.UffdMessage>(Math.Max(n, 0));
        for (int i = 0; i < n; i++)
            list.Add(Messages.UffdMessage.FromRaw(buf[i], Features));
        return list;
    }

    /// <summary>Polls this uffd and an optional stop eventfd. A blocking uffd always reports Error.</summary>
    public PollEvents Poll(int timeoutMs, EventFd? stop = null)
    {
        int fd = Lease();
        try
        {
            return (PollEvents)UffdException.Check(Shim.uffd_poll(fd, stop?.Fd ?? -1, timeoutMs), "poll(uffd)");
        }
        finally
        {
            Unlease();
        }
    }

    /// <summary>Waits up to timeoutMs for at least one message and returns the typed messages (empty
    /// on timeout). Allocates; the serving loop uses <see cref="ReadMessages(Span{UffdMsg})"/>.</summary>
    public List<Messages.UffdMessage> WaitMessages(int timeoutMs, int max = 64)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        var deadline = Environment.TickCount64 + timeoutMs;
        while (true)
        {
            var got = ReadTyped(max);
            if (got.Count > 0)
                return got;
            long left = deadline - Environment.TickCount64;
            if (left <= 0)
                return got;
            if (NonBlocking)
                Poll((int)left);
            else
                return got;
        }
    }

    /// <summary>/proc/self/fdinfo of this fd: "pending" counts unread faults.</summary>
    public UffdFdInfo ReadFdInfo()
    {
        long pending = 0, total = 0;
        ulong feats = 0, ioctls = 0;
        int fd = Lease();
        try
        {
            ParseFdInfo(File.ReadLines($"/proc/self/fdinfo/{fd}"), ref pending, ref total, ref feats, ref ioctls);
        }
        finally
        {
            Unlease();
        }
        return new UffdFdInfo(pending, total, feats, ioctls);
    }

    /// <summary>The fields of a uffd's fdinfo (pending, total, API line).</summary>
    internal static void ParseFdInfo(IEnumerable<string> lines, ref long pending, ref long total, ref ulong feats, ref ulong ioctls)
    {
        foreach (var line in lines)
        {
            if (line.StartsWith("pending:", StringComparison.Ordinal))
                pending = long.Parse(line[8..].Trim(), CultureInfo.InvariantCulture);
            else if (line.StartsWith("total:", StringComparison.Ordinal))
                total = long.Parse(line[6..].Trim(), CultureInfo.InvariantCulture);
            else if (line.StartsWith("API:", StringComparison.Ordinal))
            {
                var parts = line[4..].Trim().Split(':');
                if (parts.Length == 3)
                {
                    feats = ulong.Parse(parts[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                    ioctls = ulong.Parse(parts[2], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                }
            }
        }
    }

    /// <summary>Closing a uffd unregisters all its ranges, clears their wp bits (6.9+) and wakes
    /// every blocked thread, which then resolves normally (§1.5 close()).</summary>
    public void Dispose()
    {
        Action? notify;
        lock (handle)
        {
            if (handle.IsClosed)
                return;
            handle.Dispose(); // closes now, or when the last call holding it returns
            notify = disposing;
            disposing = null;
        }
        notify?.Invoke();
    }
}
