using System.Runtime.CompilerServices;
using UffdNative.Interop;
using UffdNative.Uapi;
using UffdNative.Memory;
using UffdNative.Messages;

namespace UffdNative.Serving;

/// <summary>
/// A run of contiguous faulting pages of one kind, inside one served range (or none, when the server
/// serves no ranges): the unit a policy resolves. The server sorts and coalesces the faults of a read
/// into runs, so one ioctl can resolve, and wake, many faults.
/// </summary>
public readonly struct FaultRun
{
    public ulong Start { get; }
    public ulong Length { get; }
    public FaultKind Kind { get; }
    /// <summary>The served range that contains the run, or null when the server tracks no range for it.</summary>
    public ServedRange? Range { get; }

    public FaultRun(ulong start, ulong length, FaultKind kind, ServedRange? range)
    {
        Start = start;
        Length = length;
        Kind = kind;
        Range = range;
    }

    public ulong End => Start + Length;
    public long Pages => (long)(Length / Mapping.PageSize);
}

/// <summary>What one resolution step did: <see cref="Ret"/> is 0 or -errno, <see cref="Bytes"/> the
/// progress (it may be &gt; 0 together with -EAGAIN: a partial result, reference §0.7).</summary>
public readonly record struct ResolveResult(int Ret, long Bytes)
{
    public static ResolveResult Done(ulong bytes) => new(0, (long)bytes);
    public static ResolveResult Fail(int errno) => new(-Math.Abs(errno), 0);
}

/// <summary>
/// What a policy may do from the loop thread: the resolving ioctls on the server's uffd (each counted
/// in the statistics, and logged at Debug under UffdNative.Kernel when <see cref="UffdLogging"/> enables it), and a native memory copy. Every call is a P/Invoke into the shim, so the loop
/// thread never touches registered memory itself (ARCHITECTURE.md rule 2).
/// </summary>
public readonly unsafe struct FaultContext
{
    private readonly UffdLoopStats* stats;
    // Set only in stepped mode (FaultServer.ResolvePending): every ioctl is also recorded there.
    private readonly ResolutionLog? log;

    public int Fd { get; }

    internal FaultContext(int fd, UffdLoopStats* stats, ResolutionLog? log = null)
    {
        Fd = fd;
        this.stats = stats;
        this.log = log;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ResolveResult Copy(ulong dst, nint src, ulong len, bool dontWake, bool writeProtect = false) =>
        Transfer(ResolutionIoctlKind.Copy, dst, (ulong)src, len, (dontWake ? (ulong)CopyMode.DontWake : 0) | (writeProtect ? (ulong)CopyMode.WriteProtect : 0));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ResolveResult ZeroPage(ulong start, ulong len, bool dontWake) =>
        Fill(ResolutionIoctlKind.ZeroPage, start, len, dontWake ? (ulong)ZeroPageMode.DontWake : 0);

    /// <summary>Removes write protection from the range (wakes it unless dontWake).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ResolveResult Unprotect(ulong start, ulong len, bool dontWake)
    {
        var w = new UffdioWriteprotect { Range = new UffdioRange(start, len), Mode = dontWake ? (ulong)WriteProtectMode.DontWake : 0 };
        stats->ResolveIoctls++;
        int r = Shim.uffd_writeprotect(Fd, &w);
        if (KernelLog.Enabled)
            KernelLog.WriteProtect(Fd, w, r);
        return Logged(ResolutionIoctlKind.WriteProtect, start, len, w.Mode, r, r == 0 ? (long)len : 0);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ResolveResult Continue(ulong start, ulong len, bool dontWake, bool writeProtect = false) =>
        Fill(ResolutionIoctlKind.Continue, start, len, (dontWake ? (ulong)ContinueMode.DontWake : 0) | (writeProtect ? (ulong)ContinueMode.WriteProtect : 0));

    /// <summary>UFFDIO_POISON (6.6+): the range gets poison markers, so any access to it raises SIGBUS (a
    /// kernel-mode one fails with EFAULT), as memory with a hardware error would (reference §1.4 POISON, §3.10).
    /// Bytes: the bytes marked.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ResolveResult Poison(ulong start, ulong len, bool dontWake) =>
        Fill(ResolutionIoctlKind.Poison, start, len, dontWake ? (ulong)PoisonMode.DontWake : 0);

    // UFFDIO_ZEROPAGE, UFFDIO_CONTINUE and UFFDIO_POISON take one uapi layout: {struct uffdio_range range;
    // __u64 mode; __s64 result} (reference §1.4; the layout table proves each against the kernel's at first
    // use). One argument serves them, handed to each entry point as its own type; kind is a constant at
    // every call site, so the inlined switch leaves one direct call.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ResolveResult Fill(ResolutionIoctlKind kind, ulong start, ulong len, ulong mode)
    {
        var f = new UffdioZeropage { Range = new UffdioRange(start, len), Mode = mode };
        stats->ResolveIoctls++;
        int r = kind switch
        {
            ResolutionIoctlKind.ZeroPage => Shim.uffd_zeropage(Fd, &f),
            ResolutionIoctlKind.Continue => Shim.uffd_continue(Fd, (UffdioContinue*)&f),
            _ => Shim.uffd_poison(Fd, (UffdioPoison*)&f),
        };
        if (KernelLog.Enabled)
            LogFill(kind, Fd, f, r);
        return Logged(kind, start, len, mode, r, f.Zeropage);
    }

    // The ioctl's Debug line, named as the raw Try* calls name it (Userfaultfd), with the result field of its type.
    private static void LogFill(ResolutionIoctlKind kind, int fd, UffdioZeropage f, int r)
    {
        if (kind == ResolutionIoctlKind.ZeroPage)
            Userfaultfd.LogZeroPage(fd, f, r);
        else if (kind == ResolutionIoctlKind.Continue)
            Userfaultfd.LogContinue(fd, *(UffdioContinue*)&f, r);
        else
            Userfaultfd.LogPoison(fd, *(UffdioPoison*)&f, r);
    }

    /// <summary>UFFDIO_MOVE of [src, src+len) to dst (6.8+, anonymous private memory only): the pages
    /// change owner instead of being copied. allowSourceHoles: a missing source page is skipped rather
    /// than failing the move with ENOENT (reference §1.4 MOVE). Bytes: the bytes moved from dst on.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ResolveResult Move(ulong dst, ulong src, ulong len, bool dontWake, bool allowSourceHoles = true) =>
        Transfer(ResolutionIoctlKind.Move, dst, src, len, (dontWake ? (ulong)MoveMode.DontWake : 0) | (allowSourceHoles ? (ulong)MoveMode.AllowSrcHoles : 0));

    // UFFDIO_COPY and UFFDIO_MOVE take one uapi layout too: {__u64 dst, src, len, mode; __s64 result} (§1.4),
    // served the same way as Fill's.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ResolveResult Transfer(ResolutionIoctlKind kind, ulong dst, ulong src, ulong len, ulong mode)
    {
        var t = new UffdioCopy { Dst = dst, Src = src, Len = len, Mode = mode };
        stats->ResolveIoctls++;
        int r = kind == ResolutionIoctlKind.Copy ? Shim.uffd_copy(Fd, &t) : Shim.uffd_move(Fd, (UffdioMove*)&t);
        if (KernelLog.Enabled)
        {
            if (kind == ResolutionIoctlKind.Copy)
                Userfaultfd.LogCopy(Fd, t, r);
            else
                Userfaultfd.LogMove(Fd, *(UffdioMove*)&t, r);
        }
        return Logged(kind, dst, len, mode, r, t.Copy);
    }

    // What every resolving ioctl returns: its ret and its struct's progress field (negative: none; read
    // after the ioctl, which writes it), recorded in stepped mode.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ResolveResult Logged(ResolutionIoctlKind kind, ulong start, ulong len, ulong mode, int ret, long progress)
    {
        var result = new ResolveResult(ret, progress > 0 ? progress : 0);
        log?.Add(kind, start, len, mode, result);
        return result;
    }

    /// <summary>Copies bytes natively (e.g. a write-protected page into a snapshot store).</summary>
    public void CopyMemory(nint dst, ulong src, ulong len) => Shim.uffd_copy_memory((void*)dst, (void*)src, len);

    internal void CountSnapshotPages(ulong pages) => stats->SnapshotPages += pages;
    internal void CountZeroPages(ulong pages) => stats->ZeroPages += pages;
}

/// <summary>Saves one page of a WP snapshot before it may change: 1 saved now, 0 already saved (or
/// outside the store), a negative errno when the content cannot be read.</summary>
internal interface IPageSaver
{
    int Save(in FaultContext context, ulong offset, ulong address);
}

/// <summary>The one WP-snapshot resolution (in-process <see cref="Policies.WpSnapshot"/> and the external
/// handler's twin): every page of the run is saved at its source offset before the run is unprotected,
/// so no write can reach a page whose old content the snapshot lacks.</summary>
internal static class SnapshotResolution
{
    internal static ResolveResult SaveThenUnprotect<TSaver>(ref TSaver saver, in FaultContext context, in FaultRun run, bool dontWake)
        where TSaver : struct, IPageSaver
    {
        if (run.Range is not { } range)
            return ResolveResult.Fail(Errno.EFAULT);
        ulong page = Memory.Mapping.PageSize, saved = 0;
        for (ulong a = run.Start; a < run.End; a += page)
        {
            int r = saver.Save(context, range.SourceOffsetOf(a), a);
            if (r < 0)
                return ResolveResult.Fail(-r);
            saved += (ulong)r;
        }
        context.CountSnapshotPages(saved);
        return context.Unprotect(run.Start, run.Length, dontWake);
    }
}

/// <summary>
/// How faults of one kind are resolved. <see cref="Resolve"/> runs on the loop thread for a run of
/// contiguous pages and must not allocate or block for long; it makes one resolution step and reports
/// its progress, and the server does the rest: more steps with DONTWAKE when a step did not finish the
/// run, one WAKE for the run at the end, EEXIST/EAGAIN/ENOENT/ESRCH by the loop's errno rules. An
/// exception stops the server, which closes the uffd (every faulting thread is then released).
/// </summary>
public abstract class FaultPolicy
{
    /// <summary>The fault kind this policy serves.</summary>
    public abstract FaultKind Kind { get; }

    public virtual string Name => GetType().Name;

    /// <summary>One resolution step over (a prefix of) run. dontWake: do not wake the resolved
    /// pages (the server wakes the whole run once afterwards).</summary>
    public abstract ResolveResult Resolve(in FaultContext context, in FaultRun run, bool dontWake);

    /// <summary>The policy a FORK child's server uses (ForkBehavior.Serve). Stateless policies return
    /// themselves; policies with per-process state return a copy.</summary>
    public virtual FaultPolicy ForForkChild() => this;

    /// <summary>Zero-fills the removed prefix of a missing run (REMOVE events, see <see cref="ServedRange"/>).
    /// The removed marks stay set: the REMOVE event is delivered before the kernel zaps the range, so a
    /// fault between the read of the event and the zap is zero-filled here and then zapped again — the
    /// next fault must be zero-filled again, never served from the source (found by the soak).</summary>
    protected static ResolveResult ZeroRemoved(in FaultContext context, ServedRange range, ulong start, ulong len, bool dontWake)
    {
        var r = context.ZeroPage(start, len, dontWake);
        context.CountZeroPages((ulong)(r.Bytes / (long)Mapping.PageSize));
        return r;
    }
}
