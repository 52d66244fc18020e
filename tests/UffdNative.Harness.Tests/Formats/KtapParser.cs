using System.Globalization;

namespace UffdNative.Harness.Tests.Formats;

/// <summary>A KTAP output that breaks a rule of the spec; the message names the line.</summary>
public sealed class KtapFormatException(int line, string message) : FormatException($"KTAP line {line}: {message}")
{
    public int Line { get; } = line;
}

/// <summary>One test result line, the diagnostic lines just before it, and its subtests (null: a leaf).</summary>
public sealed record KtapTest(int Number, bool Ok, string Description, string? Directive, string Data, IReadOnlyList<string> Diagnostics, KtapBlock? Subtests)
{
    public bool IsLeaf => Subtests is null;
}

/// <summary>A version line, an optional plan, the tests, and diagnostics after the last test.</summary>
public sealed record KtapBlock(string Version, int? Plan, IReadOnlyList<KtapTest> Tests, IReadOnlyList<string> TrailingDiagnostics)
{
    /// <summary>Every leaf test below this block, depth first.</summary>
    public IEnumerable<KtapTest> Leaves() => Tests.SelectMany(t => t.Subtests is { } s ? s.Leaves() : [t]);
}

/// <summary>The whole output, and the lines the spec calls "unknown" (allowed, but they change nothing).</summary>
public sealed record KtapDocument(KtapBlock Root, IReadOnlyList<string> UnknownLines);

/// <summary>
/// A strict KTAP version 1 reader written from the kernel's Documentation/dev-tools/ktap.rst alone (it
/// shares no code with the writer): four kinds of lines — version ("KTAP version 1"; the spec lets
/// parsers accept "TAP version 13/14" too), plan ("1..N"), result ("ok|not ok NUMBER [description][ #
/// [directive] [data]]") and diagnostic ("# text") — and unknown lines, which are allowed and ignored.
/// Subtests are a whole KTAP block indented by two more spaces, beginning with its own version line and
/// ending before the parent's result line. Enforced: the version line first, the plan (when present)
/// before any test and equal to the number of tests, numbers from 1 increasing by one, descriptions
/// without '#', exact two-space indentation, and every subtest block followed by its parent's result.
/// </summary>
public static partial class KtapParser
{
    /// <summary>The directives the spec lists; another word after '#' is diagnostic data.</summary>
    public static readonly IReadOnlySet<string> Directives = new HashSet<string>(["SKIP", "TODO", "XFAIL", "TIMEOUT", "ERROR"], StringComparer.OrdinalIgnoreCase);

    [GeneratedRegex(@"^(?:KTAP version 1|TAP version 1[34])$")]
    private static partial Regex VersionLine();

    [GeneratedRegex(@"^1\.\.(\d+)$")]
    private static partial Regex PlanLine();

    // <result> <number> [<description>][ # [<directive>] [<diagnostic data>]]
    [GeneratedRegex(@"^(ok|not ok) (\d+)(?: ([^#]*?))?(?: ?#(.*))?$")]
    private static partial Regex ResultLine();

    private sealed class Lines(string[] lines)
    {
        public int Index;
        public readonly List<string> Unknown = [];

        public bool End => Index >= lines.Length;

        public string Current => lines[Index];

        public int Number => Index + 1;
    }

    public static KtapDocument Parse(string text)
    {
        var raw = text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        if (raw.Length > 0 && raw[^1].Length == 0)
            raw = raw[..^1];
        var lines = new Lines(raw);
        // Anything before the first version line is unknown output (console noise).
        while (!lines.End && !VersionLine().IsMatch(lines.Current))
            lines.Unknown.Add(raw[lines.Index++]);
        if (lines.End)
            throw new KtapFormatException(1, "no version line ('KTAP version 1')");
        var root = ParseBlock(lines, 0);
        if (!lines.End)
            throw new KtapFormatException(lines.Number, $"unexpected '{lines.Current}' after the top-level block");
        return new KtapDocument(root, lines.Unknown);
    }

    private static int Indent(string line)
    {
        int i = 0;
        while (i < line.Length && line[i] == ' ')
            i++;
        return i;
    }

    private static bool LooksLikeKtap(string content) =>
        VersionLine().IsMatch(content) || PlanLine().IsMatch(content) || ResultLine().IsMatch(content) || content.StartsWith('#');

    /// <summary>Reads the block whose version line is the current line, at <paramref name="level"/>
    /// (indentation 2 × level), up to the first line indented less.</summary>
    private static KtapBlock ParseBlock(Lines lines, int level)
    {
        int indent = 2 * level;
        var version = lines.Current[indent..];
        lines.Index++;
        int? plan = null;
        var tests = new List<KtapTest>();
        var diagnostics = new List<string>();
        KtapBlock? pendingSubtests = null;
        int pendingSubtestsLine = 0;
        while (!lines.End)
        {
            var line = lines.Current;
            int n = Indent(line);
            var content = line[Math.Min(n, line.Length)..];
            if (content.Length == 0)
            {
                lines.Unknown.Add(line);
                lines.Index++;
                continue;
            }
            if (n < indent && level > 0)
                break; // the block ends; the parent's result line comes next
            if (n == indent && level > 0 && VersionLine().IsMatch(content))
                break; // another block begins at this indentation: this one has ended (the parent judges it)
            if (n == indent + 2 && VersionLine().IsMatch(content))
            {
                if (pendingSubtests is not null)
                    throw new KtapFormatException(lines.Number, $"a second subtest block before the result line of the one at line {pendingSubtestsLine}");
                pendingSubtestsLine = lines.Number;
                pendingSubtests = ParseBlock(lines, level + 1);
                continue;
            }
            if (n != indent)
            {
                if (LooksLikeKtap(content))
                    throw new KtapFormatException(lines.Number, $"'{content}' is indented {n} spaces; at this level lines are indented {indent}");
                lines.Unknown.Add(line);
                lines.Index++;
                continue;
            }
            if (PlanLine().Match(content) is { Success: true } p)
            {
                if (plan is not null || tests.Count > 0 || pendingSubtests is not null)
                    throw new KtapFormatException(lines.Number, "a plan line must follow the version line, before any test");
                plan = int.Parse(p.Groups[1].Value, CultureInfo.InvariantCulture);
            }
            else if (VersionLine().IsMatch(content))
                throw new KtapFormatException(lines.Number, "a version line inside a block must be indented two more spaces (a subtest block)");
            else if (ResultLine().Match(content) is { Success: true } r)
            {
                int number = int.Parse(r.Groups[2].Value, CultureInfo.InvariantCulture);
                if (number != tests.Count + 1)
                    throw new KtapFormatException(lines.Number, $"test number {number}; expected {tests.Count + 1} (numbers start at 1 and increase by 1)");
                string description = r.Groups[3].Success ? r.Groups[3].Value.Trim() : "";
                string? directive = null;
                string data = "";
                if (r.Groups[4].Success)
                {
                    var rest = r.Groups[4].Value.Trim();
                    int space = rest.IndexOf(' ', StringComparison.Ordinal);
                    var word = space < 0 ? rest : rest[..space];
                    if (Directives.Contains(word))
                    {
                        directive = word.ToUpperInvariant();
                        data = space < 0 ? "" : rest[(space + 1)..].Trim();
                    }
                    else
                        data = rest;
                }
                tests.Add(new KtapTest(number, r.Groups[1].Value == "ok", description, directive, data, diagnostics, pendingSubtests));
                diagnostics = [];
                pendingSubtests = null;
            }
            else if (content.StartsWith('#'))
                diagnostics.Add(content.Length > 1 && content[1] == ' ' ? content[2..] : content[1..]);
            else
                lines.Unknown.Add(line);
            lines.Index++;
        }
        if (pendingSubtests is not null)
            throw new KtapFormatException(lines.Number, $"the subtest block at line {pendingSubtestsLine} has no result line of its parent test");
        if (plan is { } planned && planned != tests.Count)
            throw new KtapFormatException(lines.Number, $"the plan says 1..{planned}, the block has {tests.Count} tests");
        return new KtapBlock(version, plan, tests, diagnostics);
    }
}
