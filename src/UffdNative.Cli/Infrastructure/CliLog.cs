using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;

namespace UffdNative.Cli.Infrastructure;

/// <summary>How much the CLI says on stderr besides its results (global option -v/--verbosity).</summary>
public enum Verbosity
{
    /// <summary>Errors only.</summary>
    Quiet,
    /// <summary>Warnings and errors (the default).</summary>
    Minimal,
    /// <summary>Progress and what each step decided.</summary>
    Normal,
    /// <summary>Every kernel call worth naming (Debug).</summary>
    Detailed,
    /// <summary>Everything, and stack traces with errors (Trace).</summary>
    Diagnostic,
}

/// <summary>How log lines are written on stderr (global option --log-format).</summary>
public enum LogFormat
{
    /// <summary>One line per message: "time level: category[event] message" (the default).</summary>
    Simple,
    /// <summary>One JSON object per line (Microsoft.Extensions.Logging's JsonConsoleFormatter): Timestamp,
    /// EventId, LogLevel, Category, Message, State.</summary>
    Json,
}

/// <summary>
/// The CLI's Microsoft.Extensions.Logging setup: a single-line console logger on stderr (stdout is
/// for results and JSON), its level set by -v/--verbosity. Verbs take loggers from <see cref="For{T}"/>.
/// </summary>
public static class CliLog
{
    private static ILoggerFactory factory = NullLoggerFactory.Instance;

    public static Verbosity Verbosity { get; private set; } = Verbosity.Minimal;

    public static ILoggerFactory Factory => factory;

    public static ILogger For<T>() => factory.CreateLogger<T>();

    public static ILogger For(string category) => factory.CreateLogger(category);

    public static LogLevel ToLogLevel(Verbosity v) => v switch
    {
        Verbosity.Quiet => LogLevel.Error,
        Verbosity.Minimal => LogLevel.Warning,
        Verbosity.Normal => LogLevel.Information,
        Verbosity.Detailed => LogLevel.Debug,
        _ => LogLevel.Trace,
    };

    /// <summary>Parses q[uiet], m[inimal], n[ormal], d[etailed], diag[nostic] (the dotnet CLI's words).</summary>
    public static bool TryParse(string? text, out Verbosity v)
    {
        v = (text ?? "").Trim().ToLowerInvariant() switch
        {
            "q" or "quiet" => Verbosity.Quiet,
            "m" or "minimal" => Verbosity.Minimal,
            "n" or "normal" => Verbosity.Normal,
            "d" or "detailed" => Verbosity.Detailed,
            "diag" or "diagnostic" => Verbosity.Diagnostic,
            _ => (Verbosity)(-1),
        };
        return Enum.IsDefined(v);
    }

    /// <summary>Parses simple or json (--log-format).</summary>
    public static bool TryParseFormat(string? text, out LogFormat format)
    {
        format = (text ?? "").Trim().ToLowerInvariant() switch
        {
            "simple" => LogFormat.Simple,
            "json" => LogFormat.Json,
            _ => (LogFormat)(-1),
        };
        return Enum.IsDefined(format);
    }

    /// <summary>Creates the logger factory for this run, and makes it the binding's
    /// (<see cref="UffdLogging"/>: the fault server, the external handler, the executor and every kernel
    /// call, category UffdNative.Kernel, at Debug); dispose it before exit to flush.</summary>
    public static ILoggerFactory Configure(Verbosity v, LogFormat format = LogFormat.Simple)
    {
        Verbosity = v;
        factory = LoggerFactory.Create(b =>
        {
            b.SetMinimumLevel(ToLogLevel(v))
                .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace)
                .AddFilter<ConsoleLoggerProvider>(null, ToLogLevel(v));
            if (format == LogFormat.Json)
            {
                b.AddJsonConsole(o =>
                {
                    o.IncludeScopes = false;
                    o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
                    o.UseUtcTimestamp = true;
                    o.JsonWriterOptions = new System.Text.Json.JsonWriterOptions { Indented = false };
                });
            }
            else
            {
                b.AddSimpleConsole(o =>
                {
                    o.SingleLine = true;
                    o.IncludeScopes = false;
                    o.TimestampFormat = v >= Verbosity.Detailed ? "HH:mm:ss.fff " : null;
                    o.ColorBehavior = Console.IsErrorRedirected ? LoggerColorBehavior.Disabled : LoggerColorBehavior.Default;
                });
            }
        });
        UffdLogging.LoggerFactory = factory;
        return factory;
    }

    /// <summary>Back to no logging (tests that build the CLI in-process).</summary>
    public static void Reset()
    {
        factory = NullLoggerFactory.Instance;
        UffdLogging.LoggerFactory = factory;
        Verbosity = Verbosity.Minimal;
    }
}
