using UffdNative.Interop;
using UffdNative.Uapi;
using UffdNative.Messages;
using UffdNative.PageMap;

namespace UffdNative.Serving.Policies;

/// <summary>
/// Asynchronous write tracking (UFFD_FEATURE_WP_ASYNC, 6.7+): the kernel resolves WP faults itself by
/// dropping the page's uffd-wp bit, so no message is ever sent; <see cref="Collect()"/> finds the written
/// pages with PAGEMAP_SCAN and re-protects them atomically (PM_SCAN_WP_MATCHING), as Wine's
/// GetWriteWatch does. A WP message on an async uffd is a contradiction, so <see cref="Resolve"/> fails.
/// </summary>
public sealed unsafe class AsyncWriteTracking : FaultPolicy, IDisposable
{
    private readonly Userfaultfd uffd;
    private readonly PageMapReader pagemap;

    public ulong Start { get; }
    public ulong Length { get; }

    public AsyncWriteTracking(Userfaultfd uffd, ulong start, ulong length)
    {
        if ((uffd.Features & UffdFeatures.WpAsync) == 0)
            throw new UffdException("async write tracking", Errno.EINVAL, "the uffd was opened without UFFD_FEATURE_WP_ASYNC", "open it with RequiredFeatures = WpAsync (Linux 6.7+)");
        this.uffd = uffd;
        Start = start;
        Length = length;
        pagemap = PageMapReader.Open();
    }

    public override FaultKind Kind => FaultKind.WriteProtect;

    public override ResolveResult Resolve(in FaultContext context, in FaultRun run, bool dontWake) => ResolveResult.Fail(Errno.EPROTO);

    /// <summary>Starts tracking: write-protects the whole range (unpopulated pages get markers, since
    /// WP_ASYNC implies WP_UNPOPULATED). Returns false when an unread event blocks it (retry).</summary>
    public bool Arm() => uffd.WriteProtect(Start, Length, protect: true);

    /// <summary>One PAGEMAP_SCAN pass from start: the written regions (up to regions.Length) are stored
    /// and re-protected. Returns the count; walkEnd is where the walk stopped (End when complete).
    /// Allocates nothing.</summary>
    public int Collect(Span<PageRegion> regions, ulong start, out ulong walkEnd)
    {
        int r = pagemap.TryScan(start, Start + Length, regions, PageCategory.Written, PageCategory.Written, out walkEnd,
            PageMapScanFlags.WpMatching | PageMapScanFlags.CheckWpAsync);
        if (r < 0)
            throw new UffdException("PAGEMAP_SCAN(WP_MATCHING)", -r, -r == Errno.EPERM ? "a page in the range is not under async write-protect" : "",
                -r == Errno.EPERM ? "register the whole range WP on the WP_ASYNC uffd" : "PAGEMAP_SCAN needs Linux 6.7+");
        return r;
    }

    /// <summary>Every written region since the last collection (allocates the list), re-protected.</summary>
    public IReadOnlyList<ScannedRegion> Collect()
    {
        var list = new List<ScannedRegion>();
        Span<PageRegion> buf = stackalloc PageRegion[256];
        ulong pos = Start, end = Start + Length;
        while (pos < end)
        {
            int n = Collect(buf, pos, out ulong walkEnd);
            for (int i = 0; i < n; i++)
                list.Add(new ScannedRegion(buf[i].Start, buf[i].End, (PageCategory)buf[i].Categories));
            if (walkEnd <= pos)
                break;
            pos = walkEnd;
        }
        return list;
    }

    public void Dispose() => pagemap.Dispose();
}
