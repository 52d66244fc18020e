using UffdNative.Tests.Serving;

namespace UffdNative.Tests;

/// <summary>Issue 13, "test results lost": a test that fails while its native workers are blocked in
/// faults must end as one failed test, and the run must go on. Its teardown closes the uffd, which
/// wakes the workers; they then run on through the region — so the region may only be unmapped once
/// they are done (Region.Dispose, NativeWorker.WaitForWorkersIn), or the test host dies of SIGSEGV.</summary>
public class TeardownTests
{
    [Fact]
    public void ATestThatFailsWithAWorkerBlockedInAFaultEndsAsOneFailureAndTheHostGoesOn()
    {
        // 64 MiB: once woken, the worker takes milliseconds to read through the rest, so an unmap right
        // after the close would land under it.
        const long Pages = 16384;
        NativeWorker? worker = null;
        var region = Region.Anon(Pages, RegisterMode.Missing);
        // The failing test: a worker blocks in a fault nobody serves, an assertion fails, and the test's
        // own teardown (using) runs on the way out, exactly as for any test of this suite.
        var failure = Assert.ThrowsAny<Xunit.Sdk.XunitException>(() =>
        {
            using var r = region;
            Hard.Within(() =>
            {
                worker = S.ReadPages(r, 0, Pages); // deliberately not disposed: the failure leaves it
                Observe.Until(() => r.Uffd.ReadFdInfo().Pending == 1, "the worker blocked in its fault");
                Assert.Fail("the deliberate failure");
            }, r);
        });
        Assert.Contains("the deliberate failure", failure.Message);
        // This process is still here; the worker finished every access after the close, on memory still
        // mapped (each read of the never-served pages gives zero), and only then was the region unmapped.
        Assert.NotNull(worker);
        Assert.True(worker.IsFinished);
        var result = Assert.Single(worker.Results);
        Assert.True(result.Ret >= 0, $"the worker's access failed: {result.Ret}");
        Assert.True(region.Map.IsUnmapped);
        worker.Dispose();
    }
}
