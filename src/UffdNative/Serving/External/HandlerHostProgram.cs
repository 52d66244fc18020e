using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace UffdNative.Serving.External;

/// <summary>
/// The external handler as a process of its own: the command line of the library's host executable
/// (UffdNative.HandlerHost, built and shipped next to this assembly), the serve loop with SIGTERM and
/// SIGINT wired to its stop, and the launch of that executable by a parent (<see cref="StartInfo"/>).
/// `uffdnative serve` is this same entry behind the CLI's help and option checks; the harness starts
/// the host through <see cref="StartInfo"/>, never through the CLI.
/// </summary>
public static class HandlerHostProgram
{
    /// <summary>The host executable's assembly, next to UffdNative.dll.</summary>
    public const string HostAssemblyName = "UffdNative.HandlerHost";

    /// <summary>The options of the host's command line (`uffdnative serve` has the same).</summary>
    private static readonly string[] OptionNames =
    [
        "--socket", "--policy", "--source", "--read-ahead", "--heartbeat-ms", "--inject-delay-ms", "--inject-fail-after",
        "--inject-seed", "--sessions", "--max-clients", "--allow-gid", "--handshake-timeout-ms", "--exit-with-parent",
        "--parent-pid", "--remove-socket-directory",
    ];

    /// <summary>The host's Main: parses <paramref name="args"/>, serves until SIGTERM/SIGINT, the parent's
    /// end (--exit-with-parent) or the sessions asked for, and returns the exit code (0; 1 a session
    /// failed; 2 bad usage, one line on <paramref name="error"/> prefixed by <paramref name="name"/>).</summary>
    public static int Main(IReadOnlyList<string> args, TextWriter output, TextWriter error, string name = HostAssemblyName)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        HandlerServerOptions options;
        bool removeDirectory;
        try
        {
            (options, removeDirectory) = Parse(args, output);
        }
        catch (FormatException e)
        {
            error.WriteLine($"{name}: {e.Message}");
            return 2;
        }
        return Serve(options, removeDirectory, error, name);
    }

    private static (HandlerServerOptions, bool) Parse(IReadOnlyList<string> args, TextWriter output)
    {
        string? socket = null, delay = null;
        var policyNames = new List<string>();
        string source = "zero";
        int readAhead = 15, heartbeat = 50, sessions = 1, maxClients = 16, handshake = 5000;
        long failAfter = 0;
        ulong seed = 1;
        int? gid = null;
        bool exitWithParent = false, removeDirectory = false;
        int parentPid = 0;
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            string Value() => i + 1 < args.Count ? args[++i] : throw new FormatException($"{a}: a value is required");
            long Number(long min, long max)
            {
                string v = Value();
                return long.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max
                    ? n : throw new FormatException($"{a}: '{v}' is not an integer in {min}..{max}");
            }
            switch (a)
            {
                case "--socket": socket = Value(); break;
                case "--policy": policyNames.Add(Value()); break;
                case "--source": source = Value(); break;
                case "--read-ahead": readAhead = (int)Number(0, 511); break;
                case "--heartbeat-ms": heartbeat = (int)Number(1, 60_000); break;
                case "--inject-delay-ms": delay = Value(); break;
                case "--inject-fail-after": failAfter = Number(0, long.MaxValue); break;
                case "--inject-seed":
                    string s = Value();
                    seed = ulong.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var sv) ? sv : throw new FormatException($"--inject-seed: '{s}' is not an unsigned integer");
                    break;
                case "--sessions": sessions = (int)Number(0, 1_000_000); break;
                case "--max-clients": maxClients = (int)Number(1, 100_000); break;
                case "--allow-gid": gid = (int)Number(0, int.MaxValue); break;
                case "--handshake-timeout-ms": handshake = (int)Number(1, 600_000); break;
                case "--exit-with-parent": exitWithParent = true; break;
                case "--parent-pid": parentPid = (int)Number(1, int.MaxValue); break;
                case "--remove-socket-directory": removeDirectory = true; break;
                default: throw new FormatException($"unknown option '{a}' (one of {string.Join(", ", OptionNames)})");
            }
        }
        if (string.IsNullOrEmpty(socket))
            throw new FormatException("--socket: the socket path is required");
        var src = ParseSource(source);
        List<PolicySpec>? policies = null;
        if (policyNames.Count > 0)
        {
            policies = [];
            foreach (var n in policyNames)
            {
                if (!PolicySpec.Names.Contains(n))
                    throw new FormatException($"--policy: unknown '{n}' (one of {string.Join(", ", PolicySpec.Names)})");
                policies.Add(PolicySpec.Of(n, n is "missing-copy" or "read-ahead" ? src : null, readAhead));
            }
        }
        InjectSpec? inject = null;
        if (delay is not null || failAfter > 0)
        {
            int min = 0, max = 0;
            if (delay is not null && !TryParseRange(delay, out min, out max))
                throw new FormatException($"--inject-delay-ms: '{delay}' is not MAX or MIN..MAX milliseconds");
            inject = new InjectSpec { DelayMinMs = min, DelayMaxMs = max, Seed = seed, FailAfterFaults = failAfter };
        }
        var options = new HandlerServerOptions
        {
            SocketPath = socket,
            Host = new HandlerHostOptions { Policies = policies, PolicyDecorator = inject is null ? null : inject.Decorate, HeartbeatMs = heartbeat, HandshakeTimeoutMs = handshake },
            Sessions = sessions,
            MaxClients = maxClients,
            AllowedGid = gid,
            // --parent-pid names the parent as the launcher knew it: if it died before this line, getppid()
            // would already name init (or a subreaper) and the watch would never end.
            ParentPid = parentPid > 0 ? parentPid : exitWithParent ? Tmds.Linux.LibC.getppid() : 0,
            Output = line =>
            {
                output.WriteLine(line);
                output.Flush();
            },
        };
        return (options, removeDirectory);
    }

    private static SourceSpec ParseSource(string s)
    {
        if (s == "zero")
            return new SourceSpec { Kind = "zero" };
        if (s.StartsWith("pattern:", StringComparison.Ordinal) && ulong.TryParse(s[8..], NumberStyles.Integer, CultureInfo.InvariantCulture, out var seed))
            return new SourceSpec { Kind = "pattern", Seed = seed };
        if (s.StartsWith("file:", StringComparison.Ordinal) && s.Length > 5)
        {
            var path = Path.GetFullPath(s[5..]);
            // Refuse now: a handler that starts listening and fails at its first fault loses the client's memory.
            if (!File.Exists(path))
                throw new FormatException($"--source: the file {path} does not exist");
            return new SourceSpec { Kind = "file", Path = path };
        }
        throw new FormatException($"--source: '{s}' is not zero, pattern:SEED or file:PATH");
    }

    private static bool TryParseRange(string s, out int min, out int max)
    {
        min = max = 0;
        var parts = s.Split("..");
        if (parts.Length == 1)
            return int.TryParse(parts[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out max) && max >= 0;
        return parts.Length == 2 && int.TryParse(parts[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out min)
            && int.TryParse(parts[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out max) && min >= 0 && max >= min;
    }

    /// <summary><see cref="HandlerServer"/> with SIGTERM and SIGINT wired to its stop (every client is
    /// told: HandlerStopped), then the socket's private directory removed if asked and empty.</summary>
    private static int Serve(HandlerServerOptions options, bool removeDirectory, TextWriter error, string name)
    {
        try
        {
            HandlerServer server;
            try
            {
                server = HandlerServer.Listen(options);
            }
            catch (UffdException e)
            {
                error.WriteLine($"{name}: {(e.Operation == "listen" ? "--socket: " : "")}{e.Message}");
                return 2;
            }
            catch (ArgumentException e)
            {
                error.WriteLine($"{name}: {e.Message}");
                return 2;
            }
            using (server)
            {
                using var cancel = new CancellationTokenSource();
                using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx =>
                {
                    ctx.Cancel = true;
                    cancel.Cancel();
                });
                using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx =>
                {
                    ctx.Cancel = true;
                    cancel.Cancel();
                });
                var results = server.Run(cancel.Token);
                return results.Any(r => r.IsError && !r.Message.StartsWith("refused: ", StringComparison.Ordinal)) ? 1 : 0;
            }
        }
        finally
        {
            // The directory a parent made for this handler alone: when the parent was killed, nobody else
            // is left to remove it (the listener removed the socket and its lock file).
            if (removeDirectory)
                try
                {
                    var dir = Path.GetDirectoryName(Path.GetFullPath(options.SocketPath))!;
                    if (Directory.Exists(dir) && !Directory.EnumerateFileSystemEntries(dir).Any())
                        Directory.Delete(dir);
                }
                catch (IOException)
                {
                }
        }
    }

    /// <summary>A new private directory (0700) under /tmp for one handler's socket, short enough for
    /// sun_path; the socket path inside it.</summary>
    public static string NewSocketPath(string tag = "h")
    {
        if (!OperatingSystem.IsLinux())
            throw new PlatformNotSupportedException("the handler runs on Linux");
        var dir = Path.Combine("/tmp", $"uffdnative-{tag}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
        Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return Path.Combine(dir, "h.sock");
    }

    /// <summary>
    /// How to start the host executable with <paramref name="arguments"/> (the options above) and
    /// --parent-pid of this process (it stops, removing its socket, when this process ends, even by
    /// SIGKILL: it watches this process's pidfd; it refuses to start if this process is already gone). Found as $UFFDNATIVE_HANDLER_HOST (an executable or a
    /// .dll), else UffdNative.HandlerHost.dll in the application's directory (where the UffdNative.Binding package
    /// puts it), run by the dotnet host running this process (or `dotnet` on PATH), on the application's deps.json
    /// when the host has none of its own. Add a prefix (e.g. taskset) with <paramref name="wrapper"/>.
    /// </summary>
    public static ProcessStartInfo StartInfo(IEnumerable<string> arguments, IReadOnlyList<string>? wrapper = null)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        var (file, prefix) = HostCommand();
        var argv = new List<string>();
        if (wrapper is { Count: > 0 })
            argv.AddRange(wrapper);
        argv.Add(file);
        argv.AddRange(prefix);
        argv.AddRange(["--parent-pid", Environment.ProcessId.ToString(CultureInfo.InvariantCulture)]);
        argv.AddRange(arguments);
        var psi = new ProcessStartInfo(argv[0]) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in argv.Skip(1))
            psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        return psi;
    }

    /// <summary>The running application's deps.json (the first of the host's APP_CONTEXT_DEPS_FILES), or null.</summary>
    private static string? AppDepsFile() =>
        AppContext.GetData("APP_CONTEXT_DEPS_FILES") is string files && files.Split(';', StringSplitOptions.RemoveEmptyEntries) is [var first, ..]
            && first.EndsWith(".deps.json", StringComparison.Ordinal) && File.Exists(first) ? first : null;

    private static (string File, string[] Prefix) HostCommand()
    {
        static string Muxer()
        {
            var self = Environment.ProcessPath;
            if (self is not null && Path.GetFileName(self) == "dotnet")
                return self;
            return Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h && File.Exists(h) ? h : "dotnet";
        }
        static (string, string[]) ForPath(string p) => p.EndsWith(".dll", StringComparison.Ordinal) ? (Muxer(), [p]) : (p, []);
        if (Environment.GetEnvironmentVariable("UFFDNATIVE_HANDLER_HOST") is { Length: > 0 } env)
            return ForPath(env);
        // The application's directory: where UffdNative.dll and, beside it, the host are deployed.
        var dll = Path.Combine(AppContext.BaseDirectory, HostAssemblyName + ".dll");
        if (File.Exists(dll))
        {
            // The package's host comes without a deps.json of its own (buildTransitive/UffdNative.Binding.targets):
            // it runs on the application's, which places UffdNative.dll and its dependencies (Tmds.LibC under
            // runtimes/) as this build or publish laid them out.
            if (!File.Exists(Path.ChangeExtension(dll, ".deps.json")) && AppDepsFile() is { } deps)
                return (Muxer(), ["exec", "--depsfile", deps, dll]);
            return ForPath(dll);
        }
        throw new FileNotFoundException($"the handler host {HostAssemblyName}.dll is not in {AppContext.BaseDirectory}: set UFFDNATIVE_HANDLER_HOST to it");
    }
}
