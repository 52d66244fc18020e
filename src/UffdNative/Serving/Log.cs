using Microsoft.Extensions.Logging;
using UffdNative.Messages;

namespace UffdNative.Serving;

/// <summary>Source-generated log messages of the serving engine. The hot-path ones are Debug and the
/// loop calls them only behind IsEnabled(Debug), so a disabled logger costs one check per batch.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 3000, Level = LogLevel.Information, Message = "fault server started on uffd {Fd}: policies {Policies}, ranges {Ranges}, cpu {Cpu}")]
    public static partial void Started(ILogger logger, int fd, string policies, int ranges, int cpu);

    [LoggerMessage(EventId = 3001, Level = LogLevel.Debug, Message = "fault 0x{Address:x} {Kind} flags 0x{Flags:x} thread {ThreadId}")]
    public static partial void Fault(ILogger logger, ulong address, FaultKind kind, ulong flags, uint threadId);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Debug, Message = "resolved run 0x{Start:x} +{Pages} pages ({Kind})")]
    public static partial void RunResolved(ILogger logger, ulong start, ulong pages, FaultKind kind);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Debug, Message = "EAGAIN at 0x{Address:x}: an event is unread; deferring {Faults} faults")]
    public static partial void Deferred(ILogger logger, ulong address, int faults);

    [LoggerMessage(EventId = 3004, Level = LogLevel.Debug, Message = "EEXIST at 0x{Address:x}: already resolved, waking anyway")]
    public static partial void Exists(ILogger logger, ulong address);

    [LoggerMessage(EventId = 3005, Level = LogLevel.Debug, Message = "ENOENT for run 0x{Start:x} +{Pages} pages: range gone, woken and dropped")]
    public static partial void Gone(ILogger logger, ulong start, ulong pages);

    [LoggerMessage(EventId = 3010, Level = LogLevel.Information, Message = "FORK: child uffd {Fd}, {Behavior}")]
    public static partial void Fork(ILogger logger, int fd, ForkBehavior behavior);

    [LoggerMessage(EventId = 3011, Level = LogLevel.Debug, Message = "REMAP 0x{From:x} -> 0x{To:x} ({Length} bytes)")]
    public static partial void Remap(ILogger logger, ulong from, ulong to, ulong length);

    [LoggerMessage(EventId = 3012, Level = LogLevel.Debug, Message = "REMOVE [0x{Start:x}, 0x{End:x})")]
    public static partial void Remove(ILogger logger, ulong start, ulong end);

    [LoggerMessage(EventId = 3013, Level = LogLevel.Debug, Message = "UNMAP [0x{Start:x}, 0x{End:x})")]
    public static partial void Unmap(ILogger logger, ulong start, ulong end);

    [LoggerMessage(EventId = 3020, Level = LogLevel.Information, Message = "fault server on uffd {Fd} ended: {Message}")]
    public static partial void Ended(ILogger logger, int fd, string message);

    [LoggerMessage(EventId = 3021, Level = LogLevel.Error, Message = "fault server on uffd {Fd} failed and closed the uffd: {Message}")]
    public static partial void Failed(ILogger logger, Exception? exception, int fd, string message);
}
