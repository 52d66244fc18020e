using System.Globalization;
using System.Runtime.InteropServices;

namespace UffdNative.Harness.Probing;

/// <summary>Reads the environment facts of the probe report from /proc and /sys (never assumed).</summary>
public static class EnvironmentProbe
{
    public static EnvironmentReport Collect()
    {
        var release = KernelVersion.RunningRelease();
        int uid = HostFacts.EffectiveUid;
        return new EnvironmentReport
        {
            KernelRelease = release,
            KernelVersion = KernelVersion.Running().ToString(),
            Architecture = RuntimeInformation.ProcessArchitecture switch
            {
                Architecture.X64 => "x86_64",
                Architecture.Arm64 => "aarch64",
                var a => a.ToString().ToLowerInvariant(),
            },
            PageSize = (long)Mapping.PageSize,
            Uid = uid,
            Root = uid == 0,
            CapSysPtrace = HostFacts.HasCapability(HostFacts.CapSysPtrace),
            UnprivilegedUserfaultfd = HostFacts.UnprivilegedUserfaultfd,
            Device = Device(),
            SeccompMode = HostFacts.SeccompMode,
            NoNewPrivs = HostFacts.ReadStatusField("NoNewPrivs:") == "1",
            ContainerHints = ContainerHints(),
            Virtualization = Virtualization(),
            Thp = Selected(BehaviourRows.ReadText("/sys/kernel/mm/transparent_hugepage/enabled")),
            ThpDefrag = Selected(BehaviourRows.ReadText("/sys/kernel/mm/transparent_hugepage/defrag")),
            ShmemThp = Selected(BehaviourRows.ReadText("/sys/kernel/mm/transparent_hugepage/shmem_enabled")),
            HugePages = HugePages(),
            Swap = BehaviourRows.ReadText("/proc/swaps").Split('\n', StringSplitOptions.RemoveEmptyEntries).Length > 1,
            FaultAroundBytes = HostFacts.ReadInt("/sys/kernel/debug/fault_around_bytes"),
            Cpus = Environment.ProcessorCount,
            Runtime = RuntimeInformation.FrameworkDescription,
        };
    }

    /// <summary>"always madvise [never]" → "never"; unknown → "absent".</summary>
    public static string Selected(string line)
    {
        int a = line.IndexOf('['), b = line.IndexOf(']');
        return a >= 0 && b > a ? line[(a + 1)..b] : line.Length == 0 ? "absent" : line;
    }

    public static DeviceInfo Device()
    {
        bool kernelHas = Directory.Exists("/sys/class/misc/userfaultfd");
        string dev = BehaviourRows.ReadText("/sys/class/misc/userfaultfd/dev");
        if (!File.Exists(Uffd.DevicePath))
            return new DeviceInfo(false, "", dev, kernelHas, kernelHas ? "no node in this /dev (kernel has the device)" : "absent");
        string mode = "";
        try
        {
            var m = OperatingSystem.IsLinux() ? File.GetUnixFileMode(Uffd.DevicePath) : UnixFileMode.None;
            mode = "c" + Perm(m, UnixFileMode.UserRead, 'r') + Perm(m, UnixFileMode.UserWrite, 'w') + Perm(m, UnixFileMode.UserExecute, 'x') +
                Perm(m, UnixFileMode.GroupRead, 'r') + Perm(m, UnixFileMode.GroupWrite, 'w') + Perm(m, UnixFileMode.GroupExecute, 'x') +
                Perm(m, UnixFileMode.OtherRead, 'r') + Perm(m, UnixFileMode.OtherWrite, 'w') + Perm(m, UnixFileMode.OtherExecute, 'x');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        int fd = Userfaultfd.OpenRaw(UffdOpenPath.Device, Uffd.OCloexec, out int stage);
        string access;
        if (fd >= 0)
        {
            new SafeFdHandle(fd).Dispose();
            access = "read-write (USERFAULTFD_IOC_NEW OK)";
        }
        else
            access = $"{Errno.Name(-fd)} at {(stage == 1 ? "open" : "USERFAULTFD_IOC_NEW")}";
        return new DeviceInfo(true, mode, dev, kernelHas, access);
    }

    private static char Perm(UnixFileMode m, UnixFileMode bit, char c) => (m & bit) != 0 ? c : '-';

    public static List<string> ContainerHints()
    {
        var hints = new List<string>();
        if (File.Exists("/.dockerenv"))
            hints.Add("/.dockerenv present (Docker)");
        if (File.Exists("/run/.containerenv"))
            hints.Add("/run/.containerenv present (Podman)");
        var env = Environment.GetEnvironmentVariable("container");
        if (!string.IsNullOrEmpty(env))
            hints.Add($"container={env}");
        foreach (var line in BehaviourRows.ReadText("/proc/1/cgroup").Split('\n'))
            if (line.Contains("docker", StringComparison.Ordinal) || line.Contains("kubepods", StringComparison.Ordinal) || line.Contains("containerd", StringComparison.Ordinal) || line.Contains("lxc", StringComparison.Ordinal))
            {
                hints.Add($"/proc/1/cgroup: {line.Trim()}");
                break;
            }
        if (HostFacts.SeccompMode == 2)
            hints.Add("seccomp filter active (Docker's default profile allows userfaultfd in no rule, CAP_SYS_PTRACE or not: pass --device /dev/userfaultfd, or use a profile that allows userfaultfd)");
        if (!File.Exists(Uffd.DevicePath) && Directory.Exists("/sys/class/misc/userfaultfd"))
            hints.Add("the kernel has /dev/userfaultfd but this /dev lacks it (containers pass it with --device /dev/userfaultfd)");
        return hints;
    }

    public static string Virtualization()
    {
        var parts = new List<string>();
        foreach (var line in File.ReadLines("/proc/cpuinfo"))
        {
            if (line.StartsWith("flags", StringComparison.Ordinal))
            {
                if (line.Contains(" hypervisor", StringComparison.Ordinal))
                    parts.Add("hypervisor flag set (a virtual machine)");
                break;
            }
        }
        var vendor = BehaviourRows.ReadText("/sys/class/dmi/id/sys_vendor");
        var product = BehaviourRows.ReadText("/sys/class/dmi/id/product_name");
        if (vendor.Length > 0 || product.Length > 0)
            parts.Add($"{vendor} {product}".Trim());
        return parts.Count == 0 ? "none detected" : string.Join("; ", parts);
    }

    public static HugePagesInfo HugePages()
    {
        long size = 0, total = 0, free = 0;
        foreach (var line in BehaviourRows.ReadText("/proc/meminfo").Split('\n'))
        {
            var p = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (p.Length < 2)
                continue;
            long.TryParse(p[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var v);
            switch (p[0])
            {
                case "Hugepagesize:": size = v; break;
                case "HugePages_Total:": total = v; break;
                case "HugePages_Free:": free = v; break;
            }
        }
        return new HugePagesInfo(size, total, free, total == 0 ? "none reserved" : $"{free} of {total} free");
    }
}
