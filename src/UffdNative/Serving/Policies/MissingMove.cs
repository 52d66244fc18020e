using System.Runtime.CompilerServices;
using UffdNative.Memory;
using UffdNative.Messages;

namespace UffdNative.Serving.Policies;

/// <summary>
/// MISSING faults: UFFDIO_MOVE (6.8+) of the page from a source region of this process instead of a
/// copy — the pages change owner, no byte is copied and the source is left empty (reference §1.4 MOVE).
/// This is postcopy and lazy restore (CRIU) when the content was received into a staging area: the
/// destination page at source offset o of its <see cref="ServedRange"/> comes from
/// <see cref="SourceStart"/> + o. Pages are moved <see cref="ChunkPages"/> at a time, the chunk aligned
/// within its range (a 2 MiB chunk of a THP source moves as one PMD, §3.8); a chunk never extends
/// past its range. Source holes are allowed (MOVE_MODE_ALLOW_SRC_HOLES): a page never received is left
/// missing in the destination rather than failing the move, and faults again.
/// Both regions must be private anonymous memory in the faulting process (MOVE refuses anything else
/// with EINVAL); the source must not be registered with the same uffd for MISSING faults it would
/// then raise itself. A fault in a FORK child moves the child's own copy of the source.
/// </summary>
public sealed class MissingMove : FaultPolicy
{
    private ulong sourceStart;

    public MissingMove(ulong sourceStart, ulong sourceLength, int chunkPages = 1)
    {
        if (sourceStart % Mapping.PageSize != 0 || sourceLength % Mapping.PageSize != 0 || sourceLength == 0)
            throw new ArgumentException($"the source must be page aligned and non-empty (start 0x{sourceStart:x}, length {sourceLength})");
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkPages, 1);
        this.sourceStart = sourceStart;
        SourceLength = sourceLength;
        ChunkPages = chunkPages;
    }

    /// <summary>Where the source region is now. Set it when the source moves (mremap of the staging
    /// area): the next fault uses the new address.</summary>
    public ulong SourceStart
    {
        get => Volatile.Read(ref sourceStart);
        set => Volatile.Write(ref sourceStart, value);
    }

    public ulong SourceLength { get; }

    public int ChunkPages { get; }

    public override FaultKind Kind => FaultKind.Missing;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public override ResolveResult Resolve(in FaultContext context, in FaultRun run, bool dontWake)
    {
        if (run.Range is not { } range)
            return ResolveResult.Fail(Errno.EFAULT); // no source offset for memory the server does not serve
        ulong page = Mapping.PageSize, chunk = (ulong)ChunkPages * page;
        ulong first = run.Start - (run.Start - range.Start) % chunk;
        ulong len = Math.Min(chunk, range.End - first);
        ulong offset = range.SourceOffsetOf(first);
        if (offset >= SourceLength)
            return ResolveResult.Fail(Errno.EFAULT); // the range is larger than the source
        len = Math.Min(len, SourceLength - offset);
        var r = context.Move(first, SourceStart + offset, len, dontWake, allowSourceHoles: true);
        // The chunk may start before the run: report the progress from the run's start (what the server
        // counts), so a partial move that stopped before it is no progress for this run.
        long done = r.Bytes - (long)(run.Start - first);
        return new ResolveResult(r.Ret, done > 0 ? done : 0);
    }
}
