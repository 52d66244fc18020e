namespace UffdNative.Tests;

public class GcTests
{
    [Fact]
    public void GcCompletesWhileManagedThreadsAreBlockedInFaultsInsideTheShim()
    {
        const int n = 4;
        using var r = Region.Shmem(n, RegisterMode.WriteProtect);
        Assert.True(r.Uffd.WriteProtect(r.Addr, r.Len, true));
        Hard.Within(() =>
        {
            // Managed threads fault through the shim: the P/Invoke leaves them in preemptive mode,
            // so the GC does not wait for them (a direct managed store would hang the process).
            var threads = Enumerable.Range(0, n).Select(i => new Thread(() => Accessor.WriteU64(r.PageAt(i), (ulong)i + 100)) { IsBackground = true }).ToList();
            threads.ForEach(t => t.Start());
            Observe.Until(() => r.Uffd.ReadFdInfo().Pending == n, "every managed thread blocked in its fault");

            int collections = 0;
            var gc = new Thread(() =>
            {
                for (int i = 0; i < 20; i++)
                {
                    GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
                    GC.WaitForPendingFinalizers();
                    Interlocked.Increment(ref collections);
                }
            });
            gc.Start();
            Assert.True(gc.Join(10_000), "GC stalled behind threads blocked in uffd faults");
            Assert.Equal(20, collections);
            Assert.Equal(n, r.Uffd.ReadFdInfo().Pending); // the faults are still outstanding

            Assert.Equal(n, r.Uffd.ReadTyped().Count);
            r.Uffd.WriteProtect(r.Addr, r.Len, false);
            foreach (var t in threads)
                Assert.True(t.Join(5000));
            for (int i = 0; i < n; i++)
                Assert.Equal((ulong)i + 100, r.File!.ReadU64(i * (long)Region.Page));
        }, r.Uffd);
    }
}
