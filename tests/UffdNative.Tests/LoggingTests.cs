using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace UffdNative.Tests;

/// <summary>UffdLogging: the kernel calls at Debug, with their arguments and the kernel's answer; nothing
/// (not even formatting) below Debug. Other tests run meanwhile, so only this test's uffd is looked at.</summary>
public sealed class LoggingTests
{
    private sealed class Capture(LogLevel minimum) : ILoggerFactory, ILogger
    {
        public List<(string Category, int EventId, string Message)> Lines { get; } = [];
        private string category = "";

        public ILogger CreateLogger(string categoryName) => new Capture(minimum) { category = categoryName, Parent = this };
        private Capture? Parent { get; init; }
        public void AddProvider(ILoggerProvider provider) { }
        public void Dispose() { }
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => logLevel >= minimum;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var target = Parent ?? this;
            lock (target.Lines)
                target.Lines.Add((category, eventId.Id, formatter(state, exception)));
        }

        public List<string> Kernel(int fd)
        {
            lock (Lines)
                return [.. Lines.Where(l => l.Category == "UffdNative.Kernel" && l.Message.Contains($"(uffd {fd},", StringComparison.Ordinal)).Select(l => $"{l.EventId} {l.Message}")];
        }
    }

    /// <summary>Runs body with a capture at this level as the library's logger factory, then restores the null one.</summary>
    private static void Capturing(LogLevel minimum, Action<Capture> body)
    {
        var capture = new Capture(minimum);
        UffdLogging.LoggerFactory = capture;
        try
        {
            body(capture);
        }
        finally
        {
            UffdLogging.LoggerFactory = NullLoggerFactory.Instance;
        }
    }

    [Fact]
    public void AtDebugEachCallIsLoggedWithItsArgumentsAndResult()
    {
        Capturing(LogLevel.Debug, capture =>
        {
            Assert.True(KernelLog.Enabled);
            using var r = Region.Anon(2, RegisterMode.Missing);
            int fd = r.Uffd.Fd;
            ulong at = r.PageAt(0), len = 2 * Region.Page;
            Assert.Equal(FillStatus.Complete, r.Uffd.ZeroPage(at, Region.Page).Status);
            Assert.Equal(FillStatus.Exists, r.Uffd.ZeroPage(at, Region.Page).Status);
            r.Uffd.Wake(at, len);
            r.Uffd.Unregister(at, len);
            var lines = capture.Kernel(fd);
            // The fd number is this test's from the handshake on (another test may have used it before).
            lines = lines[lines.FindLastIndex(l => l.StartsWith($"1001 UFFDIO_API(uffd {fd}, ", StringComparison.Ordinal))..];
            Assert.Matches($@"^1001 UFFDIO_API\(uffd {fd}, api 0xaa, features 0x0 \[None\]\) -> 0: features 0x[0-9a-f]+, ioctls 0x[0-9a-f]+ \[Register, Unregister, Api\]$", lines[0]);
            Assert.Matches($@"^1002 UFFDIO_REGISTER\(uffd {fd}, \[0x{at:x}, \+0x2000\), mode Missing\) -> 0: ioctls 0x[0-9a-f]+ \[Wake, Copy, ZeroPage[A-Za-z, ]*\]$", lines[1]);
            Assert.Equal([
                $"1005 UFFDIO_ZEROPAGE(uffd {fd}, [0x{at:x}, +0x1000), mode 0x0) -> 0, zeropage 4096",
                $"1005 UFFDIO_ZEROPAGE(uffd {fd}, [0x{at:x}, +0x1000), mode 0x0) -> -EEXIST, zeropage -17",
                $"1003 UFFDIO_WAKE(uffd {fd}, [0x{at:x}, +0x2000)) -> 0",
                $"1003 UFFDIO_UNREGISTER(uffd {fd}, [0x{at:x}, +0x2000)) -> 0",
            ], lines.Skip(2).Take(4));
        });
        Assert.False(KernelLog.Enabled);
    }

    [Fact]
    public void BelowDebugNothingIsLoggedOrFormatted()
    {
        Capturing(LogLevel.Information, capture =>
        {
            Assert.False(KernelLog.Enabled);
            using var r = Region.Anon(1, RegisterMode.Missing);
            Assert.Equal(FillStatus.Complete, r.Uffd.ZeroPage(r.PageAt(0), Region.Page).Status);
            Assert.Empty(capture.Kernel(r.Uffd.Fd));
        });
    }
}
