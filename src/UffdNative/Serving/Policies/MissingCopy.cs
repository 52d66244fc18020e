using System.Runtime.CompilerServices;
using UffdNative.Messages;

namespace UffdNative.Serving.Policies;

/// <summary>
/// MISSING faults: UFFDIO_COPY from a <see cref="PageSource"/> at the run's source offset (postcopy,
/// snapshot restore, lazy pages). Pages a REMOVE event discarded are served as zero instead. With
/// <see cref="InstallWriteProtected"/> the pages are installed write-protected (COPY_MODE_WP).
/// </summary>
public class MissingCopy(PageSource source, bool installWriteProtected = false) : FaultPolicy
{
    public PageSource Source { get; } = source;
    public bool InstallWriteProtected { get; } = installWriteProtected;

    public override FaultKind Kind => FaultKind.Missing;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public override ResolveResult Resolve(in FaultContext context, in FaultRun run, bool dontWake)
    {
        if (run.Range is not { } range)
            return ResolveResult.Fail(Errno.EFAULT); // no source offset for memory the server does not serve
        ulong len = range.UniformPrefix(run.Start, run.Length, out bool removed);
        if (removed)
            return ZeroRemoved(context, range, run.Start, len, dontWake);
        if (len == run.Length)
            len = Extend(range, run.Start, len);
        nint src = Source.Prepare(range.SourceOffsetOf(run.Start), len, out ulong available);
        return context.Copy(run.Start, src, available, dontWake, InstallWriteProtected);
    }

    /// <summary>How many bytes from start to copy for a run of len bytes (read-ahead extends it).</summary>
    protected virtual ulong Extend(ServedRange range, ulong start, ulong len) => len;

    public override FaultPolicy ForForkChild() => Source.ForForkChild() is var s && ReferenceEquals(s, Source) ? this : new MissingCopy(s, InstallWriteProtected);
}
