namespace UffdNative.Tests;

/// <summary>Every ioctl's success path on this kernel, with the content or pagemap state it must leave.</summary>
public class IoctlTests
{
    private const ulong Seed = 0x5eed;

    [Fact]
    public void CopyFillsAMissingPageAndWakesTheReader()
    {
        using var r = Region.Anon(4, RegisterMode.Missing);
        var src = new PageBuffer(1 * Region.Page, Seed);
        Hard.Within(() =>
        {
            using var w = r.StartFaulting(Op.Verify(r.PageAt(2), Region.Page, Seed), out var pf);
            Assert.Equal(r.PageAt(2), pf.Address);
            var res = r.Uffd.Copy(r.PageAt(2), src.Address, Region.Page);
            Assert.Equal(FillStatus.Complete, res.Status);
            Assert.Equal((long)Region.Page, res.Field);
            Assert.True(w.Join(5000));
            Assert.Equal(0, w.Results[0].Ret); // every word matches the source
        }, r.Uffd);
    }

    [Fact]
    public void CopyWithDontWakeLeavesTheReaderBlockedUntilWake()
    {
        using var r = Region.Anon(2, RegisterMode.Missing);
        var src = new PageBuffer(1 * Region.Page, Seed);
        Hard.Within(() =>
        {
            using var w = r.StartFaulting(Op.Verify(r.PageAt(0), Region.Page, Seed), out _);
            Assert.Equal(FillStatus.Complete, r.Uffd.Copy(r.PageAt(0), src.Address, Region.Page, CopyMode.DontWake).Status);
            // Not woken: still counted as a read-but-unresolved fault and still sleeping in it.
            Assert.False(w.Join(0));
            Assert.Equal(1, r.Uffd.ReadFdInfo().Total);
            Assert.Equal('S', w.State);
            r.Uffd.Wake(r.PageAt(0), Region.Page);
            Assert.True(w.Join(5000));
            Assert.Equal(0, w.Results[0].Ret);
        }, r.Uffd);
    }

    [Fact]
    public void CopyWithModeWpMapsReadOnlyWithTheWpBit()
    {
        using var r = Region.Shmem(2, RegisterMode.Missing | RegisterMode.WriteProtect);
        var src = new PageBuffer(1 * Region.Page, Seed);
        using var pm = PageMapReader.Open();
        Assert.Equal(FillStatus.Complete, r.Uffd.Copy(r.PageAt(1), src.Address, Region.Page, CopyMode.WriteProtect).Status);
        var e = pm.Read(r.PageAt(1));
        Assert.True(e.Present && e.UffdWp, e.ToString());
        Assert.Equal(Accessor.PatternWord(Seed, 0), r.File!.ReadU64((long)Region.Page));
    }

    [Fact]
    public void ZeroPageMapsZeroes()
    {
        using var r = Region.Shmem(2, RegisterMode.Missing);
        var res = r.Uffd.ZeroPage(r.PageAt(0), Region.Page);
        Assert.Equal((FillStatus.Complete, (long)Region.Page), (res.Status, res.Field));
        using var pm = PageMapReader.Open();
        var e = pm.Read(r.PageAt(0));
        Assert.True(e.Present && e.FileOrShared, e.ToString()); // a zeroed page-cache page on shmem (§1.4)
        Assert.Equal(0UL, Accessor.ReadU64(r.PageAt(0) + 128));
    }

    [Fact]
    public void WriteProtectProtectsUnprotectsAndDontWakeDefersTheWake()
    {
        using var r = Region.Shmem(4, RegisterMode.WriteProtect);
        using var pm = PageMapReader.Open();
        Hard.Within(() =>
        {
            Assert.True(r.Uffd.WriteProtect(r.Addr, r.Len, protect: true));
            Assert.All(pm.Read(r.Addr, 4), e => Assert.True(e.IsWpMarker, e.ToString())); // markers on never-touched shmem (§3.2)
            using var w = r.StartFaulting(Op.Write64(r.PageAt(3), 77), out var pf);
            Assert.Equal(FaultKind.WriteProtect, pf.FaultKind);
            Assert.True(r.Uffd.WriteProtect(r.PageAt(3), Region.Page, protect: false, dontWake: true));
            Assert.False(pm.Read(r.PageAt(3)).UffdWp);
            Assert.False(w.Join(0));
            r.Uffd.Wake(r.PageAt(3), Region.Page);
            Assert.True(w.Join(5000));
            Assert.Equal(77UL, r.File!.ReadU64(3 * (long)Region.Page));
            Assert.True(pm.Read(r.PageAt(0)).IsWpMarker);
        }, r.Uffd);
    }

    [Fact]
    public void ProtectWithDontWakeIsEinval()
    {
        using var r = Region.Shmem(1, RegisterMode.WriteProtect);
        var w = new UffdioWriteprotect { Range = new(r.Addr, r.Len), Mode = (ulong)(WriteProtectMode.WriteProtect | WriteProtectMode.DontWake) };
        Assert.Equal(-Errno.EINVAL, r.Uffd.TryWriteProtect(ref w));
    }

    [Fact]
    public void ContinueMapsTheCachedPageAndModeWpProtectsIt()
    {
        using var r = Region.Shmem(4, RegisterMode.Minor | RegisterMode.WriteProtect);
        r.File!.WritePattern(0, 4 * (long)Region.Page, Seed);
        using var pm = PageMapReader.Open();
        Hard.Within(() =>
        {
            using var w = r.StartFaulting(Op.Read64(r.PageAt(1)), out var pf);
            Assert.Equal(PageFaultFlags.Minor, pf.Flags);
            var res = r.Uffd.Continue(r.PageAt(1), Region.Page, ContinueMode.DontWake);
            Assert.Equal((FillStatus.Complete, (long)Region.Page), (res.Status, res.Field));
            Assert.False(w.Join(0));
            r.Uffd.Wake(r.PageAt(1), Region.Page);
            Assert.True(w.Join(5000));
            Assert.Equal(Accessor.PatternWord(Seed, Region.Page / 8), w.Results[0].Value);

            var wp = r.Uffd.Continue(r.PageAt(2), Region.Page, ContinueMode.WriteProtect);
            Assert.Equal(FillStatus.Complete, wp.Status);
            var e = pm.Read(r.PageAt(2));
            Assert.True(e.Present && e.UffdWp, e.ToString());
            // Already mapped: EEXIST is a result (§3.10), and the field says so.
            var again = r.Uffd.Continue(r.PageAt(2), Region.Page);
            Assert.Equal((FillStatus.Exists, -(long)Errno.EEXIST), (again.Status, again.Field));
        }, r.Uffd);
    }

    [Fact]
    public void PoisonInstallsAPoisonMarkerThatSigbusesInAChild()
    {
        using var r = Region.Anon(2, RegisterMode.Missing);
        var res = r.Uffd.Poison(r.PageAt(0), Region.Page);
        Assert.Equal((FillStatus.Complete, (long)Region.Page), (res.Status, res.Field));
        using var pm = PageMapReader.Open();
        var e = pm.Read(r.PageAt(0));
        Assert.True(!e.Present && !e.UffdWp && e.Swap, e.ToString()); // poison marker (§1.7)
        // The access runs in the native fork child (a SIGBUS in the .NET process is fatal); without
        // EVENT_FORK the child's VMA is unregistered but the poison marker is copied with it.
        using var child = ForkedChild.Start(ChildOps.Read64(r.PageAt(0)));
        var c = child.WaitFor(0, 10_000);
        Assert.Equal(1, c.Sigbus);
        Assert.Equal(0, child.Finish(10_000));
    }

    [Fact]
    public void MoveTransfersAnonPagesAndAllowSrcHolesCountsHolesAsMoved()
    {
        using var r = Region.Anon(4, RegisterMode.Missing);
        using var src = Mapping.Anonymous(4 * Region.Page);
        Accessor.Fill(src.Address, Region.Page, Seed); // src page 0 populated; 1..3 holes
        Hard.Within(() =>
        {
            var res = r.Uffd.Move(r.PageAt(0), src.Address, Region.Page, MoveMode.DontWake);
            Assert.Equal((FillStatus.Complete, (long)Region.Page), (res.Status, res.Field));
            Assert.Equal(0, Accessor.Verify(r.PageAt(0), Region.Page, Seed));
            using var pm = PageMapReader.Open();
            Assert.False(pm.Read(src.Address).Present); // the page left src
            var hole = r.Uffd.Move(r.PageAt(1), src.Address + Region.Page, Region.Page);
            Assert.Equal((FillStatus.NotRegistered, Errno.ENOENT), (hole.Status, hole.Errno)); // src hole (§1.4 MOVE)
            var holes = r.Uffd.Move(r.PageAt(1), src.Address + Region.Page, 2 * Region.Page, MoveMode.AllowSrcHoles);
            Assert.Equal((FillStatus.Complete, 2 * (long)Region.Page), (holes.Status, holes.Field));
        }, r.Uffd);
    }

    [Fact]
    public void WakeReleasesAnUnresolvedWaiterWhichRefaultsWithANewMessage()
    {
        using var r = Region.Anon(1, RegisterMode.Missing);
        var src = new PageBuffer(1 * Region.Page, Seed);
        Hard.Within(() =>
        {
            using var w = r.StartFaulting(Op.Read64(r.PageAt(0)), out _);
            r.Uffd.Wake(r.Addr, r.Len);
            // I3: woken without a resolution, the thread faults again and a new message appears.
            Assert.Single(r.Uffd.WaitMessages(5000));
            r.Uffd.Copy(r.Addr, src.Address, Region.Page);
            Assert.True(w.Join(5000));
            Assert.Equal(Accessor.PatternWord(Seed, 0), w.Results[0].Value);
        }, r.Uffd);
    }
}
