using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using UffdNative.Interop;
using UffdNative.Uapi;

namespace UffdNative;

/// <summary>
/// Where the binding logs. Components that take no logger of their own (a <see cref="Serving.FaultServer"/>
/// without <see cref="Serving.FaultServerOptions.Logger"/>, an external handler without one) create theirs
/// from <see cref="LoggerFactory"/>; every kernel call of <see cref="Userfaultfd"/> and of the serving loop
/// is logged at Debug under the category <c>UffdNative.Kernel</c> (the open, UFFDIO_API with its features,
/// each REGISTER with its range, mode and ioctls, each resolving ioctl with its range and result).
/// </summary>
/// <remarks>Whether the kernel calls are logged is decided when the factory is set (one flag the ioctl
/// paths test, so a disabled logger costs nothing per fault): set the factory again after changing levels.</remarks>
public static class UffdLogging
{
    private static ILoggerFactory factory = NullLoggerFactory.Instance;

    /// <summary>The factory the binding's loggers come from (no logging by default).</summary>
    public static ILoggerFactory LoggerFactory
    {
        get => factory;
        set
        {
            factory = value ?? NullLoggerFactory.Instance;
            KernelLog.Configure(factory.CreateLogger(KernelLog.Category));
        }
    }
}

/// <summary>The kernel calls at Debug (category <see cref="Category"/>). Callers test
/// <see cref="Enabled"/> first: the messages are formatted only then.</summary>
internal static partial class KernelLog
{
    public const string Category = "UffdNative.Kernel";

    private static ILogger logger = NullLogger.Instance;

    /// <summary>Debug is enabled for the kernel category (sampled when the factory was set).</summary>
    public static bool Enabled;

    public static void Configure(ILogger l)
    {
        logger = l;
        Enabled = l.IsEnabled(LogLevel.Debug);
    }

    private static string Result(int r) => r >= 0 ? r.ToString(System.Globalization.CultureInfo.InvariantCulture) : "-" + Errno.Name(-r);

    [LoggerMessage(EventId = 1000, Level = LogLevel.Debug, Message = "open userfaultfd via {Path} flags 0x{Flags:x} -> {Result}")]
    private static partial void OpenCore(ILogger logger, UffdOpenPath path, int flags, string result);

    public static void Open(UffdOpenPath path, int flags, int r) => OpenCore(logger, path, flags, r >= 0 ? "fd " + r : Result(r));

    [LoggerMessage(EventId = 1001, Level = LogLevel.Debug, Message = "UFFDIO_API(uffd {Fd}, api 0x{Api:x}, features 0x{Requested:x} [{RequestedNames}]) -> {Result}: features 0x{Features:x}, ioctls 0x{Ioctls:x} [{IoctlNames}]")]
    private static partial void ApiCore(ILogger logger, int fd, ulong api, ulong requested, UffdFeatures requestedNames, string result, ulong features, ulong ioctls, UffdIoctls ioctlNames);

    /// <summary>requested: the features asked for (the struct's field is overwritten by the kernel).</summary>
    public static void Api(int fd, ulong requested, in UffdioApi api, int r) =>
        ApiCore(logger, fd, api.Api, requested, (UffdFeatures)requested, Result(r), api.Features, api.Ioctls, (UffdIoctls)api.Ioctls);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Debug, Message = "UFFDIO_REGISTER(uffd {Fd}, [0x{Start:x}, +0x{Length:x}), mode {Mode}) -> {Result}: ioctls 0x{Ioctls:x} [{IoctlNames}]")]
    private static partial void RegisterCore(ILogger logger, int fd, ulong start, ulong length, RegisterMode mode, string result, ulong ioctls, UffdIoctls ioctlNames);

    public static void Register(int fd, in UffdioRegister reg, int r) =>
        RegisterCore(logger, fd, reg.Range.Start, reg.Range.Len, (RegisterMode)reg.Mode, Result(r), r == 0 ? reg.Ioctls : 0, r == 0 ? (UffdIoctls)reg.Ioctls : UffdIoctls.None);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Debug, Message = "{Ioctl}(uffd {Fd}, [0x{Start:x}, +0x{Length:x})) -> {Result}")]
    private static partial void RangeCore(ILogger logger, string ioctl, int fd, ulong start, ulong length, string result);

    /// <summary>UFFDIO_UNREGISTER, UFFDIO_WAKE.</summary>
    public static void Range(string ioctl, int fd, in UffdioRange range, int r) => RangeCore(logger, ioctl, fd, range.Start, range.Len, Result(r));

    [LoggerMessage(EventId = 1004, Level = LogLevel.Debug, Message = "{Ioctl}(uffd {Fd}, dst 0x{Dst:x}, src 0x{Src:x}, len 0x{Length:x}, mode 0x{Mode:x}) -> {Result}, {Field} {Progress}")]
    private static partial void TransferCore(ILogger logger, string ioctl, int fd, ulong dst, ulong src, ulong length, ulong mode, string result, string field, long progress);

    /// <summary>UFFDIO_COPY, UFFDIO_MOVE, with the struct's progress field as the kernel wrote it
    /// (bytes done, or -errno: reference §0.7).</summary>
    public static void Transfer(string ioctl, int fd, ulong dst, ulong src, ulong len, ulong mode, int r, string field, long progress) =>
        TransferCore(logger, ioctl, fd, dst, src, len, mode, Result(r), field, progress);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Debug, Message = "{Ioctl}(uffd {Fd}, [0x{Start:x}, +0x{Length:x}), mode 0x{Mode:x}) -> {Result}, {Field} {Progress}")]
    private static partial void FillCore(ILogger logger, string ioctl, int fd, ulong start, ulong length, ulong mode, string result, string field, long progress);

    /// <summary>UFFDIO_ZEROPAGE, UFFDIO_CONTINUE, UFFDIO_POISON, with the struct's progress field as the
    /// kernel wrote it (bytes done, or -errno: reference §0.7).</summary>
    public static void Fill(string ioctl, int fd, in UffdioRange range, ulong mode, int r, string field, long progress) =>
        FillCore(logger, ioctl, fd, range.Start, range.Len, mode, Result(r), field, progress);

    [LoggerMessage(EventId = 1006, Level = LogLevel.Debug, Message = "UFFDIO_WRITEPROTECT(uffd {Fd}, [0x{Start:x}, +0x{Length:x}), mode 0x{Mode:x}) -> {Result}")]
    private static partial void WriteProtectCore(ILogger logger, int fd, ulong start, ulong length, ulong mode, string result);

    public static void WriteProtect(int fd, in UffdioWriteprotect w, int r) => WriteProtectCore(logger, fd, w.Range.Start, w.Range.Len, w.Mode, Result(r));
}
