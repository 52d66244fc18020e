using System.ComponentModel;
using System.Diagnostics;

namespace UffdNative.Cli.Infrastructure;

/// <summary>The scripts the CLI drives (scripts/kernel-matrix.sh for bisect and matrix) run under bash;
/// a bash that cannot be started is a problem of the environment (exit 3, one line).</summary>
public static class CliProcesses
{
    /// <summary>Runs <c>bash ARGS</c> and waits for it. capture: stdout and stderr are returned, else
    /// they stay this process's streams (and come back empty).</summary>
    public static (int ExitCode, string Stdout, string Stderr) Bash(IEnumerable<string> args, string script, bool capture)
    {
        var psi = new ProcessStartInfo("bash", args) { UseShellExecute = false, RedirectStandardOutput = capture, RedirectStandardError = capture };
        try
        {
            using var p = Process.Start(psi)!;
            var stderr = capture ? p.StandardError.ReadToEndAsync() : Task.FromResult("");
            var stdout = capture ? p.StandardOutput.ReadToEnd() : "";
            p.WaitForExit();
            return (p.ExitCode, stdout, stderr.Result);
        }
        catch (Win32Exception e)
        {
            throw new CliEnvironmentException($"cannot start bash for {script}: {e.Message}", e);
        }
    }
}
