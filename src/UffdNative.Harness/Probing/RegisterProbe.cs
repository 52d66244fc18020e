using System.Globalization;
using UffdNative.Harness.Host;

namespace UffdNative.Harness.Probing;

/// <summary>
/// UFFDIO_REGISTER masks per memory type × mode (reference §1.3, §1.4, §0a), each on a fresh mapping
/// and uffd, with the mask mainline of this version returns: base WAKE|COPY|ZEROPAGE (hugetlb:
/// WAKE|COPY), + POISON from 6.6, + MOVE from 6.8 (not hugetlb), + WRITEPROTECT with WP, + CONTINUE
/// with MINOR.
/// </summary>
public static class RegisterProbe
{
    public static readonly RegisterMode[] Modes =
    [
        RegisterMode.Missing, RegisterMode.WriteProtect, RegisterMode.Minor,
        RegisterMode.Missing | RegisterMode.WriteProtect, RegisterMode.WriteProtect | RegisterMode.Minor,
    ];

    public static readonly string[] BaseMemories = ["anon", "shmem-shared", "shmem-private"];
    public static readonly string[] HugetlbMemories = ["hugetlb-shared", "hugetlb-private"];

    public static string ModeName(RegisterMode m) =>
        string.Join("|", new[] { (RegisterMode.Missing, "MISSING"), (RegisterMode.WriteProtect, "WP"), (RegisterMode.Minor, "MINOR") }.Where(x => (m & x.Item1) != 0).Select(x => x.Item2));

    /// <summary>What mainline release v answers: errno 0 and the mask, or EINVAL.</summary>
    public static (int Errno, ulong Ioctls) Expected(string memory, RegisterMode mode, KernelVersion v)
    {
        bool anon = memory == "anon", huge = memory.StartsWith("hugetlb", StringComparison.Ordinal);
        bool wp = (mode & RegisterMode.WriteProtect) != 0, minor = (mode & RegisterMode.Minor) != 0;
        if (minor && (anon || (!huge && v < new KernelVersion(5, 14)) || (huge && v < new KernelVersion(5, 13))))
            return (Errno.EINVAL, 0);
        if (wp && (v < new KernelVersion(5, 7) || (!anon && v < new KernelVersion(5, 19))))
            return (Errno.EINVAL, 0);
        var m = huge ? UffdIoctls.Wake | UffdIoctls.Copy : UffdIoctls.Wake | UffdIoctls.Copy | UffdIoctls.ZeroPage;
        if (v >= new KernelVersion(6, 6))
            m |= UffdIoctls.Poison;
        if (v >= new KernelVersion(6, 8) && !huge)
            m |= UffdIoctls.Move;
        if (wp)
            m |= UffdIoctls.WriteProtect;
        if (minor)
            m |= UffdIoctls.Continue;
        return (0, (ulong)m);
    }

    public static List<RegisterMaskResult> Run(Lab lab, bool hugetlb)
    {
        var list = new List<RegisterMaskResult>();
        foreach (var memory in hugetlb ? BaseMemories.Concat(HugetlbMemories) : BaseMemories)
            foreach (var mode in Modes)
                list.Add(One(lab, memory, mode));
        return list;
    }

    public static RegisterMaskResult One(Lab lab, string memory, RegisterMode mode)
    {
        var now = new KernelVersion(lab.Kernel.Major, lab.Kernel.Minor);
        var (expErrno, expMask) = Expected(memory, mode, now);
        int r;
        UffdIoctls ioctls;
        string why = "";
        try
        {
            using var s = lab.NewScope();
            bool huge = memory.StartsWith("hugetlb", StringComparison.Ordinal);
            Mapping map;
            if (memory == "anon")
                map = s.Anon(1);
            else
            {
                long size = huge ? EnvironmentProbe.HugePages().SizeKb * 1024 : (long)Lab.Page;
                var f = s.Own(MemfdFile.Create("uffd-probe-register", size, hugetlb: huge));
                map = memory.EndsWith("shared", StringComparison.Ordinal) ? s.Shared(f) : s.Private(f);
            }
            var u = s.Uffd();
            r = u.TryRegister(map.Address, map.Length, mode, out ioctls);
            if (r < 0)
                why = Remedies.Register(map.Address, map.Length, mode, u.Features, u.SupportedFeatures, -r, lab.Kernel).Detail;
        }
        catch (UffdException e) when (e.Errno == Errno.ENOMEM && memory.StartsWith("hugetlb", StringComparison.Ordinal))
        {
            // mmap of a hugetlbfs file reserves its page: the pool PrepareHugePages found free was taken or shrunk by
            // someone else since (vm.nr_hugepages is the host's). Not this kernel's registration: not determined.
            var hp = EnvironmentProbe.HugePages();
            return new RegisterMaskResult(memory, ModeName(mode), e.ErrnoName, 0, Errno.Name(expErrno), expMask, Verdict.Undetermined.Id(),
                $"no free huge page when the row ran ({e.Operation}: ENOMEM; now {hp.Free} free of {hp.Total}): the pool changed under the probe");
        }
        catch (UffdException e)
        {
            return new RegisterMaskResult(memory, ModeName(mode), e.ErrnoName, 0, Errno.Name(expErrno), expMask, Verdict.Error.Id(), $"{e.Operation}: {e.Message}");
        }
        var verdict = Judge(memory, mode, now, -r, (ulong)ioctls);
        return new RegisterMaskResult(memory, ModeName(mode), Errno.Name(-r), (ulong)ioctls, Errno.Name(expErrno), expMask, verdict.Id(), why);
    }

    public static Verdict Judge(string memory, RegisterMode mode, KernelVersion now, int errno, ulong ioctls)
    {
        var exp = Expected(memory, mode, now);
        if (exp == (errno, ioctls))
            return Verdict.AsExpected;
        foreach (var v in new KernelVersion[] { new(5, 7), new(5, 13), new(5, 14), new(5, 19), new(6, 6), new(6, 8), new(99, 0) })
            if (v > now && Expected(memory, mode, v) == (errno, ioctls))
                return Verdict.Backported;
        return Verdict.Regressed;
    }

    /// <summary>
    /// Makes sure one huge page is free for the hugetlb rows. Uses what is reserved; reserves only
    /// when allowed (--allow-host-changes, or inside a throwaway guest) and always restores. Returns
    /// the restore action (or null) and a note for the report.
    /// </summary>
    public static (bool Usable, Action? Restore, string Note) PrepareHugePages(bool allowChanges)
    {
        var hp = EnvironmentProbe.HugePages();
        if (hp.SizeKb == 0)
            return (false, null, "hugetlbfs rows skipped: this kernel has no huge pages (no Hugepagesize in /proc/meminfo)");
        if (hp.Free >= 1)
            return (true, null, $"hugetlbfs rows use the {hp.Free} free reserved {hp.SizeKb} kB page(s)");
        if (!allowChanges)
            return (false, null, "hugetlbfs rows skipped: no huge pages reserved (vm.nr_hugepages=0); pass --allow-host-changes to reserve 2 for the probe (restored afterwards), or boot a guest with hugepages=N");
        const string knob = "/proc/sys/vm/nr_hugepages";
        int? before = HostFacts.ReadInt(knob);
        if (before is null)
            return (false, null, "hugetlbfs rows skipped: vm.nr_hugepages cannot be read");
        // Journalled before it is made (HostJournal): SIGINT/SIGTERM restore it, and after a SIGKILL the
        // next start of any verb does.
        IDisposable change;
        try
        {
            (_, change) = HostJournal.Set(knob, (before.Value + 2).ToString(CultureInfo.InvariantCulture), "huge pages reserved by 'probe --allow-host-changes'");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return (false, null, $"hugetlbfs rows skipped: reserving huge pages failed ({e.Message})");
        }
        var now = EnvironmentProbe.HugePages();
        if (now.Free < 1)
        {
            change.Dispose();
            return (false, null, "hugetlbfs rows skipped: the kernel could not allocate huge pages (memory fragmented?)");
        }
        return (true, change.Dispose, $"reserved {now.Total - before.Value} huge page(s) for the probe (--allow-host-changes); vm.nr_hugepages restored to {before.Value} afterwards");
    }
}
