using UffdNative.Access;
using UffdNative.Harness.Model;
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
            f = s.Own(MemfdFile.Create("uffd-probe-hugetlb", (long)huge, hugetlb: true));
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
