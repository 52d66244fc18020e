using System.Diagnostics;
using System.Reflection;

namespace UffdNative.Harness.Soak;

/// <summary>
/// A `uffdnative serve` process started by this one (tests, soak, bench): started with its socket
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

    /// <summary>A fresh socket path in a new private directory under /tmp (mode 0700: serve refuses a
    /// directory others can write; short enough for sun_path). <see cref="Dispose"/> removes both.</summary>
    public static string NewSocketPath(string tag = "h")
    {
        var dir = Path.Combine("/tmp", $"uffdnative-{tag}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
        if (!OperatingSystem.IsLinux())
            throw new PlatformNotSupportedException("serve runs on Linux");
        Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return Path.Combine(dir, "h.sock");
    }

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

    /// <summary>How to run the CLI: $UFFDNATIVE_CLI (an executable or a .dll), this process when it is
    /// the CLI, or UffdNative.Cli.dll next to this assembly.</summary>
    public static (string FileName, string[] Prefix) CliCommand()
    {
        static (string, string[]) ForPath(string p) => p.EndsWith(".dll", StringComparison.Ordinal) ? ("dotnet", [p]) : (p, []);
        var env = Environment.GetEnvironmentVariable("UFFDNATIVE_CLI");
        if (!string.IsNullOrEmpty(env))
            return ForPath(env);
        var entry = Assembly.GetEntryAssembly();
        if (entry?.GetName().Name == "UffdNative.Cli")
        {
            var exe = Environment.ProcessPath ?? "dotnet";
            var entryDll = Path.Combine(AppContext.BaseDirectory, "UffdNative.Cli.dll");
            if (Path.GetFileNameWithoutExtension(exe) == "dotnet" && File.Exists(entryDll))
                return ("dotnet", [entryDll]);
            return (exe, []);
        }
        var dll = Path.Combine(AppContext.BaseDirectory, "UffdNative.Cli.dll");
        if (File.Exists(dll))
            return ("dotnet", [dll]);
        throw new FileNotFoundException("the uffdnative CLI was not found: set UFFDNATIVE_CLI to its executable or UffdNative.Cli.dll");
    }

    /// <summary>Starts `uffdnative serve --socket PATH args...` and waits until it listens.</summary>
    /// <param name="cpu">Pin the handler to this CPU (through taskset), or -1.</param>
    public static HandlerProcess Start(IEnumerable<string> serveArgs, string? socketPath = null, int readyTimeoutMs = 30_000, int cpu = -1)
    {
        socketPath ??= NewSocketPath();
        var (file, prefix) = CliCommand();
        var psi = new ProcessStartInfo(cpu >= 0 ? "taskset" : file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (cpu >= 0)
        {
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add(cpu.ToString(System.Globalization.CultureInfo.InvariantCulture));
            psi.ArgumentList.Add(file);
        }
        foreach (var a in prefix)
            psi.ArgumentList.Add(a);
        psi.ArgumentList.Add("serve");
        psi.ArgumentList.Add("--socket");
        psi.ArgumentList.Add(socketPath);
        // No orphaned handler: serve watches this process's pidfd and stops when it ends.
        psi.ArgumentList.Add("--exit-with-parent");
        foreach (var a in serveArgs)
            psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
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
            throw new InvalidOperationException($"uffdnative serve did not start listening on {socketPath} within {readyTimeoutMs} ms: {string.Join(" | ", h.Output)}");
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

    public void Kill()
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

    public void Dispose()
    {
        Kill();
        process.WaitForExit(10_000);
        process.Dispose();
        RemoveSocketPath(SocketPath);
    }
}
