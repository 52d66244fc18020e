using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using System.Text.RegularExpressions;
using UffdNative.Harness.Io;

namespace UffdNative.Cli.Infrastructure;

/// <summary>
/// Option factories every verb shares, so that the same kind of input is named, validated and
/// refused the same way everywhere: while parsing, before anything runs; one line naming the option,
/// the value and what is accepted; exit code 2.
/// </summary>
public static partial class CliOptions
{
    /// <summary>--json: machine-readable output on stdout (and nothing else on stdout).</summary>
    public static Option<bool> Json(string what = "the result") =>
        new("--json") { Description = $"Write {what} as JSON on stdout (for machines: CI artifacts, compare, replay)." };

    /// <summary>An integer option that must lie in [min, max].</summary>
    public static Option<int> Int(string name, string description, int defaultValue, int min, int max, params string[] aliases)
    {
        var o = new Option<int>(name, aliases) { Description = $"{description} ({min}..{max}, default {defaultValue}).", DefaultValueFactory = _ => defaultValue };
        Range(o, min, max);
        return o;
    }

    /// <summary>An integer option without a default (null when absent) that must lie in [min, max].</summary>
    public static Option<int?> OptionalInt(string name, string description, int min, int max)
    {
        var o = new Option<int?>(name) { Description = $"{description} ({min}..{max})." };
        Range(o, min, max);
        return o;
    }

    /// <summary>Adds the range check of <see cref="Int"/> to an option declared elsewhere.</summary>
    public static void Range<T>(Option<T> o, long min, long max)
    {
        o.Validators.Add(r =>
        {
            if (r.Tokens.Count == 0 || !TryValue(r, out T? value) || value is null)
                return;
            long v = Convert.ToInt64(value, CultureInfo.InvariantCulture);
            if (v < min || v > max)
                r.AddError($"{o.Name} must be between {min} and {max} (got {v}).");
        });
    }

    /// <summary>A number of seconds (null when absent): finite, above 0, at most <paramref name="max"/>. NaN,
    /// Infinity and 1e308 parse as doubles; they are refused here, not in a TimeSpan deep inside.</summary>
    public static Option<double?> Seconds(string name, string description, double max)
    {
        var o = new Option<double?>(name) { Description = $"{description} (above 0, at most {max.ToString(CultureInfo.InvariantCulture)})." };
        o.Validators.Add(r =>
        {
            if (r.Tokens.Count == 0 || !TryValue(r, out double? v) || v is not { } x)
                return;
            if (!double.IsFinite(x) || x <= 0 || x > max)
                r.AddError($"{name}: '{r.Tokens[0].Value}' is not a number of seconds above 0 and at most {max.ToString(CultureInfo.InvariantCulture)}.");
        });
        return o;
    }

    private static bool TryValue<T>(OptionResult r, out T? value)
    {
        try
        {
            value = r.GetValueOrDefault<T>();
            return true;
        }
        catch (InvalidOperationException)
        {
            value = default;
            return false; // the parser reports the unparsable value itself
        }
    }

    /// <summary>A kernel release naming a mainline profile: MAJOR.MINOR[.PATCH][-suffix], from 4.3 (the first
    /// kernel with userfaultfd) up. "99.99.banana", "99999999999.1" and "1.0" are refused while parsing.</summary>
    public static Option<string?> KernelRelease(string name, string description)
    {
        var o = new Option<string?>(name) { Description = description, HelpName = "version" };
        o.Validators.Add(r =>
        {
            if (r.Tokens.Count == 1 && KernelReleaseProblem(name, r.Tokens[0].Value) is { } problem)
                r.AddError(problem);
        });
        return o;
    }

    [GeneratedRegex(@"^(?<major>[0-9]{1,3})\.(?<minor>[0-9]{1,3})(\.[0-9]{1,6})?([-+][A-Za-z0-9._+~-]{1,64})?$", RegexOptions.CultureInvariant)]
    private static partial Regex ReleaseSyntax();

    /// <summary>Why <paramref name="text"/> is not a kernel release a profile can be made for, or null.</summary>
    public static string? KernelReleaseProblem(string name, string text)
    {
        var m = ReleaseSyntax().Match(text);
        if (!m.Success)
            return $"{name}: '{text}' is not a kernel release (expected MAJOR.MINOR[.PATCH][-suffix], e.g. 6.1 or 6.18.44-fc).";
        int major = int.Parse(m.Groups["major"].Value, CultureInfo.InvariantCulture), minor = int.Parse(m.Groups["minor"].Value, CultureInfo.InvariantCulture);
        if (major < 4 || (major == 4 && minor < 3))
            return $"{name}: '{text}' is older than 4.3, the first kernel with userfaultfd; give 4.3 or later.";
        if (major > 99)
            return $"{name}: '{text}' is not a kernel release (major version above 99).";
        return null;
    }

    /// <summary>A comma-separated list that must not be empty once blanks are dropped.</summary>
    public static string[] NonEmptyList(string name, string text, string example)
    {
        var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length == 0)
            throw new CliUsageException($"{name}: an empty list; give {example}.");
        return parts;
    }

    /// <summary>An input file that must exist and be a readable regular file (checked while parsing: exit 2
    /// before anything runs; a FIFO is refused, never opened).</summary>
    public static Option<FileInfo> InputFile(string name, string description, params string[] aliases)
    {
        var o = new Option<FileInfo>(name, aliases) { Description = description, HelpName = "file" };
        o.Validators.Add(r =>
        {
            if (r.Tokens.Count == 1 && CliPaths.InputProblem(name, r.Tokens[0].Value) is { } problem)
                r.AddError(problem);
        });
        return o;
    }

    /// <summary>Input file arguments (one or more) that must be readable regular files; what is there is checked
    /// while parsing (a FIFO, a directory, a device), a missing file by the verb (<see cref="CliPaths.RequireInput"/>),
    /// so that a command line of a script whose files do not exist yet still parses. A token that
    /// looks like an option ("--json") is reported as an unknown option of <paramref name="verb"/>, not as a
    /// missing file.</summary>
    public static Argument<string[]> InputFileArguments(string name, string description, string verb, Func<IEnumerable<string>> knownOptions)
    {
        var a = new Argument<string[]>(name) { Description = description, HelpName = name, Arity = ArgumentArity.OneOrMore };
        a.Validators.Add(r =>
        {
            foreach (var t in r.Tokens)
            {
                if (t.Value.Length > 1 && t.Value[0] == '-' && !File.Exists(t.Value))
                {
                    r.AddError($"unknown option '{t.Value}' of {verb} (its options: {string.Join(", ", knownOptions())}); a file named so is ./{t.Value}");
                    return;
                }
                if (CliPaths.InputProblem(name, t.Value, missingIsAProblem: false) is { } problem)
                {
                    r.AddError(problem);
                    return;
                }
            }
        });
        return a;
    }

    /// <summary>A single input file argument that must exist and be a readable regular file.</summary>
    public static Argument<string> InputFileArgument(string name, string description)
    {
        var a = new Argument<string>(name) { Description = description, HelpName = name };
        a.Validators.Add(r =>
        {
            if (r.Tokens.Count == 1 && CliPaths.InputProblem(name, r.Tokens[0].Value, missingIsAProblem: false) is { } problem)
                r.AddError(problem);
        });
        return a;
    }

    /// <summary>An output file ('-' or absent: standard output) whose directory must exist and be writable and
    /// which, if it exists, must be a regular file (checked while parsing). Written by
    /// <see cref="CliFiles.WriteOutput"/>: atomically, so a failed write leaves the old file as it was.</summary>
    public static Option<string?> OutputFile(string name, string description, params string[] aliases)
    {
        var o = new Option<string?>(name, aliases) { Description = description + " '-' is standard output; an existing file is replaced only once the new one is complete.", HelpName = "file" };
        o.Validators.Add(r =>
        {
            if (r.Tokens.Count == 1 && CliPaths.OutputFileProblem(name, r.Tokens[0].Value) is { } problem)
                r.AddError(problem);
        });
        return o;
    }

    /// <summary>A directory for a set of outputs (a reproducer): missing (then created) or a directory, in a
    /// writable parent. An existing non-empty one is not written into unless --force; a numbered one beside
    /// it is made instead (<see cref="AtomicFile.NewDirectory"/>).</summary>
    public static Option<string?> OutputDirectory(string name, string description)
    {
        var o = new Option<string?>(name) { Description = description, HelpName = "dir" };
        o.Validators.Add(r =>
        {
            if (r.Tokens.Count == 1 && CliPaths.OutputDirectoryProblem(name, r.Tokens[0].Value) is { } problem)
                r.AddError(problem);
        });
        return o;
    }

    /// <summary>--force: write into an existing output directory instead of a new numbered one.</summary>
    public static Option<bool> Force(string what) =>
        new("--force") { Description = $"Write {what} into the directory given even if it holds an earlier one (default: a new numbered directory beside it)." };
}

/// <summary>What a path given on the command line names, checked before it is used (stat, never open): the
/// one-line reasons of the validation layer.</summary>
public static class CliPaths
{
    /// <summary>Throws a <see cref="CliUsageException"/> (exit 2, one line) unless <paramref name="path"/> is a
    /// readable regular file.</summary>
    public static void RequireInput(string name, string path)
    {
        if (InputProblem(name, path) is { } problem)
            throw new CliUsageException(problem);
    }

    /// <summary>Why <paramref name="path"/> cannot be read as an input file, or null.</summary>
    public static string? InputProblem(string name, string path, bool missingIsAProblem = true)
    {
        if (Stat(name, path, "a file", "cannot read", out var st) is { } problem)
            return problem;
        return st.Kind switch
        {
            FileKind.Missing when st.IsSymlink => $"{name}: '{path}' is a symbolic link to a missing file.",
            FileKind.Missing when !missingIsAProblem => null,
            FileKind.Missing => $"{name}: file not found: '{path}'.",
            FileKind.Directory => $"{name}: '{path}' is a directory, not a file.",
            FileKind.Regular when FileKinds.Access(path, FileKinds.ReadAccess) is var e and not 0 => $"{name}: cannot read '{path}': {FileKinds.ErrnoText(e)}.",
            FileKind.Regular => null,
            var k => $"{name}: '{path}' is {FileKinds.Describe(k)}, not a regular file; save its content to a file and give that.",
        };
    }

    /// <summary>Why <paramref name="path"/> cannot be an output file, or null ('-' is standard output).</summary>
    public static string? OutputFileProblem(string name, string path)
    {
        if (path == "-")
            return null;
        if (Stat(name, path, "a file name, or '-' for standard output", "cannot write", out var st) is { } problem)
            return problem;
        if (st.Kind == FileKind.Directory)
            return $"{name}: '{path}' is a directory; give a file name.";
        if (st.Kind == FileKind.Missing && st.IsSymlink)
            return $"{name}: '{path}' is a symbolic link to a missing file; give the file itself.";
        if (st.Exists && st.Kind != FileKind.Regular)
            return $"{name}: '{path}' is {FileKinds.Describe(st.Kind)}, not a regular file; give a file name, or '-' for standard output.";
        var target = st.Exists ? AtomicFile.Target(path) : Path.GetFullPath(path);
        return ParentProblem(name, path, Path.GetDirectoryName(target));
    }

    /// <summary>Why <paramref name="path"/> cannot be (or be made) an output directory, or null.</summary>
    public static string? OutputDirectoryProblem(string name, string path)
    {
        if (Stat(name, path, "a directory", "cannot write into", out var st) is { } problem)
            return problem;
        if (st.Exists && st.Kind != FileKind.Directory)
            return $"{name}: '{path}' is {FileKinds.Describe(st.Kind)}, not a directory; give a directory (it is created if missing).";
        var full = Path.GetFullPath(path).TrimEnd('/');
        return ParentProblem(name, path, Path.GetDirectoryName(full) is { Length: > 0 } parent ? parent : "/");
    }

    /// <summary>What every path check starts with: not empty, no NUL, stat(2) answers (ENOENT is an answer).</summary>
    private static string? Stat(string name, string path, string give, string verb, out PathStatus status)
    {
        status = default;
        if (path.Length == 0)
            return $"{name}: an empty path; give {give}.";
        if (path.Contains('\0', StringComparison.Ordinal))
            return $"{name}: a path cannot contain a NUL character.";
        status = FileKinds.Of(path);
        return status.Errno != 0 ? $"{name}: {verb} '{path}': {FileKinds.ErrnoText(status.Errno)}." : null;
    }

    private static string? ParentProblem(string name, string path, string? dir)
    {
        if (dir is null)
            return null;
        var parent = FileKinds.Of(dir);
        if (parent.Kind == FileKind.Missing)
            return $"{name}: cannot write '{path}': directory '{dir}' does not exist.";
        if (parent.Kind != FileKind.Directory)
            return $"{name}: cannot write '{path}': '{dir}' is a file, not a directory.";
        if (FileKinds.Access(dir, FileKinds.WriteAccess | FileKinds.SearchAccess) is var e and not 0)
            return $"{name}: cannot write '{path}': directory '{dir}' is not writable ({FileKinds.ErrnoText(e)}).";
        return null;
    }
}

/// <summary>Reading inputs and writing outputs with errors a person can act on (exit code 2).</summary>
public static class CliFiles
{
    /// <summary>Writes <paramref name="text"/> to <paramref name="path"/> atomically (temporary file, fsync,
    /// rename: a failure leaves an existing file as it was and no temporary file), or to standard output when
    /// the path is null or '-'. A failure is a <see cref="CliUsageException"/> naming the option, the path and
    /// the reason.</summary>
    public static void WriteOutput(string? path, string text, string optionName = "--output")
    {
        if (path is null or "-")
        {
            Console.Out.Write(text);
            Console.Out.Flush();
            return;
        }
        try
        {
            AtomicFile.WriteAllText(path, text);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new CliUsageException($"{optionName}: cannot write '{Path.GetFullPath(path)}': {Reason(e)}", e);
        }
    }

    /// <summary>Reads an input file as text without ever blocking on a FIFO or reading without bound
    /// (<see cref="UffdNative.Harness.Io.InputFile"/>), or throws a <see cref="CliUsageException"/>.</summary>
    public static string ReadText(string path, string what)
    {
        try
        {
            return UffdNative.Harness.Io.InputFile.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new CliUsageException($"cannot read {what} '{path}': {Reason(e)}", e);
        }
    }

    /// <summary>Reads and deserializes a JSON input, or throws a <see cref="CliUsageException"/>
    /// naming the file, the line and what was wrong.</summary>
    public static T ReadJson<T>(FileInfo file, JsonTypeInfo<T> type, string what)
    {
        var text = ReadText(file.FullName, what);
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

    /// <summary>The OS's reason without the path repeated ("permission denied", "read-only file system").</summary>
    public static string Reason(Exception e)
    {
        if (e is FileNotFoundException or DirectoryNotFoundException)
            return "no such file or directory";
        if (e is UnauthorizedAccessException)
            return "permission denied";
        var m = e.Message;
        int q = m.IndexOf(" : '", StringComparison.Ordinal);
        m = q > 0 ? m[..q] : m.TrimEnd('.');
        return m.Length > 0 ? char.ToLowerInvariant(m[0]) + m[1..] : m;
    }

    private static string FirstSentence(string s)
    {
        int i = s.IndexOf(". ", StringComparison.Ordinal);
        return CliErrors.OneLine(i > 0 ? s[..i] : s.TrimEnd('.'));
    }
}
