using System.CommandLine;
using System.Globalization;
using UffdNative.Cli.Infrastructure;
using System.Text.Json;
using UffdNative.Harness.Conformance;
using UffdNative.Harness.Model;
using UffdNative.Harness.Reporting;

namespace UffdNative.Cli.Commands;

/// <summary><c>uffdnative fuzz --seed S (--count N | --seconds T)</c>: random scenarios on the model and
/// this kernel; the first divergence is shrunk and written as a reproducer (JSON + C).</summary>
public static class FuzzCommand
{
    public static Command Create()
    {
        var seed = new Option<ulong>("--seed") { Description = "Seed: the same seed gives the same scenarios.", Required = true };
        var count = CliOptions.OptionalInt("--count", "Run this many scenarios", 1, 100_000_000);
        var seconds = CliOptions.Seconds("--seconds", "Run for this many seconds", 7 * 86400);
        var profile = CliOptions.KernelRelease("--profile", "Use the mainline profile of this version instead of the detected one.");
        var set = new Option<string?>("--profile-set") { Description = "Override switches: name=new|old,... (see 'uffdnative check --list-switches')." };
        var output = CliOptions.OutputDirectory("--output", "Directory for the reproducer of a divergence (default: ./uffdnative-repro; a new numbered one beside an earlier reproducer).");
        var force = CliOptions.Force("the reproducer");
        var inject = new Option<string?>("--inject-bug") { Description = $"Deliberately break one model rule (testing the fuzzer): {string.Join(", ", Enum.GetNames<ModelBug>().Skip(1))}." };
        var json = new Option<bool>("--json") { Description = "Write the result as JSON on stdout (progress goes to stderr; schema docs/schemas/fuzz.schema.json)." };
        var cmd = new Command("fuzz", "Run random scenarios (CsCheck, from a seed) on the model and this kernel; shrink a divergence and write a reproducer.")
        {
            seed, count, seconds, profile, set, output, force, inject, json,
        };
        cmd.SetAction(pr =>
        {
            int? n = pr.GetValue(count);
            double? t = pr.GetValue(seconds);
            if (n is null == t is null)
                throw new CliUsageException("fuzz needs exactly one of --count N or --seconds T");
            ModelBug bug = ModelBug.None;
            // By name only: a number would name whichever rule later gets that bit.
            if (pr.GetValue(inject) is { } b && (!Enum.GetNames<ModelBug>().Contains(b.Trim(), StringComparer.OrdinalIgnoreCase) || !Enum.TryParse(b, ignoreCase: true, out bug) || bug == ModelBug.None))
                throw new CliUsageException($"unknown model bug '{b}' (one of {string.Join(", ", Enum.GetNames<ModelBug>().Skip(1))})");
            var (used, reference) = ConformanceCli.Profile(pr.GetValue(profile), pr.GetValue(set));
            var env = ConformanceCli.Detect();
            bool asJson = pr.GetValue(json);
            var say = asJson ? Console.Error : Console.Out; // with --json, stdout holds the JSON alone
            var runner = new ConformanceRunner(used, reference, env, bug);
            var fuzzer = new Fuzzer(runner);
            ulong s = pr.GetValue(seed);
            say.WriteLine($"fuzz seed {s} on {KernelVersion.RunningRelease()}, profile {used.Origin}{(bug != ModelBug.None ? $", injected model bug {bug}" : "")}");
            // Live progress on stderr: scenarios against --count, or time against --seconds.
            long total = n ?? (long)(t!.Value * 1000);
            var report = CliProgress.Run(n is { } cases ? $"fuzz {cases} scenarios" : string.Create(CultureInfo.InvariantCulture, $"fuzz for {t} s"), total, asJson, progress =>
            {
                bool diverged = false;
                var r = fuzzer.Run(s, n, t is { } sec ? TimeSpan.FromSeconds(sec) : null, msg =>
                {
                    say.WriteLine("  " + msg);
                    if (msg.StartsWith("scenario ", StringComparison.Ordinal) && msg.Contains(" diverged ", StringComparison.Ordinal))
                    {
                        diverged = true;
                        progress.Status("1 divergence: shrinking");
                    }
                }, default, (run, elapsed) =>
                {
                    if (!diverged)
                        progress.Update(n is null ? (long)elapsed.TotalMilliseconds : run, total,
                            string.Create(CultureInfo.InvariantCulture, $"{run} scenarios, 0 divergences, {run / Math.Max(elapsed.TotalSeconds, 1e-3):F0} scenarios/s"));
                });
                progress.Update(total, total, string.Create(CultureInfo.InvariantCulture, $"{r.Scenarios} scenarios, {(r.Finding is null ? 0 : 1)} divergences, {r.ScenariosPerSecond:F0} scenarios/s"));
                return r;
            });
            say.WriteLine($"{report.Scenarios} scenarios in {report.Elapsed.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture)} s: {report.ScenariosPerSecond.ToString("F1", CultureInfo.InvariantCulture)} scenarios/s ({report.Skipped} skipped)");
            if (report.Finding is not { } f)
            {
                say.WriteLine("0 divergences");
                if (asJson)
                    Console.WriteLine(JsonSerializer.Serialize(FuzzJsonReport.From(report, KernelVersion.RunningRelease(), used.Origin, InjectedName(bug), null), VerbJsonContext.Default.FuzzJsonReport));
                return ExitCodes.Ok;
            }
            say.WriteLine(string.Create(CultureInfo.InvariantCulture, $"divergence in scenario {f.ScenarioIndex} after {f.TimeToFind.TotalSeconds:F1} s; shrunk from {f.Original.Ops.Count} to {f.Shrunk.Ops.Count} ops in {f.ShrinkSteps} steps ({f.TimeToShrink.TotalSeconds:F1} s)"));
            say.WriteLine(f.Shrunk.Describe());
            say.WriteLine(f.Divergence.Describe());
            var dir = pr.GetValue(output) ?? Path.Combine(Directory.GetCurrentDirectory(), "uffdnative-repro");
            var files = ConformanceCli.WriteReproducer(f.Shrunk, runner, dir, pr.GetValue(force), "--output");
            if (files is not null)
                say.WriteLine($"reproducer: {files.Json} (uffdnative replay) and {files.C} (gcc -O2 {Path.GetFileName(files.C)} && ./a.out)");
            if (asJson)
                Console.WriteLine(JsonSerializer.Serialize(FuzzJsonReport.From(report, KernelVersion.RunningRelease(), used.Origin, InjectedName(bug), files is null ? null : (files.Json, files.C)), VerbJsonContext.Default.FuzzJsonReport));
            return ExitCodes.Failure;
        });
        return cmd;
    }

    private static string? InjectedName(ModelBug bug) => bug == ModelBug.None ? null : bug.ToString();
}
