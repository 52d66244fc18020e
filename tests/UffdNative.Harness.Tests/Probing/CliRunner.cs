using System.Diagnostics;

namespace UffdNative.Harness.Tests.Probing;

/// <summary>Runs the uffdnative CLI (built next to the tests) as a separate process with a hard
/// timeout, optionally as another user through setpriv.</summary>
public static class CliRunner
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    public static string CliDll => Path.Combine(AppContext.BaseDirectory, "UffdNative.Cli.dll");

    public static Result Run(IEnumerable<string> args, string? asUser = null, string? dllDir = null, int timeoutMs = 60_000)
    {
        var dll = dllDir is null ? CliDll : Path.Combine(dllDir, "UffdNative.Cli.dll");
        var psi = new ProcessStartInfo { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (asUser is not null)
        {
            psi.FileName = "setpriv";
            foreach (var a in new[] { "--reuid", asUser, "--regid", asUser, "--clear-groups", "dotnet", dll })
                psi.ArgumentList.Add(a);
        }
        else
        {
            psi.FileName = "dotnet";
            psi.ArgumentList.Add(dll);
        }
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        psi.Environment["NO_COLOR"] = "1";
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeoutMs))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"uffdnative {string.Join(' ', args)} did not finish within {timeoutMs} ms");
        }
        p.WaitForExit();
        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>A world-readable copy of the test output directory, so that an unprivileged user can
    /// run the CLI wherever the repository was cloned.</summary>
    public static string WorldReadableCopy()
    {
        if (!OperatingSystem.IsLinux())
            throw new PlatformNotSupportedException();
        var dir = Path.Combine(Path.GetTempPath(), "uffdnative-probe-cli-" + Guid.NewGuid().ToString("N")[..8]);
        foreach (var file in Directory.EnumerateFiles(AppContext.BaseDirectory, "*", SearchOption.AllDirectories))
        {
            var rel = Path.GetRelativePath(AppContext.BaseDirectory, file);
            var dest = Path.Combine(dir, rel);
            Directory.CreateDirectory(Path.GetDirectoryName(dest)!);
            File.Copy(file, dest);
        }
        foreach (var d in Directory.EnumerateDirectories(dir, "*", SearchOption.AllDirectories).Append(dir))
            File.SetUnixFileMode(d, (UnixFileMode)0b111_101_101);
        foreach (var f in Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories))
            File.SetUnixFileMode(f, (UnixFileMode)0b110_100_100);
        return dir;
    }
}
