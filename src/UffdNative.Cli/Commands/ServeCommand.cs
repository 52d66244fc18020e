using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using UffdNative.Harness.Soak;
using UffdNative.Serving.External;

namespace UffdNative.Cli.Commands;

/// <summary>
/// `uffdnative serve --socket PATH`: the external page-fault handler. A client connects, hands over a
/// uffd and a JSON description of its regions with SCM_RIGHTS (Firecracker's shape), and this process
/// serves it with any policy until the client stops it, goes away, or the memory's owner exits.
/// </summary>
public static class ServeCommand
{
    public static Command Create()
    {
        var socket = new Option<string>("--socket") { Description = "Unix socket path to listen on.", Required = true };
        var policy = new Option<string[]>("--policy") { Description = $"Serve with these policies instead of the ones the client asks for: {string.Join(", ", PolicySpec.Names)}. Repeatable (one per fault kind).", AllowMultipleArgumentsPerToken = true };
        var source = new Option<string>("--source") { Description = "Content of missing pages for --policy missing-copy/read-ahead: zero, pattern:SEED, or file:PATH (read at each region's offset).", DefaultValueFactory = _ => "zero" };
        var readAhead = new Option<int>("--read-ahead") { Description = "read-ahead: pages installed after the faulting one.", DefaultValueFactory = _ => 15 };
        var heartbeat = new Option<int>("--heartbeat-ms") { Description = "Heartbeat period when the client asks for none.", DefaultValueFactory = _ => 50 };
        var delay = new Option<string?>("--inject-delay-ms") { Description = "Injected fault: sleep a random MIN..MAX (or 0..MAX) milliseconds before each resolution step." };
        var failAfter = new Option<long>("--inject-fail-after") { Description = "Injected fault: the policy throws after N resolution steps (the loop fails and closes its uffd)." };
        var seed = new Option<ulong>("--inject-seed") { Description = "Seed of the injected delays.", DefaultValueFactory = _ => 1 };
        var sessions = new Option<int>("--sessions") { Description = "End after serving this many client sessions (0: serve until SIGTERM). Refused and idle connections do not count.", DefaultValueFactory = _ => 1 };
        var maxClients = new Option<int>("--max-clients") { Description = "Connections at once; more are refused with an error frame.", DefaultValueFactory = _ => 16 };
        var allowGid = new Option<int?>("--allow-gid") { Description = "Besides this user and root, peers of this primary group may connect (SO_PEERCRED)." };
        var handshake = new Option<int>("--handshake-timeout-ms") { Description = "A connection that sends no handoff within this bound is refused.", DefaultValueFactory = _ => 5000 };
        var exitWithParent = new Option<bool>("--exit-with-parent") { Description = "Stop when the process that started serve ends (watched through its pidfd): no orphaned handler." };
        UffdNative.Cli.Infrastructure.CliOptions.Range(sessions, 0, 1_000_000);
        UffdNative.Cli.Infrastructure.CliOptions.Range(heartbeat, 1, 60_000);
        UffdNative.Cli.Infrastructure.CliOptions.Range(readAhead, 0, 511);
        UffdNative.Cli.Infrastructure.CliOptions.Range(maxClients, 1, 100_000);
        UffdNative.Cli.Infrastructure.CliOptions.Range(handshake, 1, 600_000);
        var cmd = new Command("serve", "Run an external page-fault handler: receive a uffd and its regions over a Unix socket (SCM_RIGHTS) and serve them.")
        {
            socket, policy, source, readAhead, heartbeat, delay, failAfter, seed, sessions, maxClients, allowGid, handshake, exitWithParent,
        };
        cmd.SetAction(pr =>
        {
            List<PolicySpec>? policies = null;
            var names = pr.GetValue(policy) ?? [];
            SourceSpec src;
            try
            {
                src = ParseSource(pr.GetValue(source)!);
            }
            catch (FormatException e)
            {
                Console.Error.WriteLine($"uffdnative: --source: {e.Message}");
                return ExitCodes.Usage;
            }
            if (names.Length > 0)
            {
                policies = [];
                foreach (var n in names)
                {
                    if (!PolicySpec.Names.Contains(n))
                    {
                        Console.Error.WriteLine($"uffdnative: --policy: unknown '{n}' (one of {string.Join(", ", PolicySpec.Names)})");
                        return ExitCodes.Usage;
                    }
                    policies.Add(PolicySpec.Of(n, n is "missing-copy" or "read-ahead" ? src : null, pr.GetValue(readAhead)));
                }
            }
            InjectSpec? inject = null;
            if (pr.GetValue(delay) is { } d || pr.GetValue(failAfter) > 0)
            {
                int min = 0, max = 0;
                if (pr.GetValue(delay) is { } spec && !TryParseRange(spec, out min, out max))
                {
                    Console.Error.WriteLine($"uffdnative: --inject-delay-ms: '{spec}' is not MAX or MIN..MAX milliseconds");
                    return ExitCodes.Usage;
                }
                inject = new InjectSpec { DelayMinMs = min, DelayMaxMs = max, Seed = pr.GetValue(seed), FailAfterFaults = pr.GetValue(failAfter) };
            }
            if (pr.GetValue(sessions) < 0 || pr.GetValue(maxClients) < 1 || pr.GetValue(handshake) < 1)
            {
                Console.Error.WriteLine($"uffdnative: {(pr.GetValue(sessions) < 0 ? "--sessions: 0 (no limit) or more" : pr.GetValue(maxClients) < 1 ? "--max-clients: at least 1" : "--handshake-timeout-ms: at least 1")}");
                return ExitCodes.Usage;
            }
            return Serve(new HandlerServerOptions
            {
                SocketPath = pr.GetValue(socket)!,
                Host = new HandlerHostOptions { Policies = policies, PolicyDecorator = inject is null ? null : inject.Decorate, HeartbeatMs = pr.GetValue(heartbeat), HandshakeTimeoutMs = pr.GetValue(handshake) },
                Sessions = pr.GetValue(sessions),
                MaxClients = pr.GetValue(maxClients),
                AllowedGid = pr.GetValue(allowGid),
                ParentPid = pr.GetValue(exitWithParent) ? HostParentPid() : 0,
                Output = line =>
                {
                    Console.Out.WriteLine(line);
                    Console.Out.Flush();
                },
            });
        });
        return cmd;
    }

    internal static SourceSpec ParseSource(string s)
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
        throw new FormatException($"'{s}' is not zero, pattern:SEED or file:PATH");
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

    private static int HostParentPid() => Tmds.Linux.LibC.getppid();

    /// <summary>The library's <see cref="HandlerServer"/> with SIGTERM wired to its stop.</summary>
    private static int Serve(HandlerServerOptions options)
    {
        HandlerServer server;
        try
        {
            server = HandlerServer.Listen(options);
        }
        catch (UffdException e)
        {
            Console.Error.WriteLine($"uffdnative: --socket: {e.Message}");
            return ExitCodes.Usage;
        }
        using var _ = server;
        using var cancel = new CancellationTokenSource();
        // serve's own stop (every client told, HandlerStopped) replaces the CLI's exit-on-signal.
        using var own = UffdNative.Cli.Infrastructure.CliSignals.VerbHandlesSignals();
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
        return results.Any(r => r.IsError && !r.Message.StartsWith("refused: ", StringComparison.Ordinal)) ? ExitCodes.Failure : ExitCodes.Ok;
    }
}
