using System.CommandLine;
using UffdNative.Cli.Infrastructure;
using UffdNative.Harness.Probing;

namespace UffdNative.Cli.Commands;

public static class ProbeCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Write the report as JSON (schema: docs/probe.md, schemaVersion 3)." };
        var markdown = new Option<bool>("--markdown") { Description = "Write the report as Markdown." };
        var output = new Option<FileInfo?>("--output", "-o") { Description = "Write the report to this file instead of standard output." };
        var allow = new Option<bool>("--allow-host-changes") { Description = "Allow reserving huge pages for the hugetlbfs rows (vm.nr_hugepages, restored afterwards). Use inside a throwaway guest, or on a host on purpose." };
        var rows = new Option<string?>("--rows") { Description = "Comma-separated behaviour row ids to run (default: all)." };
        var cmd = new Command("probe", "Report what this kernel's userfaultfd supports and how it behaves: environment, open paths, features, registration masks, and every dated behaviour as a real experiment, judged against mainline of this version.")
        {
            json, markdown, output, allow, rows,
        };
        cmd.SetAction(pr =>
        {
            if (pr.GetValue(json) && pr.GetValue(markdown))
            {
                Console.Error.WriteLine("uffdnative: --json and --markdown are exclusive");
                return ExitCodes.Usage;
            }
            var only = pr.GetValue(rows)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (only is not null)
            {
                var unknown = only.Where(id => BehaviourRows.All.All(r => r.Id != id)).ToList();
                if (unknown.Count > 0)
                {
                    Console.Error.WriteLine($"uffdnative: unknown row(s) {string.Join(", ", unknown)}; known: {string.Join(", ", BehaviourRows.All.Select(r => r.Id))}");
                    return ExitCodes.Usage;
                }
            }
            var report = ProbeRunner.Run(new ProbeOptions { AllowHostChanges = pr.GetValue(allow), Rows = only });
            var file = pr.GetValue(output);
            bool color = file is null && !pr.GetValue(json) && !pr.GetValue(markdown) && !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("NO_COLOR") is null;
            string text = pr.GetValue(json) ? report.ToJson() + "\n" : pr.GetValue(markdown) ? ProbeRendering.Markdown(report) : ProbeRendering.Table(report, color);
            if (file is not null)
                CliFiles.WriteAllText(file, text);
            else
                Console.Out.Write(text);
            if (report.Features.Error is not null)
            {
                Console.Error.WriteLine($"uffdnative: {EnvironmentDiagnosis.From(report).OneLine()}");
                return ExitCodes.Environment;
            }
            if (report.HasFlagged)
            {
                Console.Error.WriteLine("uffdnative: probe rows flagged regressed/unexpected or failed: " + string.Join(", ", report.FlaggedItems()));
                return ExitCodes.Failure;
            }
            return ExitCodes.Ok;
        });
        return cmd;
    }
}
