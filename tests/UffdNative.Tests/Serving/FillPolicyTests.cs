namespace UffdNative.Tests.Serving;

/// <summary>The policies that put content in place before resolving: <see cref="MinorFillContinue"/> (the page
/// cache filled through an unregistered alias, then CONTINUE) and <see cref="MissingCopy.PoisonedPages"/>
/// (POISON for the pages the source lost), on the real kernel, every page's content or signal checked.</summary>
public class FillPolicyTests
{
    private const long Pages = 16;
    private const ulong OldSeed = 0x01d, NewSeed = 0x7e3;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MinorFillContinueWritesTheSourceThroughTheAliasThenContinues(bool wp)
    {
        ulong len = (ulong)Pages * S.Page;
        using var f = MemfdFile.Create("uffd-minor-fill", (long)len);
        f.WritePattern(0, (long)len, OldSeed); // the page cache holds the old content: every first read is a MINOR fault
        using var map = f.MapShared();
        using var alias = f.MapShared();
        using var source = new PatternPages(len, NewSeed);
        using var uffd = Region.OpenUffd(UffdFeatures.MinorShmem | (wp ? PolicyTests.Wp : 0));
        uffd.Register(map.Address, map.Length, RegisterMode.Minor | (wp ? RegisterMode.WriteProtect : 0));
        var policy = new MinorFillContinue(source, (nint)alias.Address, alias.Length, installWriteProtected: wp);
        // The range's source offset is its file offset (0): page i of the source goes to page i of the file.
        using var server = new FaultServer(uffd, new FaultServerOptions { Policies = [policy], Ranges = [new ServedRange(map.Address, map.Length)] });
        server.Start();
        Hard.Within(() =>
        {
            using var w = new NativeWorker([Op.TouchRead(map.Address, map.Length)]);
            S.JoinAll(w);
            // Before Stop: closing the uffd clears the wp bits (6.9+, §1.5 close()).
            using var pm = PageMapReader.Open();
            for (long p = 0; p < Pages; p++)
            {
                var e = pm.Read(map.Address + (ulong)p * S.Page);
                Assert.True(e.Present && e.FileOrShared && e.UffdWp == wp, $"page {p}: {e}"); // CONTINUE(MODE_WP) maps it with wp
            }
            Assert.True(server.Stop());
            Assert.Equal((ulong)Pages, server.Statistics.MinorFaults);
            Assert.Equal(0UL, server.Statistics.MissingFaults);
            // The registered mapping, the alias and the file itself all hold the source's content now.
            Assert.Equal(-1, S.Verify(map.Address, Pages, VerifyBase.Pattern, NewSeed));
            Assert.Equal(-1, S.Verify(alias.Address, Pages, VerifyBase.Pattern, NewSeed));
            Assert.Equal(Accessor.PatternWord(NewSeed, 5 * S.Page / 8), f.ReadU64(5 * (long)S.Page));
        }, server, uffd);
    }

    [Fact]
    public void MinorFillContinueRefusesARunOutsideItsAlias()
    {
        ulong len = 4 * S.Page;
        using var f = MemfdFile.Create("uffd-minor-fill-short", (long)len);
        f.WritePattern(0, (long)len, OldSeed);
        using var map = f.MapShared();
        using var alias = f.MapShared();
        using var source = new PatternPages(len, NewSeed);
        using var uffd = Region.OpenUffd(UffdFeatures.MinorShmem);
        uffd.Register(map.Address, map.Length, RegisterMode.Minor);
        // The alias is declared two pages long: page 3 lies outside it, so nothing may be written for it.
        var policy = new MinorFillContinue(source, (nint)alias.Address, 2 * S.Page);
        using var server = new FaultServer(uffd, new FaultServerOptions { Policies = [policy], Ranges = [new ServedRange(map.Address, map.Length)] });
        Hard.Within(() =>
        {
            using var w = new NativeWorker([Op.TouchRead(map.Address + 3 * S.Page, S.Page)]);
            IReadOnlyList<Resolution> got = [];
            S.Until(() => (got = server.ResolvePending()).Count > 0, "the MINOR fault read by the stepped server");
            var res = Assert.Single(got);
            Assert.NotEqual(FaultOutcome.Resolved, res.Outcome);
            Assert.DoesNotContain(res.Run?.Ioctls ?? [], i => i.Kind == ResolutionIoctlKind.Continue);
            Assert.Equal(Accessor.PatternWord(OldSeed, 3 * S.Page / 8), ReadAlias(alias.Address + 3 * S.Page)); // nothing written
        }, server, uffd);
    }

    private static unsafe ulong ReadAlias(ulong address) => *(ulong*)address; // an unregistered mapping

    [Fact]
    public void MissingCopyPoisonsThePagesTheSourceReportsPoisonedAndCopiesTheRest()
    {
        using var r = Region.Anon(4, RegisterMode.Missing, UffdFeatures.EventFork | UffdFeatures.Poison);
        using var source = new PatternPages(r.Len, NewSeed);
        var policy = new MissingCopy(source) { PoisonedPages = new HashSet<ulong> { 0, 2 * S.Page } };
        using var server = S.Serve(r, new FaultServerOptions { Policies = [policy], OnFork = ForkBehavior.Serve });
        Hard.Within(() =>
        {
            // The reader is a fork child (a SIGBUS would end this process); with EVENT_FORK its faults reach the
            // child's server, which resolves each with the same policy as it comes.
            using var child = ForkedChild.Start(ChildOps.Read64(r.PageAt(0)), ChildOps.Read64(r.PageAt(1)), ChildOps.Read64(r.PageAt(2)), ChildOps.Read64(r.PageAt(3)));
            Assert.Equal(0, child.Finish(10_000));
            var res = child.Results.OrderBy(x => x.Index).ToArray();
            Assert.Equal([1, 0, 1, 0], res.Select(x => x.Sigbus));
            Assert.Equal(Accessor.PatternWord(NewSeed, S.Page / 8), res[1].Value);
            Assert.Equal(Accessor.PatternWord(NewSeed, 3 * S.Page / 8), res[3].Value);
            var stats = server.Children.Single().Statistics;
            Assert.Equal(4UL, stats.MissingFaults);
        }, server, r);
    }
}
