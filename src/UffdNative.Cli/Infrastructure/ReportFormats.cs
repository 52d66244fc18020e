using System.CommandLine;

namespace UffdNative.Cli.Infrastructure;

/// <summary>What a verb's report is written as (docs/formats.md).</summary>
public enum ReportFormat
{
    Text,
    Json,
    Markdown,
    Ktap,
    Junit,
}

/// <summary>
/// <c>--format</c> for the verbs whose report has several forms (check, probe): text for people, json
/// (docs/schemas/), markdown, ktap (the kernel's KTAP v1, as kselftest prints it) and junit (JUnit XML
/// for CI dashboards). <c>--json</c> stays as the short form of <c>--format json</c>.
/// </summary>
public static class ReportFormats
{
    public static string Name(ReportFormat f) => f.ToString().ToLowerInvariant();

    /// <summary>The --format option accepting only <paramref name="allowed"/> (default text).</summary>
    public static Option<string> Option(params ReportFormat[] allowed)
    {
        var o = new Option<string>("--format")
        {
            Description = $"Write the report as {string.Join(", ", allowed.Select(Name))} (default text; see docs/formats.md).",
            HelpName = "format",
            DefaultValueFactory = _ => "text",
        };
        o.AcceptOnlyFromAmong([.. allowed.Select(Name)]);
        return o;
    }

    /// <summary>The format asked for by --format and the older flags (--json, --markdown); a
    /// <see cref="CliUsageException"/> (one line, exit 2) when they contradict each other.</summary>
    public static ReportFormat Resolve(ParseResult pr, Option<string> format, Option<bool> json, Option<bool>? markdown = null)
    {
        var asked = Enum.Parse<ReportFormat>(pr.GetValue(format) ?? "text", ignoreCase: true);
        var flags = new List<(string Name, ReportFormat Format)>();
        if (pr.GetValue(json))
            flags.Add(("--json", ReportFormat.Json));
        if (markdown is not null && pr.GetValue(markdown))
            flags.Add(("--markdown", ReportFormat.Markdown));
        bool formatGiven = pr.GetResult(format) is { Implicit: false };
        if (flags.Count > 1 || (flags.Count == 1 && formatGiven && asked != flags[0].Format))
        {
            var all = flags.Select(f => f.Name).Concat(formatGiven ? [$"--format {Name(asked)}"] : []);
            throw new CliUsageException($"{string.Join(" and ", all)} are exclusive: choose one output format.");
        }
        return flags.Count == 1 ? flags[0].Format : asked;
    }
}
