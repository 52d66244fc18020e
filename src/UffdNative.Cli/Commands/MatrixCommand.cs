using System.CommandLine;
using UffdNative.Cli.Infrastructure;
using System.Diagnostics;

namespace UffdNative.Cli.Commands;

/// <summary>
/// <c>uffdnative matrix</c>: runs scripts/kernel-matrix.sh (host + Debian kernels under qemu) and
/// maps its exit status onto the documented codes (MapExitCode). The script does the work; this verb finds it, hands it this
/// CLI's own directory (so it does not rebuild) and the options.
/// </summary>
public static class MatrixCommand
{
    public const string ScriptRelativePath = "scripts/kernel-matrix.sh";
    public const string ScriptEnvironmentVariable = "UFFDNATIVE_MATRIX_SCRIPT";

    /// <summary>What the verb was asked for; <see cref="ScriptArguments"/> turns it into the script's command line.</summary>
    public sealed record Request
    {
        public IReadOnlyList<string> Kernels { get; init; } = [];
        public string? Out { get; init; }
        public bool Ci { get; init; }
        public IReadOnlyList<string> Steps { get; init; } = [];
        /// <summary>The guests' timeouts, command line, accelerator and host tools.</summary>
        public GuestSettings Guest { get; init; } = new();
        public bool Verbose { get; init; }
        /// <summary>Guests run at once (the script's --jobs; null: its default, the CPU count).</summary>
        public int? Jobs { get; init; }
        /// <summary>The CLI directory the guests run; null makes the script build one.</summary>
        public string? Cli { get; init; }
    }

    public static Command Create()
    {
        var kernels = new Argument<string[]>("kernels")
        {
            Description = "host; 5.10, 6.1, 6.12, 6.12-trixie, 7.2, 7.3 (newest of the series in Debian's bullseye/bookworm/trixie/sid/experimental); a release such as 6.12.115+deb12-amd64 or 7.3-amd64; a package version such as 6.12.117-1~deb12u1; a local .deb; or IMAGE[:MODDIR], a bzImage of one's own. Default: host 6.1 6.12.",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var output = new Option<string?>("--out") { Description = "Results directory: KERNEL/probe.json, probe-nobody.json, check.json, console logs, matrix.md (default: artifacts/kernel-matrix)." };
        var ci = new Option<bool>("--ci") { Description = "What CI runs: host 6.1 6.12 with the default steps." };
        var steps = new Option<string[]>("--step") { Description = "Replace the default steps: NAME[@UID]=COMMAND, stdout to KERNEL/NAME; `uffdnative` in COMMAND is this CLI. Repeatable." };
        var guest = new GuestOptions();
        var rebuild = new Option<bool>("--rebuild") { Description = "Let the script build the CLI from the repository instead of running this one." };
        var script = new Option<string?>("--script") { Description = $"Path to kernel-matrix.sh (default: ${ScriptEnvironmentVariable}, else {ScriptRelativePath} above the current or this program's directory)." };
        var jobs = new Option<int?>("--jobs", "-j") { Description = "Kernels run at once, each an independent shard (default: the CPU count)." };
        var html = new Option<FileInfo?>("--html") { Description = "Also write the results as one self-contained HTML page (kernels × probe and check rows, differences highlighted)." };
        var verbose = new Option<bool>("--verbose") { Description = "Show qemu command lines and guest consoles (-v is the global --verbosity)." };

        var cmd = new Command("matrix",
            "Probe userfaultfd on the host and on Debian kernels (5.10 to 7.3-rc) or one's own booted under qemu (TCG, or KVM where hardware KVM exists), then write the comparison matrix. " +
            "Runs scripts/kernel-matrix.sh and exits 0 when all agreed; 1 a step failed, a kernel logged WARN/BUG/Oops, or a kernel gave no result (timeout, panic; the script itself says 4); 2 usage; 3 setup failed (packages or kernels could not be fetched).")
        {
            kernels, output, ci, steps, guest.Timeout, guest.StepTimeout, guest.Append, guest.Accel, guest.NoInstall, rebuild, script, verbose, jobs, html,
        };
        cmd.SetAction(pr =>
        {
            var scriptPath = FindScript(pr.GetValue(script), Environment.GetEnvironmentVariable(ScriptEnvironmentVariable),
                Directory.GetCurrentDirectory(), AppContext.BaseDirectory);
            if (scriptPath is null)
                throw new CliUsageException($"{ScriptRelativePath} not found above {Directory.GetCurrentDirectory()} or {AppContext.BaseDirectory}: run from the repository, or pass --script PATH (or set {ScriptEnvironmentVariable}).");
            var request = new Request
            {
                Kernels = pr.GetValue(kernels) ?? [],
                Out = pr.GetValue(output),
                Ci = pr.GetValue(ci),
                Steps = pr.GetValue(steps) ?? [],
                Guest = guest.Read(pr),
                Verbose = pr.GetValue(verbose),
                Jobs = pr.GetValue(jobs),
                Cli = pr.GetValue(rebuild) ? null : OwnCliDirectory(),
            };
            int code = Run(scriptPath, ScriptArguments(request));
            if (pr.GetValue(html) is { } page && code is not (ExitCodes.Usage or ExitCodes.Environment))
                MatrixHtmlCli.WriteFromDirectory(request.Out ?? Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(scriptPath)!)!, "artifacts", "kernel-matrix"), page);
            return code;
        });
        return cmd;
    }

    /// <summary>The script's arguments for a request, options first, kernels last.</summary>
    public static List<string> ScriptArguments(Request r)
    {
        var args = new List<string>();
        if (r.Ci) args.Add("--ci");
        if (r.Out is not null) args.AddRange(["--out", r.Out]);
        foreach (var s in r.Steps) args.AddRange(["--step", s]);
        var g = r.Guest;
        if (g.Timeout is { } t) args.AddRange(["--timeout", t.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        if (g.StepTimeout is { } st) args.AddRange(["--step-timeout", st.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        if (g.Append is not null) args.AddRange(["--append", g.Append]);
        if (g.Accel is not null) args.AddRange(["--accel", g.Accel]);
        if (g.NoInstall) args.Add("--no-install");
        if (r.Verbose) args.Add("--verbose");
        if (r.Jobs is { } j) args.AddRange(["--jobs", j.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        if (r.Cli is not null) args.AddRange(["--cli", r.Cli]);
        args.AddRange(r.Kernels);
        return args;
    }

    /// <summary>
    /// The script: the explicit path, else the environment variable, else scripts/kernel-matrix.sh in
    /// the first of the start directories or their parents that has one. Null when none exists.
    /// </summary>
    public static string? FindScript(string? explicitPath, string? environmentPath, params string[] startDirectories)
    {
        foreach (var candidate in new[] { explicitPath, environmentPath })
            if (!string.IsNullOrEmpty(candidate))
                return File.Exists(candidate) ? Path.GetFullPath(candidate) : null;
        foreach (var start in startDirectories)
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var path = Path.Combine(dir.FullName, ScriptRelativePath);
                if (File.Exists(path))
                    return path;
            }
        }
        return null;
    }

    /// <summary>This program's directory when it holds the CLI the guests can run, else null (the script builds one).</summary>
    internal static string? OwnCliDirectory()
    {
        var dir = AppContext.BaseDirectory;
        return File.Exists(Path.Combine(dir, "UffdNative.Cli.dll")) ? dir.TrimEnd('/') : null;
    }

    /// <summary>The script's finer statuses onto the CLI's documented codes: 0, 2 (usage) and 3 (setup:
    /// the tools or kernels could not be had here) keep their meaning; everything else — a failed step,
    /// a WARN/BUG/Oops, and the script's 4 "a kernel gave no result" — is a failure found (1).</summary>
    public static int MapExitCode(int script) => script switch
    {
        0 => ExitCodes.Ok,
        2 => ExitCodes.Usage,
        3 => ExitCodes.Environment,
        _ => ExitCodes.Failure,
    };

    private static int Run(string scriptPath, List<string> args)
    {
        // The script's stderr comes through here, line by line, so that on a terminal it scrolls above the
        // live bar; its progress events (KM_PROGRESS_FILE, see kernel-matrix.sh) drive the bar.
        var psi = new ProcessStartInfo("bash") { UseShellExecute = false, RedirectStandardError = true };
        psi.ArgumentList.Add(scriptPath);
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        var progressFile = Path.Combine(Path.GetTempPath(), $"uffdnative-matrix-{Environment.ProcessId}-{Guid.NewGuid():N}.tsv");
        psi.Environment["KM_PROGRESS_FILE"] = progressFile;
        try
        {
            return CliProgress.Run("matrix", 0, json: false, sink =>
            {
                using var p = Process.Start(psi)!;
                var lines = new System.Collections.Concurrent.ConcurrentQueue<string>();
                p.ErrorDataReceived += (_, e) =>
                {
                    if (e.Data is not null)
                        lines.Enqueue(e.Data);
                };
                p.BeginErrorReadLine();
                var tracker = new MatrixProgress(sink);
                long offset = 0;
                bool exited;
                do
                {
                    exited = p.WaitForExit(250); // the display's refresh period; the exit is what ends the loop
                    if (exited)
                        p.WaitForExit(); // and the redirected stderr is drained
                    while (lines.TryDequeue(out var line))
                        sink.Line(line);
                    offset = tracker.ReadFrom(progressFile, offset);
                }
                while (!exited);
                return MapExitCode(p.ExitCode);
            });
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new CliEnvironmentException($"cannot start bash for {scriptPath}: {e.Message}", e);
        }
        finally
        {
            File.Delete(progressFile);
        }
    }
}

/// <summary>What kernel-matrix.sh is told about its guests: timeouts, the guest command line, the
/// accelerator, whether it may install host tools (matrix and bisect pass the same).</summary>
public sealed record GuestSettings
{
    public int? Timeout { get; init; }
    public int? StepTimeout { get; init; }
    public string? Append { get; init; }
    public string? Accel { get; init; }
    public bool NoInstall { get; init; }
}

/// <summary>The options of <see cref="GuestSettings"/>, declared once for every verb that boots guests.</summary>
public sealed class GuestOptions
{
    public Option<int?> Timeout { get; } = new("--timeout") { Description = "Seconds per kernel, boot included (default 270)." };
    public Option<int?> StepTimeout { get; } = new("--step-timeout") { Description = "Seconds per step (default 150)." };
    public Option<string?> Append { get; } = new("--append") { Description = "Guest kernel command line (default: hugepages=16 and the host's THP mode)." };
    public Option<string?> Accel { get; } = new("--accel") { Description = "auto (KVM only with kvm_intel/kvm_amd, else TCG), kvm or tcg." };
    public Option<bool> NoInstall { get; } = new("--no-install") { Description = "Do not apt-get install qemu and the other host tools." };

    public GuestOptions() => Accel.AcceptOnlyFromAmong("auto", "kvm", "tcg");

    public GuestSettings Read(ParseResult pr) => new()
    {
        Timeout = pr.GetValue(Timeout),
        StepTimeout = pr.GetValue(StepTimeout),
        Append = pr.GetValue(Append),
        Accel = pr.GetValue(Accel),
        NoInstall = pr.GetValue(NoInstall),
    };
}

/// <summary>Turns kernel-matrix.sh's progress events (one tab-separated line each: "plan KERNELS STEPS",
/// "step LABEL NAME UID RESULT", "kernel LABEL CODE RESULT") into steps done of kernels × steps.</summary>
public sealed class MatrixProgress(IProgressSink sink)
{
    private readonly Dictionary<string, int> stepsSeen = [];
    private int kernels, steps, kernelsDone;
    private long done;

    public long Done => done;
    public long Total => (long)kernels * steps;

    /// <summary>Applies the complete lines of the file from <paramref name="offset"/> on; returns the offset
    /// after the last complete line (a line being written is read next time).</summary>
    public long ReadFrom(string path, long offset)
    {
        if (!File.Exists(path))
            return offset;
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        if (f.Length <= offset)
            return offset;
        f.Seek(offset, SeekOrigin.Begin);
        var buffer = new byte[f.Length - offset];
        int n = f.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        int end = Array.LastIndexOf(buffer, (byte)'\n', n - 1);
        if (end < 0)
            return offset;
        foreach (var line in System.Text.Encoding.UTF8.GetString(buffer, 0, end).Split('\n'))
            Apply(line);
        return offset + end + 1;
    }

    public void Apply(string line)
    {
        var f = line.Split('\t');
        switch (f[0])
        {
            case "plan" when f.Length >= 3 && int.TryParse(f[1], out var k) && int.TryParse(f[2], out var s):
                (kernels, steps) = (k, s);
                sink.Update(done, Total, $"0/{kernels} kernels");
                break;
            case "step" when f.Length >= 5:
                stepsSeen[f[1]] = stepsSeen.GetValueOrDefault(f[1]) + 1;
                done++;
                sink.Update(done, Total, $"{kernelsDone}/{kernels} kernels; {f[1]}: {f[2]} (uid {f[3]}) {f[4]}");
                break;
            case "kernel" when f.Length >= 4:
                kernelsDone++;
                // A kernel that ended early (setup failed, timeout, panic) runs none of its remaining steps.
                done += Math.Max(0, steps - stepsSeen.GetValueOrDefault(f[1]));
                sink.Update(done, Total, $"{kernelsDone}/{kernels} kernels; {f[1]}: {f[3]}");
                break;
        }
    }
}
