namespace UffdNative.Tests;

public class LayoutTests
{
    [Fact]
    public void EveryManagedStructSizeOffsetIoctlAndConstantEqualsTheShimsTable()
    {
        var shim = LayoutVerifier.ShimTable();
        var managed = LayoutVerifier.ManagedTable();
        Assert.Empty(LayoutVerifier.Compare());
        Assert.Equal(shim.Keys.OrderBy(k => k, StringComparer.Ordinal), managed.Keys.OrderBy(k => k, StringComparer.Ordinal));
        foreach (var (name, value) in managed)
            Assert.True(shim[name] == value, $"{name}: shim 0x{shim[name]:x} binding 0x{value:x}");
        // Spot checks against the reference's table (§1.4, §1.5, §1.7), independent of both sides.
        Assert.Equal(32, shim["sizeof(uffd_msg)"]);
        Assert.Equal(0xC028AA03L, shim["UFFDIO_COPY"]);
        Assert.Equal(0x8010AA01L, shim["UFFDIO_UNREGISTER"]);
        Assert.Equal(0xC0606610L, shim["PAGEMAP_SCAN"]);
        Assert.Equal(96, shim["sizeof(pm_scan_arg)"]);
        Assert.Equal(24, shim["offsetof(uffd_msg.arg.pagefault.feat.ptid)"]);
    }
}
