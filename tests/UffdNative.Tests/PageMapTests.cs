namespace UffdNative.Tests;

public class PageMapTests
{
    [Fact]
    public void EntriesShowPresenceFileAndTheWpMarker()
    {
        using var r = Region.Shmem(3, RegisterMode.WriteProtect);
        using var pm = PageMapReader.Open();
        Assert.True(pm.Read(r.PageAt(0)).IsNone);
        Accessor.WriteU64(r.PageAt(0), 1);
        var present = pm.Read(r.PageAt(0));
        Assert.True(present.Present && present.FileOrShared && !present.UffdWp, present.ToString());
        Assert.True(r.Uffd.WriteProtect(r.Addr, r.Len, true));
        var entries = pm.Read(r.Addr, 3);
        Assert.True(entries[0].Present && entries[0].UffdWp);
        // A marker reads present=0, wp=1, swap=1 (§1.7): bit 62 is not "swapped" here.
        Assert.True(entries[1].IsWpMarker && entries[1].Swap && !entries[1].Present, entries[1].ToString());
        // It survives MADV_DONTNEED (§3.2).
        r.Map.Advise(Advice.DontNeed);
        Assert.True(pm.Read(r.PageAt(0)).IsWpMarker);
    }

    [Fact]
    public void PagemapScanWithWpAsyncReturnsExactlyTheWrittenPagesAndReprotects()
    {
        const int n = 16;
        using var r = Region.Shmem(n, RegisterMode.None, UffdFeatures.WpAsync);
        r.Uffd.Register(r.Addr, r.Len, RegisterMode.WriteProtect);
        using var pm = PageMapReader.Open();
        Assert.True(pm.ScanSupported);
        Assert.True(r.Uffd.WriteProtect(r.Addr, r.Len, true));
        foreach (int p in new[] { 3, 7, 8 })
            Accessor.WriteU64(r.PageAt(p), 1); // no message: WP_ASYNC resolves in the kernel
        Assert.Empty(r.Uffd.ReadTyped());
        var req = new PageMapScanRequest(r.Addr, r.Addr + r.Len)
        {
            Flags = PageMapScanFlags.WpMatching | PageMapScanFlags.CheckWpAsync,
            CategoryMask = PageCategory.Written,
            ReturnMask = PageCategory.Written | PageCategory.File | PageCategory.Present,
        };
        var res = pm.Scan(req);
        Assert.Equal(new[] { (r.PageAt(3), r.PageAt(4)), (r.PageAt(7), r.PageAt(9)) }, res.Regions.Select(x => (x.Start, x.End)));
        Assert.All(res.Regions, x => Assert.Equal(PageCategory.Written | PageCategory.File | PageCategory.Present, x.Categories));
        // WP_MATCHING re-protected them atomically: a second scan finds nothing written.
        Assert.Empty(pm.Scan(req).Regions);
        Assert.All(pm.Read(r.Addr, n), e => Assert.True(e.UffdWp));
    }

    [Fact]
    public void CheckWpAsyncOnUnregisteredMemoryIsEperm()
    {
        using var m = Mapping.Anonymous(4 * Region.Page);
        Accessor.Touch(m.Address, m.Length, write: true);
        using var pm = PageMapReader.Open();
        var e = Assert.Throws<UffdException>(() => pm.Scan(new PageMapScanRequest(m.Address, m.End) { Flags = PageMapScanFlags.CheckWpAsync, CategoryMask = PageCategory.Written }));
        Assert.Equal(Errno.EPERM, e.Errno);
        Assert.Contains("async write-protect", e.Message);
    }
}
