namespace UffdNative.Harness.Tests.Probing;

/// <summary>Hard timeouts for probe tests: a kernel or probe bug must fail the test, never hang the run.</summary>
public static class ProbeTimeout
{
    public const int Default = 60_000;

    /// <summary>Runs body on its own thread and fails the test if it has not finished in time.</summary>
    public static T Within<T>(int timeoutMs, Func<T> body)
    {
        T? result = default;
        Exception? error = null;
        var t = new Thread(() =>
        {
            try { result = body(); }
            catch (Exception e) { error = e; }
        }) { IsBackground = true, Name = "probe test body" };
        t.Start();
        if (!t.Join(timeoutMs))
            Assert.Fail($"hard timeout after {timeoutMs} ms");
        if (error is not null)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw();
        return result!;
    }

    public static void Within(int timeoutMs, Action body) => Within(timeoutMs, () => { body(); return 0; });
}
