using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using UffdNative.Cli.Infrastructure;
using UffdNative.Harness.Conformance;
using UffdNative.Harness.Model;
using UffdNative.Harness.Scenarios;
using UffdNative.Harness.Probing;
using UffdNative.Harness.Reporting;

namespace UffdNative.Cli.Commands;

/// <summary>
/// <c>uffdnative check</c>: every named scenario × memory type on the model and on this kernel.
/// The model's profile is the detected one (the probe's detectors) unless <c>--profile</c> forces a
/// mainline version; <c>--profile-set</c> overrides single switches.
/// </summary>
public static class CheckCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Write the report as JSON." };
        var profile = CliOptions.KernelRelease("--profile", "Use the mainline profile of this version (e.g. 6.1) instead of the detected one.");
        var set = new Option<string?>("--profile-set") { Description = "Override switches: name=new|old,... (see 'uffdnative check --list-switches')." };
        var scenario = new Option<string[]>("--scenario") { Description = "Run only these scenarios (repeatable).", AllowMultipleArgumentsPerToken = true };
        var memory = new Option<string[]>("--memory") { Description = "Run only these memory types (anon, shmem, shmem-private, hugetlb, hugetlb-private).", AllowMultipleArgumentsPerToken = true };
        var verbose = new Option<bool>("--verbose") { Description = "Print each divergence with the model state before it." };
        var list = new Option<bool>("--list") { Description = "List the named scenarios and exit." };
        var listSwitches = new Option<bool>("--list-switches") { Description = "List the profile switches (for --profile-set) and exit." };
        var trace = new Option<bool>("--trace") { Description = "With a divergence, print the model's and the kernel's full traces." };
        var format = ReportFormats.Option(ReportFormat.Text, ReportFormat.Json, ReportFormat.Ktap, ReportFormat.Junit);
        var cmd = new Command("check", "Run every named scenario on the model and on this kernel; report pass / diverged / not applicable per scenario × memory type.")
        {
            json, format, profile, set, scenario, memory, verbose, list, listSwitches, trace,
        };
        cmd.SetAction(pr =>
        {
            if (pr.GetValue(list))
            {
                foreach (var s in NamedScenarios.All)
                    Console.WriteLine($"{s.Name,-30} {s.Section,-28} {string.Join(",", s.Targets.Select(MemoryTypes.Name))}\n{"",-30} {s.Description}");
                return ExitCodes.Ok;
            }
            var fmt = ReportFormats.Resolve(pr, format, json);
            if (pr.GetValue(listSwitches))
            {
                CliConsole.WriteTable(["switch", "since", "§", "new behaviour", "old behaviour"],
                    KernelProfile.Switches.Select(sw => new[] { sw.Name, sw.Since.ToString(), sw.Section, sw.NewBehaviour, sw.OldBehaviour }));
                return ExitCodes.Ok;
            }
            var resolved = ConformanceCli.Resolve(pr.GetValue(profile), pr.GetValue(set));
            var names = pr.GetValue(scenario) ?? [];
            var selected = NamedScenarios.All.Where(s => names.Length == 0 || names.Contains(s.Name)).ToList();
            var unknown = names.Where(n => NamedScenarios.Find(n) is null).ToList();
            if (unknown.Count > 0)
                throw new CliUsageException($"unknown scenario(s) {string.Join(", ", unknown)}; see 'uffdnative check --list'");
            List<MemoryType>? memories;
            try
            {
                var m = pr.GetValue(memory) ?? [];
                memories = m.Length == 0 ? null : m.Select(MemoryTypes.Parse).ToList();
            }
            catch (FormatException e)
            {
                throw new CliUsageException(e.Message, e);
            }

            var env = ConformanceCli.Detect();
            var runner = new ConformanceRunner(resolved.Used, resolved.Reference, env);
            bool asJson = fmt != ReportFormat.Text; // a machine format: stdout holds the report alone
            if (!asJson)
                PrintHeader(resolved);
            var cells = new List<CellResult>();
            long total = selected.Sum(s => s.Targets.Count(m => memories is null || memories.Contains(m)));
            // Progress goes to stderr (a bar on a terminal, Information lines otherwise); stdout is the report's.
            CliProgress.Run($"check {total} cells", total, asJson, progress =>
            {
                foreach (var c in runner.RunAll(selected, memories))
                {
                    cells.Add(c);
                    progress.Status($"{c.Scenario} × {MemoryTypes.Name(c.Memory)}: {c.Status.ToString().ToLowerInvariant()}; {cells.Count(x => x.Status is CellStatus.Diverged or CellStatus.Error)} diverged or failed");
                    progress.Advance();
                    if (!asJson && pr.GetValue(trace) && c.Status is CellStatus.Diverged or CellStatus.Error)
                    {
                        var s = NamedScenarios.Find(c.Scenario)!.Build(c.Memory);
                        var (model, kernel, _) = runner.Compare(s);
                        Console.WriteLine($"---- {c.Scenario} × {MemoryTypes.Name(c.Memory)}\n{s.Describe()}---- model\n{model.Trace.Describe()}\n---- kernel\n{kernel.Describe()}\n");
                    }
                    if (!asJson && pr.GetValue(verbose) && c.Divergence is { } d)
                        Console.WriteLine($"  {c.Scenario} × {MemoryTypes.Name(c.Memory)}: {d.Describe()}\n  before: {d.StateBefore}");
                }
            });
            var report = CheckReport.Build(KernelVersion.RunningRelease(), resolved.Used.Origin, resolved.Source, resolved.Switches, resolved.Facts, selected.Count, cells);
            if (fmt == ReportFormat.Json)
                Console.WriteLine(JsonSerializer.Serialize(report, CheckJsonContext.Default.CheckReport));
            else if (fmt == ReportFormat.Ktap)
                Console.Out.Write(KtapWriter.Check(report));
            else if (fmt == ReportFormat.Junit)
                Console.Out.Write(JUnitWriter.Check(report));
            else
                PrintTable(selected, cells, report);
            return report.Failed ? ExitCodes.Failure : ExitCodes.Ok;
        });
        return cmd;
    }

    private static void PrintHeader(ResolvedProfile p)
    {
        Console.WriteLine($"kernel   {KernelVersion.RunningRelease()}");
        Console.WriteLine($"profile  {p.Source}");
        Console.WriteLine();
        CliConsole.WriteTable(["switch", "prior", "detected", "used", "status"],
            p.Switches.Select(r => new[] { r.Switch, Bit(r.Prior), r.Detected is { } d ? Bit(d) : "?", Bit(r.Used), StatusText(r.Status) }));
        CliConsole.WriteTable(["environment fact", "mainline", "detected", "used", "cause"],
            p.Facts.Select(f => new[] { f.Fact, f.Mainline ?? "-", f.Detected ?? "?", f.Used, f.Cause ?? "" }));
        Console.WriteLine();
    }

    private static string StatusText(SwitchStatus s) => s switch
    {
        SwitchStatus.Backported => "backported",
        SwitchStatus.Regressed => "regressed",
        SwitchStatus.NotDetected => "not detected (prior kept)",
        _ => "",
    };

    private static string Bit(bool b) => b ? "new" : "old";

    private static string CellText(CellResult? c) => c is null ? "—" : c.Status switch
    {
        CellStatus.Pass => "pass",
        CellStatus.Diverged => "DIVERGED",
        CellStatus.NotApplicable => "n/a",
        _ => "ERROR",
    };

    private static void PrintTable(List<NamedScenario> selected, List<CellResult> cells, CheckReport report)
    {
        var mems = MemoryTypes.All;
        CliConsole.WriteTable(["scenario", .. mems.Select(MemoryTypes.Name)],
            selected.Select(s => new[] { s.Name }.Concat(mems.Select(m => CellText(cells.FirstOrDefault(x => x.Scenario == s.Name && x.Memory == m)))).ToArray()));
        var notes = cells.Where(c => c.Status != CellStatus.Pass).ToList();
        if (notes.Count > 0)
        {
            Console.WriteLine();
            foreach (var c in notes)
            {
                var head = $"{c.Scenario} × {MemoryTypes.Name(c.Memory)}";
                if (c.Divergence is { } d)
                    Console.WriteLine($"{head}: diverged at {d.Describe().Replace("\n", "\n    ", StringComparison.Ordinal)}");
                else
                    Console.WriteLine($"{head}: {c.Status.ToString().ToLowerInvariant()} — {c.Reason}");
            }
        }
        Console.WriteLine();
        Console.WriteLine($"{report.Scenarios} scenarios, {report.Cells} scenario × memory cells run: {report.Passed} passed, {report.Diverged} diverged, {report.Errors} errors; {report.NotApplicable} not applicable");
        if (report.DivergentSwitches.Count > 0)
            Console.WriteLine($"divergences attributed to switches: {string.Join(", ", report.DivergentSwitches)}");
    }
}
