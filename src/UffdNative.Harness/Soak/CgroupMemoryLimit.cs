namespace UffdNative.Harness.Soak;

/// <summary>
/// A child cgroup (v2) with a memory limit, for running a faulting process under memory pressure.
/// Created under this process's own cgroup, and removed on dispose. When the machine does not allow it
/// — no cgroup v2 at /sys/fs/cgroup, no memory controller delegated to this cgroup's children, no
/// permission — <see cref="TryCreate"/> says why instead (nothing on the host is changed to make it
/// possible: no controller is enabled, no hierarchy mounted).
/// </summary>
public sealed class CgroupMemoryLimit : IDisposable
{
    private const string Root = "/sys/fs/cgroup";

    public string Path { get; }
    public string ProcsPath => System.IO.Path.Combine(Path, "cgroup.procs");
    public ulong MaxBytes { get; }

    private CgroupMemoryLimit(string path, ulong max)
    {
        Path = path;
        MaxBytes = max;
    }

    /// <summary>Null when a memory-limited child cgroup can be created here, else why not.</summary>
    public static string? WhyUnavailable()
    {
        if (!File.Exists(System.IO.Path.Combine(Root, "cgroup.controllers")))
        {
            string layout = "";
            try
            {
                var mounts = File.ReadAllLines("/proc/self/mountinfo");
                var v2 = mounts.Where(l => l.Contains(" - cgroup2 ", StringComparison.Ordinal)).Select(l => l.Split(' ')[4]).ToList();
                bool v1Memory = mounts.Any(l => l.Contains(" - cgroup ", StringComparison.Ordinal) && l.EndsWith(",memory", StringComparison.Ordinal) || l.Contains(" - cgroup ", StringComparison.Ordinal) && l.Contains(",memory", StringComparison.Ordinal));
                layout = (v1Memory ? "the memory controller is on a cgroup v1 hierarchy" : "no cgroup v1 memory hierarchy either") +
                    (v2.Count > 0 ? $"; cgroup2 is mounted at {string.Join(", ", v2)} without it (a hybrid layout)" : "; no cgroup2 mount");
            }
            catch (IOException)
            {
            }
            return $"{Root} is not a cgroup v2 mount (no cgroup.controllers): {layout}. A cgroup v2 memory limit needs the unified hierarchy with the memory controller (systemd.unified_cgroup_hierarchy=1, or a container given its own cgroup2 namespace)";
        }
        var own = OwnCgroup();
        if (own is null)
            return "this process's cgroup v2 path is not in /proc/self/cgroup (no \"0::\" line)";
        var dir = System.IO.Path.Combine(Root, own.TrimStart('/'));
        var subtree = System.IO.Path.Combine(dir, "cgroup.subtree_control");
        try
        {
            if (!File.ReadAllText(subtree).Split(' ', StringSplitOptions.TrimEntries).Contains("memory"))
                return $"the memory controller is not enabled for the children of {dir} (cgroup.subtree_control lacks \"memory\"; enabling it would change the host's cgroup setup)";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"cannot read {subtree}: {e.Message}";
        }
        if (Environment.UserName != "root" && !IsWritable(dir))
            return $"no permission to create a child cgroup under {dir}";
        return null;
    }

    /// <summary>Creates the child cgroup with memory.max (and no swap), or returns false with the reason.</summary>
    public static bool TryCreate(ulong maxBytes, out CgroupMemoryLimit? limit, out string reason)
    {
        limit = null;
        reason = WhyUnavailable() ?? "";
        if (reason.Length > 0)
            return false;
        var dir = System.IO.Path.Combine(Root, OwnCgroup()!.TrimStart('/'), $"uffdnative-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..6]}");
        try
        {
            Directory.CreateDirectory(dir);
            File.WriteAllText(System.IO.Path.Combine(dir, "memory.max"), maxBytes.ToString(System.Globalization.CultureInfo.InvariantCulture));
            var swap = System.IO.Path.Combine(dir, "memory.swap.max");
            if (File.Exists(swap))
                File.WriteAllText(swap, "0");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try
            {
                Directory.Delete(dir);
            }
            catch (IOException)
            {
            }
            reason = $"creating {dir} failed: {e.Message}";
            return false;
        }
        limit = new CgroupMemoryLimit(dir, maxBytes);
        return true;
    }

    /// <summary>A counter of memory.events (oom, oom_kill, max, ...).</summary>
    public long Event(string name)
    {
        foreach (var line in File.ReadAllLines(System.IO.Path.Combine(Path, "memory.events")))
        {
            var p = line.Split(' ');
            if (p.Length == 2 && p[0] == name)
                return long.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture);
        }
        return 0;
    }

    private static string? OwnCgroup()
    {
        foreach (var line in File.ReadAllLines("/proc/self/cgroup"))
            if (line.StartsWith("0::", StringComparison.Ordinal))
                return line[3..];
        return null;
    }

    private static bool IsWritable(string dir)
    {
        try
        {
            return OperatingSystem.IsLinux() && (File.GetUnixFileMode(dir) & UnixFileMode.OtherWrite) != 0;
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Removes the cgroup once its processes are gone (bounded wait on cgroup.procs).</summary>
    public void Dispose()
    {
        long deadline = Environment.TickCount64 + 10_000;
        while (Environment.TickCount64 < deadline)
        {
            try
            {
                if (File.ReadAllText(ProcsPath).Trim().Length == 0)
                {
                    Directory.Delete(Path);
                    return;
                }
            }
            catch (DirectoryNotFoundException)
            {
                return;
            }
            catch (IOException)
            {
            }
            Thread.Yield();
        }
        try
        {
            Directory.Delete(Path);
        }
        catch (IOException)
        {
        }
    }
}
