namespace UffdNative.Harness.Tests.Probing;

/// <summary>Markdown tables render: a '|' or a line break in any value (register modes "MISSING|WP", an errno
/// text, a remedy, a kernel name) never adds a column or ends a row.</summary>
public partial class MarkdownTests
{
    [GeneratedRegex(@"(?<!\\)\|")]
    private static partial Regex UnescapedPipe();

    private static void AssertTablesRender(string markdown, int minTables)
    {
        var lines = markdown.Split('\n');
        int tables = 0;
        for (int i = 0; i < lines.Length; i++)
        {
            if (!lines[i].StartsWith('|'))
                continue;
            tables++;
            int columns = UnescapedPipe().Matches(lines[i]).Count;
            for (; i < lines.Length && lines[i].StartsWith('|'); i++)
                Assert.True(UnescapedPipe().Matches(lines[i]).Count == columns, $"'{lines[i]}' has not the {columns - 1} columns of its header\n{markdown}");
        }
        Assert.True(tables >= minTables, markdown);
    }

    private static ProbeReport Report(string kernel) => new()
    {
        KernelRelease = kernel,
        MainlineVersion = "6.1|x",
        OpenPaths = [new OpenPathResult("syscall", false, "EPERM|EACCES", "refused\nby seccomp|filter", "run with | --cap-add")],
        RegisterMasks =
        [
            new RegisterMaskResult("shmem", "MISSING|WP", "OK", 0x1c, "OK", 0x1c, "as expected", ""),
            new RegisterMaskResult("shmem", "MISSING|WP|MINOR", "EINVAL", 0, "OK", 0x1c, "regressed", "x|y"),
            new RegisterMaskResult("anon|private", "MISSING|WP", "OK", 0x1c, "OK", 0x1c, "as expected", ""),
            new RegisterMaskResult("anon|private", "MISSING|WP|MINOR", "EINVAL", 0, "OK", 0x1c, "regressed", "x|y"),
        ],
        Behaviours = [new BehaviourResult { Id = "row|1", Section = "§3.2|b", Observed = "a|b\nc", Meaning = "m|n", Verdict = "as expected" }],
        Facts = [new FactResult { Id = "zero|page", Value = "on|off", Evidence = "e|f" }],
    };

    [Fact]
    public void ProbeAndCompareMarkdownEscapeEveryCell()
    {
        AssertTablesRender(ProbeRendering.Markdown(Report("6.18.44|fc")), 4);
        AssertTablesRender(ReportComparer.Markdown(ReportComparer.Build([Report("6.1.0|a"), Report("6.12|b")])), 1);
        Assert.Equal("MISSING\\|WP a b", MarkdownText.Cell("MISSING|WP a\nb"));
        Assert.Equal("already\\|escaped", MarkdownText.Cell("already\\|escaped"));
    }
}
