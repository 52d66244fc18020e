namespace UffdNative.Tests;

public class SmokeTests
{
    [Fact]
    public void WpWriteOnShmemIsDeliveredAndResolved()
    {
        using var r = Region.Shmem(4, RegisterMode.WriteProtect, UffdFeatures.ThreadId | UffdFeatures.WpHugetlbfsShmem);
        Hard.Within(() =>
        {
            Assert.True(r.Uffd.WriteProtect(r.Addr, r.Len, protect: true));
            using var w = NativeWorker.Start(Op.Write64(r.PageAt(1) + 8, 0x1234));
            var msgs = r.Uffd.WaitMessages(5000);
            var pf = Assert.IsType<PageFault>(Assert.Single(msgs));
            Assert.Equal(PageFaultFlags.Write | PageFaultFlags.WriteProtect, pf.Flags);
            Assert.Equal(r.PageAt(1), pf.Address);
            Assert.Equal(w.ThreadId, pf.ThreadId);
            Assert.True(r.Uffd.WriteProtect(r.PageAt(1), Region.Page, protect: false));
            Assert.True(w.Join(5000));
            Assert.Equal(0x1234UL, r.File!.ReadU64((long)Region.Page + 8));
        }, r.Uffd);
    }
}
