using UffdNative.Access;
using UffdNative.Harness.Native;
using UffdNative.Interop;
using UffdNative.Serving;

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
}
