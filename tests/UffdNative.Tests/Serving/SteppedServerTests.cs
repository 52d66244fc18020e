namespace UffdNative.Tests.Serving;

/// <summary>FaultServer driven step by step (ResolvePending): each call resolves what is pending as
/// the loop would, and reports exactly which ioctls it issued, with the kernel's answers.</summary>
public class SteppedServerTests
{
    private const long Pages = 4;
    private const ulong Seed = 0x57e9;

    /// <summary>What the MissingCopy tests start from: Pages MISSING-registered anon pages, pattern(Seed) pages as
    /// the source, and a server (not started) with MissingCopy over them; released in reverse order.</summary>
    private sealed class CopyServed : IDisposable
    {
        public Region R { get; } = Region.Anon(Pages, RegisterMode.Missing);
        public PatternPages Source { get; }
        public FaultServer Server { get; }

        public CopyServed()
        {
            Source = new PatternPages(R.Len, Seed);
            Server = S.Server(R, new FaultServerOptions { Policies = [new MissingCopy(Source)] });
        }

        public void Dispose()
        {
            Server.Dispose();
            Source.Dispose();
            R.Dispose();
        }
    }

    private static IReadOnlyList<Resolution> StepUntilAny(FaultServer server)
    {
        IReadOnlyList<Resolution> got = [];
        S.Until(() => (got = server.ResolvePending()).Count > 0, "a message read by the stepped server");
        return got;
    }

    [Fact]
    public void AMissingFaultIsResolvedByOneCopyThatWakesTheThread()
    {
        using var t = new CopyServed();
        var (r, server) = (t.R, t.Server);
        Hard.Within(() =>
        {
            Assert.Empty(server.ResolvePending()); // nothing pending: never waits
            using var w = S.ReadPages(r, 2, 1);
            var res = Assert.Single(StepUntilAny(server));
            Assert.Equal(UffdEventKind.PageFault, res.Kind);
            Assert.Equal(r.PageAt(2), res.Fault!.PageAddress());
            Assert.Equal(FaultOutcome.Resolved, res.Outcome);
            Assert.True(res.Woken);
            var io = Assert.Single(res.Run!.Ioctls);
            Assert.Equal(new ResolutionIoctl(ResolutionIoctlKind.Copy, r.PageAt(2), S.Page, 0, 0, (long)S.Page), io);
            S.JoinAll(w);
            Assert.Equal(Accessor.PatternWord(Seed, 2 * S.Page / 8), w.Results[0].Value);
            Assert.Equal(1UL, server.Statistics.MissingFaults);
            Assert.Throws<InvalidOperationException>(server.Start);
        }, server, r);
    }

    [Fact]
    public void APageResolvedElsewhereIsEexistThenOneWake()
    {
        using var t = new CopyServed();
        var (r, source, server) = (t.R, t.Source, t.Server);
        Hard.Within(() =>
        {
            using var w = S.ReadPages(r, 1, 1);
            Observe.Until(() => r.Uffd.ReadFdInfo().Pending == 1, "the fault queued");
            // Another resolver installs the page first, without waking the thread.
            var c = new UffdioCopy { Dst = r.PageAt(1), Src = source.Buffer.Address, Len = S.Page, Mode = (ulong)CopyMode.DontWake };
            Assert.Equal(0, r.Uffd.TryCopy(ref c));
            var res = Assert.Single(StepUntilAny(server));
            Assert.Equal(FaultOutcome.Resolved, res.Outcome);
            Assert.True(res.Woken);
            Assert.Equal([ResolutionIoctlKind.Copy, ResolutionIoctlKind.Wake], res.Run!.Ioctls.Select(i => i.Kind));
            Assert.Equal(Errno.EEXIST, res.Run.Ioctls[0].Errno);
            Assert.True(res.Run.Ioctls[1].Succeeded);
            S.JoinAll(w);
        }, server, r);
    }

    /// <summary>MissingMove: the page changes owner (6.8+). A kernel without UFFDIO_MOVE answers the
    /// ioctl with an error, and the server ends (closing the uffd releases the thread).</summary>
    [Fact]
    public void MissingMoveMovesThePageFromTheStagingArea()
    {
        using var r = Region.Anon(Pages, RegisterMode.Missing);
        using var staging = Mapping.Anonymous(r.Len);
        Accessor.Fill(staging.Address, staging.Length, Seed); // never registered: filled natively
        using var server = S.Server(r, new FaultServerOptions { Policies = [new MissingMove(staging.Address, staging.Length)] });
        bool move = (Userfaultfd.QuerySupportedFeatures() & UffdFeatures.Move) != 0;
        Hard.Within(() =>
        {
            using var w = S.ReadPages(r, 3, 1);
            var res = Assert.Single(StepUntilAny(server));
            var io = Assert.Single(res.Run!.Ioctls);
            Assert.Equal(ResolutionIoctlKind.Move, io.Kind);
            Assert.Equal(r.PageAt(3), io.Start);
            S.JoinAll(w);
            if (!move)
            {
                Assert.False(io.Succeeded);
                Assert.Equal(FaultOutcome.Failed, res.Outcome);
                return;
            }
            Assert.True(io.Succeeded, io.ToString());
            Assert.Equal((long)S.Page, io.Bytes);
            Assert.Equal(FaultOutcome.Resolved, res.Outcome);
            Assert.Equal(Accessor.PatternWord(Seed, 3 * S.Page / 8), w.Results[0].Value);
            using var pm = PageMap.PageMapReader.Open();
            Assert.False(pm.Read(staging.PageAddress(3)).Present); // moved out, not copied
            Assert.True(pm.Read(staging.PageAddress(2)).Present);
        }, server, r);
    }
}
