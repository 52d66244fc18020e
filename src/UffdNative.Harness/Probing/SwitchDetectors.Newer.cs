using UffdNative.Access;
using UffdNative.Harness.Model;
using UffdNative.Memory;
using UffdNative.Messages;
using UffdNative.Uapi;

namespace UffdNative.Harness.Probing;

/// <summary>
/// Detectors of the switches a 5.10 guest needed (pagemap-wp-anon, continue-ioctl, vma-merge-anon-vma) and of the
/// behaviours that changed after 6.18 (docs/kernel-reference.md §6.4, rows B1, B3, B4a/b, B6, B7, B8, B12,
/// B13). Each reads what the kernel did, never its version: Debian's 6.1.192 and 6.12.117 carry several of them.
/// </summary>
public static partial class SwitchDetectors
{
    // ---- 5.13: pagemap bit 57 for anonymous PTEs ---------------------------------------------------------

    /// <summary>Write-protects a present anon page and reads bit 57. A clear bit is only "old" when the
    /// protection is shown to be in effect: a write from a worker then delivers a WP message.</summary>
    public static Finding PagemapWpAnon(Lab lab)
    {
        if (lab.Unsupported(UffdFeatures.PageFaultFlagWp) is { } no)
            return no;
        using var s = lab.NewScope();
        var (m, u) = s.WpRegisteredPage(9, protect: false);
        var before = lab.Pm(m.Address);
        u.WriteProtect(m.Address, P, protect: true);
        var after = lab.Pm(m.Address);
        string ev = $"present anon page: before WP {Lab.Bits(before)}, after {Lab.Bits(after)}";
        if (after.UffdWp && !before.UffdWp)
            return Finding.Of(true, "bit 57 = 1", ev);
        var o = s.Run(u, [Op.Write64(m.Address, 10)]);
        ev += $"; a write from a worker: {o.FaultText}";
        return o.Faults.Any(f => f.FaultKind == FaultKind.WriteProtect)
            ? Finding.Of(false, "bit 57 = 0 although the page is write-protected (the write faulted with WP)", ev)
            : Finding.Failed("bit 57 = 0 and the write did not fault: WRITEPROTECT had no effect", ev);
    }

    /// <summary>Rows that read pagemap bit 57 of anonymous memory call this first: on a kernel whose pagemap
    /// does not show it (before 5.13) they cannot decide, and say why instead of "regressed".</summary>
    public static Finding? WpBitInvisible(Lab lab)
    {
        var f = lab.Remember(KernelProfile.PagemapWpAnon, () => PagemapWpAnon(lab));
        return f.Kind == FindingKind.Observed && f.Value == false
            ? Finding.Undetermined("pagemap shows no uffd-wp bit on this kernel (pagemap-wp-anon: old, before 5.13)", f.Evidence)
            : null;
    }

    // ---- 5.13: UFFDIO_CONTINUE is a known ioctl -------------------------------------------------------

    /// <summary>CONTINUE on a MISSING-registered anon page with the result field preset: a kernel that knows the
    /// ioctl validates the range and writes -EINVAL into 'mapped' (no MINOR registration); one that does not
    /// answers EINVAL for the unknown command and leaves the field alone.</summary>
    public static Finding ContinueIoctl(Lab lab)
    {
        using var s = lab.NewScope();
        var m = s.Anon(1);
        var u = s.Uffd();
        var ioctls = u.Register(m.Address, m.Length, RegisterMode.Missing);
        var c = new UffdioContinue { Range = new UffdioRange(m.Address, P), Mapped = 1 };
        int r = u.TryContinue(ref c);
        string ev = $"CONTINUE on a MISSING-registered anon page, mapped preset to 1: {Errno.Name(r)} mapped={c.Mapped}; " +
                    $"MINOR_HUGETLBFS {(lab.Has(UffdFeatures.MinorHugetlbfs) ? "reported" : "not reported")}; REGISTER ioctls 0x{(ulong)ioctls:x}";
        return PresetFieldVerdict(r, c.Mapped, "mapped", Errno.EINVAL, "EINVAL, mapped=-22 (ioctl known, range refused)",
            Errno.EINVAL, "EINVAL, mapped untouched (unknown ioctl)", ev);
    }

    /// <summary>The verdict on an ioctl whose result field was preset to 1: the new behaviour fails it with
    /// newErrno and writes -newErrno into the field; the old one fails it with oldErrno, the field untouched.</summary>
    private static Finding PresetFieldVerdict(int r, long field, string fieldName, int newErrno, string newText, int oldErrno, string oldText, string ev)
    {
        if (r == -newErrno && field == -newErrno)
            return Finding.Of(true, newText, ev);
        if (r == -oldErrno && field == 1)
            return Finding.Of(false, oldText, ev);
        return Finding.Failed($"{Errno.Name(r)} {fieldName}={field}", ev);
    }

    // ---- 6.16: anon_vma merge rule (is_mergeable_anon_vma) ----------------------------------------------

    /// <summary>Two pages: page 1 registered MISSING and filled by COPY (its VMA gets an anon_vma), page 0 never
    /// touched (none). UNREGISTER of both makes page 1's VMA look like page 0's: since 6.16 they merge (the modified
    /// VMA may bring its anon_vma into a neighbour without one); before, they stay two VMAs.</summary>
    public static Finding VmaMergeAnonVma(Lab lab)
    {
        using var s = lab.NewScope();
        var m = s.Anon(2);
        m.Advise(Advice.NoHugePage);
        var src = s.Source(3);
        var u = s.Uffd();
        u.Register(m.PageAddress(1), P, RegisterMode.Missing);
        var c = new UffdioCopy { Dst = m.PageAddress(1), Src = src.Address, Len = P };
        int r = u.TryCopy(ref c);
        if (r < 0)
            return Finding.Failed($"COPY into the registered page: {Errno.Name(r)}");
        int split = VmaInfo.Overlapping(m.Address, m.Length).Count();
        u.Unregister(m.Address, m.Length);
        int after = VmaInfo.Overlapping(m.Address, m.Length).Count();
        string ev = $"page 0 untouched (no anon_vma), page 1 registered MISSING and filled by COPY (anon_vma): {split} VMAs; after UNREGISTER of both: {after}";
        if (split != 2)
            return Finding.Undetermined($"registration did not split the mapping ({split} VMAs)", ev);
        return after switch
        {
            1 => Finding.Of(true, "merged into 1 VMA", ev),
            2 => Finding.Of(false, "still 2 VMAs", ev),
            _ => Finding.Failed($"{after} VMAs", ev),
        };
    }

    // ---- 6.19: COPY over a guard-region marker (B1) ---------------------------------------------------------

    private const int MadvGuardInstall = 102;

    /// <summary>B1: COPY onto a MADV_GUARD_INSTALL marker. The page is never read afterwards (a guard raises
    /// SIGSEGV).</summary>
    public static Finding CopyOverGuardEexist(Lab lab)
    {
        using var s = lab.NewScope();
        var m = s.Anon(2);
        var src = s.Source(5);
        var u = s.Uffd();
        u.Register(m.Address, m.Length, RegisterMode.Missing);
        int g = m.TryAdvise((Advice)MadvGuardInstall, 0, P);
        if (g < 0)
            return Finding.Undetermined($"no guard regions on this kernel (MADV_GUARD_INSTALL: {Errno.Name(g)}, 6.13+)");
        var before = lab.Pm(m.Address);
        var c = new UffdioCopy { Dst = m.Address, Src = src.Address, Len = P, Copy = 1 };
        int r = u.TryCopy(ref c);
        var after = lab.Pm(m.Address);
        string ev = $"guard installed (bit 58 = {(before.Guard ? 1 : 0)}); COPY onto it, copy preset to 1: {Errno.Name(r)} copy={c.Copy}; then bit 58 = {(after.Guard ? 1 : 0)}, present = {(after.Present ? 1 : 0)}";
        if (r == -Errno.EEXIST && after.Guard)
            return Finding.Of(true, "EEXIST, the guard stays", ev);
        if (r == 0 && after.Present)
            return Finding.Of(false, "OK, the guard was overwritten", ev);
        return Finding.Failed($"COPY: {Errno.Name(r)} copy={c.Copy}", ev);
    }

    // ---- 7.1 (stable: 6.1.192, 6.12.117): ranges below mmap_min_addr (B3) ----------------------------------

    public static Finding MinAddrNotValidated(Lab lab)
    {
        string text = BehaviourRows.ReadText("/proc/sys/vm/mmap_min_addr");
        if (!ulong.TryParse(text, out ulong minAddr) || minAddr < 0x1000)
            return Finding.Undetermined($"vm.mmap_min_addr = {(text.Length == 0 ? "unreadable" : text)}: the experiment needs a page below it");
        ulong below = (minAddr & ~0xfffUL) - 0x1000; // the highest page below mmap_min_addr (never mapped)
        using var s = lab.NewScope();
        var (m, u) = s.RegisteredAnon(RegisterMode.Missing);
        var c = new UffdioCopy { Dst = m.Address, Src = below, Len = P, Copy = 1 };
        int r = u.TryCopy(ref c);
        string ev = $"vm.mmap_min_addr = {minAddr}; COPY into a registered page from src=0x{below:x}, copy preset to 1: {Errno.Name(r)} copy={c.Copy}";
        return PresetFieldVerdict(r, c.Copy, "copy", Errno.EFAULT, "EFAULT, copy=-14 (src validated by the copy itself)",
            Errno.EINVAL, "EINVAL, copy untouched (refused up front)", ev);
    }

    // ---- 7.1: fills of MAP_SHARED shmem beyond i_size (B4a, B4b) -----------------------------------------

    public static Finding ShmemFillBeyondEof(Lab lab)
    {
        using var s = lab.NewScope();
        var (f, m) = s.SharedMemfd(2);
        f.Truncate((long)P); // page 1 of the mapping is now beyond i_size
        var src = s.Source(6);
        var u = s.Uffd();
        u.Register(m.Address, m.Length, RegisterMode.Missing);
        var c = new UffdioCopy { Dst = m.PageAddress(1), Src = src.Address, Len = P, Copy = 1 };
        int r = u.TryCopy(ref c);
        string ev = $"memfd of 1 page mapped MAP_SHARED over 2; COPY into page 1 (beyond i_size): {Errno.Name(r)} copy={c.Copy}";
        if (r == -Errno.ENOMEM && c.Copy == -Errno.ENOMEM)
            return Finding.Of(true, "ENOMEM (copy=-12)", ev);
        if (r == -Errno.EFAULT && c.Copy == -Errno.EFAULT)
            return Finding.Of(false, "EFAULT (copy=-14)", ev);
        return Finding.Failed($"{Errno.Name(r)} copy={c.Copy}", ev);
    }

    // ---- 7.2 (stable: 7.1.13, 6.12.117): special VMAs refused before the WP_ASYNC rule (B6) ------------------

    public static Finding SpecialVmaWpAsyncEinval(Lab lab)
    {
        if (lab.Unsupported(UffdFeatures.WpAsync | UffdFeatures.PageFaultFlagWp) is { } no)
            return no;
        var vvar = VmaInfo.All().FirstOrDefault(v => v.Path == "[vvar]");
        if (vvar is null)
            return Finding.Undetermined("this process has no [vvar] mapping");
        using var s = lab.NewScope();
        var u = s.Uffd(UffdFeatures.WpAsync | UffdFeatures.PageFaultFlagWp);
        int r = u.TryRegister(vvar.Start, vvar.End - vvar.Start, RegisterMode.WriteProtect, out _);
        if (r == 0)
            u.Unregister(vvar.Start, vvar.End - vvar.Start);
        string ev = $"WP_ASYNC uffd; REGISTER(WP) of [vvar] 0x{vvar.Start:x}-0x{vvar.End:x} (VmFlags {string.Join(" ", vvar.VmFlags)}): {Errno.Name(r)}";
        return r switch
        {
            -Errno.EINVAL => Finding.Of(true, "EINVAL (special mapping refused)", ev),
            -Errno.EPERM => Finding.Of(false, "EPERM (no VM_MAYWRITE)", ev),
            _ => Finding.Failed(Errno.Name(r), ev),
        };
    }

    // ---- PAGEMAP_SCAN's written category (B7: 7.2 and 6.12.117; B8; B13: 7.3) ---------------------------------

    /// <summary>Four pages at the start of a 2 MiB-aligned block of a MADV_NOHUGEPAGE anon mapping (one PTE table),
    /// page 0 written: the regions PAGEMAP_SCAN's generic path reports for category_anyof PRESENT|WRITTEN.</summary>
    private static unsafe (string Text, List<PageRegion> Regions, int Ret) ScanFour(Lab lab, LabScope s, bool registerWp)
    {
        const ulong huge = 2UL << 20;
        var m = s.Anon((long)(2 * huge / P));
        m.Advise(Advice.NoHugePage);
        ulong start = (m.Address + huge - 1) & ~(huge - 1);
        Accessor.Touch(start, P, write: true, value: 1);
        if (registerWp)
        {
            var u = s.Uffd();
            u.Register(start, 4 * P, RegisterMode.WriteProtect);
        }
        var vec = new PageRegion[8];
        const PageCategory presentOrWritten = PageCategory.Present | PageCategory.Written;
        int r = lab.PageMap.TryScan(start, start + 4 * P, vec, PageCategory.None, presentOrWritten, out _, anyOf: presentOrWritten);
        var regions = r > 0 ? vec.Take(r).ToList() : [];
        string text = r < 0 ? Errno.Name(r) : r == 0 ? "no region" : string.Join(" ", regions.Select(x => $"[{(x.Start - start) / P},{(x.End - start) / P}):0x{x.Categories:x}"));
        return (text, regions, r);
    }

    private static bool Is(List<PageRegion> rs, params (int From, int To, ulong Cat)[] want)
    {
        if (rs.Count != want.Length || rs.Count == 0)
            return false;
        ulong b = rs[0].Start;
        return rs.Zip(want).All(z => (z.First.Start - b) / P == (ulong)z.Second.From && (z.First.End - b) / P == (ulong)z.Second.To && z.First.Categories == z.Second.Cat);
    }

    /// <summary>B7: in a WP-registered VMA (where every kernel reports written pages), are the none PTEs of an
    /// existing page table written?</summary>
    public static Finding ScanNoneWritten(Lab lab)
    {
        if (lab.Unsupported(UffdFeatures.PageFaultFlagWp) is { } no)
            return no;
        if (!lab.Has(UffdFeatures.WpAsync))
            return Finding.Undetermined("no PAGEMAP_SCAN on this kernel (6.7+)");
        using var s = lab.NewScope();
        var (text, rs, r) = ScanFour(lab, s, registerWp: true);
        string ev = $"4 pages of one PTE table, WP-registered, page 0 written: PAGEMAP_SCAN anyof PRESENT|WRITTEN → {text}";
        if (Is(rs, (0, 1, 0xa), (1, 4, 0x2)))
            return Finding.Of(true, "none PTEs reported WRITTEN", ev);
        if (Is(rs, (0, 1, 0xa)))
            return Finding.Of(false, "none PTEs not reported", ev);
        return Finding.Failed(text, ev);
    }

    /// <summary>B13: the same scan outside any uffd-wp VMA: is the present, written page still WRITTEN?</summary>
    public static Finding ScanWrittenWpOnly(Lab lab)
    {
        if (!lab.Has(UffdFeatures.WpAsync))
            return Finding.Undetermined("no PAGEMAP_SCAN on this kernel (6.7+)");
        using var s = lab.NewScope();
        var (text, rs, r) = ScanFour(lab, s, registerWp: false);
        string ev = $"4 pages of one PTE table, no uffd, page 0 written: PAGEMAP_SCAN anyof PRESENT|WRITTEN → {text}";
        if (Is(rs, (0, 1, 0x8)))
            return Finding.Of(true, "written page reported PRESENT only", ev);
        if (rs.Count > 0 && rs[0].Categories == 0xa)
            return Finding.Of(false, "written page reported PRESENT|WRITTEN", ev);
        return Finding.Failed(text, ev);
    }

    /// <summary>B8: an untouched, WP-registered (WP_ASYNC) 2 MiB block has no page table: is it WRITTEN?</summary>
    public static unsafe Finding ScanHoleWritten(Lab lab)
    {
        if (lab.Unsupported(UffdFeatures.WpAsync | UffdFeatures.PageFaultFlagWp) is { } no)
            return no;
        const ulong huge = 2UL << 20;
        using var s = lab.NewScope();
        var m = s.Anon((long)(2 * huge / P));
        ulong start = (m.Address + huge - 1) & ~(huge - 1);
        var u = s.Uffd(UffdFeatures.WpAsync | UffdFeatures.PageFaultFlagWp);
        u.Register(start, huge, RegisterMode.WriteProtect);
        var vec = new PageRegion[4];
        int r = lab.PageMap.TryScan(start, start + huge, vec, PageCategory.Written, PageCategory.Written, out _);
        ulong pages = r > 0 ? vec.Take(r).Aggregate(0UL, (n, x) => n + (x.End - x.Start) / P) : 0;
        string ev = $"untouched 2 MiB-aligned block, WP-registered (WP_ASYNC): PAGEMAP_SCAN WRITTEN → {(r < 0 ? Errno.Name(r) : $"{r} region(s), {pages} pages")}";
        if (r < 0)
            return Finding.Failed(Errno.Name(r), ev);
        return pages switch
        {
            512 => Finding.Of(true, "512 pages WRITTEN", ev),
            0 => Finding.Of(false, "nothing reported", ev),
            _ => Finding.Failed($"{pages} pages", ev),
        };
    }

    // ---- 7.3: re-registration may not drop WP (B12) -------------------------------------------------------

    public static Finding ReregisterKeepsWp(Lab lab)
    {
        if (lab.Unsupported(UffdFeatures.PageFaultFlagWp) is { } no)
            return no;
        using var s = lab.NewScope();
        var (m, u) = s.WpRegisteredPage(8);
        int r = u.TryRegister(m.Address, m.Length, RegisterMode.Missing, out _);
        var modes = VmaInfo.Find(m.Address)?.RegisteredModes ?? RegisterMode.None;
        var e = lab.Pm(m.Address);
        string ev = $"present anon page registered WP and write-protected; REGISTER(MISSING) over it on the same uffd: {Errno.Name(r)}; VMA {modes}, {Lab.Bits(e)}";
        return r switch
        {
            -Errno.EBUSY => Finding.Of(true, "EBUSY, the VMA stays WP", ev),
            0 => Finding.Of(false, $"OK, modes replaced (VMA {modes})", ev),
            _ => Finding.Failed(Errno.Name(r), ev),
        };
    }
}
