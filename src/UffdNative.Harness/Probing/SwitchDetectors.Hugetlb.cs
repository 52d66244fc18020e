using UffdNative.Access;
using UffdNative.Harness.Model;
using UffdNative.Harness.Scenarios;
using UffdNative.Memory;
using UffdNative.PageMap;

namespace UffdNative.Harness.Probing;

public static partial class SwitchDetectors
{
    private const string HugePoolDir = "/sys/kernel/mm/hugepages/hugepages-2048kB";

    // ---- 6.4 (not in Debian's 6.1.192): a fork child without EVENT_FORK loses the uffd-wp bit of private hugetlb pages ----

    /// <summary>One private hugetlb page (a 2 MiB memfd page), written, registered WP and write-protected; a fork child
    /// without EVENT_FORK only reads its pagemap entry (bit 57), never writes: before the fix the child keeps the
    /// bit and its write would retry forever (kernel-reference §3.11 fork), so a write is no experiment. Needs a
    /// free huge page: not determined otherwise.</summary>
    public static Finding HugetlbForkDropsWp(Lab lab)
    {
        if (lab.Unsupported(UffdFeatures.PageFaultFlagWp | UffdFeatures.WpHugetlbfsShmem) is { } no)
            return no;
        if (WpBitInvisible(lab) is { } invisible)
            return invisible;
        string free = BehaviourRows.ReadText($"{HugePoolDir}/free_hugepages").Trim();
        if (!long.TryParse(free, out long n) || n < 1)
            return Finding.Undetermined(free.Length == 0
                ? $"no 2 MiB hugetlb on this kernel ({HugePoolDir} absent)"
                : $"no free 2 MiB huge pages (vm.nr_hugepages={BehaviourRows.ReadText($"{HugePoolDir}/nr_hugepages").Trim()}, {free} free)");
        const ulong huge = 2UL << 20;
        using var s = lab.NewScope();
        MemfdFile f;
        try
        {
            f = s.Own(MemoryTypes.CreateMemfd("uffd-probe-hugetlb", (long)huge, hugetlb: true));
        }
        catch (UffdException e)
        {
            return Finding.Undetermined($"memfd_create(MFD_HUGETLB): {e.Message}");
        }
        var m = s.Private(f);
        // The write before registration: an anonymous (CoW) huge page with an anon_vma, so fork copies the PTE.
        Accessor.Touch(m.Address, P, write: true, value: 0x4711);
        var u = s.Uffd(UffdFeatures.WpHugetlbfsShmem);
        u.Register(m.Address, huge, RegisterMode.WriteProtect);
        u.WriteProtect(m.Address, huge, protect: true);
        var parent = lab.Pm(m.Address);
        PageMapEntry child;
        using (var c = ForkedChild.Start(ChildOps.PageMap(m.Address), ChildOps.Exit(0)))
        {
            child = new PageMapEntry(c.WaitFor(0, Lab.WaitMs).Value);
            c.Finish(Lab.WaitMs);
        }
        string ev = $"private hugetlb page written, WP-registered and protected: parent {Lab.Bits(parent)}; fork child (no EVENT_FORK, pagemap only) {Lab.Bits(child)}";
        if (!parent.Present || !parent.UffdWp)
            return Finding.Failed("the parent's page is not present with wp after WRITEPROTECT", ev);
        if (!child.Present)
            return Finding.Undetermined("the child's page is not present (fork did not copy the PTE)", ev);
        return Finding.Either(!child.UffdWp, "the child's page has wp=0", "the child keeps wp=1 in its unregistered VMA (its write would retry forever)", ev);
    }
}

public static partial class SwitchDetectors
{
    // ---- 6.1: MADV_COLLAPSE, shmem included (minor-collapse) ----------------------------------------------

    /// <summary>A 2 MiB memfd mapped MAP_SHARED at a 2 MiB-aligned address, one page written, then MADV_COLLAPSE of the
    /// whole range: from 6.1 it is collapsed into a huge page and PMD-mapped (smaps ShmemPmdMapped 2048 kB); before,
    /// the advice is unknown (EINVAL). shmem_enabled=deny refuses shmem collapse on any kernel: not determined.</summary>
    public static unsafe Finding MadvCollapse(Lab lab)
    {
        const ulong huge = 2UL << 20;
        string shmem = EnvironmentProbe.Selected(BehaviourRows.ReadText("/sys/kernel/mm/transparent_hugepage/shmem_enabled"));
        if (shmem.Length == 0)
            return Finding.Undetermined("no THP in this kernel (/sys/kernel/mm/transparent_hugepage/shmem_enabled absent)");
        if (shmem == "deny")
            return Finding.Undetermined("shmem_enabled = deny: MADV_COLLAPSE of shmem is refused on every kernel");
        using var s = lab.NewScope();
        var room = s.Anon((long)(2 * huge / P));
        ulong at = (room.Address + huge - 1) & ~(huge - 1);
        var f = s.Own(MemfdFile.Create("uffd-probe-collapse", (long)huge));
        void* p = Tmds.Linux.LibC.mmap((void*)at, (Tmds.Linux.size_t)huge, Tmds.Linux.LibC.PROT_READ | Tmds.Linux.LibC.PROT_WRITE, Tmds.Linux.LibC.MAP_SHARED | Tmds.Linux.LibC.MAP_FIXED, f.Fd, 0);
        if (p == Tmds.Linux.LibC.MAP_FAILED)
            return Finding.Failed($"mmap of the memfd at a 2 MiB boundary: {Errno.Name(System.Runtime.InteropServices.Marshal.GetLastPInvokeError())}");
        Accessor.Touch(at, P, write: true, value: 0x77);
        int rc = Tmds.Linux.LibC.madvise((void*)at, (Tmds.Linux.size_t)huge, 25 /* MADV_COLLAPSE */) < 0 ? System.Runtime.InteropServices.Marshal.GetLastPInvokeError() : 0;
        long pmd = FactDetectors.SmapsField(at, "ShmemPmdMapped:");
        string ev = $"2 MiB memfd MAP_SHARED at a 2 MiB boundary, one page written, shmem_enabled = {shmem}: MADV_COLLAPSE {(rc == 0 ? "OK" : Errno.Name(rc))}; ShmemPmdMapped {pmd} kB";
        if (rc == 0 && pmd == 2048)
            return Finding.Of(true, "collapsed and PMD-mapped", ev);
        if (rc == Errno.EINVAL)
            return Finding.Of(false, "EINVAL (unknown advice)", ev);
        return Finding.Undetermined($"MADV_COLLAPSE {(rc == 0 ? "OK" : Errno.Name(rc))} with ShmemPmdMapped {pmd} kB (no huge page available?)", ev);
    }
}
