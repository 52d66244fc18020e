using System.Diagnostics;
using UffdNative.Harness.Soak;

namespace UffdNative.Harness.Tests.Reliability;

/// <summary>`uffdnative serve` refuses bad input with one line on stderr and exit 2.</summary>
public class ServeCommandTests
{
    private static (int Code, string Err) Run(params string[] args)
    {
        var (file, prefix) = HandlerProcess.CliCommand();
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
        var (code, err) = Run("serve", "--socket", HandlerProcess.NewSocketPath("bad"), option, value);
        Assert.Equal(2, code);
        Assert.Contains(message, err, StringComparison.Ordinal);
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
}
