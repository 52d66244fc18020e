using System.Runtime.InteropServices;

namespace UffdNative.Tests;

public class MemoryTests
{
    [Fact]
    public void MemfdWritesReadsPunchesAndTruncates()
    {
        using var f = MemfdFile.Create("m", 4 * (long)Region.Page);
        Assert.Equal(4 * (long)Region.Page, f.Size);
        f.WritePattern(0, 2 * (long)Region.Page, 7);
        Assert.Equal(Accessor.PatternWord(7, 3), f.ReadU64(24));
        using var shared = f.MapShared();
        using var alias = f.MapShared();
        using var priv = f.MapPrivate();
        Assert.NotEqual(shared.Address, alias.Address);
        Assert.Equal(0, Accessor.Verify(alias.Address, Region.Page, 7));
        Accessor.WriteU64(priv.Address, 99); // private CoW: the file keeps its data
        Assert.Equal(Accessor.PatternWord(7, 0), f.ReadU64(0));
        Accessor.WriteU64(shared.Address + 8, 5);
        Assert.Equal(5UL, f.ReadU64(8));
        f.PunchHole(0, (long)Region.Page);
        Assert.Equal(0UL, f.ReadU64(8));
        Assert.Equal(0UL, Accessor.ReadU64(alias.Address + 8));
        f.Truncate((long)Region.Page);
        Assert.Equal((long)Region.Page, f.Size);
        Assert.Equal(0, f.Read(2 * (long)Region.Page, new byte[8])); // beyond EOF
        Assert.Equal(VmaKind.Shmem, VmaInfo.Find(shared.Address)!.Kind);
        Assert.True(VmaInfo.Find(shared.Address)!.Shared);
        Assert.False(VmaInfo.Find(priv.Address)!.Shared);
    }

    [Fact]
    public void MappingsAdviseProtectRemapAndUnmap()
    {
        using var m = Mapping.Anonymous(4 * Region.Page);
        Assert.Equal(VmaKind.Anonymous, VmaInfo.Find(m.Address)!.Kind);
        Accessor.Fill(m.Address, m.Length, 3);
        using var pm = PageMapReader.Open();
        Assert.True(pm.Read(m.PageAddress(1)).Present);
        m.Advise(Advice.DontNeed, Region.Page, Region.Page);
        Assert.False(pm.Read(m.PageAddress(1)).Present);
        Assert.Equal(0UL, Accessor.ReadU64(m.PageAddress(1)));
        m.Protect(Protection.Read, 0, Region.Page);
        Assert.Equal("r--p", VmaInfo.Find(m.Address)!.Perms);
        m.Protect(Protection.ReadWrite, 0, Region.Page);
        ulong old = m.Address;
        var reservation = Mapping.Reserve(8 * Region.Page);
        ulong target = reservation.Address;
        ulong moved = m.Remap(8 * Region.Page, reservation);
        Assert.Equal(target, moved);
        Assert.True(reservation.IsUnmapped);
        Assert.NotEqual(old, moved);
        // Nothing is asserted about the vacated range: it is free address space, and the runtime may
        // map something there at any moment (seen: its W^X double mapping).
        Assert.Equal(VmaKind.Anonymous, VmaInfo.Find(moved)!.Kind);
        Assert.Equal(Accessor.PatternWord(3, 0), Accessor.ReadU64(moved));
        Assert.Equal(Errno.EINVAL, Assert.Throws<UffdException>(() => m.Advise((Advice)12345)).Errno);
        Assert.Equal(0, m.Unmap());
        Assert.True(m.IsUnmapped);
        Assert.Equal(0, m.Unmap()); // idempotent: the second call does not unmap whatever lives there now
    }
}

/// <summary><see cref="MemfdFile.CreateHugetlb"/> asks for its huge page size (MFD_HUGE_SHIFT), whatever the default:
/// st_blksize of a hugetlbfs file is its huge page size (hugetlbfs_statfs/getattr), read with fstat(2) — no page is
/// allocated, so the pools need nothing reserved.</summary>
public unsafe class HugetlbMemfdTests
{
    [DllImport("libc", SetLastError = true)]
    private static extern int fstat(int fd, byte* buf);

    private static long BlockSize(int fd)
    {
        byte* st = stackalloc byte[144]; // struct stat on x86-64: 144 bytes, st_blksize at offset 56
        Assert.Equal(0, fstat(fd, st));
        return *(long*)(st + 56);
    }

    [Theory]
    [InlineData(21)] // 2 MiB
    [InlineData(22)] // 4 MiB: no x86-64 page size
    [InlineData(30)] // 1 GiB
    public void AHugetlbMemfdHasThePageSizeItAskedForOrFailsNamingTheAbsentPool(int shift)
    {
        long kb = (1L << shift) / 1024;
        bool supported = Directory.Exists($"/sys/kernel/mm/hugepages/hugepages-{kb}kB");
        if (supported)
        {
            using var f = MemfdFile.CreateHugetlb("huge", 0, shift);
            Assert.True(f.HugeTlb);
            Assert.Equal(1L << shift, BlockSize(f.Fd));
        }
        else
        {
            var e = Assert.Throws<UffdException>(() => MemfdFile.CreateHugetlb("huge", 0, shift));
            Assert.Contains($"hugepages-{kb}kB absent", e.Message, StringComparison.Ordinal);
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => MemfdFile.CreateHugetlb("huge", 0, 64));
    }
}
