using System.CommandLine;
using UffdNative.Cli.Infrastructure;
using UffdNative.Harness.Probing;
using UffdNative.Harness.Reporting;

namespace UffdNative.Cli.Commands;

public static class ProbeCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Write the report as JSON (schema: docs/probe.md, schemaVersion 3)." };
        var markdown = new Option<bool>("--markdown") { Description = "Write the report as Markdown." };
        var output = CliOptions.OutputFile("--output", "Write the report to this file instead of standard output.", "-o");
        var allow = new Option<bool>("--allow-host-changes") { Description = "Allow reserving huge pages for the hugetlbfs rows (vm.nr_hugepages, restored afterwards). Use inside a throwaway guest, or on a host on purpose." };
        var rows = new Option<string?>("--rows") { Description = "Comma-separated behaviour row ids to run (default: all)." };
        var format = ReportFormats.Option(ReportFormat.Text, ReportFormat.Json, ReportFormat.Markdown, ReportFormat.Ktap, ReportFormat.Junit);
        var cmd = new Command("probe", "Report what this kernel's userfaultfd supports and how it behaves: environment, open paths, features, registration masks, and every dated behaviour as a real experiment, judged against mainline of this version.")
        {
            json, markdown, format, output, allow, rows,
        };
        cmd.SetAction(pr =>
        {
            var fmt = ReportFormats.Resolve(pr, format, json, markdown); // refuses --json with --markdown too
            var only = pr.GetValue(rows) is { } list ? CliOptions.NonEmptyList("--rows", list, "behaviour row ids such as wp-shmem-markers") : null;
            if (only is not null)
            {
                var unknown = only.Where(id => BehaviourRows.All.All(r => r.Id != id)).ToList();
                if (unknown.Count > 0)
                    throw new CliUsageException($"unknown row(s) {string.Join(", ", unknown)}; known: {string.Join(", ", BehaviourRows.All.Select(r => r.Id))}");
            }
            var report = ProbeRunner.Run(new ProbeOptions { AllowHostChanges = pr.GetValue(allow), Rows = only });
            var file = pr.GetValue(output);
            bool color = file is null or "-" && fmt == ReportFormat.Text && !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("NO_COLOR") is null;
            string text = fmt switch
            {
                ReportFormat.Json => report.ToJson() + "\n",
                ReportFormat.Markdown => ProbeRendering.Markdown(report),
                ReportFormat.Ktap => KtapWriter.Probe(report),
                ReportFormat.Junit => JUnitWriter.Probe(report),
                _ => ProbeRendering.Table(report, color),
            };
            CliFiles.WriteOutput(file, text);
            if (report.Features.Error is not null)
                throw new CliEnvironmentException(EnvironmentDiagnosis.From(report).OneLine());
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
