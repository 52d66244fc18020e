using System.Text.Json;
using UffdNative;

namespace UffdNative.Cli.Infrastructure;

/// <summary>The command line was wrong in a way the parser cannot see: a value out of range for this
/// kernel or file, a missing or malformed input file, an unwritable output path. Exit code 2.</summary>
public sealed class CliUsageException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>This environment cannot run what was asked (no usable userfaultfd, a feature this kernel
/// lacks, a missing tool such as qemu). Exit code 3.</summary>
public sealed class CliEnvironmentException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Turns any exception that escapes a verb into one line on stderr and a documented exit code
/// (<see cref="ExitCodes"/>). A stack trace is written only at <c>-v diagnostic</c>.
/// </summary>
public static class CliErrors
{
    /// <summary>The exit code for an exception, and the one-line message (without the "uffdnative: " prefix).</summary>
    public static (int ExitCode, string Message) Classify(Exception e) => e switch
    {
        CliUsageException => (ExitCodes.Usage, e.Message),
        CliEnvironmentException => (ExitCodes.Environment, e.Message),
        UffdException { Data: var d } u when IsEnvironment(u) && d["attempts"] is IEnumerable<UffdOpenAttempt> attempts =>
            (ExitCodes.Environment, EnvironmentDiagnosis.From(attempts).OneLine()),
        UffdException u when IsEnvironment(u) => (ExitCodes.Environment, u.Message),
        UffdException u => (ExitCodes.Failure, u.Message),
        FileNotFoundException f => (ExitCodes.Usage, $"file not found: {f.FileName ?? f.Message}"),
        DirectoryNotFoundException => (ExitCodes.Usage, $"directory not found: {e.Message}"),
        JsonException j => (ExitCodes.Usage, $"malformed JSON: {j.Message}"),
        UnauthorizedAccessException => (ExitCodes.Usage, $"permission denied: {e.Message}"),
        // What escapes a verb as a bare IOException is a file it was told to read or write.
        IOException when e.GetType() == typeof(IOException) => (ExitCodes.Usage, $"cannot read or write a file: {e.Message}"),
        OperationCanceledException => (ExitCodes.Failure, "cancelled"),
        DllNotFoundException => (ExitCodes.Environment,
            $"the native shim libuffdshim.so could not be loaded ({e.Message}); reinstall the tool, or set UFFDNATIVE_SHIM to its path"),
        PlatformNotSupportedException => (ExitCodes.Environment, e.Message),
        _ => (ExitCodes.Failure, $"internal error: {e.GetType().Name}: {e.Message}"),
    };

    /// <summary>Opening a uffd or its handshake failed: nothing this verb does can work here.</summary>
    public static bool IsEnvironment(UffdException e) =>
        e.Operation.StartsWith("open", StringComparison.Ordinal) || e.Operation.StartsWith("UFFDIO_API", StringComparison.Ordinal);

    /// <summary>Writes the message (one line) and returns the exit code.</summary>
    public static int Report(Exception e, TextWriter error, bool withStackTrace)
    {
        var (code, message) = Classify(e);
        error.WriteLine($"uffdnative: {OneLine(message)}");
        if (withStackTrace)
            error.WriteLine(e.ToString());
        else if (code == ExitCodes.Failure && message.StartsWith("internal error", StringComparison.Ordinal))
            error.WriteLine("uffdnative: run again with -v diagnostic for the stack trace");
        return code;
    }

    /// <summary>Collapses a multi-line message to one line.</summary>
    public static string OneLine(string s) =>
        string.Join(' ', s.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
