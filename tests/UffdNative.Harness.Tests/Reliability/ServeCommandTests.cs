namespace UffdNative.Harness.Tests.Reliability;

/// <summary>`uffdnative serve` refuses bad input with one line on stderr and exit 2.</summary>
public class ServeCommandTests
{
    private static (int Code, string Err) Run(params string[] args)
    {
        var (file, prefix) = UffdNative.Harness.Tests.Cli.CliRunner.Command();
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in prefix.Concat(args))
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string err = "";
        R.Within(60_000, () =>
        {
            var o = p.StandardOutput.ReadToEndAsync();
            err = p.StandardError.ReadToEnd();
            p.WaitForExit();
            _ = o.Result;
        }, () => p.Kill());
        return (p.ExitCode, err);
    }

    [Theory]
    [InlineData("--policy", "no-such-policy", "unknown 'no-such-policy'")]
    [InlineData("--inject-delay-ms", "9..3", "is not MAX or MIN..MAX")]
    [InlineData("--source", "pattern:x", "is not zero, pattern:SEED or file:PATH")]
    public void BadOptions(string option, string value, string message)
    {
        var path = HandlerProcess.NewSocketPath("bad");
        try
        {
            var (code, err) = Run("serve", "--socket", path, option, value);
            Assert.Equal(2, code);
            Assert.Contains(message, err, StringComparison.Ordinal);
        }
        finally
        {
            HandlerProcess.RemoveSocketPath(path); // serve refused before creating anything: only the directory is left
        }
    }

    [Fact]
    public void ASocketPathTooLongForSunPath()
    {
        var (code, err) = Run("serve", "--socket", "/tmp/" + new string('a', 120) + ".sock");
        Assert.Equal(2, code);
        Assert.Contains("at most 107 bytes", err, StringComparison.Ordinal);
    }

    [Fact]
    public void ASocketSomeoneIsListeningOn()
    {
        using var first = HandlerProcess.Start([]);
        var (code, err) = Run("serve", "--socket", first.SocketPath);
        Assert.Equal(2, code);
        Assert.Contains("already listening", err, StringComparison.Ordinal);
    }

    /// <summary>`--socket` never destroys anything: whatever is at the path survives, exit 2.</summary>
    [Theory]
    [InlineData("file", "is a regular file")]
    [InlineData("fifo", "is a FIFO")]
    [InlineData("symlink", "is a symbolic link")]
    [InlineData("device", "is a character device")]
    [InlineData("socket-without-lock", "without the lock file")]
    public void APathThatIsNotServesOwnIsNeverRemoved(string kind, string message)
    {
        var path = HandlerProcess.NewSocketPath("trick");
        try
        {
            switch (kind)
            {
                case "file":
                    File.WriteAllText(path, "precious");
                    break;
                case "fifo":
                    using (var p = Process.Start("mkfifo", [path])!)
                        p.WaitForExit();
                    break;
                case "symlink":
                    File.CreateSymbolicLink(path, "/etc/passwd");
                    break;
                case "device":
                    using (var p = Process.Start("mknod", [path, "c", "1", "3"])!)
                        p.WaitForExit();
                    break;
                default:
                    int fd = Interop.Shim.uffd_sock_listen(path, 1);
                    Assert.True(fd >= 0);
                    Interop.Shim.uffd_close(fd); // a socket nobody answers, not made by serve
                    break;
            }
            var before = new FileInfo(path).LinkTarget ?? File.GetUnixFileMode(path).ToString();
            var (code, err) = Run("serve", "--socket", path);
            Assert.Equal(2, code);
            Assert.Contains(message, err, StringComparison.Ordinal);
            Assert.Single(err.Trim().Split('\n'));
            Assert.True(File.Exists(path) || new FileInfo(path).LinkTarget is not null, $"{kind} at {path} was removed");
            Assert.Equal(before, new FileInfo(path).LinkTarget ?? File.GetUnixFileMode(path).ToString());
            if (kind == "file")
                Assert.Equal("precious", File.ReadAllText(path));
            Assert.False(File.Exists(path + ".lock"), "the lock file of a refused start was left behind");
        }
        finally
        {
            File.Delete(path);
            HandlerProcess.RemoveSocketPath(path);
        }
    }

    [Fact]
    public void ADirectoryOthersCanWriteIsRefused()
    {
        var path = HandlerProcess.NewSocketPath("open");
        var dir = Path.GetDirectoryName(path)!;
        try
        {
            File.SetUnixFileMode(dir, (UnixFileMode)0x1FF); // 0777
            var (code, err) = Run("serve", "--socket", path);
            Assert.Equal(2, code);
            Assert.Contains("writable by others", err, StringComparison.Ordinal);
        }
        finally
        {
            HandlerProcess.RemoveSocketPath(path);
        }
    }

    [Fact]
    public void AStaleSocketServeLeftIsReplacedAndRemovedOnExit()
    {
        var path = HandlerProcess.NewSocketPath("stale");
        try
        {
            var first = HandlerProcess.Start([], path);
            first.Process.Kill(); // SIGKILL: the socket and its lock file stay behind
            first.WaitForExit(10_000);
            first.Process.Dispose();
            Assert.True(File.Exists(path) && File.Exists(path + ".lock"), "a killed serve leaves its socket and lock file");
            using var second = HandlerProcess.Start(["--sessions", "1"], path);
            ServeAttackTests.ValidSession(path);
            Assert.Equal(0, second.WaitForExit(20_000));
            Assert.False(File.Exists(path), "serve left its socket behind");
            Assert.False(File.Exists(path + ".lock"), "serve left its lock file behind");
        }
        finally
        {
            HandlerProcess.RemoveSocketPath(path);
        }
    }
}
