namespace UffdNative.Harness.Tests.Cli;

/// <summary>
/// check and fuzz as uid 65534 (no CAP_SYS_PTRACE; vm.unprivileged_userfaultfd as the host has it):
/// with /dev/userfaultfd readable and writable by it, and with only user-mode-only uffds. Both verbs
/// open uffds along the one open policy (OpenPolicy): what needs privilege (EVENT_FORK, a path that
/// fails, kernel-mode faults without a full uffd) is not applicable with the reason, never an error or
/// a divergence. The host's device node is untouched: a 0666 node of the same device is bind-mounted
/// over /dev/userfaultfd in a private mount namespace of the launched process only.
/// </summary>
public sealed class UnprivilegedConformanceTests(WorldReadableCliCopy cli) : IClassFixture<WorldReadableCliCopy>
{

    private const string ExposeDevice =
        "set -e; n=$(mktemp -u /dev/shm/uffd-device.XXXXXX); " +
        "mknod \"$n\" c $((0x$(stat -c %t /dev/userfaultfd))) $((0x$(stat -c %T /dev/userfaultfd))); chmod 666 \"$n\"; " +
        "mount --bind \"$n\" /dev/userfaultfd; rm -f \"$n\"; exec \"$@\"";

    private static string[] WithDevice => ["unshare", "-m", "--propagation", "private", "sh", "-c", ExposeDevice, "sh", .. CliRunner.Nobody];

    private static string[] WithoutDevice => [CliRunner.Launcher, "--hide-device", "--", .. CliRunner.Nobody];

    private CliResult Run(string[] prefix, params string[] args) => CliRunner.RunIn(cli.Directory, prefix, args);

    private static CheckReport Report(CliResult r) => JsonSerializer.Deserialize(r.Stdout, CheckJsonContext.Default.CheckReport)!;

    [Fact]
    public void CheckPassesAsAnUnprivilegedUserWithTheDevice()
    {
        if (!File.Exists("/dev/userfaultfd"))
        {
            // A kernel before 6.1: the api scenario's device open is what cannot run, and says so.
            var without = Report(Run(WithoutDevice, "check", "--json"));
            Assert.Contains(without.Results, c => c.Scenario == "api" && c.Status == "notapplicable" && c.Reason!.Contains("device", StringComparison.Ordinal));
            return;
        }
        var r = Run(WithDevice, "check", "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var report = Report(r);
        Assert.Equal(0, report.Diverged);
        Assert.Equal(0, report.Errors);
        Assert.Equal(report.Cells, report.Passed);
        Assert.True(report.Passed >= 50, $"only {report.Passed} cells ran");
        var na = report.Results.Where(c => c.Status == "notapplicable").ToList();
        Assert.All(na, c => Assert.False(string.IsNullOrWhiteSpace(c.Reason)));
        // EVENT_FORK needs CAP_SYS_PTRACE; the api scenario opens through the syscall, refused here.
        Assert.Contains(na, c => c.Scenario == "events" && c.Reason!.Contains("CAP_SYS_PTRACE", StringComparison.Ordinal));
        // The device gives uffds that see kernel-mode faults: those cells run.
        Assert.Contains(report.Results, c => c.Scenario == "kernel-write" && c.Status == "pass");
    }

    [Fact]
    public void CheckPassesAsAnUnprivilegedUserWithUserModeOnlyUffds()
    {
        var r = Run(WithoutDevice, "check", "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var report = Report(r);
        Assert.Equal(0, report.Diverged);
        Assert.Equal(0, report.Errors);
        Assert.True(report.Passed >= 50, $"only {report.Passed} cells ran");
        if (HostFacts.UnprivilegedUserfaultfd == 0)
            Assert.Contains(report.Results, c => c.Scenario == "kernel-write" && c.Status == "notapplicable"
                && c.Reason!.Contains("sees kernel-mode faults", StringComparison.Ordinal));
    }

    [Fact]
    public void FuzzFindsNoFalseDivergenceAsAnUnprivilegedUser()
    {
        var prefix = File.Exists("/dev/userfaultfd") ? WithDevice : WithoutDevice;
        var r = Run(prefix, "fuzz", "--seed", "7", "--seconds", "10");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("0 divergences", r.Stdout, StringComparison.Ordinal);
        // What needs EVENT_FORK is skipped, not run into EPERM.
        Assert.Matches(@"\(([1-9]\d*) skipped\)", r.Stdout);
    }

    [Fact]
    public void SoakWithoutForksDoesNotAskForEventForkAsAnUnprivilegedUser()
    {
        var prefix = File.Exists("/dev/userfaultfd") ? WithDevice : WithoutDevice;
        var r = Run(prefix, "soak", "--seconds", "2", "--pages", "1024", "--no-fork");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.DoesNotContain("EVENT_FORK", r.Stdout + r.Stderr, StringComparison.Ordinal);
        Assert.Contains("0 FORK events", r.Stdout, StringComparison.Ordinal);
    }
}
