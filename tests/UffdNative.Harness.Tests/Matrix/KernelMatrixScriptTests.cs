namespace UffdNative.Harness.Tests.Matrix;

/// <summary>
/// The pure parts of scripts/kernel-matrix.sh and scripts/kernel-run.sh (scripts/lib/kernel-lib.sh),
/// and the <c>matrix</c> verb's argument handling. Nothing here boots a kernel or installs anything.
/// </summary>
public class KernelMatrixScriptTests
{
    private static readonly string Repo = FindRepo();

    private static string FindRepo()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, MatrixCommand.ScriptRelativePath)))
                return d.FullName;
        throw new InvalidOperationException("repository root (with scripts/kernel-matrix.sh) not found above " + AppContext.BaseDirectory);
    }

    private static (int Code, string Out, string Err) Bash(string script, string? stdin = null, params string[] args)
    {
        var psi = new ProcessStartInfo("bash")
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            WorkingDirectory = Repo,
        };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(script);
        psi.ArgumentList.Add("test");
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        // The library must never touch the real cache from a test.
        psi.Environment["KERNEL_MATRIX_CACHE"] = Path.Combine(Path.GetTempPath(), "kernel-matrix-test-cache-never-created");
        using var p = Process.Start(psi)!;
        if (stdin is not null)
            p.StandardInput.Write(stdin);
        p.StandardInput.Close();
        var outTask = p.StandardOutput.ReadToEndAsync();
        var errTask = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(30_000), "bash did not finish in 30 s");
        return (p.ExitCode, outTask.Result, errTask.Result);
    }

    private static (int Code, string Out, string Err) Lib(string call, string? stdin = null, params string[] args) =>
        Bash($". scripts/lib/kernel-lib.sh\n{call}", stdin, args);

    /// <summary>The library function given one argument succeeds and prints exactly expected (one line).</summary>
    private static void AssertPrints(string function, string arg, string expected)
    {
        var (code, output, _) = Lib($"{function} \"$1\"", null, arg);
        Assert.Equal(0, code);
        Assert.Equal(expected, output.TrimEnd('\n'));
    }

    [Theory]
    [InlineData("host", "host")]
    // Aliases: the newest of a series; bookworm's and trixie's 6.12 apart; 7.x is linux-binary-*.
    [InlineData("5.10", @"alias	^linux-image-5\.10\.0-[0-9]+-amd64$")]
    [InlineData("6.1", @"alias	^linux-image-6\.1\.0-[0-9]+-amd64$")]
    [InlineData("6.12", @"alias	^linux-image-6\.12\.[0-9]+\+deb12-amd64$")]
    [InlineData("6.12-bookworm", @"alias	^linux-image-6\.12\.[0-9]+\+deb12-amd64$")]
    [InlineData("6.12-rt", @"alias	^linux-image-6\.12\.[0-9]+\+deb12-rt-amd64$")]
    [InlineData("6.12-trixie", @"alias	^linux-image-6\.12\.[0-9]+\+deb13(\.[0-9]+)?-amd64$")]
    [InlineData("7.2", @"alias	^linux-binary-7\.2(\.[0-9]+\+deb[0-9]+(\.[0-9]+)?)?-amd64$")]
    [InlineData("7.3", @"alias	^linux-binary-7\.3(\.[0-9]+\+deb[0-9]+(\.[0-9]+)?)?-amd64$")]
    [InlineData("7.3-rt", @"alias	^linux-binary-7\.3(\.[0-9]+\+deb[0-9]+(\.[0-9]+)?)?-rt-amd64$")]
    // Releases (uname -r), with the flavour added when missing.
    [InlineData("6.1.0-55-amd64", "release	6.1.0-55-amd64")]
    [InlineData("6.1.0-55", "release	6.1.0-55-amd64")]
    [InlineData("5.10.0-46", "release	5.10.0-46-amd64")]
    [InlineData("6.12.115+deb12-amd64", "release	6.12.115+deb12-amd64")]
    [InlineData("6.12.115+deb12", "release	6.12.115+deb12-amd64")]
    [InlineData("6.12.115+deb13.1", "release	6.12.115+deb13.1-amd64")]
    [InlineData("7.2.13+deb14", "release	7.2.13+deb14-amd64")]
    [InlineData("7.3-amd64", "release	7.3-amd64")]
    [InlineData("6.1.0-0.deb11.52-cloud-amd64", "release	6.1.0-0.deb11.52-cloud-amd64")]
    // Package names.
    [InlineData("linux-image-6.1.0-47-cloud-amd64", "package	linux-image-6.1.0-47-cloud-amd64")]
    [InlineData("linux-binary-7.3-amd64", "package	linux-binary-7.3-amd64")]
    // Debian package versions (no +debN before the revision: that would be a release).
    [InlineData("5.10.262-1", "version	5.10.262-1")]
    [InlineData("6.12.117-1~deb12u1", "version	6.12.117-1~deb12u1")]
    [InlineData("6.1.192-3", "version	6.1.192-3")]
    [InlineData("7.2.13-1", "version	7.2.13-1")]
    [InlineData("7.3~rc7-1~exp1", "version	7.3~rc7-1~exp1")]
    // Local files: a .deb; a bzImage/vmlinux (anything with a /), optionally :MODDIR.
    [InlineData("./linux-image-6.1.0-55-amd64_6.1.192-3_amd64.deb", "deb	./linux-image-6.1.0-55-amd64_6.1.192-3_amd64.deb")]
    [InlineData("linux-binary-7.3-amd64_7.3~rc7-1~exp1_amd64.deb", "deb	linux-binary-7.3-amd64_7.3~rc7-1~exp1_amd64.deb")]
    [InlineData("/src/linux/arch/x86/boot/bzImage", "image	/src/linux/arch/x86/boot/bzImage	")]
    [InlineData("./vmlinux:/var/tmp/mods", "image	./vmlinux	/var/tmp/mods")]
    public void KernelSpecsResolveToAKindAndItsArguments(string spec, string expected) =>
        AssertPrints("km_kernel_spec", spec, expected);

    [Theory]
    [InlineData("")]
    [InlineData("6.6")]                    // no Debian series of that name
    [InlineData("latest")]
    [InlineData("5.10.0")]
    [InlineData("6.12.118+deb13-1")]       // neither a release nor a package version
    [InlineData("6.1; rm -rf /")]
    [InlineData("$(reboot)")]
    [InlineData("linux-image-6.1..0")]
    [InlineData("a b/bzImage")]
    public void UnknownKernelSpecsAreRejected(string spec)
    {
        var (code, output, _) = Lib("km_kernel_spec \"$1\"", null, spec);
        Assert.NotEqual(0, code);
        Assert.Equal("", output.Trim());
    }

    [Fact]
    public void TheNewestPackageOfASeriesIsPickedByVersionNotByText()
    {
        const string apt = """
            linux-image-6.1.0-9-amd64 - Linux 6.1 for 64-bit PCs (signed)
            linux-image-6.1.0-56-amd64 - Linux 6.1 for 64-bit PCs (signed)
            linux-image-6.1.0-56-cloud-amd64 - Linux 6.1 for x86-64 cloud (signed)
            linux-image-6.1.0-47-amd64 - Linux 6.1 for 64-bit PCs (signed)
            linux-image-6.1.0-0.deb11.52-amd64 - Linux 6.1 for 64-bit PCs (signed)
            linux-image-6.1-amd64 - Linux for 64-bit PCs (meta-package)
            linux-image-6.12.9+deb12-amd64 - Linux 6.12
            linux-image-6.12.117+deb12-amd64 - Linux 6.12
            linux-image-6.12.100+deb12-amd64 - Linux 6.12
            linux-image-6.12.118+deb13-amd64 - Linux 6.12
            linux-image-6.12.115+deb13.1-amd64 - Linux 6.12
            linux-image-5.10.0-9-amd64 - Linux 5.10
            linux-image-5.10.0-46-amd64 - Linux 5.10
            linux-image-7.2.13+deb14-amd64 - Linux 7.2.13 for 64-bit PCs
            linux-binary-7.2.9+deb14-amd64 - Linux 7.2.9 (kernel image)
            linux-binary-7.2.13+deb14-amd64 - Linux 7.2.13 (kernel image)
            linux-binary-7.2.13+deb14-cloud-amd64 - Linux 7.2.13 cloud (kernel image)
            linux-modules-7.2.13+deb14-amd64 - Linux 7.2.13 (modules)
            linux-binary-7.3-amd64 - Linux 7.3-rc7 (kernel image)
            """;
        string Newest(string alias)
        {
            var spec = Lib("km_kernel_spec \"$1\"", null, alias).Out.TrimEnd('\n').Split('\t');
            Assert.Equal("alias", spec[0]);
            var (code, output, _) = Lib("km_newest_package \"$1\"", apt, spec[1]);
            Assert.Equal(0, code);
            return output.Trim();
        }
        Assert.Equal("linux-image-6.1.0-56-amd64", Newest("6.1"));
        Assert.Equal("linux-image-6.12.117+deb12-amd64", Newest("6.12"));
        Assert.Equal("linux-image-6.12.118+deb13-amd64", Newest("6.12-trixie"));
        Assert.Equal("linux-image-5.10.0-46-amd64", Newest("5.10"));
        Assert.Equal("linux-binary-7.2.13+deb14-amd64", Newest("7.2"));
        Assert.Equal("linux-binary-7.3-amd64", Newest("7.3"));
        Assert.Equal("linux-binary-7.3.1+deb14-amd64",
            Lib("km_newest_package \"$1\"", "linux-binary-7.3-amd64 - rc\nlinux-binary-7.3.1+deb14-amd64 - released\n",
                Lib("km_kernel_spec 7.3").Out.TrimEnd('\n').Split('\t')[1]).Out.Trim());
        Assert.Equal("6.12.117+deb12-amd64", Lib("km_release_of_package linux-image-6.12.117+deb12-amd64").Out.Trim());
        Assert.Equal("7.3-amd64", Lib("km_release_of_package linux-binary-7.3-amd64").Out.Trim());
    }

    [Fact]
    public void From7xAKernelIsThreePackagesBefore7xOne()
    {
        Assert.Equal("linux-binary-7.3-amd64 linux-modules-7.3-amd64 linux-base-7.3-amd64", Lib("km_release_packages binary 7.3-amd64").Out.Trim());
        Assert.Equal("linux-image-5.10.0-46-amd64", Lib("km_release_packages image 5.10.0-46-amd64").Out.Trim());
    }

    [Theory]
    [InlineData("-rw-r--r-- root/root 8001 2026-01-01 00:00 ./boot/vmlinuz-5.10.0-46-amd64\n-rw-r--r-- root/root 1 2026-01-01 00:00 ./lib/modules/5.10.0-46-amd64/kernel/fs/9p/9p.ko\n", "5.10.0-46-amd64")]
    [InlineData("-rw-r--r-- root/root 8001 2026-01-01 00:00 ./usr/lib/modules/7.3-amd64/vmlinuz\n", "7.3-amd64")]
    [InlineData("drwxr-xr-x root/root 0 2026-01-01 00:00 ./usr/\n-rw-r--r-- root/root 1 2026-01-01 00:00 ./usr/lib/modules/7.2.13+deb14-amd64/kernel/fs/9p/9p.ko.xz\n", "7.2.13+deb14-amd64")]
    public void TheReleaseOfADebComesFromWhereItPutsTheKernel(string listing, string release)
    {
        var (code, output, _) = Lib("km_deb_release", listing);
        Assert.Equal(0, code);
        Assert.Equal(release, output.Trim());
        Assert.Equal(1, Lib("km_deb_release", "-rw-r--r-- root/root 1 2026-01-01 00:00 ./usr/share/doc/x/copyright\n").Code);
    }

    [Fact]
    public void APackageVersionPicksThePackageThatHoldsTheKernelNotAMetapackage()
    {
        const string show = """
            Package: linux-image-7.3-amd64
            Version: 7.3~rc7-1~exp1
            Installed-Size: 15

            Package: linux-binary-7.3-amd64
            Version: 7.3~rc7-1~exp1
            Installed-Size: 14392

            Package: linux-binary-7.3-cloud-amd64
            Version: 7.3~rc7-1~exp1
            Installed-Size: 12000

            Package: linux-image-6.12-amd64
            Version: 6.12.117-1~deb12u1
            Installed-Size: 14

            Package: linux-image-6.12.117+deb12-amd64
            Version: 6.12.117-1~deb12u1
            Installed-Size: 108957

            Package: linux-image-6.12.117+deb13-amd64
            Version: 6.12.117-1
            Installed-Size: 108950
            """;
        string Pick(string version, string flavour = "amd64")
        {
            var r = Lib("km_version_package \"$1\" \"$2\"", show + "\n", version, flavour);
            return r.Code == 0 ? r.Out.Trim() : "";
        }
        Assert.Equal("linux-binary-7.3-amd64", Pick("7.3~rc7-1~exp1"));
        Assert.Equal("linux-binary-7.3-cloud-amd64", Pick("7.3~rc7-1~exp1", "cloud-amd64"));
        Assert.Equal("linux-image-6.12.117+deb12-amd64", Pick("6.12.117-1~deb12u1"));
        Assert.Equal("linux-image-6.12.117+deb13-amd64", Pick("6.12.117-1"));
        Assert.Equal("", Pick("6.12.999-1"));
    }

    [Fact]
    public void TheReleaseOfABzImageIsReadFromItsSetupHeaderAndOfAVmlinuxFromItsBanner()
    {
        using var dir = new TempDirectory("km-image-");
        // A bzImage: "HdrS" at 0x202, the kernel_version pointer at 0x20e (offset from 0x200).
        var bz = new byte[4096];
        "HdrS"u8.CopyTo(bz.AsSpan(0x202));
        BitConverter.GetBytes((ushort)0x300).CopyTo(bz, 0x20e);
        "6.12.118-uffdnative (uffdnative@build-test-kernel) #1 SMP PREEMPT_DYNAMIC\0"u8.CopyTo(bz.AsSpan(0x500));
        var bzPath = Path.Combine(dir.Path, "bzImage");
        File.WriteAllBytes(bzPath, bz);
        Assert.Equal("6.12.118-uffdnative", Lib("km_bzimage_release \"$1\"", null, bzPath).Out.Trim());

        var elf = new byte[2048];
        new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F' }.CopyTo(elf, 0);
        "Linux version 7.3.0-rc7-dirty (me@box) (gcc 12)\0"u8.CopyTo(elf.AsSpan(1000));
        var elfPath = Path.Combine(dir.Path, "vmlinux");
        File.WriteAllBytes(elfPath, elf);
        Assert.Equal("7.3.0-rc7-dirty", Lib("km_bzimage_release \"$1\"", null, elfPath).Out.Trim());

        var other = Path.Combine(dir.Path, "notes.txt");
        File.WriteAllText(other, "not a kernel");
        Assert.Equal(1, Lib("km_bzimage_release \"$1\"", null, other).Code);
        Assert.Equal(1, Lib("km_bzimage_release \"$1\"", null, Path.Combine(dir.Path, "missing")).Code);
    }

    [Fact]
    public void TheAptStateIsTheScriptsOwnNeverEtcApt()
    {
        var sources = Lib("km_apt_sources /usr/share/keyrings/debian-archive-keyring.gpg http://m/debian http://m/debian-security").Out;
        var lines = sources.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith('#')).ToList();
        foreach (var suite in new[] { "bullseye", "bookworm", "trixie", "sid", "experimental" })
            Assert.Contains(lines, l => l.EndsWith($" http://m/debian {suite} main"));
        foreach (var suite in new[] { "bullseye-security", "bookworm-security", "trixie-security" })
            Assert.Contains(lines, l => l.EndsWith($" http://m/debian-security {suite} main"));
        Assert.All(lines, l => Assert.StartsWith("deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ", l));

        var opts = Lib("printf '%s\\n' \"${KM_APT_OPTS[@]}\"").Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(o => o != "-o").ToList();
        var cache = Path.Combine(Path.GetTempPath(), "kernel-matrix-test-cache-never-created");
        Assert.Contains($"Dir::Etc::sourcelist={cache}/apt/sources.list", opts);
        Assert.Contains("Dir::Etc::sourceparts=-", opts);
        Assert.Contains($"Dir::State::Lists={cache}/apt/lists", opts);
        Assert.Contains($"Dir::Cache={cache}/apt/cache", opts);
        Assert.Contains($"Dir::State::status={cache}/apt/status", opts);
        Assert.DoesNotContain(opts, o => o.Contains("/etc/apt"));
    }

    [Fact]
    public void OnlyADeathBeforeTheCommandStartedIsAnEarlyBootDeath()
    {
        var log = Path.GetTempFileName();
        try
        {
            bool Early(string console, string status)
            {
                File.WriteAllText(log, console);
                return Lib("km_early_boot_death \"$1\" \"$2\"", null, log, status).Code == 0;
            }
            const string oops = "[    0.41] BUG: kernel NULL pointer dereference\r\n[    0.41] Oops: 0000 [#1] SMP\r\n[    0.41] RIP: sched_clock_cpu+0x10/0x1a0\r\n[    0.42] Kernel panic - not syncing: Attempted to kill the idle task!\r\n";
            Assert.True(Early(oops, ""));
            Assert.False(Early("kr-init: running the command\r\n" + oops, ""));      // the steps had started
            Assert.False(Early("kr-init: setup failed: mount proc\r\n", ""));        // setup failures are not retried
            Assert.False(Early(oops, "0"));                                          // it reported a status
            Assert.False(Early("kr-init: running the command\r\nkr-init: command exited with 0\r\n", "0"));
        }
        finally
        {
            File.Delete(log);
        }
    }

    [Fact]
    public void ModulesAreLoadedInShowDependsOrderOnceEachAndBuiltinsSkipped()
    {
        // `modprobe -a --show-depends virtio_pci 9pnet_virtio 9p` on 6.12: virtio_pci is built in,
        // 9pnet comes twice (a dependency of both 9pnet_virtio and 9p).
        const string showDepends = """
            builtin virtio_pci
            insmod /lib/modules/6.12.117+deb12-amd64/kernel/net/9p/9pnet.ko.xz 
            insmod /lib/modules/6.12.117+deb12-amd64/kernel/net/9p/9pnet_virtio.ko.xz 
            insmod /lib/modules/6.12.117+deb12-amd64/kernel/fs/netfs/netfs.ko.xz 
            insmod /lib/modules/6.12.117+deb12-amd64/kernel/net/9p/9pnet.ko.xz 
            insmod /lib/modules/6.12.117+deb12-amd64/kernel/fs/9p/9p.ko.xz 
            """;
        var (code, output, _) = Lib("km_parse_show_depends", showDepends);
        Assert.Equal(0, code);
        Assert.Equal(
            ["9pnet.ko.xz", "9pnet_virtio.ko.xz", "netfs.ko.xz", "9p.ko.xz"],
            output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(Path.GetFileName));
    }

    [Fact]
    public void KernelComplaintsInTheConsoleAreFoundAndNormalBootLinesAreNot()
    {
        var log = Path.GetTempFileName();
        try
        {
            File.WriteAllText(log, """
                [    0.839864] mtrr: your CPUs had inconsistent fixed MTRR settings
                [    1.638691] amd_pstate: the _CPC object is not present in SBIOS or ACPI disabled
                [    1.700000] ACPI: _OSC evaluation for CPUs failed, trying _PDC
                kr-init: running the command
                [    3.1] ------------[ cut here ]------------
                [    3.2] WARNING: CPU: 1 PID: 321 at mm/userfaultfd.c:1234 mfill_atomic+0x1/0x2
                [    3.3] BUG: kernel NULL pointer dereference, address: 0000000000000008
                [    3.4] Oops: 0000 [#1] PREEMPT SMP NOPTI
                [    3.5] Kernel panic - not syncing: Fatal exception
                kr-init: command exited with 0
                [    4.1] reboot: Restarting system
                """.Replace("\n", "\r\n"));
            var (code, output, _) = Lib($"km_kernel_warnings '{log}'");
            Assert.Equal(0, code);
            var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(5, lines.Length);
            Assert.DoesNotContain(lines, l => l.Contains('\r'));
            Assert.Contains(lines, l => l.Contains("WARNING: CPU: 1"));
            Assert.Contains(lines, l => l.Contains("Kernel panic"));

            File.WriteAllText(log, "[    0.1] mtrr: your CPUs had inconsistent fixed MTRR settings\n[    4.1] reboot: Restarting system\n");
            var clean = Lib($"km_kernel_warnings '{log}'");
            Assert.Equal(1, clean.Code);
            Assert.Equal("", clean.Out);
        }
        finally
        {
            File.Delete(log);
        }
    }

    [Fact]
    public void KvmIsUsedOnlyWithHardwareKvmNeverWithPvm()
    {
        using var sys = new TempDirectory("km-sysmodule-");
        string Accel(string dev = "/dev/null") => Lib($"km_accel_for '{sys.Path}' '{dev}'").Out.Trim();
        Directory.CreateDirectory(Path.Combine(sys.Path, "kvm"));
        Assert.Equal("tcg", Accel());                                   // kvm core alone
        Directory.CreateDirectory(Path.Combine(sys.Path, "kvm_pvm"));
        Assert.Equal("tcg", Accel());                                   // this machine: PVM
        Directory.Delete(Path.Combine(sys.Path, "kvm_pvm"));
        Directory.CreateDirectory(Path.Combine(sys.Path, "kvm_intel"));
        Assert.Equal("kvm", Accel());                                   // /dev/null stands in for a char device
        Assert.Equal("tcg", Accel("/nonexistent/kvm"));                 // module but no device
    }

    [Theory]
    [InlineData("probe.json=uffdnative probe --json", "probe.json\troot\tuffdnative probe --json")]
    [InlineData("probe-nobody.json@nobody=uffdnative probe --json", "probe-nobody.json\t65534\tuffdnative probe --json")]
    [InlineData("x.txt@1000=a=b; echo c", "x.txt\t1000\ta=b; echo c")]
    public void StepSpecsSplitIntoNameUidAndCommand(string spec, string expected) =>
        AssertPrints("km_parse_step", spec, expected);

    [Theory]
    [InlineData("no-equals-sign")]
    [InlineData("../escape=ls")]
    [InlineData("a b=ls")]
    [InlineData("x@someone=ls")]
    [InlineData("x=")]
    public void BadStepSpecsAreRejected(string spec)
    {
        Assert.NotEqual(0, Lib("km_parse_step \"$1\"", null, spec).Code);
    }

    [Theory]
    [InlineData("scripts/kernel-matrix.sh")]
    [InlineData("scripts/kernel-run.sh")]
    [InlineData("scripts/lib/kernel-lib.sh")]
    [InlineData("scripts/lib/run-steps.sh")]
    [InlineData("scripts/build-test-kernel.sh")]
    public void ScriptsParse(string path)
    {
        var (code, _, err) = Bash("bash -n \"$1\"", null, path);
        Assert.True(code == 0, err);
    }

    [Fact]
    public void TheBusyboxInitParsesAsPosixSh()
    {
        // /init runs under busybox ash; dash (or bash --posix) is the nearest check here.
        var (code, _, err) = Bash("if command -v dash >/dev/null; then dash -n scripts/lib/guest-init.sh; else bash --posix -n scripts/lib/guest-init.sh; fi");
        Assert.True(code == 0, err);
    }

    [Fact]
    public void UsageErrorsExit2BeforeAnythingIsInstalledOrBuilt()
    {
        Assert.Equal(0, Bash("scripts/kernel-matrix.sh --help >/dev/null").Code);
        var unknownOption = Bash("scripts/kernel-matrix.sh --no-such-option");
        Assert.Equal(2, unknownOption.Code);
        Assert.Contains("unknown option --no-such-option", unknownOption.Err);
        var unknownKernel = Bash("scripts/kernel-matrix.sh --out /nonexistent/never 6.6");
        Assert.Equal(2, unknownKernel.Code);
        Assert.Contains("unknown kernel '6.6'", unknownKernel.Err);
        Assert.Equal(2, Bash("scripts/kernel-matrix.sh --out /nonexistent/never --kernel 6.6").Code);
        Assert.Equal(2, Bash("scripts/kernel-matrix.sh --out /nonexistent/never --jobs 0 host").Code);
        Assert.Equal(2, Bash("scripts/kernel-matrix.sh --out /nonexistent/never --merge").Code);
        Assert.Equal(2, Bash("scripts/kernel-matrix.sh --out /nonexistent/never --merge /nonexistent/shard").Code);
        Assert.Equal(2, Bash("scripts/build-test-kernel.sh --series 5.4").Code);
        Assert.Equal(0, Bash("scripts/build-test-kernel.sh --help >/dev/null").Code);
        Assert.Equal(2, Bash("scripts/kernel-matrix.sh --out /nonexistent/never --step 'bad spec'").Code);
        Assert.Equal(2, Bash("scripts/kernel-matrix.sh --out /nonexistent/never --timeout soon").Code);
        Assert.False(Directory.Exists("/nonexistent/never"));
        Assert.Equal(0, Bash("scripts/kernel-run.sh --help >/dev/null").Code);
        Assert.Equal(125, Bash("scripts/kernel-run.sh").Code);
        Assert.Equal(125, Bash("scripts/kernel-run.sh 6.12").Code);                // no command
        var badImage = Bash("scripts/kernel-run.sh --no-install /nonexistent/bzImage -- true");
        Assert.Equal(125, badImage.Code);                                           // a usage error, before anything is fetched
        Assert.Contains("/nonexistent/bzImage: no such file", badImage.Err);
        Assert.Equal(125, Bash("scripts/kernel-run.sh --modules /var/tmp 6.12 -- true").Code); // --modules needs an IMAGE
        Assert.Equal(7, Bash("scripts/kernel-run.sh host -- sh -c 'exit 7'").Code); // host: the status passes through
    }

    [Fact]
    public void AnOutputDirectoryThatIsNotTheMatrixsOwnIsRefused()
    {
        using var dir = new TempDirectory("km-out-");
        File.WriteAllText(Path.Combine(dir.Path, "precious.txt"), "keep");
        var r = Bash("scripts/kernel-matrix.sh --no-install --out \"$1\" host", null, dir.Path);
        Assert.Equal(2, r.Code);
        Assert.Contains("not a kernel-matrix output directory", r.Err);
        Assert.True(File.Exists(Path.Combine(dir.Path, "precious.txt")));
    }

    [Fact]
    public void MergeJoinsShardsFromSeveralRunsAndKeepsTheWorstStatus()
    {
        using var root = new TempDirectory("km-merge-");
        // Two shards as two machines would leave them (no probe.json: compare is not needed).
        void Kernel(string shard, string label, string result, string boots, params string[] steps)
        {
            var d = Path.Combine(root.Path, shard, label);
            Directory.CreateDirectory(d);
            File.WriteAllText(Path.Combine(root.Path, shard, ".kernel-matrix-out"), "");
            File.WriteAllText(Path.Combine(d, "result"), result + "\n");
            File.WriteAllText(Path.Combine(d, "boots"), boots + "\n");
            File.WriteAllText(Path.Combine(d, "steps.tsv"), "step\tuser\texit\tseconds\n" + string.Concat(steps.Select(l => l + "\n")));
        }
        Kernel("a", "7.3-amd64", "0\tok; booted twice: early-boot death: Oops", "2 early-boot death: Oops", "uname.txt\troot\t0\t1.5");
        Kernel("b", "5.10.0-46-amd64", "1\tstep failed", "1", "uname.txt\troot\t1\t2.0");
        Kernel("b", "7.3-amd64", "0\tok", "1", "uname.txt\troot\t0\t1.0");
        var all = Path.Combine(root.Path, "all");
        var r = Bash("scripts/kernel-matrix.sh --no-install --merge --cli \"$1\" --out \"$2\" \"$3\" \"$4\"", null,
            AppContext.BaseDirectory, all, Path.Combine(root.Path, "a"), Path.Combine(root.Path, "b"));
        Assert.Equal(1, r.Code);                                             // the worst of 0, 1, 0
        Assert.Equal(["5.10.0-46-amd64", "7.3-amd64", "7.3-amd64-2"],
            Directory.GetDirectories(all).Select(d => Path.GetFileName(d)!).Order(StringComparer.Ordinal));
        var summary = File.ReadAllLines(Path.Combine(all, "summary.tsv"));
        Assert.Equal("kernel\tstep\tuser\texit\tseconds\tboots", summary[0]);
        Assert.Equal(["7.3-amd64\tuname.txt\troot\t0\t1.5\t2", "5.10.0-46-amd64\tuname.txt\troot\t1\t2.0\t1", "7.3-amd64-2\tuname.txt\troot\t0\t1.0\t1"], summary.Skip(1));
        Assert.Contains("booted twice: early-boot death: Oops", r.Err);
        Assert.Contains("kernel-matrix: 2 steps passed, 1 failed; exit 1", r.Err);

        // Merging again into the same --out replaces the copies instead of adding -3, -4.
        var again = Bash("scripts/kernel-matrix.sh --no-install --merge --cli \"$1\" --out \"$2\" \"$3\"", null,
            AppContext.BaseDirectory, all, Path.Combine(root.Path, "a"));
        Assert.Equal(0, again.Code);
        Assert.Equal(["7.3-amd64"], Directory.GetDirectories(all).Select(Path.GetFileName));
    }

    [Fact]
    public void TheStepRunnerWritesEachStepsOutputStatusAndUser()
    {
        using var dir = new TempDirectory("km-steps-");
        // The CLI directory is not used by these steps; `uffdnative` is only defined.
        var r = Bash("bash scripts/lib/run-steps.sh \"$@\"", null, dir.Path, "/nonexistent-cli", "5",
            "a.txt", "root", "echo out; echo err >&2; type -t uffdnative",
            "b.txt", "65534", "id -u; id -G",
            "c.json", "root", "exit 7",
            "d.txt", "root", "sleep 30");
        Assert.Equal(1, r.Code);
        Assert.Equal("out\nfunction\n", File.ReadAllText(Path.Combine(dir.Path, "a.txt")));
        Assert.Equal("err\n", File.ReadAllText(Path.Combine(dir.Path, "a.stderr")));
        if (Environment.UserName == "root")
            Assert.Equal("65534\n65534\n", File.ReadAllText(Path.Combine(dir.Path, "b.txt")));
        var rows = File.ReadAllLines(Path.Combine(dir.Path, "steps.tsv")).Skip(1).Select(l => l.Split('\t')).ToList();
        Assert.Equal(["a.txt", "b.txt", "c.json", "d.txt"], rows.Select(c => c[0]));
        Assert.Equal(["root", "65534", "root", "root"], rows.Select(c => c[1]));
        Assert.Equal("0", rows[0][2]);
        Assert.Equal("7", rows[2][2]);
        Assert.Equal("124", rows[3][2]);                         // the per-step timeout
        Assert.Contains("step c.json (uid root): FAILED, exit 7", r.Out);
        Assert.Contains("step d.txt (uid root): FAILED, timed out after 5s", r.Out);
        Assert.Contains("uname:", File.ReadAllText(Path.Combine(dir.Path, "kernel.txt")));
    }

    [Fact]
    public void TheVerbPassesOptionsThroughAndKernelsLast()
    {
        var args = MatrixCommand.ScriptArguments(new MatrixCommand.Request
        {
            Kernels = ["host", "6.1"],
            Out = "out dir",
            Ci = true,
            Steps = ["a.txt=echo a", "b.txt@nobody=id"],
            Guest = new() { Timeout = 300, StepTimeout = 60, Append = "hugepages=4", Accel = "tcg", NoInstall = true },
            Verbose = true,
            Jobs = 3,
            Cli = "/repo/bin",
        });
        Assert.Equal(
            ["--ci", "--out", "out dir", "--step", "a.txt=echo a", "--step", "b.txt@nobody=id", "--timeout", "300",
             "--step-timeout", "60", "--append", "hugepages=4", "--accel", "tcg", "--no-install", "--verbose",
             "--jobs", "3", "--cli", "/repo/bin", "host", "6.1"],
            args);
        Assert.Empty(MatrixCommand.ScriptArguments(new MatrixCommand.Request()));
    }

    [Fact]
    public void TheVerbRunsTheScriptWithItsOwnCliAndMapsItsStatusOntoTheDocumentedCodes()
    {
        var help = CliRunner.Run(["matrix", "--help"]);
        Assert.Equal(0, help.ExitCode);
        Assert.Contains("uffdnative matrix --out artifacts/kernel-matrix host 6.1 6.12", help.Stdout);

        var missing = CliRunner.Run(["matrix", "--script", "/nonexistent/kernel-matrix.sh"]);
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("not found", missing.Stderr);

        using var dir = new TempDirectory("km-verb-");
        var fake = Path.Combine(dir.Path, "fake-matrix.sh");
        File.WriteAllText(fake, "printf '%s\\n' \"$@\" > \"$(dirname \"$0\")/args\"; exit 7\n");
        var r = CliRunner.Run(
            ["matrix", "--script", fake, "--ci", "--step", "a b.txt=echo 'x y'", "--no-install", "6.12"]);
        Assert.Equal(1, r.ExitCode); // any failing status but 2 and 3 is "a failure found"
        Assert.Equal([0, 1, 2, 3, 1, 1], new[] { 0, 1, 2, 3, 4, 124 }.Select(MatrixCommand.MapExitCode));
        var args = File.ReadAllLines(Path.Combine(dir.Path, "args"));
        Assert.Equal(["--ci", "--step", "a b.txt=echo 'x y'", "--no-install", "--cli", AppContext.BaseDirectory.TrimEnd('/'), "6.12"], args);

        // Through to the real script: its usage error (2) comes back unchanged.
        var bad = CliRunner.Run(["matrix", "--no-install", "--out", "/nonexistent/never", "6.6"]);
        Assert.Equal(2, bad.ExitCode);
        Assert.False(Directory.Exists("/nonexistent/never"));
    }

    [Fact]
    public void TheVerbFindsTheScriptAboveItsDirectoryOrWhereItIsTold()
    {
        var nested = Path.Combine(Repo, "src", "UffdNative.Cli", "Commands");
        Assert.Equal(Path.Combine(Repo, MatrixCommand.ScriptRelativePath), MatrixCommand.FindScript(null, null, "/", nested));
        Assert.Null(MatrixCommand.FindScript("/nonexistent/kernel-matrix.sh", null, nested));
        Assert.Null(MatrixCommand.FindScript(null, null, "/"));
        var explicitPath = Path.Combine(Repo, "scripts", "kernel-run.sh");
        Assert.Equal(explicitPath, MatrixCommand.FindScript(null, explicitPath, "/"));
    }
}
