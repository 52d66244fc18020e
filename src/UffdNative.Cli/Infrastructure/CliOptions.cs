using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace UffdNative.Cli.Infrastructure;

/// <summary>
/// Option factories every verb shares, so that the same kind of input is named, validated and
/// refused the same way everywhere: one line, exit code 2.
/// </summary>
public static class CliOptions
{
    /// <summary>--json: machine-readable output on stdout (and nothing else on stdout).</summary>
    public static Option<bool> Json(string what = "the result") =>
        new("--json") { Description = $"Write {what} as JSON on stdout (for machines: CI artifacts, compare, replay)." };

    /// <summary>An integer option that must lie in [min, max].</summary>
    public static Option<int> Int(string name, string description, int defaultValue, int min, int max, params string[] aliases)
    {
        var o = new Option<int>(name, aliases) { Description = $"{description} ({min}..{max}, default {defaultValue}).", DefaultValueFactory = _ => defaultValue };
        o.Validators.Add(r =>
        {
            if (r.Tokens.Count == 0)
                return;
            int v;
            try
            {
                v = r.GetValueOrDefault<int>();
            }
            catch (InvalidOperationException)
            {
                return; // the parser reports the unparsable value itself
            }
            if (v < min || v > max)
                r.AddError($"{name} must be between {min} and {max} (got {v}).");
        });
        return o;
    }

    /// <summary>An input file that must exist (checked while parsing: exit 2 before anything runs).</summary>
    public static Option<FileInfo> InputFile(string name, string description, params string[] aliases)
    {
        var o = new Option<FileInfo>(name, aliases) { Description = description, HelpName = "file" };
        o.Validators.Add(r =>
        {
            if (r.Tokens.Count == 1 && !File.Exists(r.Tokens[0].Value))
                r.AddError(Directory.Exists(r.Tokens[0].Value) ? $"{name}: '{r.Tokens[0].Value}' is a directory, not a file." : $"{name}: file not found: '{r.Tokens[0].Value}'.");
        });
        return o;
    }

    /// <summary>An input file argument that must exist.</summary>
    public static Argument<FileInfo> InputFileArgument(string name, string description)
    {
        var a = new Argument<FileInfo>(name) { Description = description, HelpName = name };
        a.Validators.Add(r =>
        {
            if (r.Tokens.Count == 1 && !File.Exists(r.Tokens[0].Value))
                r.AddError(Directory.Exists(r.Tokens[0].Value) ? $"{name}: '{r.Tokens[0].Value}' is a directory, not a file." : $"{name}: file not found: '{r.Tokens[0].Value}'.");
        });
        return a;
    }

    /// <summary>An output file whose directory must exist (checked while parsing); whether it can be
    /// written is found out by <see cref="CliFiles.CreateText"/>, which reports it the same way.</summary>
    public static Option<FileInfo?> OutputFile(string name, string description, params string[] aliases)
    {
        var o = new Option<FileInfo?>(name, aliases) { Description = description, HelpName = "file" };
        o.Validators.Add(r =>
        {
            if (r.Tokens.Count == 1 && OutputProblem(name, r.Tokens[0].Value) is { } problem)
                r.AddError(problem);
        });
        return o;
    }

    /// <summary>Why <paramref name="path"/> cannot be an output file, or null: it is a directory, or
    /// its directory does not exist (or is not a directory).</summary>
    public static string? OutputProblem(string name, string path)
    {
        if (Directory.Exists(path))
            return $"{name}: '{path}' is a directory; give a file name.";
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null && !Directory.Exists(dir))
            return File.Exists(dir) ? $"{name}: cannot write '{path}': '{dir}' is a file, not a directory." : $"{name}: cannot write '{path}': directory '{dir}' does not exist.";
        return null;
    }
}

/// <summary>Reading inputs and writing outputs with errors a person can act on (exit code 2).</summary>
public static class CliFiles
{
    /// <summary>Opens <paramref name="file"/> for writing (created or truncated), or throws a
    /// <see cref="CliUsageException"/> naming the option, the path and the reason.</summary>
    public static StreamWriter CreateText(FileInfo file, string optionName = "--output")
    {
        try
        {
            return new StreamWriter(new FileStream(file.FullName, FileMode.Create, FileAccess.Write, FileShare.Read));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliUsageException($"{optionName}: cannot write '{file.FullName}': {Reason(e)}", e);
        }
    }

    /// <summary>Writes all of <paramref name="text"/> to <paramref name="file"/> (see <see cref="CreateText"/>).</summary>
    public static void WriteAllText(FileInfo file, string text, string optionName = "--output")
    {
        using var w = CreateText(file, optionName);
        try
        {
            w.Write(text);
            w.Flush();
        }
        catch (IOException e)
        {
            throw new CliUsageException($"{optionName}: cannot write '{file.FullName}': {Reason(e)}", e);
        }
    }

    /// <summary>Reads and deserializes a JSON input, or throws a <see cref="CliUsageException"/>
    /// naming the file, the line and what was wrong.</summary>
    public static T ReadJson<T>(FileInfo file, JsonTypeInfo<T> type, string what)
    {
        string text;
        try
        {
            text = File.ReadAllText(file.FullName);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliUsageException($"cannot read {what} '{file.FullName}': {Reason(e)}", e);
        }
        try
        {
            return JsonSerializer.Deserialize(text, type) ?? throw new CliUsageException($"{what} '{file.FullName}' is empty JSON (null).");
        }
        catch (JsonException e)
        {
            var where = e.LineNumber is { } l ? $" at line {l + 1}, byte {e.BytePositionInLine + 1}" : "";
            throw new CliUsageException($"{what} '{file.FullName}' is not valid JSON{where}: {FirstSentence(e.Message)}", e);
        }
    }

    /// <summary>The OS's reason without the path repeated ("Permission denied", "Read-only file system").</summary>
    public static string Reason(Exception e)
    {
        if (e is FileNotFoundException or DirectoryNotFoundException)
            return "no such file or directory";
        if (e is UnauthorizedAccessException)
            return "permission denied";
        var m = e.Message;
        int q = m.IndexOf(" : '", StringComparison.Ordinal);
        return q > 0 ? m[..q] : m.TrimEnd('.');
    }

    private static string FirstSentence(string s)
    {
        int i = s.IndexOf(". ", StringComparison.Ordinal);
        return CliErrors.OneLine(i > 0 ? s[..i] : s.TrimEnd('.'));
    }
}
