using System.Globalization;

namespace UffdNative.Memory;

public enum VmaKind { Anonymous, Shmem, Hugetlb, File, Other }

/// <summary>One line of /proc/self/smaps: a VMA, its backing and its VmFlags (um/uw/ui show uffd
/// registration: MISSING, WP, MINOR — reference §1.4).</summary>
public sealed record VmaInfo(ulong Start, ulong End, string Perms, string Path, VmaKind Kind, IReadOnlyList<string> VmFlags, long KernelPageSizeKb)
{
    public bool Shared => Perms.Length > 3 && Perms[3] == 's';

    public RegisterMode RegisteredModes =>
        (VmFlags.Contains("um") ? RegisterMode.Missing : 0) | (VmFlags.Contains("uw") ? RegisterMode.WriteProtect : 0) | (VmFlags.Contains("ui") ? RegisterMode.Minor : 0);

    /// <summary>The VMA containing addr, or null.</summary>
    public static VmaInfo? Find(ulong addr, int pid = 0) => All(pid).FirstOrDefault(v => addr >= v.Start && addr < v.End);

    /// <summary>Every VMA overlapping [start, start+len).</summary>
    public static IEnumerable<VmaInfo> Overlapping(ulong start, ulong len, int pid = 0) => All(pid).Where(v => v.Start < start + len && v.End > start);

    public static List<VmaInfo> All(int pid = 0)
    {
        var list = new List<VmaInfo>();
        var path = pid == 0 ? "/proc/self/smaps" : $"/proc/{pid}/smaps";
        ulong start = 0, end = 0;
        string perms = "", file = "";
        long kps = 4;
        bool open = false;
        foreach (var line in File.ReadLines(path))
        {
            if (IsHeader(line, out var s, out var e, out var p, out var f))
            {
                start = s; end = e; perms = p; file = f; kps = 4; open = true;
            }
            else if (open && line.StartsWith("KernelPageSize:", StringComparison.Ordinal))
            {
                kps = long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
            }
            else if (open && line.StartsWith("VmFlags:", StringComparison.Ordinal))
            {
                var flags = line["VmFlags:".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                list.Add(new VmaInfo(start, end, perms, file, Classify(file, perms, kps), flags, kps));
                open = false;
            }
        }
        return list;
    }

    private static VmaKind Classify(string path, string perms, long kps)
    {
        if (kps > 4)
            return VmaKind.Hugetlb;
        if (path.Length == 0)
            return perms.Length > 3 && perms[3] == 's' ? VmaKind.Shmem : VmaKind.Anonymous;
        if (path.StartsWith("/memfd:", StringComparison.Ordinal) || path.StartsWith("/dev/zero", StringComparison.Ordinal) ||
            path.StartsWith("/SYSV", StringComparison.Ordinal) || path.StartsWith("/dev/shm/", StringComparison.Ordinal))
            return VmaKind.Shmem;
        if (path.StartsWith('['))
            return VmaKind.Other;
        return VmaKind.File;
    }

    private static bool IsHeader(string line, out ulong start, out ulong end, out string perms, out string path)
    {
        start = end = 0;
        perms = path = "";
        int dash = line.IndexOf('-');
        int sp = line.IndexOf(' ');
        if (dash <= 0 || sp <= dash || !ulong.TryParse(line.AsSpan(0, dash), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out start) ||
            !ulong.TryParse(line.AsSpan(dash + 1, sp - dash - 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out end))
            return false;
        var parts = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
        perms = parts.Length > 1 ? parts[1] : "";
        path = parts.Length > 5 ? parts[5].Trim() : "";
        return true;
    }
}
