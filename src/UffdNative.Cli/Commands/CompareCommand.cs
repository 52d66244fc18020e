using System.CommandLine;
using UffdNative.Cli.Infrastructure;
using UffdNative.Harness.Probing;
using UffdNative.Harness.Reporting;

namespace UffdNative.Cli.Commands;

public static class CompareCommand
{
    public static Command Create()
    {
        var files = new Argument<FileInfo[]>("reports") { Description = "Probe reports written by 'uffdnative probe --json' (one per kernel).", Arity = ArgumentArity.OneOrMore };
        var markdown = new Option<bool>("--markdown") { Description = "Write the matrix as a Markdown table." };
        var output = new Option<FileInfo?>("--output", "-o") { Description = "Write the matrix to this file instead of standard output." };
        var json = new Option<bool>("--json") { Description = "Write the matrix as JSON (schema docs/schemas/compare.schema.json)." };
        var cmd = new Command("compare", "Compare probe reports of several kernels: a matrix of every probe row × kernel, differing rows highlighted. Exit 1 when a report has regressed/unexpected or failed rows, 2 for a missing or malformed report.")
        {
            files, markdown, json, output,
        };
        cmd.SetAction(pr =>
        {
            if (pr.GetValue(json) && pr.GetValue(markdown))
                throw new CliUsageException("--json and --markdown are exclusive: choose one output format.");
            var reports = new List<ProbeReport>();
            foreach (var f in pr.GetValue(files) ?? [])
            {
                string text;
                try
                {
                    text = File.ReadAllText(f.FullName);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    Console.Error.WriteLine($"uffdnative: {f.FullName}: cannot read ({(e is FileNotFoundException or DirectoryNotFoundException ? "no such file" : e.Message)})");
                    return ExitCodes.Usage;
                }
                try
                {
                    reports.Add(ProbeReport.FromJson(text, f.FullName));
                }
                catch (FormatException e)
                {
                    Console.Error.WriteLine($"uffdnative: {e.Message}");
                    return ExitCodes.Usage;
                }
            }
            var matrix = ReportComparer.Build(reports);
            var file = pr.GetValue(output);
            bool color = file is null && !pr.GetValue(markdown) && !pr.GetValue(json) && !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("NO_COLOR") is null;
            string text2 = pr.GetValue(json) ? System.Text.Json.JsonSerializer.Serialize(CompareJsonReport.From(matrix), VerbJsonContext.Default.CompareJsonReport) + "\n"
                : pr.GetValue(markdown) ? ReportComparer.Markdown(matrix) : ReportComparer.Table(matrix, color);
            if (file is not null)
                CliFiles.WriteAllText(file, text2);
            else
                Console.Out.Write(text2);
            return matrix.Flagged.Count > 0 ? ExitCodes.Failure : ExitCodes.Ok;
        });
        return cmd;
    }
}
