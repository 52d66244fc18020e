namespace UffdNative.Harness.Probing;

/// <summary>Text in a Markdown (GFM) table cell: '|' would end the cell (so "MISSING|WP" split a header into two
/// columns and the table did not render) and a line break would end the row.</summary>
public static class MarkdownText
{
    public static string Cell(string s) =>
        s.Replace("\\|", "|", StringComparison.Ordinal).Replace("|", "\\|", StringComparison.Ordinal)
            .Replace("\r\n", " ", StringComparison.Ordinal).Replace('\n', ' ').Replace('\r', ' ');
}
