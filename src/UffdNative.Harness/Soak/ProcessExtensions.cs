using System.Diagnostics;

namespace UffdNative.Harness.Soak;

/// <summary>Ending a child process this one started (handler hosts, test owners).</summary>
internal static class ProcessExtensions
{
    /// <summary>Kills the process unless it already exited (an exit racing the check is not an error).</summary>
    public static void KillIfRunning(this Process process)
    {
        try
        {
            if (!process.HasExited)
                process.Kill();
        }
        catch (InvalidOperationException)
        {
        }
    }

    /// <summary>Kills the process if it still runs and waits (bounded) for it to be gone.</summary>
    public static void Reap(this Process process)
    {
        process.KillIfRunning();
        process.WaitForExit(10_000);
    }
}
