using System.Text;
using Tmds.Linux;
using UffdNative.Interop;
using UffdNative.Uapi;
using UffdNative.Memory;
using static Tmds.Linux.LibC;

namespace UffdNative.PageMap;

/// <summary>One /proc/pid/pagemap entry (reference §1.7). A uffd-wp PTE marker reads present=0,
/// wp=1, swap=1: bit 62 is not "swapped" then.</summary>
public readonly record struct PageMapEntry(ulong Raw)
{
    public const ulong SoftDirtyBit = 1UL << 55, ExclusiveBit = 1UL << 56, UffdWpBit = 1UL << 57, GuardBit = 1UL << 58,
        FileBit = 1UL << 61, SwapBit = 1UL << 62, PresentBit = 1UL << 63;

    public bool Present => (Raw & PresentBit) != 0;
    public bool Swap => (Raw & SwapBit) != 0;
    public bool FileOrShared => (Raw & FileBit) != 0;
    public bool Guard => (Raw & GuardBit) != 0;
    public bool UffdWp => (Raw & UffdWpBit) != 0;
    public bool Exclusive => (Raw & ExclusiveBit) != 0;
    public bool SoftDirty => (Raw & SoftDirtyBit) != 0;
    /// <summary>A uffd-wp PTE marker: not present, wp and swap set (shmem, and anon with WP_UNPOPULATED).</summary>
    public bool IsWpMarker => !Present && UffdWp && Swap;
    /// <summary>Nothing at all: no page, no marker.</summary>
    public bool IsNone => !Present && !Swap && !UffdWp;
    /// <summary>PFN, zeroed by the kernel without CAP_SYS_ADMIN.</summary>
    public ulong Pfn => Present ? Raw & ((1UL << 55) - 1) : 0;

    public override string ToString() =>
        IsWpMarker ? "marker(wp)" : IsNone ? "none" :
        $"{(Present ? "present" : Swap ? "swap" : "none")}{(UffdWp ? "+wp" : "")}{(FileOrShared ? "+file" : "")}{(Exclusive ? "+excl" : "")}";
}

/// <summary>A page range PAGEMAP_SCAN reported, with its categories.</summary>
public readonly record struct ScannedRegion(ulong Start, ulong End, PageCategory Categories)
{
    public ulong Pages(ulong pageSize = 4096) => (End - Start) / pageSize;
}

/// <summary>The request of one PAGEMAP_SCAN (6.7+).</summary>
public sealed record PageMapScanRequest(ulong Start, ulong End)
{
    public PageMapScanFlags Flags { get; init; }
    public PageCategory CategoryMask { get; init; }
    public PageCategory CategoryInverted { get; init; }
    public PageCategory CategoryAnyOf { get; init; }
    public PageCategory ReturnMask { get; init; } = PageCategory.Written | PageCategory.File | PageCategory.Present | PageCategory.Swapped | PageCategory.PfnZero | PageCategory.Huge;
    public ulong MaxPages { get; init; }
}

public sealed record PageMapScanResult(IReadOnlyList<ScannedRegion> Regions, ulong WalkEnd)
{
    public ulong TotalPages(ulong pageSize = 4096) => (ulong)Regions.Sum(r => (long)r.Pages(pageSize));
}

/// <summary>/proc/self (or /proc/pid) pagemap: entries for a range, and PAGEMAP_SCAN. Reading it
/// never touches the mapped memory itself.</summary>
public sealed unsafe class PageMapReader : IDisposable
{
    public SafeFdHandle Handle { get; }
    public int Pid { get; }

    private PageMapReader(SafeFdHandle h, int pid)
    {
        Handle = h;
        Pid = pid;
    }

    /// <summary>Opens pagemap. Open it in the process whose tables you want: an fd opened before
    /// fork() still reads the parent's tables in the child (§1.7).</summary>
    public static PageMapReader Open(int pid = 0)
    {
        var path = Encoding.UTF8.GetBytes((pid == 0 ? "/proc/self/pagemap" : $"/proc/{pid}/pagemap") + "\0");
        int fd;
        fixed (byte* p = path)
            fd = open(p, O_RDONLY | O_CLOEXEC, 0);
        if (fd < 0)
            throw new UffdException("open(pagemap)", Sys.Err(), "", "pagemap needs /proc mounted and access to the target process");
        return new PageMapReader(new SafeFdHandle(fd), pid);
    }

    public PageMapEntry Read(ulong address) => Read(address, 1)[0];

    public PageMapEntry[] Read(ulong address, long pages)
    {
        var raw = new ulong[pages];
        fixed (ulong* p = raw)
        {
            long want = pages * 8, off = (long)(address / Mapping.PageSize) * 8, done = 0;
            while (done < want)
            {
                long n = pread(Handle.Fd, (byte*)p + done, Sys.Size((ulong)(want - done)), off + done);
                if (n < 0 && Sys.Err() == Errno.EINTR)
                    continue;
                if (n <= 0)
                    throw new UffdException("pread(pagemap)", n < 0 ? Sys.Err() : Errno.EIO, $"0x{address:x} ({pages} pages)", "");
                done += n;
            }
        }
        return Array.ConvertAll(raw, r => new PageMapEntry(r));
    }

    private static bool? scanSupported;

    /// <summary>Whether PAGEMAP_SCAN exists (Linux 6.7+). Older kernels answer ENOTTY (6.1 measured).</summary>
    public bool ScanSupported
    {
        get
        {
            if (scanSupported is { } s)
                return s;
            var arg = new PmScanArg { Size = (ulong)sizeof(PmScanArg) };
            int r = Shim.uffd_pagemap_scan(Handle.Fd, &arg);
            // A zero-length range is valid on 6.7+ (0 regions); an unknown ioctl is ENOTTY/EINVAL.
            scanSupported = r >= 0;
            return r >= 0;
        }
    }

    /// <summary>Raw PAGEMAP_SCAN: regions written into vec, count or -errno.</summary>
    public int TryScan(ref PmScanArg arg)
    {
        fixed (PmScanArg* p = &arg)
            return Shim.uffd_pagemap_scan(Handle.Fd, p);
    }

    /// <summary>PAGEMAP_SCAN of [start, end) into regions, allocating nothing: the pages in every category of
    /// categories (and, when anyOf is given, in one of anyOf), each region with its categories of returned.
    /// The count or -errno; walkEnd is where the walk stopped (end when it completed).</summary>
    public int TryScan(ulong start, ulong end, Span<PageRegion> regions, PageCategory categories, PageCategory returned, out ulong walkEnd,
        PageMapScanFlags flags = PageMapScanFlags.None, PageCategory anyOf = PageCategory.None)
    {
        fixed (PageRegion* v = regions)
        {
            var arg = new PmScanArg
            {
                Size = (ulong)sizeof(PmScanArg),
                Flags = (ulong)flags,
                Start = start,
                End = end,
                Vec = (ulong)v,
                VecLen = (ulong)regions.Length,
                CategoryMask = (ulong)categories,
                CategoryAnyofMask = (ulong)anyOf,
                ReturnMask = (ulong)returned,
            };
            int r = Shim.uffd_pagemap_scan(Handle.Fd, &arg);
            walkEnd = arg.WalkEnd;
            return r;
        }
    }

    /// <summary>PAGEMAP_SCAN over the request. Throws a clear "not supported by this kernel" on
    /// kernels before 6.7.</summary>
    public PageMapScanResult Scan(PageMapScanRequest req, int maxRegions = 4096)
    {
        var vec = new PageRegion[maxRegions];
        fixed (PageRegion* v = vec)
        {
            var arg = new PmScanArg
            {
                Size = (ulong)sizeof(PmScanArg),
                Flags = (ulong)req.Flags,
                Start = req.Start,
                End = req.End,
                Vec = (ulong)v,
                VecLen = (ulong)maxRegions,
                MaxPages = req.MaxPages,
                CategoryInverted = (ulong)req.CategoryInverted,
                CategoryMask = (ulong)req.CategoryMask,
                CategoryAnyofMask = (ulong)req.CategoryAnyOf,
                ReturnMask = (ulong)req.ReturnMask,
            };
            int r = Shim.uffd_pagemap_scan(Handle.Fd, &arg);
            if (r < 0)
            {
                var (d, rem) = -r switch
                {
                    Errno.ENOTTY or Errno.EINVAL when !ScanSupported => ($"PAGEMAP_SCAN is not supported by this kernel ({KernelVersion.RunningRelease()}); it needs Linux 6.7+", "read pagemap entries one by one (PageMapReader.Read) or use a newer kernel"),
                    Errno.EPERM => ("PM_SCAN_CHECK_WPASYNC: a page in the range is not under async write-protect", "register the range WP on a WP_ASYNC uffd first"),
                    _ => Remedies.Generic("PAGEMAP_SCAN", -r),
                };
                throw new UffdException("PAGEMAP_SCAN", -r, d, rem);
            }
            var list = new ScannedRegion[r];
            for (int i = 0; i < r; i++)
                list[i] = new ScannedRegion(vec[i].Start, vec[i].End, (PageCategory)vec[i].Categories);
            return new PageMapScanResult(list, arg.WalkEnd);
        }
    }

    public void Dispose() => Handle.Dispose();
}
