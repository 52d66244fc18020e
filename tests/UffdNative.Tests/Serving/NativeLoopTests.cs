namespace UffdNative.Tests.Serving;

/// <summary>The native twin loop: its policies with content verification, its statistics (the same
/// struct the managed loop writes), the shared histogram and the layout of the new ABI section.</summary>
public class NativeLoopTests
{
    private const long Pages = 64;
    private const ulong Seed = 0xabc, TouchSeed = 0xdef;

    [Fact]
    public void LayoutTablesMatch()
    {
        Assert.Empty(LayoutVerifier.Compare());
        Assert.Empty(HarnessLayout.Compare());
    }

    [Fact]
    public void HistogramIndexIsTheSameInBothLanguages()
    {
        var rng = new Random(7);
        for (int i = 0; i < 20000; i++)
        {
            ulong v = i < 300 ? (ulong)i : (ulong)rng.NextInt64(0, long.MaxValue) >> rng.Next(0, 60);
            int idx = LatencyHistogram.Index(v);
            Assert.Equal(HarnessNative.uffd_hist_index(v), idx);
            if (idx < LatencyHistogram.Buckets - 1)
                Assert.InRange(v, LatencyHistogram.LowerBound(idx), LatencyHistogram.UpperBound(idx));
        }
    }

    [Theory]
    [InlineData(NativePolicy.MissingCopy, false)]
    [InlineData(NativePolicy.MissingCopy, true)]
    [InlineData(NativePolicy.MissingZero, false)]
    [InlineData(NativePolicy.ReadAhead, false)]
    [InlineData(NativePolicy.WpUnprotect, true)]
    [InlineData(NativePolicy.WpUnprotect, false)]
    [InlineData(NativePolicy.WpSnapshot, true)]
    public unsafe void NativePolicyServesAndVerifies(NativePolicy policy, bool shmem)
    {
        bool wp = policy is NativePolicy.WpUnprotect or NativePolicy.WpSnapshot;
        var features = wp ? PolicyTests.Wp : shmem ? UffdFeatures.MissingShmem : UffdFeatures.None;
        var mode = wp ? RegisterMode.None : RegisterMode.Missing;
        using var r = shmem ? Region.Shmem(Pages, mode, features) : Region.Anon(Pages, mode, features);
        if (wp)
        {
            Access.Accessor.Fill(r.Addr, r.Len, Seed);
            r.Uffd.Register(r.Addr, r.Len, RegisterMode.WriteProtect);
            Assert.True(r.Uffd.WriteProtect(r.Addr, r.Len, protect: true));
        }
        using var src = new PageBuffer(r.Len, Seed);
        using var store = new PageBuffer(r.Len, 0);
        using var loop = NativeFaultLoop.Start(r.Uffd, new NativeLoopOptions
        {
            Policy = policy,
            RangeStart = r.Addr,
            RangeLength = r.Len,
            Source = (nint)src.Address,
            Snapshot = (nint)store.Address,
            ReadAheadPages = 7,
        });
        Hard.Within(() =>
        {
            using (var w = S.WritePages(r, 0, Pages, TouchSeed))
                S.JoinAll(w);
            Assert.True(loop.Stop());
            var st = loop.Statistics;
            Assert.Equal(FaultServerExitReason.Stopped, st.ExitReason);
            Assert.True(st.Exited);
            ulong expected = (ulong)(policy == NativePolicy.ReadAhead ? Pages / 8 : Pages);
            Assert.Equal(expected, wp ? st.WriteProtectFaults : st.MissingFaults);
            // missing-zero: the write fault installs the zero page, then the write copies it.
            var b = policy == NativePolicy.MissingZero ? VerifyBase.Zero : VerifyBase.Pattern;
            Assert.Equal(-1, S.Verify(r.Addr, Pages, b, Seed, touched: true, TouchSeed));
            if (policy == NativePolicy.WpSnapshot)
            {
                Assert.Equal((ulong)Pages, st.SnapshotPages);
                Assert.Equal(-1, S.Verify((ulong)store.Address, Pages, VerifyBase.Pattern, Seed));
            }
        }, r);
    }

    [Fact]
    public unsafe void NativeMinorContinue()
    {
        using var f = Memory.MemfdFile.Create("uffd-minor-native", Pages * (long)S.Page);
        f.WritePattern(0, Pages * (long)S.Page, Seed);
        using var map = f.MapShared();
        var uffd = Region.OpenUffd(UffdFeatures.MinorShmem);
        uffd.Register(map.Address, map.Length, RegisterMode.Minor);
        using var loop = NativeFaultLoop.Start(uffd, new NativeLoopOptions { Policy = NativePolicy.MinorContinue, RangeStart = map.Address, RangeLength = map.Length });
        Hard.Within(() =>
        {
            using (var w = new Access.NativeWorker([Access.Op.TouchRead(map.Address, map.Length)]))
                S.JoinAll(w);
            Assert.True(loop.Stop());
            Assert.Equal((ulong)Pages, loop.Statistics.MinorFaults);
            Assert.Equal(-1, S.Verify(map.Address, Pages, VerifyBase.Pattern, Seed));
        });
    }

    [Fact]
    public void NativeLoopReportsAFaultItCannotServeAndReleasesTheThread()
    {
        using var r = Region.Anon(4, RegisterMode.Missing);
        using var loop = NativeFaultLoop.Start(r.Uffd, new NativeLoopOptions { Policy = NativePolicy.WpUnprotect, RangeStart = r.Addr, RangeLength = r.Len });
        Hard.Within(() =>
        {
            using (var w = S.ReadPages(r, 0, 1))
                S.JoinAll(w); // released when the loop closed the uffd
            S.Until(() => loop.Statistics.Exited, "the loop ended");
            Assert.Equal(FaultServerExitReason.Error, loop.Statistics.ExitReason);
            Assert.Equal(LoopOperation.NoPolicy, loop.Statistics.ErrorOperation);
        });
    }

    /// <summary>The native twin is the benchmark's yardstick, not trusted by copy: the same workload,
    /// served once by the managed FaultServer with the shipping policy and once by the native loop with
    /// its C twin, leaves the same observable result — every counter of the shared statistics, every
    /// page's content and every page's pagemap state. With remove: half the pages are discarded
    /// (MADV_DONTNEED, EVENT_REMOVE) and read again, served as zero by both.</summary>
    [Theory]
    [InlineData(NativePolicy.MissingCopy, false, false)]
    [InlineData(NativePolicy.MissingCopy, true, false)]
    [InlineData(NativePolicy.MissingCopy, false, true)]
    [InlineData(NativePolicy.ReadAhead, true, false)]
    [InlineData(NativePolicy.ReadAhead, false, true)]
    [InlineData(NativePolicy.MissingZero, false, false)]
    [InlineData(NativePolicy.MissingZero, true, false)]
    [InlineData(NativePolicy.WpUnprotect, true, false)]
    [InlineData(NativePolicy.WpUnprotect, false, false)]
    [InlineData(NativePolicy.WpSnapshot, true, false)]
    [InlineData(NativePolicy.MinorContinue, true, false)]
    public void TheNativeTwinAndTheManagedPolicyLeaveTheSameObservableResult(NativePolicy policy, bool shmem, bool remove)
    {
        var managed = Twin(policy, shmem, remove, native: false);
        var native = Twin(policy, shmem, remove, native: true);
        Assert.Equal(managed.Verified, native.Verified);
        Assert.Equal(-1, managed.Verified.Main);
        Assert.Equal(-1, managed.Verified.Rest);
        Assert.Equal(-1, managed.Verified.Snapshot);
        Assert.Equal(managed.PageMap, native.PageMap);
        Assert.Equal(managed.Counters, native.Counters);
        Assert.NotEqual(0UL, managed.Counters.Faults);
    }

    private readonly record struct Counters(ulong Faults, ulong Missing, ulong Wp, ulong Minor, ulong Removes, ulong Runs, ulong ResolveIoctls,
        ulong WakeIoctls, ulong PagesResolved, ulong Eexist, ulong Eagain, ulong Enoent, ulong Partial, ulong SnapshotPages, ulong ZeroPages, FaultServerExitReason Exit);

    private readonly record struct Verification(long Main, long Rest, long Snapshot);

    private sealed record TwinResult(Counters Counters, Verification Verified, string PageMap);

    private static Counters Of(FaultStatistics s) => new(s.Faults, s.MissingFaults, s.WriteProtectFaults, s.MinorFaults, s.RemoveEvents, s.Runs, s.ResolveIoctls,
        s.WakeIoctls, s.PagesResolved, s.Eexist, s.Eagain, s.Enoent, s.Partial, s.SnapshotPages, s.ZeroPages, s.ExitReason);

    private static TwinResult Twin(NativePolicy policy, bool shmem, bool remove, bool native)
    {
        const int ReadAhead = 7;
        bool wp = policy is NativePolicy.WpUnprotect or NativePolicy.WpSnapshot;
        bool minor = policy == NativePolicy.MinorContinue;
        var features = wp ? PolicyTests.Wp : minor ? UffdFeatures.MinorShmem : shmem ? UffdFeatures.MissingShmem : UffdFeatures.None;
        if (remove)
            features |= UffdFeatures.EventRemove;
        var mode = wp || minor ? RegisterMode.None : RegisterMode.Missing;
        using var r = shmem ? Region.Shmem(Pages, mode, features) : Region.Anon(Pages, mode, features);
        using var src = new PageBuffer(r.Len, Seed);
        using var store = new PageBuffer(r.Len, 0);
        if (wp)
        {
            Access.Accessor.Fill(r.Addr, r.Len, Seed);
            r.Uffd.Register(r.Addr, r.Len, RegisterMode.WriteProtect);
            Assert.True(r.Uffd.WriteProtect(r.Addr, r.Len, protect: true));
        }
        if (minor)
        {
            r.File!.WritePattern(0, Pages * (long)S.Page, Seed);
            r.Uffd.Register(r.Addr, r.Len, RegisterMode.Minor);
        }
        FaultServer? server = null;
        NativeFaultLoop? loop = null;
        using var source = PageSource.FromBuffer(src);
        using var snapshot = new SnapshotStore(r.Len);
        if (native)
        {
            loop = NativeFaultLoop.Start(r.Uffd, new NativeLoopOptions
            {
                Policy = policy,
                RangeStart = r.Addr,
                RangeLength = r.Len,
                Source = (nint)src.Address,
                Snapshot = (nint)store.Address,
                ReadAheadPages = ReadAhead,
            });
        }
        else
        {
            FaultPolicy p = policy switch
            {
                NativePolicy.MissingCopy => new MissingCopy(source),
                NativePolicy.ReadAhead => new ReadAhead(source, ReadAhead),
                NativePolicy.MissingZero => new MissingZero(),
                NativePolicy.WpUnprotect => new WpUnprotect(),
                NativePolicy.WpSnapshot => new WpSnapshot(snapshot),
                NativePolicy.MinorContinue => new MinorContinue(),
                _ => throw new ArgumentOutOfRangeException(nameof(policy)),
            };
            server = S.Serve(r, p);
        }
        FaultStatistics stats = null!;
        Hard.Within(() =>
        {
            if (minor)
            {
                using var w = new Access.NativeWorker([Access.Op.TouchRead(r.Addr, r.Len)]);
                S.JoinAll(w);
            }
            else
            {
                using var w = S.WritePages(r, 0, Pages, TouchSeed);
                S.JoinAll(w);
            }
            if (remove)
            {
                // With EVENT_REMOVE madvise waits until the loop has read the event (§1.6): never on the loop's thread.
                r.Map.Advise(Memory.Advice.DontNeed, (ulong)(Pages / 2) * S.Page, (ulong)(Pages / 2) * S.Page);
                using var w = S.ReadPages(r, Pages / 2, Pages / 2);
                S.JoinAll(w);
            }
            Assert.True(native ? loop!.Stop() : server!.Stop());
            stats = native ? loop!.Statistics : server!.Statistics;
        }, (IDisposable?)server ?? loop, r);
        long half = remove ? Pages / 2 : Pages;
        var b = policy == NativePolicy.MissingZero ? VerifyBase.Zero : VerifyBase.Pattern;
        long main = S.Verify(r.Addr, half, b, Seed, touched: true, TouchSeed);
        long rest = remove ? S.Verify(r.PageAt(half), Pages - half, VerifyBase.Zero, 0) : -1;
        long saved = policy == NativePolicy.WpSnapshot
            ? S.Verify(native ? (ulong)store.Address : (ulong)snapshot.Address, Pages, VerifyBase.Pattern, Seed)
            : -1;
        if (minor)
            main = S.Verify(r.Addr, Pages, VerifyBase.Pattern, Seed);
        using var pm = PageMap.PageMapReader.Open();
        var chars = new string(pm.Read(r.Addr, Pages).Select(e => Harness.Scenarios.PageChars.FromRaw(e.Raw)).ToArray());
        server?.Dispose();
        loop?.Dispose();
        return new TwinResult(Of(stats), new Verification(main, rest, saved), chars);
    }
}
