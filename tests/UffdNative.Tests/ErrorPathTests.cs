namespace UffdNative.Tests;

/// <summary>The error paths issue 2 names, each with its exact errno (reference §1.4, §1.8).</summary>
public class ErrorPathTests
{
    [Fact]
    public void CopyOntoAPopulatedPageIsEexistAndWakeStillReleasesTheWaiter()
    {
        using var r = Region.Shmem(2, RegisterMode.Missing);
        var src = new PageBuffer(1 * Region.Page, 3);
        Hard.Within(() =>
        {
            using var w = r.StartFaulting(Op.Read64(r.PageAt(0)), out _);
            // Another path populates the page first (the page cache, through pwrite).
            r.File!.WriteU64(0, 42);
            var c = new UffdioCopy { Dst = r.PageAt(0), Src = src.Address, Len = Region.Page, Mode = (ulong)CopyMode.DontWake };
            Assert.Equal(-Errno.EEXIST, r.Uffd.TryCopy(ref c));
            Assert.Equal(-(long)Errno.EEXIST, c.Copy);
            Assert.Equal(FillStatus.Exists, r.Uffd.Copy(r.PageAt(0), src.Address, Region.Page, CopyMode.DontWake).Status);
            Assert.False(w.Join(0));
            r.Uffd.Wake(r.PageAt(0), Region.Page); // EEXIST means "resolved — wake anyway"
            Assert.True(w.Join(5000));
            Assert.Equal(42UL, w.Results[0].Value);
        }, r.Uffd);
    }

    [Fact]
    public void WriteProtectOnARangeNotRegisteredWpIsEnoent()
    {
        using var r = Region.Shmem(1, RegisterMode.Missing);
        var w = new UffdioWriteprotect { Range = new(r.Addr, r.Len), Mode = (ulong)WriteProtectMode.WriteProtect };
        Assert.Equal(-Errno.ENOENT, r.Uffd.TryWriteProtect(ref w));
        var e = Assert.Throws<UffdException>(() => r.Uffd.WriteProtect(r.Addr, r.Len, true));
        Assert.Contains("register the range with RegisterMode.WriteProtect", e.Message);
    }

    [Fact]
    public void UnalignedRangesAreEinvalForEveryRangeIoctlAndLeaveTheFieldUntouched()
    {
        using var r = Region.Anon(2, RegisterMode.Missing | RegisterMode.WriteProtect);
        var src = new PageBuffer(1 * Region.Page, 1);
        var c = new UffdioCopy { Dst = r.Addr + 16, Src = src.Address, Len = Region.Page, Copy = 99 };
        Assert.Equal(-Errno.EINVAL, r.Uffd.TryCopy(ref c));
        Assert.Equal(99, c.Copy);
        var c2 = new UffdioCopy { Dst = r.Addr, Src = src.Address, Len = 100, Copy = 99 };
        Assert.Equal(-Errno.EINVAL, r.Uffd.TryCopy(ref c2));
        var z = new UffdioZeropage { Range = new(r.Addr + 1, Region.Page) };
        Assert.Equal(-Errno.EINVAL, r.Uffd.TryZeroPage(ref z));
        var range = new UffdioRange(r.Addr, Region.Page + 1);
        Assert.Equal(-Errno.EINVAL, r.Uffd.TryWake(ref range));
        var wp = new UffdioWriteprotect { Range = new(r.Addr + 8, Region.Page), Mode = 1 };
        Assert.Equal(-Errno.EINVAL, r.Uffd.TryWriteProtect(ref wp));
        var un = new UffdioRange(r.Addr + 8, Region.Page);
        Assert.Equal(-Errno.EINVAL, r.Uffd.TryUnregister(ref un));
    }

    [Fact]
    public void CopyAfterMunmapIsEnoent()
    {
        using var r = Region.Anon(2, RegisterMode.Missing);
        var src = new PageBuffer(1 * Region.Page, 1);
        ulong addr = r.Addr;
        Assert.Equal(0, r.Map.Unmap());
        var res = r.Uffd.Copy(addr, src.Address, Region.Page);
        Assert.Equal((FillStatus.NotRegistered, Errno.ENOENT), (res.Status, res.Errno));
        var c = new UffdioCopy { Dst = addr, Src = src.Address, Len = Region.Page };
        Assert.Equal(-Errno.ENOENT, r.Uffd.TryCopy(ref c));
        Assert.Equal(-(long)Errno.ENOENT, c.Copy);
    }

    [Fact]
    public void MoveOnShmemIsEinvalAlthoughTheMaskOffersIt()
    {
        using var r = Region.Shmem(2, RegisterMode.None);
        var ioctls = r.Uffd.Register(r.Addr, r.Len, RegisterMode.Missing);
        Assert.True(ioctls.HasFlag(UffdIoctls.Move)); // §1.4: advertised on shmem
        using var src = Mapping.Anonymous(Region.Page);
        Accessor.Fill(src.Address, Region.Page, 1);
        var m = new UffdioMove { Dst = r.Addr, Src = src.Address, Len = Region.Page };
        Assert.Equal(-Errno.EINVAL, r.Uffd.TryMove(ref m));
        var e = Assert.Throws<UffdException>(() => r.Uffd.Move(r.Addr, src.Address, Region.Page));
        Assert.Contains("MOVE is anonymous-only", e.Message);
    }

    [Fact]
    public void OperationsAfterTheOwningProcessExitedFailWithEsrchOrEnomem()
    {
        // A native fork child creates a uffd over its own memory, hands it over, and exits.
        const ulong len = 4 * 4096;
        using var child = ForkedChild.Start(
            ChildOps.UffdOpen(Uffd.OCloexec | Uffd.ONonblock, UffdFeatures.PageFaultFlagWp),
            ChildOps.MmapAnon(len),
            ChildOps.Register(RegisterMode.Missing | RegisterMode.WriteProtect),
            ChildOps.SendUffd());
        var (fd, addr) = child.ReceiveUffd(10_000);
        Assert.Equal(0, child.Finish(10_000));
        using var u = Userfaultfd.Adopt(fd, UffdFeatures.PageFaultFlagWp);
        var src = new PageBuffer(1 * Region.Page, 1);
        Hard.Within(() =>
        {
            // §1.8 "mm exited" row.
            var c = new UffdioCopy { Dst = addr, Src = src.Address, Len = 4096, Copy = 1234 };
            Assert.Equal(-Errno.ESRCH, u.TryCopy(ref c));
            Assert.Equal(1234, c.Copy); // the mm-gone path does not write the field
            var z = new UffdioZeropage { Range = new(addr, 4096) };
            Assert.Equal(-Errno.ESRCH, u.TryZeroPage(ref z));
            var w = new UffdioWriteprotect { Range = new(addr, 4096), Mode = 1 };
            Assert.Equal(-Errno.ESRCH, u.TryWriteProtect(ref w));
            var p = new UffdioPoison { Range = new(addr, 4096) };
            Assert.Equal(-Errno.ESRCH, u.TryPoison(ref p));
            var cont = new UffdioContinue { Range = new(addr, 4096) };
            Assert.Equal(-Errno.ESRCH, u.TryContinue(ref cont));
            Assert.Equal(-Errno.ENOMEM, u.TryRegister(addr, len, RegisterMode.Missing, out _));
            var range = new UffdioRange(addr, len);
            Assert.Equal(-Errno.ENOMEM, u.TryUnregister(ref range));
            Assert.Equal(0, u.TryWake(ref range));
            Assert.Equal(0, u.ReadMessages(new UffdMsg[4])); // read → EAGAIN: nothing will come
            Assert.Equal(PollEvents.None, u.Poll(0));
            var e = Assert.Throws<UffdException>(() => u.Copy(addr, src.Address, 4096));
            Assert.Contains("has exited", e.Message);
        }, u);
    }
}
