// The CLI tests drive Linux-only tools (setpriv, seccomp, mount namespaces) and Unix file modes.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace UffdNative.Harness.Tests.Cli;

/// <summary>What one run of the CLI process did.</summary>
public sealed record CliResult(int ExitCode, string Stdout, string Stderr, string CommandLine)
{
    public IReadOnlyList<string> StderrLines => Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    public override string ToString() => $"$ {CommandLine}\nexit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

/// <summary>
/// Runs the built CLI (UffdNative.Cli.dll, copied into this test project's output by the project
/// reference) as a separate process, optionally behind wrapper commands (the seccomp launcher,
/// setpriv), and captures everything it says.
/// </summary>
public static class CliRunner
{
    /// <summary>The dotnet host running these tests (the same SDK's runtime runs the CLI).</summary>
    public static string DotnetHost => Environment.ProcessPath is { } p && Path.GetFileName(p) == "dotnet" ? p : "dotnet";

    public static string TestOutputDirectory => AppContext.BaseDirectory;

    public static string CliDll(string? directory = null) => Path.Combine(directory ?? TestOutputDirectory, "UffdNative.Cli.dll");

    /// <summary>How to run the CLI as a process: the dotnet host and UffdNative.Cli.dll.</summary>
    public static (string FileName, string[] Prefix) Command() => (DotnetHost, [CliDll()]);

    public static string Launcher => Path.Combine(TestOutputDirectory, "uffd_seccomp_launch");

    /// <summary>The prefix that runs a command as uid/gid 65534 with no supplementary groups.</summary>
    public static readonly string[] Nobody = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "--"];

    /// <summary>Runs `dotnet UffdNative.Cli.dll ARGS`.</summary>
    public static CliResult Run(params string[] args) => RunIn(null, [], args);

    /// <summary>Runs `dotnet UffdNative.Cli.dll ARGS` with its own bound (check and fuzz take minutes).</summary>
    public static CliResult Run(string[] args, int timeoutMs) => Exec([DotnetHost, CliDll(), .. args], timeoutMs: timeoutMs);

    /// <summary>Runs `PREFIX... dotnet DIR/UffdNative.Cli.dll ARGS` (DIR defaults to the test output).</summary>
    public static CliResult RunIn(string? directory, string[] prefix, string[] args, string? workingDirectory = null) =>
        Exec([.. prefix, DotnetHost, CliDll(directory), .. args], workingDirectory);

    /// <summary>Runs any command line and waits (bounded) for it.</summary>
    public static CliResult Exec(string[] argv, string? workingDirectory = null, IDictionary<string, string>? environment = null, int timeoutMs = 180_000)
    {
        var psi = new ProcessStartInfo(argv[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Path.GetTempPath(),
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var a in argv.Skip(1))
            psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        psi.Environment["NO_COLOR"] = "1";
        psi.Environment.Remove("UFFDNATIVE_SHIM");
        if (environment is not null)
            foreach (var (k, v) in environment)
                psi.Environment[k] = v;
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {argv[0]}");
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeoutMs))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            throw new TimeoutException($"`{string.Join(' ', argv)}` did not finish within {timeoutMs} ms; stderr so far: {stderr.Result}");
        }
        p.WaitForExit(); // drains the redirected streams
        return new CliResult(p.ExitCode, stdout.Result, stderr.Result, string.Join(' ', argv));
    }
}

/// <summary>
/// A copy of the CLI's files under /var/tmp that uid 65534 can read and execute (the build output may
/// live under a directory other users cannot enter, e.g. /root). Removed when the test class ends.
/// </summary>
public sealed class WorldReadableCliCopy : IDisposable
{
    public string Directory { get; }

    public WorldReadableCliCopy()
    {
        // /var/tmp (not TMPDIR, which may be private to root): every parent must be enterable by uid 65534.
        Directory = System.IO.Directory.CreateDirectory(Path.Combine("/var/tmp", "uffdnative-cli-" + Guid.NewGuid().ToString("N")[..12])).FullName;
        foreach (var file in System.IO.Directory.EnumerateFiles(CliRunner.TestOutputDirectory, "*", SearchOption.AllDirectories))
        {
            var rel = Path.GetRelativePath(CliRunner.TestOutputDirectory, file);
            if (rel.StartsWith("TestResults", StringComparison.Ordinal))
                continue;
            var dst = Path.Combine(Directory, rel);
            System.IO.Directory.CreateDirectory(Path.GetDirectoryName(dst)!);
            File.Copy(file, dst);
        }
        // 0755 on every directory, a+r (and a+x where set) on every file.
        foreach (var d in System.IO.Directory.EnumerateDirectories(Directory, "*", SearchOption.AllDirectories).Prepend(Directory))
            File.SetUnixFileMode(d, (UnixFileMode)0b111_101_101);
        foreach (var f in System.IO.Directory.EnumerateFiles(Directory, "*", SearchOption.AllDirectories))
        {
            var m = File.GetUnixFileMode(f) | UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
            if ((m & UnixFileMode.UserExecute) != 0)
                m |= UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
            File.SetUnixFileMode(f, m);
        }
        for (var p = Path.GetDirectoryName(Directory); p is not null && p != "/"; p = Path.GetDirectoryName(p))
            if ((File.GetUnixFileMode(p) & UnixFileMode.OtherExecute) == 0)
                throw new InvalidOperationException($"{p} is not enterable by other users; the unprivileged tests need /var/tmp to be enterable");
    }

    public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);
}
