using System.Runtime.InteropServices;

namespace UffdNative.Harness.Tests.Reliability;

/// <summary>Helpers of the reliability tests: hard timeouts, regions, native workers, observations.
/// Registered memory is only ever touched by native code (workers, forked children, the shim's
/// verifier after every fault is resolved).</summary>
public static unsafe class R
{
    public static readonly ulong Page = Mapping.PageSize;

    /// <summary>Runs body on its own thread; fails the test when it does not finish in time, after
    /// running the release actions (closing uffds, killing processes) so nothing stays blocked.</summary>
    public static void Within(int timeoutMs, Action body, params Action[] release)
    {
        Exception? error = null;
        var t = new Thread(() =>
        {
            try { body(); }
            catch (Exception e) { error = e; }
        }) { IsBackground = true, Name = "reliability test body" };
        t.Start();
        if (!t.Join(timeoutMs))
        {
            foreach (var r in release)
            {
                try { r(); }
                catch (Exception) { }
            }
            bool freed = t.Join(5000);
            Assert.Fail($"hard timeout after {timeoutMs} ms" + (freed ? " (released)" : " (the body is still blocked)"));
        }
        if (error is not null)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw();
    }

    /// <summary>Waits (bounded) until an observation holds.</summary>
    public static void Until(Func<bool> cond, string what, int timeoutMs = 15_000)
    {
        var deadline = Environment.TickCount64 + timeoutMs;
        while (!cond())
        {
            if (Environment.TickCount64 > deadline)
                Assert.Fail("not observed in time: " + what);
            Thread.Yield();
        }
    }

    public static Userfaultfd Open(UffdFeatures features) => Userfaultfd.Open(new UffdOpenOptions { RequiredFeatures = features | UffdFeatures.ThreadId });

    public static HandoffRegion Region(Mapping m, string memory, string mode, int? memfd = null, ulong offset = 0) => new()
    {
        BaseHostVirtAddr = m.Address,
        Size = m.Length,
        Offset = offset,
        PageSize = Page,
        Memory = memory,
        Modes = [mode],
        Memfd = memfd,
    };

    /// <summary>A worker reading word 0 of each page [first, first+count).</summary>
    public static NativeWorker Read(Mapping m, long first, long count) => new([Op.TouchRead(m.PageAddress(first), (ulong)count * Page)]);

    /// <summary>A worker writing word (i % 512) of page i := pattern(seed, i), like the bench toucher.</summary>
    public static NativeWorker Write(Mapping m, long first, long count, ulong seed)
    {
        var ops = new AccessOp[count];
        for (long k = 0; k < count; k++)
        {
            long i = first + k;
            ops[k] = Op.Write64(m.PageAddress(i) + (ulong)(i % 512) * 8, Shim.uffd_pattern_word(seed, (ulong)i));
        }
        return new NativeWorker(ops);
    }

    public static void JoinAll(int timeoutMs, params NativeWorker[] workers)
    {
        foreach (var w in workers)
            Assert.True(w.Join(timeoutMs), $"worker {w.ThreadId} still blocked (state {w.State})");
    }

    /// <summary>-1 when pages [0, pages) at addr match (base pattern/zero, touched slots).</summary>
    public static long Verify(ulong addr, long pages, VerifyBase b, ulong baseSeed, bool touched = false, ulong touchSeed = 0)
        => HarnessNative.VerifyPages(addr, pages, b, baseSeed, touched, touchSeed);
}
