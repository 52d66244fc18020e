using System.Runtime.CompilerServices;
using UffdNative.Memory;
using UffdNative.Messages;

namespace UffdNative.Serving.Policies;

/// <summary>
/// MISSING faults: UFFDIO_COPY from a <see cref="PageSource"/> at the run's source offset (postcopy,
/// snapshot restore, lazy pages). Pages a REMOVE event discarded are served as zero instead (unless
/// <see cref="RefetchRemovedPages"/>). With <see cref="InstallWriteProtected"/> the pages are installed
/// write-protected (COPY_MODE_WP).
/// </summary>
public class MissingCopy(PageSource source, bool installWriteProtected = false) : FaultPolicy
{
    public PageSource Source { get; } = source;
    public bool InstallWriteProtected { get; } = installWriteProtected;

    /// <summary>With <see cref="InstallWriteProtected"/>: when the kernel refuses COPY_MODE_WP with
    /// EINVAL (the range is registered without WP, reference §1.4 COPY), install the page without write
    /// protection instead of failing — a second COPY in the same step.</summary>
    public bool FallBackWithoutWriteProtect { get; init; }

    /// <summary>Serve pages a REMOVE event discarded from the source again rather than as zero: for a
    /// source that stays authoritative after a discard, as in postcopy, where the destination discards
    /// (MADV_DONTNEED) the pages the source re-sends so that the next fault fetches them anew.</summary>
    public bool RefetchRemovedPages { get; init; }

    /// <summary>Source offsets (multiples of the page size) of pages the source reports poisoned — lost to a
    /// hardware memory error where the memory came from, as QEMU's postcopy source reports them. A fault on one
    /// is answered with UFFDIO_POISON (6.6+) instead of a COPY, so the faulting thread gets SIGBUS as it would
    /// have there (reference §1.4 POISON); the run is resolved a prefix at a time, poisoned and copied pages
    /// never in one ioctl. Null: none is.</summary>
    public IReadOnlySet<ulong>? PoisonedPages { get; init; }

    public override FaultKind Kind => FaultKind.Missing;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public override ResolveResult Resolve(in FaultContext context, in FaultRun run, bool dontWake)
    {
        if (run.Range is not { } range)
            return ResolveResult.Fail(Errno.EFAULT); // no source offset for memory the server does not serve
        ulong len = run.Length;
        if (!RefetchRemovedPages)
        {
            len = range.UniformPrefix(run.Start, run.Length, out bool removed);
            if (removed)
                return ZeroRemoved(context, range, run.Start, len, dontWake);
        }
        var poisoned = PoisonedPages;
        if (poisoned is not null && PoisonedPrefix(poisoned, range, run.Start, len, wanted: true) is var bad and > 0)
            return context.Poison(run.Start, bad, dontWake);
        if (len == run.Length)
            len = Extend(range, run.Start, len);
        if (poisoned is not null)
            len = PoisonedPrefix(poisoned, range, run.Start, len, wanted: false); // read-ahead stops before a poisoned page
        nint src = Source.Prepare(range.SourceOffsetOf(run.Start), len, out ulong available);
        var r = context.Copy(run.Start, src, available, dontWake, InstallWriteProtected);
        if (InstallWriteProtected && FallBackWithoutWriteProtect && r.Ret == -Errno.EINVAL)
            r = context.Copy(run.Start, src, available, dontWake);
        return r;
    }

    // The bytes from start, at most len, whose pages are all poisoned (wanted) or all not.
    private static ulong PoisonedPrefix(IReadOnlySet<ulong> poisoned, ServedRange range, ulong start, ulong len, bool wanted)
    {
        ulong n = 0;
        while (n < len && poisoned.Contains(range.SourceOffsetOf(start + n)) == wanted)
            n += Mapping.PageSize;
        return Math.Min(n, len);
    }

    /// <summary>How many bytes from start to copy for a run of len bytes (read-ahead extends it).</summary>
    protected virtual ulong Extend(ServedRange range, ulong start, ulong len) => len;

    public override FaultPolicy ForForkChild() => Source.ForForkChild() is var s && ReferenceEquals(s, Source)
        ? this
        : new MissingCopy(s, InstallWriteProtected) { FallBackWithoutWriteProtect = FallBackWithoutWriteProtect, RefetchRemovedPages = RefetchRemovedPages, PoisonedPages = PoisonedPages };
}
