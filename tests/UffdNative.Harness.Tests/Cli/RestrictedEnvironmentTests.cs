namespace UffdNative.Harness.Tests.Cli;

/// <summary>
/// `probe` in the environments containers and CI give userfaultfd users, created for real on this
/// host: a seccomp filter refusing userfaultfd (as Docker's default profile does, CAP_SYS_PTRACE or
/// not), no /dev/userfaultfd (a container without --device), root without CAP_SYS_PTRACE
/// (a container's root), an unprivileged user with vm.unprivileged_userfaultfd=0 (setpriv to uid
/// 65534), and their combinations. Each asserts what the kernel answered on every open path, that
/// the message names the cause and the remedy, which path the probe then uses (the
/// UFFD_USER_MODE_ONLY fallback where only that works) and the exit code (3 exactly when no path
/// works). The host is left as it was: the filter and the mount namespace live only in the launched
/// process tree, capabilities are dropped only for it, and the CLI runs from a copy under /var/tmp.
/// </summary>
public sealed class RestrictedEnvironmentTests(WorldReadableCliCopy cli) : IClassFixture<WorldReadableCliCopy>
{

    /// <summary>Root without CAP_SYS_PTRACE is what a container's root is (Docker does not grant it).</summary>
    private static readonly string[] RootWithoutPtrace = ["setpriv", "--bounding-set", "-sys_ptrace", "--"];

    private static string[] Launch(params string[] options) => [CliRunner.Launcher, .. options, "--"];

    private CliResult Probe(string[] prefix, params string[] args) => CliRunner.RunIn(cli.Directory, prefix, ["probe", .. args]);

    private sealed record OpenPath(string Name, bool Ok, string Errno, string Detail, string Remedy);

    private static Dictionary<string, OpenPath> OpenPaths(CliResult r)
    {
        using var doc = JsonDocument.Parse(r.Stdout);
        return doc.RootElement.GetProperty("openPaths").EnumerateArray()
            .Select(p => new OpenPath(p.GetProperty("path").GetString()!, p.GetProperty("ok").GetBoolean(), p.GetProperty("errno").GetString()!,
                p.GetProperty("detail").GetString()!, p.GetProperty("remedy").GetString()!))
            .ToDictionary(p => p.Name);
    }

    private static JsonElement Root(CliResult r) => JsonDocument.Parse(r.Stdout).RootElement.Clone();

    private static string? UsablePath(CliResult r) => Root(r).GetProperty("usablePath").GetString();

    private const string SeccompCause = "a seccomp filter is active (Seccomp: 2)";
    // What works, in this order: the device, a profile that allows userfaultfd, then privileges.
    private const string SeccompFix = "pass --device /dev/userfaultfd (Linux 6.1+; needs no capability), or run under a seccomp profile that allows userfaultfd " +
        "(Docker's default plus userfaultfd, e.g. docs/containers/seccomp-userfaultfd.json; with --cap-add SYS_PTRACE for the full syscall, without it user-mode-only), or, last, --privileged";
    // A process that already has CAP_SYS_PTRACE is told that the filter, not the capability, is what refuses it.
    private const string PtraceButSeccomp = "the process has CAP_SYS_PTRACE, so the kernel's own rule allows the call; " + SeccompCause + " and it is what refuses userfaultfd";
    private const string UmoRefused = "even UFFD_USER_MODE_ONLY, which the kernel always allows, was refused (Seccomp: 2)";
    private const string NoDevice = "/dev/userfaultfd does not exist (in a container it must be passed in)";
    private const string NoDeviceFix = "pass --device /dev/userfaultfd to the container, or use the syscall path";

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
        var r = Probe(Launch("--deny-userfaultfd"), ["--json"]);
        Assert.True(r.ExitCode == 0, r.ToString());
        var paths = OpenPaths(r);
        Assert.Equal(("EPERM", false), (paths["syscall"].Errno, paths["syscall"].Ok));
        Assert.Equal(PtraceButSeccomp, paths["syscall"].Detail);
        Assert.Contains(SeccompFix, paths["syscall"].Remedy, StringComparison.Ordinal);
        Assert.Equal("EPERM", paths["user-mode-only"].Errno);
        Assert.Equal(UmoRefused, paths["user-mode-only"].Detail);
        Assert.True(paths["device"].Ok, "the filter refuses the syscall, not open(/dev/userfaultfd) + USERFAULTFD_IOC_NEW");
        Assert.Equal("device", UsablePath(r));
        Assert.Equal(2, Root(r).GetProperty("environment").GetProperty("seccompMode").GetInt32());
        Assert.Equal(JsonValueKind.Null, Root(r).GetProperty("features").GetProperty("error").ValueKind);

        var text = Probe(Launch("--deny-userfaultfd"));
        Assert.True(text.ExitCode == 0, text.ToString());
        var lines = text.Stdout.Split('\n');
        Assert.Contains("  syscall              EPERM — " + PtraceButSeccomp, lines);
        Assert.Contains(lines, l => l.StartsWith("                       to change: a seccomp filter refuses userfaultfd", StringComparison.Ordinal) && l.EndsWith(SeccompFix, StringComparison.Ordinal));
        Assert.Contains("  experiments use      device", lines);
        Assert.Equal("", text.Stderr);
    }

    [Fact]
    public void SeccompRefusalWithoutTheDeviceLeavesNoPathAndExitsThree()
    {
        var r = Probe(Launch("--deny-userfaultfd", "--hide-device"));
        Assert.True(r.ExitCode == 3, r.ToString());
        var lines = r.Stdout.Split('\n');
        Assert.Contains("  device               ENOENT — " + NoDevice, lines);
        Assert.Contains("                       to change: " + NoDeviceFix, lines);
        Assert.Contains("  user-mode-only       EPERM — " + UmoRefused, lines);
        Assert.Contains("                       no path works: userfaultfd cannot be used here", lines);
        // One line on stderr naming every refusal and the fix: user-mode-only refused means a filter,
        // and the seccomp advice covers every way in (capability, device, profile). No stack trace.
        var error = Assert.Single(r.StderrLines);
        Assert.Equal("uffdnative: userfaultfd cannot be opened here: " +
            "syscall EPERM (" + PtraceButSeccomp + "); " +
            "user-mode-only EPERM (" + UmoRefused + "); " +
            "device ENOENT (" + NoDevice + "). Fix: " + Remedies.SeccompAdvice, error);

        var json = Probe(Launch("--deny-userfaultfd", "--hide-device"), "--json");
        Assert.Equal(3, json.ExitCode);
        var paths = OpenPaths(json);
        Assert.All(paths.Values, p => Assert.False(p.Ok));
        Assert.Equal(["EPERM", "EPERM", "ENOENT"], new[] { paths["syscall"].Errno, paths["user-mode-only"].Errno, paths["device"].Errno });
        Assert.Null(UsablePath(json));
        Assert.StartsWith("open userfaultfd failed: EPERM", Root(json).GetProperty("features").GetProperty("error").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public void AMissingDeviceIsNamedWithItsRemedyAndTheSyscallServes()
    {
        var r = Probe(Launch("--hide-device"), "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var paths = OpenPaths(r);
        Assert.Equal("ENOENT", paths["device"].Errno);
        Assert.Equal(NoDevice, paths["device"].Detail);
        Assert.Equal(NoDeviceFix, paths["device"].Remedy);
        Assert.True(paths["syscall"].Ok);
        Assert.True(paths["user-mode-only"].Ok);
        Assert.Equal("syscall", UsablePath(r));
        Assert.False(Root(r).GetProperty("environment").GetProperty("device").GetProperty("exists").GetBoolean());
    }

    [Fact]
    public void AnUnprivilegedUserIsToldAboutTheSysctlAndFallsBackToUserModeOnly()
    {
        int? sysctl = HostFacts.UnprivilegedUserfaultfd;
        Assert.NotNull(sysctl);
        var r = Probe(CliRunner.Nobody, "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var paths = OpenPaths(r);
        Assert.Equal("EACCES", paths["device"].Errno);
        Assert.Equal("/dev/userfaultfd is not accessible to uid 65534 (it is root-only 0600 by default)", paths["device"].Detail);
        Assert.Contains("sudo setfacl -m u:$USER:rw /dev/userfaultfd", paths["device"].Remedy, StringComparison.Ordinal);
        Assert.True(paths["user-mode-only"].Ok, "UFFD_USER_MODE_ONLY is always allowed by the kernel");
        if (sysctl == 0)
        {
            Assert.Equal("EPERM", paths["syscall"].Errno);
            Assert.Equal("vm.unprivileged_userfaultfd=0 and the process lacks CAP_SYS_PTRACE (uid 65534)", paths["syscall"].Detail);
            Assert.StartsWith("set sysctl vm.unprivileged_userfaultfd=1, or open with UFFD_USER_MODE_ONLY", paths["syscall"].Remedy, StringComparison.Ordinal);
            Assert.Equal("user-mode-only", UsablePath(r));
        }
        else
        {
            Assert.True(paths["syscall"].Ok, "vm.unprivileged_userfaultfd=1 lets anyone use the syscall");
            Assert.Equal("syscall", UsablePath(r));
        }

        // The user-mode-only fallback serves: the handshake and registrations are real answers.
        var root = Root(r);
        Assert.Equal(JsonValueKind.Null, root.GetProperty("features").GetProperty("error").ValueKind);
        Assert.NotEqual(0UL, root.GetProperty("features").GetProperty("supported").GetUInt64());
        var masks = root.GetProperty("registerMasks").EnumerateArray().ToDictionary(m => m.GetProperty("memory").GetString() + "/" + m.GetProperty("mode").GetString(), m => m.GetProperty("errno").GetString());
        Assert.Equal("OK", masks["shmem-shared/WP"]);
        Assert.Equal("OK", masks["anon/MISSING"]);
        Assert.Equal("EINVAL", masks["anon/MINOR"]);

        if (sysctl == 0)
        {
            var text = Probe(CliRunner.Nobody);
            Assert.True(text.ExitCode == 0, text.ToString());
            var lines = text.Stdout.Split('\n');
            Assert.Contains("  experiments use      user-mode-only", lines);
            Assert.Contains(lines, l => l.Trim().StartsWith("continuing with user-mode-only uffds: user-space faults work; kernel-mode faults (read(2) into a registered range) fail with EFAULT", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void AnUnprivilegedUserUnderSeccompHasNoPathAndExitsThree()
    {
        var r = Probe([.. Launch("--deny-userfaultfd"), .. CliRunner.Nobody]);
        Assert.True(r.ExitCode == 3, r.ToString());
        var error = Assert.Single(r.StderrLines);
        Assert.StartsWith("uffdnative: userfaultfd cannot be opened here: syscall EPERM (vm.unprivileged_userfaultfd=", error, StringComparison.Ordinal);
        Assert.Contains("user-mode-only EPERM (" + UmoRefused + ")", error, StringComparison.Ordinal);
        Assert.Contains("device EACCES (/dev/userfaultfd is not accessible to uid 65534 (it is root-only 0600 by default))", error, StringComparison.Ordinal);
        // The filter's fix, and the device's own (permissions) fix.
        Assert.EndsWith(". Fix: " + Remedies.SeccompAdvice + "; or grant access: sudo setfacl -m u:$USER:rw /dev/userfaultfd (or chmod in a throwaway VM), or use the syscall path", error, StringComparison.Ordinal);
    }

    [Fact]
    public void AKernelOrSandboxWithoutUserfaultfdIsNamedAndExitsThree()
    {
        var r = Probe(Launch("--deny-userfaultfd=ENOSYS", "--hide-device"), "--json");
        Assert.True(r.ExitCode == 3, r.ToString());
        var paths = OpenPaths(r);
        Assert.Equal("ENOSYS", paths["syscall"].Errno);
        Assert.Equal("userfaultfd(2) is not implemented here (CONFIG_USERFAULTFD=n, gVisor, or a seccomp filter answering ENOSYS)", paths["syscall"].Detail);
        Assert.Equal("run on a kernel with CONFIG_USERFAULTFD=y, outside gVisor", paths["syscall"].Remedy);
        Assert.Equal("ENOSYS", paths["user-mode-only"].Errno);
        Assert.EndsWith(". Fix: run on a kernel with CONFIG_USERFAULTFD=y, outside gVisor; or pass --device /dev/userfaultfd to the container, or use the syscall path", Assert.Single(r.StderrLines), StringComparison.Ordinal);
    }

    [Fact]
    public void AContainersRootWithoutCapSysPtraceIsToldTheDeviceFirstAndFallsBack()
    {
        int? sysctl = HostFacts.UnprivilegedUserfaultfd;
        // --device /dev/userfaultfd under a profile that allows userfaultfd: the device serves.
        var r = Probe(RootWithoutPtrace, ["--json"]);
        Assert.True(r.ExitCode == 0, r.ToString());
        var paths = OpenPaths(r);
        Assert.True(paths["user-mode-only"].Ok);
        Assert.True(paths["device"].Ok, "root owns /dev/userfaultfd; the capability is not needed for it");
        Assert.False(Root(r).GetProperty("environment").GetProperty("capSysPtrace").GetBoolean());
        if (sysctl == 0)
        {
            Assert.Equal("EPERM", paths["syscall"].Errno);
            Assert.Equal("vm.unprivileged_userfaultfd=0 and the process lacks CAP_SYS_PTRACE (uid 0: root without the capability, as in a container)", paths["syscall"].Detail);
            Assert.Equal("pass --device /dev/userfaultfd (Linux 6.1+), or add the capability (--cap-add SYS_PTRACE), or set sysctl vm.unprivileged_userfaultfd=1 on the host; " +
                "UFFD_USER_MODE_ONLY works without any of these (user-space faults only)", paths["syscall"].Remedy);
        }
        else
        {
            Assert.True(paths["syscall"].Ok);
        }

        // A profile that allows userfaultfd, no device: only the user-mode-only fallback is left.
        var noDevice = Probe([.. RootWithoutPtrace, .. Launch("--hide-device")], "--json");
        Assert.True(noDevice.ExitCode == 0, noDevice.ToString());
        Assert.Equal(sysctl == 0 ? "user-mode-only" : "syscall", UsablePath(noDevice));

        // Docker's default profile on top: the filter refuses even user-mode-only; without the device nothing is left.
        var docker = Probe([.. RootWithoutPtrace, .. Launch("--deny-userfaultfd", "--hide-device")], "--json");
        Assert.True(docker.ExitCode == 3, docker.ToString());
        var dp = OpenPaths(docker);
        Assert.Equal(["EPERM", "EPERM", "ENOENT"], new[] { dp["syscall"].Errno, dp["user-mode-only"].Errno, dp["device"].Errno });
        Assert.EndsWith(", and a seccomp filter is active)", dp["syscall"].Detail, StringComparison.Ordinal);
        Assert.Equal("pass --device /dev/userfaultfd (Linux 6.1+), or run under a seccomp profile that allows userfaultfd with --cap-add SYS_PTRACE " +
            "(the capability alone does not help: Docker's default profile allows userfaultfd in no rule), or, last, --privileged", dp["syscall"].Remedy);
    }
}
