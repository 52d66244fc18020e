namespace UffdNative.Harness.Tests.Reliability;

/// <summary>No silent stops (issue 12, item 5): serve stopped by SIGTERM while a client still has
/// registered ranges ends in the client's configured action — here Takeover — with no hang and no
/// zero-filled page; and serve itself exits within its stop bound.</summary>
public unsafe class ServeStopTests
{
    private const ulong Seed = 0x7e7;

    [Fact]
    public void SigtermWhileServingEndsInTheClientsTakeover()
    {
        using var handler = HandlerProcess.Start(["--sessions", "0"]);
        using var map = Mapping.Anonymous(64 * R.Page);
        var uffd = R.RegisterMissing(map);
        R.WithSession(60_000, handler, uffd, R.MissingPatternWithTakeover(map, Seed), session =>
        {
            using (var first = R.Read(map, 0, 16))
                R.JoinAll(20_000, first);
            Assert.Equal(0, Tmds.Linux.LibC.kill(handler.Pid, 15)); // SIGTERM
            Assert.True(session.Completion.Wait(20_000), "the client never learned that serve stopped");
            Assert.Equal(ExternalHandlerState.TakenOver, session.State);
            Assert.Equal(HandlerFailureKind.HandlerStopped, session.Failure!.Kind);
            // The rest of the pages fault into the takeover: served, not hung, not zero.
            using (var rest = R.Read(map, 16, 48))
                R.JoinAll(20_000, rest);
            Assert.Equal(-1, R.Verify(map.Address, 64, VerifyBase.Pattern, Seed));
        });
        Assert.NotNull(handler.WaitForExit(10_000));
    }
}
