namespace UffdNative.Tests;

public class PollTests
{
    [Fact]
    public void PollReportsTimeoutStopAndReadableAndErrorOnABlockingUffd()
    {
        using var r = Region.Anon(1, RegisterMode.Missing);
        using var stop = new EventFd();
        Hard.Within(() =>
        {
            Assert.Equal(PollEvents.None, r.Uffd.Poll(0, stop));
            stop.Signal();
            Assert.Equal(PollEvents.Stop, r.Uffd.Poll(1000, stop));
            Assert.Equal(1, stop.Drain());
            Assert.Equal(0, stop.Drain());
            Assert.Equal(PollEvents.None, r.Uffd.Poll(0, stop));

            using var w = NativeWorker.Start(Op.Read64(r.Addr));
            Assert.Equal(PollEvents.Readable, r.Uffd.Poll(5000, stop));
            Assert.Single(r.Uffd.ReadTyped());
            r.Uffd.ZeroPage(r.Addr, Region.Page);
            Assert.True(w.Join(5000));
        }, r.Uffd);

        // poll on a blocking uffd always reports POLLERR (§1.5): loops must use O_NONBLOCK.
        using var blocking = Userfaultfd.Open(new UffdOpenOptions { NonBlocking = false });
        Assert.True(blocking.Poll(0).HasFlag(PollEvents.Error));
    }
}
