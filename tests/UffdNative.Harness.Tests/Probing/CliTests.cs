namespace UffdNative.Harness.Tests.Probing;

[Collection(HostChangesCollection.Name)]
public class CliTests
{
    [Fact]
    public void ProbeJsonAsRootParsesAndExitsZero()
    {
        var r = CliRunner.Run(["probe", "--json"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var report = ProbeReport.FromJson(r.Stdout, "stdout");
        Assert.Equal("device", report.UsablePath);
        Assert.Equal(0, report.Summary.Regressed);
        Assert.Equal(0, report.Summary.Errors);
        Assert.Equal("", r.Stderr);
    }

    [Fact]
    public void ProbeMarkdownAndTableNameEveryRow()
    {
        var md = CliRunner.Run(["probe", "--markdown", "--rows", "fault-around-off-wp,pagemap-scan"]);
        Assert.Equal(0, md.ExitCode);
        Assert.Matches(@"\| `fault-around-off-wp` \| §3\.1 \| WP: \d+ of 16 pages mapped", md.Stdout);
        Assert.Contains($"**Detected profile:** {Detected.Result.Summary}", md.Stdout);
        Assert.Contains("| `anon-read-zero-page` | " + Detected.Profile.Facts.Value(EnvironmentFacts.AnonReadZeroPageName) + " | on |", md.Stdout);
        Assert.Contains("| `pagemap-scan` |", md.Stdout);
        Assert.DoesNotContain("`wp-async`", md.Stdout);
        var table = CliRunner.Run(["probe"]);
        Assert.Equal(0, table.ExitCode);
        foreach (var row in BehaviourRows.All)
            Assert.Contains("  " + row.Id + " ", table.Stdout);
        Assert.Contains($"Detected profile     {Detected.Result.Summary}", table.Stdout);
        foreach (var fact in EnvironmentFacts.Specs)
            Assert.Contains("  " + fact.Name + " ", table.Stdout);
        var bad = CliRunner.Run(["probe", "--rows", "no-such-row"]);
        Assert.Equal(2, bad.ExitCode);
        Assert.StartsWith("uffdnative: unknown row(s) no-such-row; known: ", bad.Stderr);
    }

    /// <summary>Reference §1.1 and §0a.1: as uid 65534 with
    /// vm.unprivileged_userfaultfd=0, the syscall is EPERM, user-mode-only works, /dev/userfaultfd
    /// is EACCES; the probe says why and what to change, and goes on with user-mode-only.</summary>
    [Fact]
    public void ProbeAsNobodyExplainsTheRefusalsAndUsesUserModeOnly()
    {
        Assert.Equal(0, HostFacts.EffectiveUid);
        Assert.Equal(0, HostFacts.UnprivilegedUserfaultfd);
        using var copy = new WorldReadableCliCopy();
        var r = CliRunner.RunIn(copy.Directory, CliRunner.Nobody, ["probe", "--json"]);
        Assert.True(r.ExitCode == 0, r.Stderr + r.Stdout);
        var report = ProbeReport.FromJson(r.Stdout, "stdout");
        Assert.Equal(65534, report.Environment.Uid);
        Assert.False(report.Environment.CapSysPtrace);
        var sys = report.OpenPaths.Single(p => p.Path == "syscall");
        Assert.False(sys.Ok);
        Assert.Equal("EPERM", sys.Errno);
        Assert.Equal("vm.unprivileged_userfaultfd=0 and the process lacks CAP_SYS_PTRACE (uid 65534)", sys.Detail);
        Assert.StartsWith("set sysctl vm.unprivileged_userfaultfd=1, or open with UFFD_USER_MODE_ONLY", sys.Remedy);
        Assert.True(report.OpenPaths.Single(p => p.Path == "user-mode-only").Ok);
        var dev = report.OpenPaths.Single(p => p.Path == "device");
        Assert.Equal("EACCES", dev.Errno);
        Assert.Equal("/dev/userfaultfd is not accessible to uid 65534 (it is root-only 0600 by default)", dev.Detail);
        Assert.StartsWith("grant access: sudo setfacl -m u:$USER:rw /dev/userfaultfd", dev.Remedy);
        Assert.Equal("user-mode-only", report.UsablePath);
        Assert.EndsWith("continuing with user-mode-only uffds: user-space faults work; kernel-mode faults (read(2) into a registered range) fail with EFAULT instead of producing a message, and EVENT_FORK needs CAP_SYS_PTRACE", report.OpenAdvice);
        Assert.Equal(0x1ffffUL, report.Features.Supported);
        var byId = report.Behaviours.ToDictionary(b => b.Id);
        Assert.Equal("undetermined", byId["kernel-write-intercepted"].Verdict);
        Assert.Equal("only user-mode-only uffds can be opened here", byId["kernel-write-intercepted"].Observed);
        Assert.Equal("undetermined", byId["fork-event-keeps-wp"].Verdict);
        Assert.Equal("EPERM", byId["event-fork-needs-ptrace"].Observed);
        Assert.Equal("syscall EPERM, user-mode-only OK", byId["unprivileged-user-mode-only"].Observed);
        Assert.Equal("present (EACCES for uid 65534)", byId["dev-userfaultfd"].Observed);
        Assert.Equal(0, report.Summary.Regressed);
        Assert.Equal(0, report.Summary.Errors);
        // Every switch is still detected with user-mode-only uffds.
        // Where this kernel differs from mainline of its version (stable backports), the row says backported.
        foreach (var (sw, v) in report.Profile.Detected)
            Assert.True(v == report.Profile.Mainline[sw] || byId[sw].Verdict == "backported", sw);

        var table = CliRunner.RunIn(copy.Directory, CliRunner.Nobody, ["probe"]);
        Assert.Equal(0, table.ExitCode);
        Assert.Contains("  syscall              EPERM — vm.unprivileged_userfaultfd=0 and the process lacks CAP_SYS_PTRACE (uid 65534)", table.Stdout);
        Assert.Contains("  device               EACCES — /dev/userfaultfd is not accessible to uid 65534", table.Stdout);
        Assert.Contains("  experiments use      user-mode-only", table.Stdout);
    }

    /// <summary>--allow-host-changes reserves two huge pages for the hugetlbfs rows and restores
    /// vm.nr_hugepages (reference §1.4: hugetlb MISSING 0x10c, MISSING|WP 0x14c, MINOR|WP 0x1cc).</summary>
    [Fact]
    public void HugetlbRowsWithAllowHostChangesRestoreTheHost()
    {
        const string knob = "/proc/sys/vm/nr_hugepages";
        int before = HostFacts.ReadInt(knob)!.Value;
        var plain = CliRunner.Run(["probe", "--json", "--rows", "poison"]);
        var skipped = ProbeReport.FromJson(plain.Stdout, "stdout");
        if (EnvironmentProbe.HugePages().Free == 0)
        {
            Assert.DoesNotContain(skipped.RegisterMasks, m => m.Memory.StartsWith("hugetlb", StringComparison.Ordinal));
            Assert.StartsWith("hugetlbfs rows skipped: no huge pages reserved", skipped.HugetlbNote);
        }
        var r = CliRunner.Run(["probe", "--json", "--allow-host-changes", "--rows", "poison"]);
        Assert.Equal(before, HostFacts.ReadInt(knob));
        Assert.True(r.ExitCode == 0, r.Stderr);
        var report = ProbeReport.FromJson(r.Stdout, "stdout");
        RegisterMaskAsserts.Expect(report, ["hugetlb-shared", "hugetlb-private"], ("MISSING", "0x10c"), ("WP", "0x14c"), ("MINOR", "0x18c"), ("MISSING|WP", "0x14c"), ("WP|MINOR", "0x1cc"));
        Assert.Equal(["poison"], report.Behaviours.Select(b => b.Id));
    }
}
