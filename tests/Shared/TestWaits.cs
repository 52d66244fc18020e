using UffdNative.Access;

namespace UffdNative.TestShared;

/// <summary>The waits and native workers both test projects use (compiled into each; tests/Shared):
/// a hard timeout around a test body, a bounded wait on an observation, and pattern-writing workers.
/// Registered memory is only ever touched by these native workers, never by managed code.</summary>
internal static class TestWaits
{
    /// <summary>Runs body on its own thread; fails the test when it does not finish in time, after
    /// running the release actions (closing uffds, killing processes) so nothing stays blocked.</summary>
    public static void Within(int timeoutMs, Action body, IEnumerable<Action> release)
    {
        Exception? error = null;
        var t = new Thread(() =>
        {
            try { body(); }
            catch (Exception e) { error = e; }
        }) { IsBackground = true, Name = "test body" };
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

    /// <summary>Waits (hard bound) until cond holds, yielding between observations.</summary>
    public static void Until(Func<bool> cond, string what, int timeoutMs)
    {
        var deadline = Environment.TickCount64 + timeoutMs;
        while (!cond())
        {
            if (Environment.TickCount64 > deadline)
                Assert.Fail("not observed in time: " + what);
            Thread.Yield();
        }
    }

    public static void JoinAll(int timeoutMs, NativeWorker[] workers)
    {
        foreach (var w in workers)
            Assert.True(w.Join(timeoutMs), $"worker {w.ThreadId} still blocked (state {w.State})");
    }

    /// <summary>Joins the workers (bounded: each must finish), then disposes them.</summary>
    public static void JoinAndDispose(int timeoutMs, NativeWorker[] workers)
    {
        JoinAll(timeoutMs, workers);
        foreach (var w in workers)
            w.Dispose();
    }

    /// <summary>A worker writing word (i % 512) of page i := pattern(seed, i), like the bench toucher.</summary>
    public static NativeWorker WritePattern(Func<long, ulong> pageAddress, long first, long count, ulong seed)
    {
        var ops = new AccessOp[count];
        for (long k = 0; k < count; k++)
        {
            long i = first + k;
            ops[k] = Op.Write64(pageAddress(i) + (ulong)(i % 512) * 8, Accessor.PatternWord(seed, (ulong)i));
        }
        return new NativeWorker(ops);
    }
}
