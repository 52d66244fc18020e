using System.Globalization;

namespace UffdNative;

/// <summary>Facts about this process and host that decide whether userfaultfd can be opened and
/// why not: read from /proc, never assumed.</summary>
public static class HostFacts
{
    public const int CapSysPtrace = 19;

    public static int EffectiveUid => ReadStatusField("Uid:") is { } uid ? int.Parse(uid.Split('\t', ' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) : -1;

    /// <summary>Seccomp mode from /proc/self/status: 0 none, 1 strict, 2 filter.</summary>
    public static int SeccompMode => ReadStatusField("Seccomp:") is { } s && int.TryParse(s.Trim(), out var m) ? m : -1;

    public static bool HasCapability(int cap)
    {
        var eff = ReadStatusField("CapEff:");
        return eff is not null && ulong.TryParse(eff.Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var mask) && (mask & (1UL << cap)) != 0;
    }

    /// <summary>vm.unprivileged_userfaultfd, or null where the sysctl does not exist (before 5.2).</summary>
    public static int? UnprivilegedUserfaultfd => ReadInt("/proc/sys/vm/unprivileged_userfaultfd");

    public static bool DeviceExists => File.Exists(Uffd.DevicePath);

    public static int? ReadInt(string path)
    {
        try
        {
            return int.TryParse(File.ReadAllText(path).Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    public static string? ReadStatusField(string prefix)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(prefix, StringComparison.Ordinal))
                return line[prefix.Length..].Trim();
        return null;
    }
}
