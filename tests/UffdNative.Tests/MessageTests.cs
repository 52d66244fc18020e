namespace UffdNative.Tests;

/// <summary>Every message kind with the flags of §1.5, and the message-related features.</summary>
public class MessageTests
{
    [Theory]
    [InlineData("missing-read", 0x0UL)]
    [InlineData("missing-write", 0x1UL)]
    [InlineData("wp-write", 0x3UL)]
    [InlineData("minor-read", 0x4UL)]
    public void PageFaultFlagsAreTheReferences(string kind, ulong flags)
    {
        var mode = kind switch { "wp-write" => RegisterMode.WriteProtect, "minor-read" => RegisterMode.Minor, _ => RegisterMode.Missing };
        using var r = Region.Shmem(2, mode);
        if (kind == "minor-read")
            r.File!.WriteU64(0, 1); // MINOR needs the page in the cache, not mapped
        if (kind == "wp-write")
            Assert.True(r.Uffd.WriteProtect(r.Addr, r.Len, true));
        Hard.Within(() =>
        {
            using var w = r.StartFaulting(kind.EndsWith("read") ? Op.Read64(r.Addr) : Op.Write64(r.Addr, 5), out var pf);
            Assert.Equal(flags, (ulong)pf.Flags);
            Assert.Equal(0, pf.ThreadId); // THREAD_ID not requested
            switch (kind)
            {
                case "wp-write": r.Uffd.WriteProtect(r.Addr, Region.Page, false); break;
                case "minor-read": r.Uffd.Continue(r.Addr, Region.Page); break;
                default: r.Uffd.ZeroPage(r.Addr, Region.Page); break;
            }
            Assert.True(w.Join(5000));
        }, r.Uffd);
    }

    [Fact]
    public void ExactAddressAndThreadIdAreHonoured()
    {
        using var exact = Region.Anon(1, RegisterMode.Missing, UffdFeatures.ExactAddress | UffdFeatures.ThreadId);
        using var masked = Region.Anon(1, RegisterMode.Missing);
        Hard.Within(() =>
        {
            foreach (var (r, expect) in new[] { (exact, exact.Addr + 0x120), (masked, masked.Addr) })
            {
                using var w = r.StartFaulting(Op.Read64(r.Addr + 0x120), out var pf);
                Assert.Equal(expect, pf.Address);
                Assert.Equal(r == exact ? w.ThreadId : 0, pf.ThreadId);
                r.Uffd.ZeroPage(r.Addr, Region.Page);
                Assert.True(w.Join(5000));
            }
        }, exact.Uffd, masked.Uffd);
    }

    [Fact]
    public void SeveralPendingFaultsAreReturnedByOneRead()
    {
        const int n = 6;
        using var r = Region.Shmem(n, RegisterMode.WriteProtect, UffdFeatures.ThreadId);
        Assert.True(r.Uffd.WriteProtect(r.Addr, r.Len, true));
        Hard.Within(() =>
        {
            var workers = Enumerable.Range(0, n).Select(i => NativeWorker.Start(Op.Write64(r.PageAt(i), (ulong)i + 1))).ToList();
            Observe.Until(() => r.Uffd.ReadFdInfo().Pending == n, $"{n} pending faults in fdinfo");
            var buf = new UffdMsg[16];
            int got = r.Uffd.ReadMessages(buf);
            Assert.Equal(n, got);
            var tids = workers.Select(w => w.ThreadId).ToHashSet();
            var pages = new HashSet<ulong>();
            for (int i = 0; i < got; i++)
            {
                Assert.Equal(UffdEventKind.PageFault, buf[i].Kind);
                Assert.Equal(PageFaultFlags.Write | PageFaultFlags.WriteProtect, buf[i].Flags);
                Assert.Contains((int)buf[i].PagefaultPtid, tids);
                pages.Add(buf[i].PagefaultAddress);
            }
            Assert.Equal(n, pages.Count);
            Assert.Equal(0, r.Uffd.ReadFdInfo().Pending);
            Assert.Equal(n, r.Uffd.ReadFdInfo().Total);
            // Resolve all with DONTWAKE, then wake the whole range once (userspace-anchors §A.4 recipe).
            for (int i = 0; i < n; i++)
                r.Uffd.WriteProtect(r.PageAt(i), Region.Page, false, dontWake: true);
            r.Uffd.Wake(r.Addr, r.Len);
            foreach (var w in workers)
            {
                Assert.True(w.Join(5000));
                w.Dispose();
            }
            for (int i = 0; i < n; i++)
                Assert.Equal((ulong)i + 1, r.File!.ReadU64(i * (long)Region.Page));
        }, r.Uffd);
    }

    [Fact]
    public void ForkWithEventForkDeliversTheChildsUffdWhoseFaultsArriveThere()
    {
        using var r = Region.Anon(2, RegisterMode.Missing, UffdFeatures.EventFork);
        var src = new PageBuffer(1 * Region.Page, 9);
        Hard.Within(() =>
        {
            // fork() blocks until FORK is read, so it runs on another thread (§1.6).
            var start = Task.Run(() => ForkedChild.Start(ChildOps.Verify(r.PageAt(1), Region.Page, 9)));
            var fork = Assert.IsType<ForkEvent>(Assert.Single(r.Uffd.WaitMessages(5000)));
            using var child = start.Result;
            using var cu = fork.TakeUffd();
            Assert.Equal(UffdFeatures.EventFork, cu.Features);
            var pf = Assert.IsType<PageFault>(Assert.Single(cu.WaitMessages(5000)));
            Assert.Equal(r.PageAt(1), pf.Address);
            Assert.Equal(FillStatus.Complete, cu.Copy(r.PageAt(1), src.Address, Region.Page).Status);
            Assert.Equal(0, child.WaitFor(0, 5000).Ret);
            Assert.Equal(0, child.Finish(5000));
            Assert.Empty(r.Uffd.ReadTyped()); // the parent's uffd saw only FORK
        }, r.Uffd);
    }

    [Fact]
    public void RemapRemoveAndUnmapEventsCarryTheirRanges()
    {
        using var r = Region.Anon(4, RegisterMode.Missing, UffdFeatures.EventRemap | UffdFeatures.EventRemove | UffdFeatures.EventUnmap);
        Hard.Within(() =>
        {
            ulong old = r.Addr, len = r.Len;
            var reservation = Mapping.Reserve(len);
            ulong target = reservation.Address;
            var remap = Task.Run(() => r.Map.TryRemap(len, reservation));
            var ev = Assert.IsType<RemapEvent>(Assert.Single(r.Uffd.WaitMessages(5000)));
            Assert.Equal((old, target, len), (ev.From, ev.To, ev.Length));
            // A moving mremap also unmaps the old range: with EVENT_UNMAP enabled that is a second
            // event, and mremap stays blocked until it is read too.
            Assert.False(remap.Wait(0));
            var old_ = Assert.IsType<UnmapEvent>(Assert.Single(r.Uffd.WaitMessages(5000)));
            Assert.Equal((old, old + len), (old_.Start, old_.End));
            Assert.Equal(0, remap.Result);
            Assert.Equal(RegisterMode.Missing, VmaInfo.Find(target)!.RegisteredModes); // registration moved with EVENT_REMAP

            var remove = Task.Run(() => r.Map.TryAdvise(Advice.DontNeed, Region.Page, Region.Page));
            var rm = Assert.IsType<RemoveEvent>(Assert.Single(r.Uffd.WaitMessages(5000)));
            Assert.Equal((target + Region.Page, target + 2 * Region.Page), (rm.Start, rm.End));
            Assert.Equal(0, remove.Result);

            var unmap = Task.Run(() => r.Map.Unmap());
            var um = Assert.IsType<UnmapEvent>(Assert.Single(r.Uffd.WaitMessages(5000)));
            Assert.Equal((target, target + len), (um.Start, um.End));
            Assert.Equal(0, unmap.Result);
        }, r.Uffd);
    }

    [Fact]
    public void WhileAnEventIsUnreadFillIoctlsAreEagainWithTheFieldSetAndWakeAndRegisterWork()
    {
        using var r = Region.Shmem(4, RegisterMode.Missing, UffdFeatures.EventRemove);
        var src = new PageBuffer(1 * Region.Page, 1);
        Hard.Within(() =>
        {
            var remove = Task.Run(() => r.Map.TryAdvise(Advice.Remove, 0, Region.Page));
            Observe.Until(() => r.Uffd.Poll(0).HasFlag(PollEvents.Readable), "the REMOVE event is pending");
            var c = new UffdioCopy { Dst = r.PageAt(2), Src = src.Address, Len = Region.Page, Copy = 1 };
            Assert.Equal(-Errno.EAGAIN, r.Uffd.TryCopy(ref c));
            Assert.Equal(-(long)Errno.EAGAIN, c.Copy); // ≥6.15 (and stable): always written (§1.6)
            Assert.Equal(FillStatus.Again, r.Uffd.ZeroPage(r.PageAt(2), Region.Page).Status);
            var range = new UffdioRange(r.PageAt(2), Region.Page);
            Assert.Equal(0, r.Uffd.TryWake(ref range));
            Assert.IsType<RemoveEvent>(Assert.Single(r.Uffd.WaitMessages(5000)));
            Assert.Equal(0, remove.Result);
            Assert.Equal(FillStatus.Complete, r.Uffd.Copy(r.PageAt(2), src.Address, Region.Page).Status);
        }, r.Uffd);
    }

    [Fact]
    public void AKernelModeWriteIsInterceptedUnlessUserModeOnlyThenEfault()
    {
        foreach (bool umo in new[] { false, true })
        {
            using var r = Region.Shmem(1, RegisterMode.WriteProtect, userModeOnly: umo);
            Assert.True(r.Uffd.WriteProtect(r.Addr, r.Len, true));
            Hard.Within(() =>
            {
                using var w = NativeWorker.Start(Op.KernelWrite(r.Addr, 64, 0xabcdef));
                if (umo)
                {
                    Assert.True(w.Join(5000));
                    Assert.Equal(-Errno.EFAULT, w.Results[0].Ret); // no message, EFAULT (§1.5)
                    Assert.Empty(r.Uffd.ReadTyped());
                }
                else
                {
                    var pf = Assert.IsType<PageFault>(Assert.Single(r.Uffd.WaitMessages(5000)));
                    Assert.Equal(PageFaultFlags.Write | PageFaultFlags.WriteProtect, pf.Flags);
                    r.Uffd.WriteProtect(r.Addr, r.Len, false);
                    Assert.True(w.Join(5000));
                    Assert.Equal(64, w.Results[0].Ret);
                    Assert.Equal(0xabcdefUL, r.File!.ReadU64(0));
                }
            }, r.Uffd);
        }
    }

    [Fact]
    public void AliasWritesAndPwriteAreNeverIntercepted()
    {
        using var r = Region.Shmem(2, RegisterMode.WriteProtect);
        using var alias = r.File!.MapShared();
        using var pm = PageMapReader.Open();
        Assert.True(r.Uffd.WriteProtect(r.Addr, r.Len, true));
        Hard.Within(() =>
        {
            Accessor.WriteU64(alias.PageAddress(0), 11); // through an unregistered alias
            r.File.WriteU64((long)Region.Page, 22);     // pwrite
            Assert.Empty(r.Uffd.ReadTyped());
            Assert.True(pm.Read(r.PageAt(0)).IsWpMarker); // the registered PTE keeps its wp (§3.2)
            Assert.Equal(11UL, Accessor.ReadU64(r.PageAt(0)) ); // a read of a marker: RO+wp, no message
            var e = pm.Read(r.PageAt(0));
            Assert.True(e.Present && e.UffdWp, e.ToString());
            Assert.Empty(r.Uffd.ReadTyped());
        }, r.Uffd);
    }
}
