namespace UffdNative.Tests;

public class RegisterTests
{
    public static TheoryData<string, RegisterMode, ulong> Masks => new()
    {
        // reference §1.4 / §0a: the masks from 6.8 on
        { "anon", RegisterMode.Missing, 0x13c },
        { "anon", RegisterMode.WriteProtect, 0x17c },
        { "shmem", RegisterMode.Missing, 0x13c },
        { "shmem", RegisterMode.WriteProtect, 0x17c },
        { "shmem", RegisterMode.Minor, 0x1bc },
        { "shmem", RegisterMode.WriteProtect | RegisterMode.Minor, 0x1fc },
        { "shmem-private", RegisterMode.Minor, 0x1bc },
    };

    [Theory]
    [MemberData(nameof(Masks))]
    public void RegisterReturnsTheIoctlMask(string memory, RegisterMode mode, ulong expected)
    {
        using var r = memory == "anon" ? Region.Anon(2, RegisterMode.None) : Region.Shmem(2, RegisterMode.None, shared: memory == "shmem");
        var ioctls = r.Uffd.Register(r.Addr, r.Len, mode);
        Assert.Equal(expected, (ulong)ioctls);
        Assert.Equal(mode, VmaInfo.Find(r.Addr)!.RegisteredModes);
        r.Uffd.Unregister(r.Addr, r.Len);
        Assert.Equal(RegisterMode.None, VmaInfo.Find(r.Addr)!.RegisteredModes);
    }

    [Theory]
    [InlineData(0UL)]
    [InlineData(8UL)]
    public void RegisterWithModeZeroOrAnUnknownBitIsEinval(ulong mode)
    {
        using var r = Region.Anon(1, RegisterMode.None);
        Assert.Equal(-Errno.EINVAL, r.Uffd.TryRegister(r.Addr, r.Len, (RegisterMode)mode, out _));
        var e = Assert.Throws<UffdException>(() => r.Uffd.Register(r.Addr, r.Len, (RegisterMode)mode));
        Assert.Contains(mode == 0 ? "the mode is 0" : "unknown mode bits 0x8", e.Message);
    }

    [Fact]
    public void MinorOnAnonIsEinvalAndTheMessageSaysWhy()
    {
        using var r = Region.Anon(1, RegisterMode.None);
        var e = Assert.Throws<UffdException>(() => r.Uffd.Register(r.Addr, r.Len, RegisterMode.Minor));
        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.Contains("MINOR mode needs shmem or hugetlbfs", e.Message);
    }

    [Fact]
    public void SharedMappingOfAReadOnlyMemfdIsEperm()
    {
        using var f = MemfdFile.Create("ro", 2 * (long)Region.Page);
        using var ro = f.ReopenReadOnly();
        using var m = ro.MapShared(prot: Protection.Read);
        using var u = Region.OpenUffd();
        foreach (var mode in new[] { RegisterMode.Missing, RegisterMode.WriteProtect })
        {
            var e = Assert.Throws<UffdException>(() => u.Register(m.Address, m.Length, mode));
            Assert.Equal(Errno.EPERM, e.Errno);
            Assert.Contains("VM_MAYWRITE", e.Message);
        }
        // MAP_PRIVATE of the same read-only fd keeps VM_MAYWRITE and registers (§1.4).
        using var priv = ro.MapPrivate(prot: Protection.Read);
        Assert.Equal(0x13cUL, (ulong)u.Register(priv.Address, priv.Length, RegisterMode.Missing));
    }

    [Fact]
    public void RangeOwnedByAnotherUffdIsEbusy()
    {
        using var r = Region.Shmem(2, RegisterMode.Missing);
        using var other = Region.OpenUffd();
        var e = Assert.Throws<UffdException>(() => other.Register(r.Addr, r.Len, RegisterMode.Missing));
        Assert.Equal(Errno.EBUSY, e.Errno);
        Assert.Contains("another userfaultfd", e.Message);
    }

    [Fact]
    public void UnalignedStartOrLengthIsEinval()
    {
        using var r = Region.Anon(2, RegisterMode.None);
        Assert.Equal(-Errno.EINVAL, r.Uffd.TryRegister(r.Addr + 8, Region.Page, RegisterMode.Missing, out _));
        Assert.Equal(-Errno.EINVAL, r.Uffd.TryRegister(r.Addr, Region.Page - 1, RegisterMode.Missing, out _));
        Assert.Equal(-Errno.EINVAL, r.Uffd.TryRegister(r.Addr, 0, RegisterMode.Missing, out _));
    }

    [Fact]
    public void RegisteringAgainWithOtherModesReplacesThem()
    {
        using var r = Region.Shmem(2, RegisterMode.Missing);
        r.Uffd.Register(r.Addr, r.Len, RegisterMode.WriteProtect);
        // §0.9: MISSING then WP gives WP only ("um" → "uw").
        Assert.Equal(RegisterMode.WriteProtect, VmaInfo.Find(r.Addr)!.RegisteredModes);
    }

    [Fact]
    public void UnregisterThroughAnotherUffdIsEinvalOnThisKernel()
    {
        using var r = Region.Shmem(1, RegisterMode.Missing);
        using var other = Region.OpenUffd();
        var range = new Uapi.UffdioRange(r.Addr, r.Len);
        Assert.Equal(-Errno.EINVAL, other.TryUnregister(ref range)); // ~6.17 ABI change (§0.9)
        Assert.Equal(RegisterMode.Missing, VmaInfo.Find(r.Addr)!.RegisteredModes);
    }
}
