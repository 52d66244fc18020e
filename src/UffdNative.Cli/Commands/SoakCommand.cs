using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using UffdNative.Cli.Infrastructure;
using UffdNative.Harness.Soak;

namespace UffdNative.Cli.Commands;

/// <summary>
/// `uffdnative soak --seconds N --threads T`: anonymous and shmem regions under mixed policies, native
/// toucher threads verifying content, protect/unprotect churn and event-producing calls (madvise,
/// mremap, fork) from other threads; exact fault accounting at every checkpoint. Ends with the totals
/// and exit 1 unless lost, corrupt, hung and accounting errors are all 0.
/// </summary>
public static class SoakCommand
{
    public static Command Create()
    {
        var seconds = new Option<int>("--seconds") { Description = "Time bound of the run.", DefaultValueFactory = _ => 60 };
        var threads = new Option<int>("--threads") { Description = "Native toucher threads.", DefaultValueFactory = _ => 4 };
        var faults = new Option<ulong>("--faults") { Description = "Stop early once this many faults were served (0: run for --seconds)." };
        var pages = new Option<long>("--pages") { Description = "Pages per region (four regions).", DefaultValueFactory = _ => 4096 };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the touchers and the churn.", DefaultValueFactory = _ => 1 };
        var noFork = new Option<bool>("--no-fork") { Description = "Leave fork out of the event-producing calls." };
        var json = new Option<bool>("--json") { Description = "Write the totals as JSON on stdout." };
        var cmd = new Command("soak", "Run the fault loops under load and churn for a bounded time, verifying content and fault accounting; exit 1 on any lost, corrupt or hung access.")
        {
            seconds, threads, faults, pages, seed, noFork, json,
        };
        cmd.SetAction(pr =>
        {
            int s = pr.GetValue(seconds), t = pr.GetValue(threads);
            long p = pr.GetValue(pages);
            if (s < 1 || s > 7 * 86400 || t < 1 || t > 64 || p < 1024 || p > BenchCommand.MaxPages || p % 512 != 0)
                throw new CliUsageException($"--seconds 1..{7 * 86400}, --threads 1..64, --pages >= 1024 (at most {BenchCommand.MaxPages}) and a multiple of 512");
            var options = new SoakOptions { Seconds = s, Threads = t, Faults = pr.GetValue(faults), PagesPerRegion = p, Seed = pr.GetValue(seed), Fork = !pr.GetValue(noFork) };
            bool asJson = pr.GetValue(json);
            // Live progress on stderr (a bar on a terminal, Information lines otherwise): time against
            // --seconds, with the runner's once-a-second totals (faults/s, verified, lost, corrupt, hung).
            long total = s * 1000L;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var result = CliProgress.Run($"soak {s} s", total, asJson, progress =>
                new SoakRunner(options, line => progress.Update(Math.Min(clock.ElapsedMilliseconds, total), total, line)).Run());
            if (asJson)
                Console.WriteLine(JsonSerializer.Serialize(result, SoakJsonContext.Default.SoakResult));
            else
                Print(result);
            return result.Passed ? ExitCodes.Ok : ExitCodes.Failure;
        });
        return cmd;
    }

    private static void Print(SoakResult r)
    {
        var c = CultureInfo.InvariantCulture;
        CliConsole.WriteTable(["soak", string.Create(c, $"{r.Seconds:F1} s, {r.Threads} toucher threads")],
        [
            ["faults served", string.Create(c, $"{r.Faults} ({r.FaultsPerSecond:F0}/s): missing {r.MissingFaults}, wp {r.WpFaults}, minor {r.MinorFaults}, fork children {r.ChildFaults}")],
            ["pages verified", string.Create(c, $"{r.PagesVerified} (stamps written {r.Writes}, inconclusive {r.Inconclusive})")],
            ["churn", string.Create(c, $"{r.RemoveEvents} REMOVE, {r.RemapEvents} REMAP, {r.ForkEvents} FORK events, {r.Protects} protects; eagain {r.Eagain}, eexist {r.Eexist}")],
            ["checkpoints", string.Create(c, $"{r.Epochs} ({r.ExactSweeps} exact WP/MINOR sweeps matched one fault per page)")],
            ["failures", string.Create(c, $"lost {r.Lost}, corrupt {r.Corrupt}, hung {r.Hung}, accounting errors {r.AccountingErrors}")],
        ]);
        foreach (var p in r.Problems)
            Console.WriteLine("  ! " + p);
        Console.WriteLine(r.Passed ? "PASS" : "FAIL");
    }
}
