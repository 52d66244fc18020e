namespace UffdNative.Harness.Tests;

/// <summary>Hard timeouts for kernel-touching tests (the pattern of UffdNative.Tests): a hang fails the
/// test instead of stalling the run. The executor bounds every op itself; this bounds the whole test.</summary>
public static class Hard
{
    /// <summary>A bound for a whole probe run (every experiment bounds its own waits too).</summary>
    public const int Probe = 60_000;

    public static T Within<T>(int timeoutMs, Func<T> body)
    {
        T? result = default;
        Exception? error = null;
        var t = new Thread(() =>
        {
            try { result = body(); }
            catch (Exception e) { error = e; }
        }) { IsBackground = true, Name = "test body" };
        t.Start();
        if (!t.Join(timeoutMs))
            Assert.Fail($"hard timeout after {timeoutMs} ms");
        if (error is not null)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw();
        return result!;
    }

    public static void Within(int timeoutMs, Action body) => Within<int>(timeoutMs, () => { body(); return 0; });
}
