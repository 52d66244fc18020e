// Real-kernel tests share one process's page tables, fd table and CPUs; run them one at a time so
// fdinfo counts, pinning and fork children never interleave.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace UffdNative.Tests;

/// <summary>Hard timeouts: a uffd bug must turn into a failed test, never a hung run.</summary>
public static class Hard
{
    public const int Timeout = 20_000;

    /// <summary>Runs body on its own thread. If it does not finish in time, every uffd in
    /// <paramref name="release"/> is closed (the kernel then wakes every blocked thread and resolves
    /// normally) and the test fails.</summary>
    public static void Within(int timeoutMs, Action body, params IDisposable?[] release) =>
        TestWaits.Within(timeoutMs, body, release.Select(r => (Action)(() => r?.Dispose())));

    public static void Within(Action body, params IDisposable?[] release) => Within(Timeout, body, release);
}

/// <summary>A memfd (or anonymous) region with a uffd, torn down in the safe order.</summary>
public sealed class Region : IDisposable
{
    public static readonly ulong Page = Mapping.PageSize;

    public MemfdFile? File { get; }
    public Mapping Map { get; }
    public Userfaultfd Uffd { get; }
    public ulong Addr => Map.Address;
    public ulong Len => Map.Length;
    public ulong PageAt(long i) => Map.PageAddress(i);

    private readonly ulong start, length;
    private bool disposed;

    private Region(MemfdFile? file, Mapping map, Userfaultfd uffd)
    {
        File = file;
        Map = map;
        Uffd = uffd;
        start = map.Address;
        length = map.Length;
    }

    public static Userfaultfd OpenUffd(UffdFeatures features = UffdFeatures.None, bool userModeOnly = false) =>
        Userfaultfd.Open(new UffdOpenOptions { RequiredFeatures = features, UserModeOnly = userModeOnly, Path = userModeOnly ? UffdOpenPath.SyscallUserModeOnly : UffdOpenPath.Auto });

    public static Region Shmem(long pages, RegisterMode mode, UffdFeatures features = UffdFeatures.None, bool shared = true, bool userModeOnly = false)
    {
        var f = MemfdFile.Create("uffd-test", pages * (long)Page);
        var m = shared ? f.MapShared() : f.MapPrivate();
        var u = OpenUffd(features, userModeOnly);
        if (mode != RegisterMode.None)
            u.Register(m.Address, m.Length, mode);
        return new Region(f, m, u);
    }

    public static Region Anon(long pages, RegisterMode mode, UffdFeatures features = UffdFeatures.None, bool userModeOnly = false)
    {
        var m = Mapping.Anonymous((ulong)pages * Page);
        var u = OpenUffd(features, userModeOnly);
        if (mode != RegisterMode.None)
            u.Register(m.Address, m.Length, mode);
        return new Region(null, m, u);
    }

    /// <summary>Starts a native worker on op and reads the one message it must raise, a page fault (within 5 s):
    /// the worker then sleeps in that fault until something resolves or wakes it.</summary>
    public NativeWorker StartFaulting(AccessOp op, out PageFault fault)
    {
        var w = NativeWorker.Start(op);
        try
        {
            fault = Assert.IsType<PageFault>(Assert.Single(Uffd.WaitMessages(5000)));
            return w;
        }
        catch
        {
            w.Dispose();
            throw;
        }
    }

    /// <summary>Close the uffd (the kernel wakes every worker blocked in a fault here, §1.5 close()),
    /// wait until no native worker still accesses the pages, then unmap. A test that failed with its
    /// workers blocked ends here as one failed test: unmapping under a woken worker would SIGSEGV the
    /// test host and lose every later result. A worker still running after the wait (blocked on
    /// another, open uffd) keeps the mapping: it is left mapped, never pulled from under it.</summary>
    public void Dispose()
    {
        if (disposed)
            return;
        disposed = true;
        Uffd.Dispose();
        if (NativeWorker.WaitForWorkersIn(start, length, Hard.Timeout))
            Map.Dispose();
        else
            Console.Error.WriteLine($"Region 0x{start:x}+{length}: a native worker is still running in it; left mapped");
        File?.Dispose();
    }
}

public static class Observe
{
    /// <summary>Waits (bounded) until a condition read from the kernel holds, e.g. fdinfo "pending"
    /// reaching a count. Not a sleep: it re-reads the observation until it is true.</summary>
    public static void Until(Func<bool> condition, string what, int timeoutMs = 10_000)
    {
        var deadline = Environment.TickCount64 + timeoutMs;
        while (!condition())
        {
            if (Environment.TickCount64 > deadline)
                Assert.Fail($"timed out waiting for: {what}");
            Thread.Yield();
        }
    }
}
