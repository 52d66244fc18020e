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
        var sessions = new Option<int>("--sessions") { Description = "End after this many client sessions (0: serve until SIGTERM).", DefaultValueFactory = _ => 1 };
        UffdNative.Cli.Infrastructure.CliOptions.Range(sessions, 0, 1_000_000);
        UffdNative.Cli.Infrastructure.CliOptions.Range(heartbeat, 1, 60_000);
        UffdNative.Cli.Infrastructure.CliOptions.Range(readAhead, 0, 511);
        var cmd = new Command("serve", "Run an external page-fault handler: receive a uffd and its regions over a Unix socket (SCM_RIGHTS) and serve them.")
        {
            socket, policy, source, readAhead, heartbeat, delay, failAfter, seed, sessions,
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
            return Serve(pr.GetValue(socket)!, new HandlerHostOptions { Policies = policies, PolicyDecorator = inject is null ? null : inject.Decorate, HeartbeatMs = pr.GetValue(heartbeat) }, pr.GetValue(sessions));
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

    private static int Serve(string path, HandlerHostOptions options, int sessions)
    {
        HandlerListener listener;
        try
        {
            listener = HandlerListener.Listen(path);
        }
        catch (UffdException e)
        {
            Console.Error.WriteLine($"uffdnative: --socket: {e.Message}");
            return ExitCodes.Usage;
        }
        using var _ = listener;
        var cancel = new CancellationTokenSource();
        var running = new List<(Thread Thread, HandlerSession Session)>();
        var results = new List<HandlerSessionResult>();
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx =>
        {
            ctx.Cancel = true;
            cancel.Cancel();
        });
        Console.Out.WriteLine($"listening on {path}");
        Console.Out.Flush();
        int accepted = 0;
        while (!cancel.IsCancellationRequested && (sessions == 0 || accepted < sessions))
        {
            var session = listener.Accept(options, 200);
            if (session is null)
                continue;
            accepted++;
            var t = new Thread(() =>
            {
                HandlerSessionResult r;
                try
                {
                    r = session.Run(s => Console.Out.WriteLine(
                        $"session {s.ClientPid}: owner {s.OwnerPid}, {s.Regions.Count} regions ({s.Regions.Sum(x => (long)x.Size) >> 20} MiB), policies {string.Join(", ", s.PolicyNames)}"));
                }
                catch (Exception e) when (e is UffdException or IOException or InvalidOperationException)
                {
                    r = new HandlerSessionResult(session.ClientPid, Serving.FaultServerExitReason.Error, e.Message, new HandlerStats(), false);
                }
                finally
                {
                    session.Dispose();
                }
                lock (results)
                    results.Add(r);
                Console.Out.WriteLine($"session {r.ClientPid} ended: {r.Reason} — {r.Message}; {r.Stats}");
                Console.Out.Flush();
            }) { IsBackground = true, Name = "handler-session" };
            lock (results)
                running.Add((t, session));
            t.Start();
        }
        foreach (var (t, s) in running)
        {
            if (cancel.IsCancellationRequested)
                s.Cancel();
            while (!t.Join(200))
                if (cancel.IsCancellationRequested)
                    s.Cancel();
        }
        lock (results)
            return results.Any(r => r.IsError) ? ExitCodes.Failure : ExitCodes.Ok;
    }
}
