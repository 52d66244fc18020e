using Microsoft.Win32.SafeHandles;

namespace UffdNative.Tests.Serving;

/// <summary>Every policy on the real kernel, with every page's content verified afterwards.</summary>
public class PolicyTests
{
    private const long Pages = 64;
    internal const UffdFeatures Wp = UffdFeatures.PageFaultFlagWp | UffdFeatures.WpHugetlbfsShmem;
    private const ulong Seed = 0x5eed, TouchSeed = 0x70c4;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MissingCopyFromBuffer(bool shmem)
    {
        using var r = shmem ? Region.Shmem(Pages, RegisterMode.Missing, UffdFeatures.MissingShmem) : Region.Anon(Pages, RegisterMode.Missing);
        using var source = new PatternPages(r.Len, Seed);
        using var server = S.Serve(r, new MissingCopy(source));
        Hard.Within(() =>
        {
            using var w = S.WritePages(r, 0, Pages, TouchSeed);
            S.JoinAll(w);
            Assert.True(server.Stop());
            Assert.Equal(FaultServerExitReason.Stopped, server.Exit!.Reason);
            Assert.Equal((ulong)Pages, server.Statistics.MissingFaults);
            Assert.Equal(-1, S.Verify(r.Addr, Pages, VerifyBase.Pattern, Seed, touched: true, TouchSeed));
        }, server, r);
    }

    [Fact]
    public void MissingCopyFromFile()
    {
        using var r = Region.Shmem(Pages, RegisterMode.Missing, UffdFeatures.MissingShmem);
        var path = Path.Combine(Path.GetTempPath(), $"uffd-source-{Environment.ProcessId}.bin");
        var data = new byte[(int)r.Len];
        Access.Accessor.PatternFill(data, Seed);
        File.WriteAllBytes(path, data);
        try
        {
            using SafeFileHandle fh = File.OpenHandle(path);
            using var source = PageSource.FromFile(fh, stagingPages: 4);
            using var server = S.Serve(r, new MissingCopy(source));
            Hard.Within(() =>
            {
                using var w = S.ReadPages(r, 0, Pages);
                S.JoinAll(w);
                Assert.True(server.Stop());
                Assert.Equal((ulong)Pages, server.Statistics.MissingFaults);
                Assert.Equal(-1, S.Verify(r.Addr, Pages, VerifyBase.Pattern, Seed));
            }, server, r);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void MissingCopyFromDelegate()
    {
        using var r = Region.Anon(Pages, RegisterMode.Missing);
        int calls = 0;
        using var source = PageSource.FromDelegate((offset, dest) =>
        {
            Interlocked.Increment(ref calls);
            Access.Accessor.PatternFill(dest, Seed, offset / 8);
        }, r.Len);
        using var server = S.Serve(r, new MissingCopy(source));
        Hard.Within(() =>
        {
            using var w = S.ReadPages(r, 0, Pages);
            S.JoinAll(w);
            Assert.True(server.Stop());
            Assert.Equal(Pages, calls);
            Assert.Equal(-1, S.Verify(r.Addr, Pages, VerifyBase.Pattern, Seed));
        }, server, r);
    }

    [Fact]
    public void MissingZero()
    {
        using var r = Region.Anon(Pages, RegisterMode.Missing);
        using var server = S.Serve(r, new MissingZero());
        Hard.Within(() =>
        {
            using var w = S.ReadPages(r, 0, Pages);
            S.JoinAll(w);
            Assert.True(server.Stop());
            Assert.Equal((ulong)Pages, server.Statistics.MissingFaults);
            Assert.Equal(-1, S.Verify(r.Addr, Pages, VerifyBase.Zero, 0));
        }, server, r);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void WpUnprotect(bool shmem)
    {
        using var r = shmem ? Region.Shmem(Pages, RegisterMode.None, Wp) : Region.Anon(Pages, RegisterMode.None, Wp);
        PrefillAndProtect(r);
        using var server = S.Serve(r, new WpUnprotect());
        Hard.Within(() =>
        {
            using var w = S.WritePages(r, 0, Pages, TouchSeed);
            S.JoinAll(w);
            Assert.True(server.Stop());
            Assert.Equal((ulong)Pages, server.Statistics.WriteProtectFaults);
            Assert.Equal(-1, S.Verify(r.Addr, Pages, VerifyBase.Pattern, Seed, touched: true, TouchSeed));
        }, server, r);
    }

    [Fact]
    public void WpSnapshotKeepsPreWriteContent()
    {
        using var r = Region.Shmem(Pages, RegisterMode.None, Wp);
        PrefillAndProtect(r);
        using var store = new SnapshotStore(r.Len);
        using var server = S.Serve(r, new WpSnapshot(store));
        Hard.Within(() =>
        {
            // Write every other page: exactly those are saved.
            var workers = new List<Access.NativeWorker>();
            for (long i = 0; i < Pages; i += 2)
                workers.Add(S.WritePages(r, i, 1, TouchSeed));
            S.JoinAll([.. workers]);
            workers.ForEach(w => w.Dispose());
            Assert.True(server.Stop());
            Assert.Equal((ulong)(Pages / 2), server.Statistics.SnapshotPages);
            Assert.Equal(Pages / 2, store.SavedPages);
            for (long i = 0; i < Pages; i++)
            {
                Assert.Equal(i % 2 == 0, store.IsSaved((ulong)i * S.Page));
                if (i % 2 == 0)
                    Assert.True(PageMatches((ulong)store.AddressOf((ulong)i * S.Page), i, touched: false), $"snapshot page {i}");
                Assert.True(PageMatches(r.PageAt(i), i, touched: i % 2 == 0), $"live page {i}");
            }
        }, server, r);
    }

    private static bool PageMatches(ulong addr, long i, bool touched)
    {
        for (ulong w = 0; w < 512; w++)
        {
            ulong want = touched && w == (ulong)(i % 512) ? Shim.uffd_pattern_word(TouchSeed, (ulong)i) : Shim.uffd_pattern_word(Seed, (ulong)i * 512 + w);
            if (Access.Accessor.ReadU64(addr + w * 8) != want)
                return false;
        }
        return true;
    }

    [Fact]
    public void MinorContinue()
    {
        using var f = Memory.MemfdFile.Create("uffd-minor", Pages * (long)S.Page);
        f.WritePattern(0, Pages * (long)S.Page, Seed); // the page cache holds the content
        using var map = f.MapShared();
        using var uffd = Region.OpenUffd(UffdFeatures.MinorShmem);
        uffd.Register(map.Address, map.Length, RegisterMode.Minor);
        using var server = new FaultServer(uffd, new FaultServerOptions { Policies = [new MinorContinue()], Ranges = [new ServedRange(map.Address, map.Length)] });
        server.Start();
        Hard.Within(() =>
        {
            using var w = new Access.NativeWorker([Access.Op.TouchRead(map.Address, map.Length)]);
            S.JoinAll(w);
            Assert.True(server.Stop());
            Assert.Equal((ulong)Pages, server.Statistics.MinorFaults);
            Assert.Equal(-1, S.Verify(map.Address, Pages, VerifyBase.Pattern, Seed));
        }, server, uffd);
    }

    [Fact]
    public void ReadAheadInstallsTheFollowingPagesInOneCopy()
    {
        using var r = Region.Anon(Pages, RegisterMode.Missing);
        using var source = new PatternPages(r.Len, Seed);
        using var server = S.Serve(r, new ReadAhead(source, 7));
        Hard.Within(() =>
        {
            using var w = S.ReadPages(r, 0, Pages);
            S.JoinAll(w);
            Assert.True(server.Stop());
            var st = server.Statistics;
            Assert.Equal((ulong)(Pages / 8), st.MissingFaults);
            Assert.Equal((ulong)Pages, st.PagesResolved);
            Assert.Equal(-1, S.Verify(r.Addr, Pages, VerifyBase.Pattern, Seed));
        }, server, r);
    }

    [Fact]
    public void AsyncWriteTrackingReportsExactlyTheWrittenPages()
    {
        using var m = Memory.Mapping.Anonymous((ulong)Pages * S.Page);
        using var uffd = Region.OpenUffd(UffdFeatures.WpAsync);
        uffd.Register(m.Address, m.Length, RegisterMode.WriteProtect);
        using var tracker = new AsyncWriteTracking(uffd, m.Address, m.Length);
        Assert.True(tracker.Arm());
        Hard.Within(() =>
        {
            long[] written = [0, 1, 2, 5, 9, 10, 33, 63];
            var ops = written.Select(i => Access.Op.Write64(m.PageAddress(i), (ulong)i + 1)).ToArray();
            using (var w = new Access.NativeWorker(ops))
                S.JoinAll(w); // no handler: WP_ASYNC resolves in the kernel
            var regions = tracker.Collect();
            var pages = regions.SelectMany(g => Enumerable.Range(0, (int)g.Pages()).Select(k => (long)((g.Start - m.Address) / S.Page) + k)).ToArray();
            Assert.Equal(written, pages);
            Assert.Empty(tracker.Collect()); // re-protected atomically by the scan
            foreach (var i in written)
                Assert.Equal((ulong)i + 1, Access.Accessor.ReadU64(m.PageAddress(i)));
        }, uffd);
    }

    internal static void PrefillAndProtect(Region r)
    {
        // Populate before registering (QEMU's ram_write_tracking_prepare), then register and protect.
        Access.Accessor.Fill(r.Addr, r.Len, Seed);
        r.Uffd.Register(r.Addr, r.Len, RegisterMode.WriteProtect);
        Assert.True(r.Uffd.WriteProtect(r.Addr, r.Len, protect: true));
    }
}
