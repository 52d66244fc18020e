using System.Text.Json;

namespace UffdNative.Harness.Tests.Cli;

/// <summary>
/// `probe` in the environments containers and CI give userfaultfd users, created for real on this
/// host: a seccomp filter refusing userfaultfd (as Docker's default profile does without
/// CAP_SYS_PTRACE), no /dev/userfaultfd (a container without --device), an unprivileged user with
/// vm.unprivileged_userfaultfd=0 (setpriv to uid 65534), and their combinations. Each asserts what the
/// kernel answered on every open path, that the message names the cause and the remedy, and the
/// exit code (3 exactly when no path works). The host is left as it was: the filter and the mount
/// namespace live only in the launched process tree, and the CLI runs from a copy under /var/tmp.
/// </summary>
public sealed class RestrictedEnvironmentTests(WorldReadableCliCopy cli) : IClassFixture<WorldReadableCliCopy>
{
    private static readonly string[] Nobody = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "--"];

    private static string[] Launch(params string[] options) => [CliRunner.Launcher, .. options, "--"];

    private CliResult Probe(string[] prefix, params string[] args) => CliRunner.RunIn(cli.Directory, prefix, ["probe", .. args]);

    private sealed record Path(string Name, bool Ok, string Errno, string Detail, string Remedy);

    private static Dictionary<string, Path> OpenPaths(CliResult r)
    {
        using var doc = JsonDocument.Parse(r.Stdout);
        return doc.RootElement.GetProperty("openPaths").EnumerateArray()
            .Select(p => new Path(p.GetProperty("path").GetString()!, p.GetProperty("ok").GetBoolean(), p.GetProperty("errno").GetString()!,
                p.GetProperty("detail").GetString()!, p.GetProperty("remedy").GetString()!))
            .ToDictionary(p => p.Name);
    }

    private static JsonElement Root(CliResult r) => JsonDocument.Parse(r.Stdout).RootElement.Clone();

    private const string SeccompCause = "a seccomp filter is active (Seccomp: 2)";
    private const string SeccompFix = "run the container with --cap-add SYS_PTRACE, pass --device /dev/userfaultfd (Linux 6.1+), or use a seccomp profile that allows userfaultfd";

    [Fact]
    public void TheLauncherInstallsTheFilterAndHidesTheDeviceOnlyInsideItsProcessTree()
    {
        var status = CliRunner.Exec([.. Launch("--deny-userfaultfd"), "grep", "^Seccomp:", "/proc/self/status"]);
        Assert.Equal(0, status.ExitCode);
        Assert.Equal("Seccomp:\t2", status.Stdout.Trim());

        var inside = CliRunner.Exec([.. Launch("--hide-device"), "sh", "-c", "test -e /dev/userfaultfd; echo userfaultfd=$?; test -c /dev/null; echo null=$?"]);
        Assert.Equal(0, inside.ExitCode);
        Assert.Equal("userfaultfd=1\nnull=0\n", inside.Stdout);
        Assert.True(File.Exists("/dev/userfaultfd"), "the host's /dev/userfaultfd must be untouched");
        Assert.Equal("Seccomp:\t0", File.ReadLines("/proc/self/status").Single(l => l.StartsWith("Seccomp:", StringComparison.Ordinal)));

        var bad = CliRunner.Exec([CliRunner.Launcher, "--bogus", "--", "true"]);
        Assert.Equal(125, bad.ExitCode);
        Assert.Contains("unknown option --bogus", bad.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void SeccompRefusalAsRootIsNamedAndTheDeviceStillServes()
    {
        var r = Probe(Launch("--deny-userfaultfd"), "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var paths = OpenPaths(r);
        Assert.Equal(("EPERM", false), (paths["Syscall"].Errno, paths["Syscall"].Ok));
        Assert.Contains("the process has CAP_SYS_PTRACE, so the kernel's own rule allows the call", paths["Syscall"].Detail, StringComparison.Ordinal);
        Assert.Contains(SeccompCause, paths["Syscall"].Detail, StringComparison.Ordinal);
        Assert.Contains(SeccompFix, paths["Syscall"].Remedy, StringComparison.Ordinal);
        Assert.Equal("EPERM", paths["SyscallUserModeOnly"].Errno);
        Assert.Contains("even UFFD_USER_MODE_ONLY, which the kernel always allows, was refused (Seccomp: 2)", paths["SyscallUserModeOnly"].Detail, StringComparison.Ordinal);
        Assert.True(paths["Device"].Ok, "the filter refuses the syscall, not open(/dev/userfaultfd) + USERFAULTFD_IOC_NEW");
        Assert.Equal(0x1ffffUL & Root(r).GetProperty("features").GetUInt64(), Root(r).GetProperty("features").GetUInt64());
        Assert.NotEqual(0UL, Root(r).GetProperty("features").GetUInt64());

        var text = Probe(Launch("--deny-userfaultfd"));
        Assert.True(text.ExitCode == 0, text.ToString());
        Assert.Contains("open Syscall              EPERM — the process has CAP_SYS_PTRACE, so the kernel's own rule allows the call; " + SeccompCause, text.Stdout, StringComparison.Ordinal);
        Assert.Equal("", text.Stderr);
    }

    [Fact]
    public void SeccompRefusalWithoutTheDeviceLeavesNoPathAndExitsThree()
    {
        var r = Probe(Launch("--deny-userfaultfd", "--hide-device"));
        Assert.True(r.ExitCode == 3, r.ToString());
        var all = r.Stdout + r.Stderr;
        Assert.Contains("open Device               ENOENT — /dev/userfaultfd does not exist (in a container it must be passed in)", r.Stdout, StringComparison.Ordinal);
        Assert.Contains(SeccompCause, all, StringComparison.Ordinal);
        Assert.Contains("Fix: pass --device /dev/userfaultfd to the container", all, StringComparison.Ordinal);
        Assert.Contains(SeccompFix, all, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", all, StringComparison.Ordinal);

        var json = Probe(Launch("--deny-userfaultfd", "--hide-device"), "--json");
        Assert.Equal(3, json.ExitCode);
        var paths = OpenPaths(json);
        Assert.All(paths.Values, p => Assert.False(p.Ok));
        Assert.Equal(["EPERM", "EPERM", "ENOENT"], new[] { paths["Syscall"].Errno, paths["SyscallUserModeOnly"].Errno, paths["Device"].Errno });
        Assert.Contains("pass --device /dev/userfaultfd to the container", paths["Device"].Remedy, StringComparison.Ordinal);
    }

    [Fact]
    public void AMissingDeviceIsNamedWithItsRemedyAndTheSyscallServes()
    {
        var r = Probe(Launch("--hide-device"), "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var paths = OpenPaths(r);
        Assert.Equal("ENOENT", paths["Device"].Errno);
        Assert.Equal("/dev/userfaultfd does not exist (in a container it must be passed in)", paths["Device"].Detail);
        Assert.Equal("pass --device /dev/userfaultfd to the container, or use the syscall path", paths["Device"].Remedy);
        Assert.True(paths["Syscall"].Ok);
        Assert.True(paths["SyscallUserModeOnly"].Ok);
    }

    [Fact]
    public void AnUnprivilegedUserIsToldAboutTheSysctlAndFallsBackToUserModeOnly()
    {
        int? sysctl = HostFacts.UnprivilegedUserfaultfd;
        Assert.NotNull(sysctl);
        var r = Probe(Nobody, "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var paths = OpenPaths(r);
        Assert.Equal("EACCES", paths["Device"].Errno);
        Assert.Equal("/dev/userfaultfd is not accessible to uid 65534 (it is root-only 0600 by default)", paths["Device"].Detail);
        Assert.Contains("sudo setfacl -m u:$USER:rw /dev/userfaultfd", paths["Device"].Remedy, StringComparison.Ordinal);
        Assert.True(paths["SyscallUserModeOnly"].Ok, "UFFD_USER_MODE_ONLY is always allowed by the kernel");
        if (sysctl == 0)
        {
            Assert.Equal("EPERM", paths["Syscall"].Errno);
            Assert.Equal("vm.unprivileged_userfaultfd=0 and the process lacks CAP_SYS_PTRACE (uid 65534)", paths["Syscall"].Detail);
            Assert.Contains("set sysctl vm.unprivileged_userfaultfd=1, or open with UFFD_USER_MODE_ONLY", paths["Syscall"].Remedy, StringComparison.Ordinal);
        }
        else
        {
            Assert.True(paths["Syscall"].Ok, "vm.unprivileged_userfaultfd=1 lets anyone use the syscall");
        }

        // The user-mode-only fallback serves: the handshake and registrations are real answers.
        var root = Root(r);
        Assert.True(root.GetProperty("apiError").ValueKind == JsonValueKind.Null, r.Stdout);
        Assert.NotEqual(0UL, root.GetProperty("features").GetUInt64());
        var masks = root.GetProperty("registerMasks").EnumerateArray().ToDictionary(m => m.GetProperty("memory").GetString() + "/" + m.GetProperty("mode").GetString(), m => m.GetProperty("errno").GetString());
        Assert.Equal("OK", masks["shmem-shared/WP"]);
        Assert.Equal("OK", masks["anon/MISSING"]);
        Assert.Equal("EINVAL", masks["anon/MINOR"]);
    }

    [Fact]
    public void AnUnprivilegedUserUnderSeccompHasNoPathAndExitsThree()
    {
        var r = Probe([.. Launch("--deny-userfaultfd"), .. Nobody]);
        Assert.True(r.ExitCode == 3, r.ToString());
        var all = r.Stdout + r.Stderr;
        Assert.Contains("even UFFD_USER_MODE_ONLY, which the kernel always allows, was refused (Seccomp: 2)", all, StringComparison.Ordinal);
        Assert.Contains("/dev/userfaultfd is not accessible to uid 65534", all, StringComparison.Ordinal);
        Assert.Contains("sudo setfacl -m u:$USER:rw /dev/userfaultfd", all, StringComparison.Ordinal);
        Assert.Contains(SeccompFix, all, StringComparison.Ordinal);
    }

    [Fact]
    public void AKernelOrSandboxWithoutUserfaultfdIsNamedAndExitsThree()
    {
        var r = Probe(Launch("--deny-userfaultfd=ENOSYS", "--hide-device"), "--json");
        Assert.True(r.ExitCode == 3, r.ToString());
        var paths = OpenPaths(r);
        Assert.Equal("ENOSYS", paths["Syscall"].Errno);
        Assert.Equal("userfaultfd(2) is not implemented here (CONFIG_USERFAULTFD=n, gVisor, or a seccomp filter answering ENOSYS)", paths["Syscall"].Detail);
        Assert.Equal("run on a kernel with CONFIG_USERFAULTFD=y, outside gVisor", paths["Syscall"].Remedy);
    }
    /// <summary>Root without CAP_SYS_PTRACE is what a container's root is (Docker does not grant it):
    /// the kernel itself refuses the plain syscall while vm.unprivileged_userfaultfd=0.</summary>
    private static readonly string[] RootWithoutPtrace = ["setpriv", "--bounding-set", "-sys_ptrace", "--"];

    [Fact]
    public void AContainersRootWithoutCapSysPtraceIsToldToAddTheCapabilityAndFallsBack()
    {
        int? sysctl = HostFacts.UnprivilegedUserfaultfd;
        var r = Probe(RootWithoutPtrace, "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var paths = OpenPaths(r);
        Assert.True(paths["SyscallUserModeOnly"].Ok);
        Assert.True(paths["Device"].Ok, "root owns /dev/userfaultfd; the capability is not needed for it");
        if (sysctl == 0)
        {
            Assert.Equal("EPERM", paths["Syscall"].Errno);
            Assert.Equal("vm.unprivileged_userfaultfd=0 and the process lacks CAP_SYS_PTRACE (uid 0: root without the capability, as in a container)", paths["Syscall"].Detail);
            Assert.StartsWith("run the container with --cap-add SYS_PTRACE, or set sysctl vm.unprivileged_userfaultfd=1", paths["Syscall"].Remedy, StringComparison.Ordinal);
        }
        else
        {
            Assert.True(paths["Syscall"].Ok);
        }

        // Docker's default profile on top: the filter refuses even user-mode-only; without the device nothing is left.
        var docker = Probe([.. RootWithoutPtrace, .. Launch("--deny-userfaultfd", "--hide-device")], "--json");
        Assert.True(docker.ExitCode == 3, docker.ToString());
        var dp = OpenPaths(docker);
        Assert.Equal(["EPERM", "EPERM", "ENOENT"], new[] { dp["Syscall"].Errno, dp["SyscallUserModeOnly"].Errno, dp["Device"].Errno });
        Assert.EndsWith(", and a seccomp filter is active)", dp["Syscall"].Detail, StringComparison.Ordinal);
        Assert.Contains("run the container with --cap-add SYS_PTRACE", dp["Syscall"].Remedy, StringComparison.Ordinal);
    }
}
