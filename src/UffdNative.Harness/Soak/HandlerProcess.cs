using System.Diagnostics;
using UffdNative.Serving.External;

namespace UffdNative.Harness.Soak;

/// <summary>
/// A handler host process (the library's UffdNative.HandlerHost, the engine of `uffdnative serve`)
/// started by this one (tests, soak, bench): started with its socket
/// path and options, ready once it printed "listening on PATH" (an observation, not a sleep), and
/// killed on dispose if it is still running. Its output lines are kept for diagnostics.
/// </summary>
public sealed class HandlerProcess : IDisposable
{
    private readonly Process process;
    private readonly List<string> output = [];
    private readonly TaskCompletionSource<bool> listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public string SocketPath { get; }
    public int Pid => process.Id;
    public Process Process => process;

    public IReadOnlyList<string> Output
    {
        get
        {
            lock (output)
                return [.. output];
        }
    }

    private HandlerProcess(Process p, string socketPath)
    {
        process = p;
        SocketPath = socketPath;
    }

    /// <summary>A fresh socket path in a new private directory under /tmp (mode 0700: the handler refuses
    /// a directory others can write; short enough for sun_path). <see cref="Dispose"/> removes both.</summary>
    public static string NewSocketPath(string tag = "h") => HandlerHostProgram.NewSocketPath(tag);

    /// <summary>Removes a socket path made by <see cref="NewSocketPath"/>: the socket and lock file if
    /// still there, then the directory if it is empty.</summary>
    public static void RemoveSocketPath(string socketPath)
    {
        foreach (var f in new[] { socketPath, socketPath + ".lock" })
            try
            {
                File.Delete(f); // a missing file is no error
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        try
        {
            var dir = Path.GetDirectoryName(socketPath)!;
            if (Directory.Exists(dir) && !Directory.EnumerateFileSystemEntries(dir).Any())
                Directory.Delete(dir);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>Starts the library's handler host (<see cref="HandlerHostProgram.StartInfo"/>: not the CLI)
    /// with `--socket PATH args...` and waits until it listens. The host stops with this process
    /// (--exit-with-parent) and, when it made the socket's directory here, removes it then.</summary>
    /// <param name="cpu">Pin the handler to this CPU (through taskset), or -1.</param>
    public static HandlerProcess Start(IEnumerable<string> serveArgs, string? socketPath = null, int readyTimeoutMs = 30_000, int cpu = -1)
    {
        bool ownDirectory = socketPath is null;
        socketPath ??= NewSocketPath();
        List<string> args = ["--socket", socketPath, .. serveArgs];
        if (ownDirectory)
            args.Add("--remove-socket-directory");
        var psi = HandlerHostProgram.StartInfo(args, cpu >= 0 ? ["taskset", "-c", cpu.ToString(System.Globalization.CultureInfo.InvariantCulture)] : null);
        psi.Environment["NO_COLOR"] = "1";
        var p = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var h = new HandlerProcess(p, socketPath);
        p.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                h.listening.TrySetResult(false);
                return;
            }
            lock (h.output)
                h.output.Add(e.Data);
            if (e.Data.StartsWith("listening on ", StringComparison.Ordinal))
                h.listening.TrySetResult(true);
        };
        p.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
                lock (h.output)
                    h.output.Add("stderr: " + e.Data);
        };
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        if (!h.listening.Task.Wait(readyTimeoutMs) || !h.listening.Task.Result)
        {
            h.Dispose();
            throw new InvalidOperationException($"the handler host did not start listening on {socketPath} within {readyTimeoutMs} ms: {string.Join(" | ", h.Output)}");
        }
        return h;
    }

    public bool HasExited => process.HasExited;

    /// <summary>Waits for the exit; the exit code, or null on timeout.</summary>
    public int? WaitForExit(int timeoutMs)
    {
        if (!process.WaitForExit(timeoutMs))
            return null;
        process.WaitForExit(); // flush the output handlers
        return process.ExitCode;
    }

    public void Kill() => process.KillIfRunning();

    public void Dispose()
    {
        process.Reap();
        process.Dispose();
        RemoveSocketPath(SocketPath);
    }
}
