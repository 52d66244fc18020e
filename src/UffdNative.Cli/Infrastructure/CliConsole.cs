using Spectre.Console;
using Spectre.Console.Rendering;

namespace UffdNative.Cli.Infrastructure;

/// <summary>
/// Spectre.Console for the CLI: results (tables) go to stdout, progress to stderr, so that
/// <c>--json</c> output on stdout is never mixed with anything else. ANSI and colour are used only
/// when the stream is a terminal (and NO_COLOR is unset); redirected output is plain text.
/// </summary>
public static class CliConsole
{
    private static IAnsiConsole? output;
    private static IAnsiConsole? error;

    /// <summary>stdout as a Spectre console.</summary>
    public static IAnsiConsole Out => output ??= Create(Console.Out, Console.IsOutputRedirected);

    /// <summary>stderr as a Spectre console (progress bars, status).</summary>
    public static IAnsiConsole Error => error ??= Create(Console.Error, Console.IsErrorRedirected);

    /// <summary>Whether stderr is an interactive terminal (live progress bars make sense).</summary>
    public static bool ErrorIsInteractive => !Console.IsErrorRedirected && Environment.GetEnvironmentVariable("TERM") is not (null or "dumb");

    private static IAnsiConsole Create(TextWriter writer, bool redirected)
    {
        bool plain = redirected || Environment.GetEnvironmentVariable("NO_COLOR") is { Length: > 0 };
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(writer),
            // NO_COLOR takes the colours away, not the terminal: a progress bar still redraws in place.
            Ansi = redirected ? AnsiSupport.No : AnsiSupport.Detect,
            ColorSystem = plain ? ColorSystemSupport.NoColors : ColorSystemSupport.Detect,
            Interactive = redirected ? InteractionSupport.No : InteractionSupport.Detect,
        });
        if (redirected)
            console.Profile.Width = 200; // no terminal to ask: do not wrap report lines at 80 columns
        return console;
    }

    /// <summary>A table with the CLI's style: a header row, no outer box when redirected (stable,
    /// diff-friendly text), rounded box on a terminal.</summary>
    public static Table Table(params string[] headers)
    {
        var t = new Table().Border(Console.IsOutputRedirected ? TableBorder.Simple : TableBorder.Rounded);
        foreach (var h in headers)
            t.AddColumn(new TableColumn(Markup.Escape(h)) { NoWrap = true });
        return t;
    }

    /// <summary>Adds a row of plain (unescaped) strings.</summary>
    public static Table Row(this Table t, params string[] cells)
    {
        t.AddRow(cells.Select(c => (IRenderable)new Text(c)).ToArray());
        return t;
    }

    /// <summary>Writes a table built from headers and rows to stdout.</summary>
    public static void WriteTable(string[] headers, IEnumerable<string[]> rows, string? title = null)
    {
        var t = Table(headers);
        if (title is not null)
            t.Title = new TableTitle(Markup.Escape(title));
        foreach (var r in rows)
            t.Row(r);
        Out.Write(t);
    }

    /// <summary>Tests and in-process runs: use these writers instead of the process's streams.</summary>
    public static void Redirect(TextWriter? stdout, TextWriter? stderr)
    {
        output = stdout is null ? null : Create(stdout, true);
        error = stderr is null ? null : Create(stderr, true);
    }
}
