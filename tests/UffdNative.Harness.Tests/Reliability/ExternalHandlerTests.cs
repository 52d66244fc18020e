using UffdNative.Harness.Soak;
using UffdNative.Interop;
using UffdNative.Memory;
using UffdNative.Serving.External;

namespace UffdNative.Harness.Tests.Reliability;

/// <summary>The external handler (`uffdnative serve`) serving a uffd of this process, end to end.</summary>
public class ExternalHandlerTests
{
    private const ulong Seed = 0xab5eed;

    [Fact]
    public void ServesMissingCopyFromAnotherProcess()
    {
        using var handler = HandlerProcess.Start([]);
        using var map = Mapping.Anonymous(256 * R.Page);
        var uffd = R.Open(UffdFeatures.None);
        uffd.Register(map.Address, map.Length, RegisterMode.Missing);
        R.Within(60_000, () =>
        {
            using var session = ExternalHandler.Connect(handler.SocketPath, uffd, new ExternalHandlerOptions
            {
                Regions = [R.Region(map, "anon", "missing")],
                Policies = [PolicySpec.Of("missing-copy", new SourceSpec { Kind = "pattern", Seed = Seed })],
                OnFailure = WatchdogAction.Takeover,
                TakeoverPolicies = () => [new Serving.Policies.MissingCopy(Serving.PageSource.FromDelegate((o, d) => Access.Accessor.PatternFill(d, Seed, o / 8), map.Length))],
            });
            var workers = Enumerable.Range(0, 4).Select(i => R.Read(map, i * 64, 64)).ToArray();
            R.JoinAll(20_000, workers);
            Assert.True(session.Stop(10_000), $"state {session.State}, failure {session.Failure}");
            var st = session.Final!.Stats!;
            Assert.Equal("Stopped", session.Final.Exit);
            Assert.Equal(st.Faults, st.Resolved);
            Assert.Equal(256UL, st.PagesResolved);
            Assert.Equal(-1, R.Verify(map.Address, 256, VerifyBase.Pattern, Seed));
            foreach (var w in workers)
                w.Dispose();
        }, () => uffd.Dispose(), handler.Kill);
        Assert.Equal(0, handler.WaitForExit(10_000));
    }
}
