using System.CommandLine;
using UffdNative.Cli.Infrastructure;
using UffdNative.Harness.Probing;
using UffdNative.Harness.Reporting;

namespace UffdNative.Cli.Commands;

public static class CompareCommand
{
    public static Command Create()
    {
        var markdown = new Option<bool>("--markdown") { Description = "Write the matrix as a Markdown table." };
        var output = CliOptions.OutputFile("--output", "Write the matrix to this file instead of standard output.", "-o");
        var files = CliOptions.InputFileArguments("reports", "Probe reports written by 'uffdnative probe --json' (one per kernel).", "compare", () => ["--markdown", "--json", "--output/-o", "--html"]);
        var json = new Option<bool>("--json") { Description = "Write the matrix as JSON (schema docs/schemas/compare.schema.json)." };
        var html = new Option<FileInfo?>("--html") { Description = "Write one self-contained HTML page instead: the reports may then be probe and check JSON files, one directory per kernel (as matrix writes them)." };
        var cmd = new Command("compare", "Compare probe reports of several kernels: a matrix of every probe row × kernel, differing rows highlighted. Exit 1 when a report has regressed/unexpected or failed rows, 2 for a missing or malformed report.")
        {
            files, markdown, json, output, html,
        };
        cmd.SetAction(pr =>
        {
            if (pr.GetValue(html) is { } page)
                return MatrixHtmlCli.Flagged(MatrixHtmlCli.WriteFromFiles((pr.GetValue(files) ?? []).Select(Path.GetFullPath), page)) ? ExitCodes.Failure : ExitCodes.Ok;
            if (pr.GetValue(json) && pr.GetValue(markdown))
                throw new CliUsageException("--json and --markdown are exclusive: choose one output format.");
            var reports = new List<ProbeReport>();
            foreach (var f in pr.GetValue(files) ?? [])
                CliPaths.RequireInput("reports", f);
            foreach (var f in pr.GetValue(files) ?? [])
            {
                var path = Path.GetFullPath(f);
                var text = CliFiles.ReadText(path, "probe report");
                try
                {
                    reports.Add(ProbeReport.FromJson(text, path));
                }
                catch (FormatException e)
                {
                    throw new CliUsageException(e.Message, e);
                }
            }
            var matrix = ReportComparer.Build(reports);
            var file = pr.GetValue(output);
            bool color = file is null or "-" && !pr.GetValue(markdown) && !pr.GetValue(json) && !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("NO_COLOR") is null;
            string text2 = pr.GetValue(json) ? System.Text.Json.JsonSerializer.Serialize(CompareJsonReport.From(matrix), VerbJsonContext.Default.CompareJsonReport) + "\n"
                : pr.GetValue(markdown) ? ReportComparer.Markdown(matrix) : ReportComparer.Table(matrix, color);
            CliFiles.WriteOutput(file, text2);
            return matrix.Flagged.Count > 0 ? ExitCodes.Failure : ExitCodes.Ok;
        });
        return cmd;
    }
}
