using UffdNative.Memory;

namespace UffdNative.Serving.Policies;

/// <summary>
/// MISSING faults with read-ahead: the faulting run plus up to <see cref="Pages"/> following pages of
/// the same served range in one UFFDIO_COPY. Pages already present stop the copy early (the kernel
/// answers with partial progress), so nothing is ever installed twice.
/// </summary>
public sealed class ReadAhead(PageSource source, int pages) : MissingCopy(source)
{
    public int Pages { get; } = pages >= 0 ? pages : throw new ArgumentOutOfRangeException(nameof(pages));

    protected override ulong Extend(ServedRange range, ulong start, ulong len)
    {
        ulong end = start + len;
        long page = range.PageIndex(end);
        long last = Math.Min(range.Pages, page + Pages);
        while (page < last && !range.IsRemoved(page))
            page++;
        return (ulong)page * Mapping.PageSize + range.Start - start;
    }

    public override FaultPolicy ForForkChild() => Source.ForForkChild() is var s && ReferenceEquals(s, Source) ? this : new ReadAhead(s, Pages) { RefetchRemovedPages = RefetchRemovedPages };
}
