using System.CommandLine;
using System.Globalization;
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
            // The library's handler host entry does the rest (the same Main as UffdNative.HandlerHost):
            // the options go to it as they were given; System.CommandLine gave the help and the ranges.
            var args = new List<string> { "--socket", pr.GetValue(socket)! };
            foreach (var n in pr.GetValue(policy) ?? [])
                args.AddRange(["--policy", n]);
            args.AddRange(["--source", pr.GetValue(source)!, "--read-ahead", Str(pr.GetValue(readAhead)), "--heartbeat-ms", Str(pr.GetValue(heartbeat))]);
            if (pr.GetValue(delay) is { } d)
                args.AddRange(["--inject-delay-ms", d]);
            args.AddRange(["--inject-fail-after", Str(pr.GetValue(failAfter)), "--inject-seed", pr.GetValue(seed).ToString(CultureInfo.InvariantCulture)]);
            args.AddRange(["--sessions", Str(pr.GetValue(sessions)), "--max-clients", Str(pr.GetValue(maxClients)), "--handshake-timeout-ms", Str(pr.GetValue(handshake))]);
            if (pr.GetValue(allowGid) is { } g)
                args.AddRange(["--allow-gid", Str(g)]);
            if (pr.GetValue(exitWithParent))
                args.Add("--exit-with-parent");
            // serve's own stop (every client told, HandlerStopped) replaces the CLI's exit-on-signal.
            using var own = UffdNative.Cli.Infrastructure.CliSignals.VerbHandlesSignals();
            return HandlerHostProgram.Main(args, Console.Out, Console.Error, "uffdnative");
        });
        return cmd;
    }

    private static string Str(long v) => v.ToString(CultureInfo.InvariantCulture);
}
