namespace UffdNative.Harness.Tests.Reliability;

/// <summary>The external handler (`uffdnative serve`) serving a uffd of this process, end to end.</summary>
public unsafe class ExternalHandlerTests
{
    private const ulong Seed = 0xab5eed;

    [Fact]
    public void ServesMissingCopyFromAnotherProcess()
    {
        using var handler = HandlerProcess.Start([]);
        using var map = Mapping.Anonymous(256 * R.Page);
        var uffd = R.RegisterMissing(map);
        R.WithSession(60_000, handler, uffd, R.MissingPatternWithTakeover(map, Seed), session =>
        {
            R.JoinAndDispose(20_000, [.. Enumerable.Range(0, 4).Select(i => R.Read(map, i * 64, 64))]);
            Assert.True(session.Stop(10_000), $"state {session.State}, failure {session.Failure}");
            var st = session.Final!.Stats!;
            Assert.Equal("Stopped", session.Final.Exit);
            Assert.Equal(st.Faults, st.Resolved);
            Assert.Equal(256UL, st.PagesResolved);
            Assert.Equal(-1, R.Verify(map.Address, 256, VerifyBase.Pattern, Seed));
        });
        Assert.Equal(0, handler.WaitForExit(10_000));
    }

    [Theory]
    [InlineData(true)]  // region and store sealed against shrinking: the handler maps both (one native copy a page)
    [InlineData(false)] // unsealed: the handler reads with pread and writes with pwrite, and maps neither
    public void ServesAWpSnapshotOfA256MiBMemfdRegionFromAnotherProcess(bool sealedFiles)
    {
        // The demonstration: this process owns a 256 MiB memfd region, write-protected; the
        // handler (another process) saves each page's content into a store memfd before letting the
        // write through. Afterwards the store holds the whole region as it was before any write, and
        // the region holds every write.
        const ulong len = 256UL << 20;
        long pages = (long)(len / R.Page);
        const ulong touchSeed = 0x70c4;
        using var handler = HandlerProcess.Start([]);
        using var file = sealedFiles ? MemfdFile.CreateSealedAgainstShrinking("reliability-snapshot", (long)len) : MemfdFile.Create("reliability-snapshot", (long)len);
        using (var alias = file.MapShared())
            Shim.uffd_pattern_fill((void*)alias.Address, len, Seed, 0); // the content, through an unregistered alias
        using var map = file.MapShared();
        using var store = sealedFiles
            ? SharedSnapshotStore.CreateMemfd("reliability-snapshot-store", len)
            : MemfdFile.Create("reliability-snapshot-store", (long)SharedSnapshotStore.SizeFor(len));
        if (sealedFiles) // the seal the handler relies on to map it: the file can no longer shrink
            Assert.Equal(-Errno.EPERM, Tmds.Linux.LibC.ftruncate(store.Fd, 0) < 0 ? -System.Runtime.InteropServices.Marshal.GetLastPInvokeError() : 0);
        var uffd = R.Open(UffdFeatures.PageFaultFlagWp | UffdFeatures.WpHugetlbfsShmem);
        uffd.Register(map.Address, len, RegisterMode.WriteProtect);
        Assert.True(uffd.WriteProtect(map.Address, len, protect: true));
        var options = new ExternalHandlerOptions
        {
            Regions = [R.Region(map, "shmem", "wp", memfd: 1)],
            Policies = [PolicySpec.Of("wp-snapshot")],
            ExtraFds = [file.Fd, store.Fd],
            SnapshotFd = 2,
            OnFailure = WatchdogAction.Release, // WP tracking: releasing loses no memory content
        };
        R.WithSession(180_000, handler, uffd, options, session =>
        {
            // Four native touchers write one word of every page, each its quarter, in order.
            var handles = new nint[4];
            for (int i = 0; i < 4; i++)
            {
                var cfg = new TouchConfig { Addr = map.PageAddress(i * pages / 4), Pages = (ulong)(pages / 4), FirstPage = (ulong)(i * pages / 4), Seed = touchSeed, Mode = (int)TouchMode.Write, Cpu = -1 };
                handles[i] = HarnessNative.uffd_toucher_start(&cfg);
                Assert.NotEqual(0, handles[i]);
            }
            foreach (var h in handles)
                HarnessNative.uffd_toucher_go(h);
            foreach (var h in handles)
            {
                TouchResult r;
                Assert.Equal(0, HarnessNative.uffd_toucher_join(h, 150_000, &r));
                HarnessNative.uffd_toucher_free(h);
            }
            Assert.True(session.Stop(30_000), $"{session.State} {session.Failure}");
            var st = session.Final!.Stats!;
            Assert.Equal((ulong)pages, st.Wp);            // one WP fault per page
            Assert.Equal((ulong)pages, st.SnapshotPages); // each page saved once
            Assert.Equal(st.Faults, st.Resolved);
            // The region holds every write; the store holds the region as it was before them.
            Assert.Equal(-1, R.Verify(map.Address, pages, VerifyBase.Pattern, Seed, touched: true, touchSeed: touchSeed));
            using var view = SharedSnapshotStore.Map(store.Fd, len);
            Assert.Equal(pages, view.SavedPages);
            Assert.Equal(-1, R.Verify((ulong)view.Address, pages, VerifyBase.Pattern, Seed));
        });
    }
}
