namespace UffdNative.Tests.Serving;

/// <summary>
/// Signals at a high rate to the loop threads, managed (FaultServer) and native (the twin loop), while
/// they wait in poll and while they resolve: every interruptible call returns EINTR (the storm's
/// handler has no SA_RESTART) and the loops must retry, keep serving and never end with an error
/// (issue 12, item 7; uffd_poll's retry loop).
/// </summary>
public unsafe class SignalTests
{
    private const ulong Seed = 0x516;
    private const long Pages = 512;

    private static (long Sent, long Handled, long Targets) Storm(string comm, Action body)
    {
        nint storm = HarnessNative.uffd_signal_storm_start(comm, 20);
        Assert.NotEqual(0, storm);
        long handled0 = 0, handled, targets;
        try
        {
            body();
        }
        finally
        {
            long sent = HarnessNative.uffd_signal_storm_stop(storm, &handled, &targets);
            handled0 = sent;
        }
        return (handled0, handled, targets);
    }

    // Between the batches the loop waits in poll: the storm lands there and in the resolution.
    private static void ReadInBatches(Region r)
    {
        for (long p = 0; p < Pages; p += 64)
            using (var w = S.ReadPages(r, p, 64))
                S.JoinAll(w);
    }

    [Fact]
    public void TheManagedLoopKeepsServingUnderASignalStorm()
    {
        using var r = Region.Anon(Pages, RegisterMode.Missing);
        using var source = new PatternPages(r.Len, Seed);
        using var server = S.Serve(r, new FaultServerOptions { Policies = [new MissingCopy(source)], ThreadName = "uffd-storm-m" });
        Hard.Within(() =>
        {
            var (sent, handled, targets) = Storm("uffd-storm-m", () => ReadInBatches(r));
            Assert.Equal(1, targets);
            Assert.True(sent > 0 && handled > 0, $"sent {sent}, handled {handled}");
            Assert.Null(server.Exit); // still serving: no EINTR ended the loop
            Assert.Equal((ulong)Pages, server.Statistics.PagesResolved);
            Assert.True(server.Stop());
            Assert.Equal(FaultServerExitReason.Stopped, server.Exit!.Reason);
            Assert.Equal(-1, S.Verify(r.Addr, Pages, VerifyBase.Pattern, Seed));
        }, r);
    }

    [Fact]
    public void TheNativeLoopKeepsServingUnderASignalStorm()
    {
        using var r = Region.Anon(Pages, RegisterMode.Missing);
        using var src = new PageBuffer(r.Len, Seed);
        using var loop = NativeFaultLoop.Start(r.Uffd, new NativeLoopOptions { Policy = NativePolicy.MissingCopy, RangeStart = r.Addr, RangeLength = r.Len, Source = (nint)src.Address });
        Hard.Within(() =>
        {
            var (sent, handled, targets) = Storm("uffd-native-lp", () => ReadInBatches(r));
            Assert.Equal(1, targets);
            Assert.True(sent > 0 && handled > 0, $"sent {sent}, handled {handled}");
            Assert.False(loop.Statistics.Exited);
            Assert.True(loop.Stop());
            Assert.Equal(FaultServerExitReason.Stopped, loop.Statistics.ExitReason);
            Assert.Equal((ulong)Pages, loop.Statistics.MissingFaults);
            Assert.Equal(-1, S.Verify(r.Addr, Pages, VerifyBase.Pattern, Seed));
        }, r);
    }
}
