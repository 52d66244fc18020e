using UffdNative.Harness.Model;
using UffdNative.Harness.Scenarios;
using static UffdNative.Harness.Scenarios.ScenarioBuilder;
using F = UffdNative.UffdFeatures;
using R = UffdNative.RegisterMode;

namespace UffdNative.Harness.Conformance;

/// <summary>A named differential scenario: one per uffd-unit-tests case of reference §2.1 and one per
/// behaviour of §3, built for each memory type it applies to.</summary>
public sealed record NamedScenario(string Name, string Section, string Description, MemoryType[] Targets, Func<MemoryType, Scenario> Build)
{
    /// <summary>An extra environment condition (THP, shmem THP …): null when met, else the reason.</summary>
    public Func<EnvironmentFacts, string?>? Requires { get; init; }
}

public static class NamedScenarios
{
    private const F WpShmemFeatures = F.PageFaultFlagWp | F.WpHugetlbfsShmem;

    private static F WpFeatures(MemoryType m) => MemoryTypes.IsFileBacked(m) ? WpShmemFeatures : F.PageFaultFlagWp;

    // WP on a none PTE leaves a marker: always on shmem (5.19, §3.2), on anonymous memory only with
    // WP_UNPOPULATED (6.4, §3.3). Asking for WP_UNPOPULATED on shmem would gain nothing and make the
    // scenario inapplicable on kernels before 6.4 — where the marker rules matter most.
    private static F MarkerFeatures(MemoryType m) => MemoryTypes.IsFileBacked(m) ? WpShmemFeatures : F.PageFaultFlagWp | F.WpUnpopulated;

    private static string? NeedsThp(EnvironmentFacts e) =>
        e.ThpAnon is "never" or "absent" ? $"needs transparent huge pages: /sys/kernel/mm/transparent_hugepage/enabled = {e.ThpAnon}" : null;

    // MADV_COLLAPSE is forced (shmem_huge_force): shmem_enabled=never does not stop it, deny does, and a kernel without
    // THP has no shmem_enabled at all (reference §2.1 #13, mm/shmem.c shmem_huge_global_enabled).
    // The alias gets MADV_HUGEPAGE only at the collapse: before it the setup's MADV_NOHUGEPAGE keeps its faults at 4 KiB
    // under always, within_size and force too (shmem_allowable_huge_orders: vma_thp_disabled before the force check;
    // force only turns huge on for every mount, it lifts no VMA's pin — seen in a 6.12 guest: the cell passes).
    private static string? NeedsShmemThp(EnvironmentFacts e) =>
        e.ThpShmem is "never" or "advise" or "always" or "within_size" or "force"
            ? null
            : $"needs MADV_COLLAPSE of shmem with 4 KiB faults before it: /sys/kernel/mm/transparent_hugepage/shmem_enabled = {(string.IsNullOrEmpty(e.ThpShmem) ? "absent" : e.ThpShmem)} ({(e.ThpShmem is "deny" ? "deny refuses MADV_COLLAPSE" : string.IsNullOrEmpty(e.ThpShmem) || e.ThpShmem is "absent" or "unknown" ? "no THP in this kernel" : "a value the model does not know")})";

    public static IReadOnlyList<NamedScenario> All { get; } = Build();

    public static NamedScenario? Find(string name) => All.FirstOrDefault(s => s.Name == name);

    private static IReadOnlyList<NamedScenario> Build()
    {
        var list = new List<NamedScenario>();
        void Add(string name, string section, string desc, MemoryType[] targets, Func<MemoryType, Scenario> build, Func<EnvironmentFacts, string?>? requires = null) =>
            list.Add(new NamedScenario(name, section, desc, targets, m => build(m) with { Name = name, Description = desc }) { Requires = requires });

        // ================= §2.1 uffd-unit-tests.c =================

        Add("api", "§2.1 #0, §1.2", "UFFDIO_API: api=0xAB and an unknown feature fail, features=0 succeeds, a second API on the fd fails; through the syscall and /dev/userfaultfd",
            [MemoryType.Anon], m => NewScenario("api", m) with
            {
                Uffds = [],
                Ops =
                [
                    new ApiOp(false, [new(0xAB, 0), new(0xAA, 1UL << 63), new(0xAA, 0), new(0xAA, 1)]),
                    new ApiOp(true, [new(0xAB, 0), new(0xAA, 1UL << 63), new(0xAA, 0), new(0xAA, 1)]),
                ],
            });

        Add("register-ioctls", "§2.1 #1, §1.4", "every combination of MISSING/WP/MINOR on one page: none is EINVAL, MINOR on anon is EINVAL, otherwise the returned ioctl mask (exact, §1.4 measured values), then unregister",
            MemoryTypes.All, m =>
            {
                var s = NewScenario("register-ioctls", m, F.MissingHugetlbfs | F.MissingShmem | F.PageFaultFlagWp | F.WpHugetlbfsShmem | F.MinorHugetlbfs | F.MinorShmem);
                for (int mode = 0; mode < 8; mode++)
                    s = s.Then(Register((R)mode, 0, 1, observeIoctls: true), Unregister(0, 1));
                return s;
            });

        Add("zeropage", "§2.1 #2, §1.4 ZEROPAGE", "register MISSING, UFFDIO_ZEROPAGE one page (field = page size), read 0; a second ZEROPAGE through the alias (registered too) answers per memory type",
            MemoryTypes.All, m => NewScenario("zeropage", m, alias: true)
                .Then(Register(R.Missing))
                .Then(MemoryTypes.IsFileBacked(m) ? [Register(R.Missing, mapping: "al")] : [])
                .Then(ZeroPage(0), Read(0), ZeroPage(0))
                .Then(MemoryTypes.IsFileBacked(m) ? [ZeroPage(0, mapping: "al"), Read(0, "al")] : []));

        Add("move", "§2.1 #3, §1.4 MOVE", "each dst page is read; the MISSING fault is resolved by UFFDIO_MOVE of the same page of src; src reads 0 afterwards",
            [MemoryType.Anon], m => NewScenario("move", m, F.Move)
                .AddMapping(new MappingSpec("src", MapKind.Anon, 4))
                .Then(Write(0, 0x51, "src"), Write(1, 0x52, "src"), Write(2, 0x53, "src"), Write(3, 0x54, "src"), Register(R.Missing))
                .Then(Read(0), Read(1), Read(2), Read(3), Read(0, "src"), Read(3, "src"))
                .WithPolicy(MissingPolicy.Move) with { Policy = new HandlerPolicy { Missing = MissingPolicy.Move, MoveSource = "src", MoveChunk = 1 } });

        Add("move-pmd", "§2.1 #4, §1.4 MOVE, §3.8", "THP (MADV_HUGEPAGE) src and dst of 2 MiB, every src page written (as upstream fills it): one MISSING fault moves the whole aligned 2 MiB chunk; dst reads the src tags, src reads 0",
            [MemoryType.Anon], m => (NewScenario("move-pmd", m, F.Move, pages: 512) with
            {
                Mappings = [new MappingSpec("m0", MapKind.Anon, 512) { HugePage = true }, new MappingSpec("src", MapKind.Anon, 512) { HugePage = true }],
                Policy = new HandlerPolicy { Missing = MissingPolicy.Move, MoveSource = "src", MoveChunk = 512 },
            }).Then([.. Enumerable.Range(0, 512).Select(p => (ScenarioOp)Write(p, 0x6100 + (ulong)p, "src"))])
              .Then(Register(R.Missing, 0, 512), Read(0), Read(1), Read(300), Read(511), Read(0, "src"), Read(511, "src")),
            NeedsThp);

        // Upstream fills every src page (a counter per page), so the whole THP is data: written here too, which also
        // makes every dst page specified (a partly written THP src would move its untouched zeroed subpages as well).
        Add("move-pmd-split", "§2.1 #5, §1.4 MOVE, §3.8", "as move-pmd, but dst has MADV_NOHUGEPAGE (upstream's only change) and every src page is written: the 2 MiB MOVE from a THP src into a dst that may not hold a PMD splits the src PMD and moves 512 PTEs; dst reads the src tags, src reads 0",
            [MemoryType.Anon], m => (NewScenario("move-pmd-split", m, F.Move, pages: 512) with
            {
                Mappings = [new MappingSpec("m0", MapKind.Anon, 512), new MappingSpec("src", MapKind.Anon, 512) { HugePage = true }],
                Policy = new HandlerPolicy { Missing = MissingPolicy.Move, MoveSource = "src", MoveChunk = 512 },
            }).Then([.. Enumerable.Range(0, 512).Select(p => (ScenarioOp)Write(p, 0x6500 + (ulong)p, "src"))])
              .Then(Register(R.Missing, 0, 512), Read(0), Read(1), Read(300), Read(511), Read(0, "src"), Read(511, "src")),
            NeedsThp);

        Scenario WpFork(MemoryType m, bool evfork) => NewScenario(evfork ? "wp-fork-with-event" : "wp-fork", m, WpFeatures(m) | (evfork ? F.EventFork : 0))
            .Then(Register(R.WriteProtect), Write(0, 0x71), WriteProtect(0), Fork(), WpForkZap(m), Fork(), Unprotect(0), Write(0, 0x72));
        // Upstream's zap: MADV_DONTNEED on shared memory, MADV_PAGEOUT (its result ignored) on private memory.
        // hugetlb-private keeps the read it had: MADV_PAGEOUT is EINVAL on hugetlb (can_madv_lru_vma).
        static ScenarioOp WpForkZap(MemoryType m) => m switch
        {
            _ when MemoryTypes.PrimaryKind(m) == MapKind.Shared => DontNeed(0),
            MemoryType.HugetlbPrivate => Read(0),
            _ => new MadviseOp("m0", 0, 1, MadviseAdvice.PageOut),
        };
        // On hugetlb-private before 6.4 (hugetlb-fork-drops-wp, §3.11 fork; not in Debian's 6.1.192) the child keeps
        // the uffd-wp bit of a private huge page in its unregistered VMA: the model follows the switch.
        Add("wp-fork", "§2.1 #6, §3.5", "touch, protect (bit 57 = 1), fork without EVENT_FORK: the child sees no wp (on hugetlb-private before 6.4 it keeps it: hugetlb-fork-drops-wp); zap (DONTNEED shared, PAGEOUT private) and fork again: the parent keeps wp, the child never has it; un-protect and write",
            MemoryTypes.All, m => WpFork(m, false));
        Add("wp-fork-with-event", "§2.1 #7, §3.5", "as wp-fork with EVENT_FORK: the child keeps the wp bit on present and zapped (marker) PTEs",
            MemoryTypes.All, m => WpFork(m, true));

        // Upstream pins with gup_test (a read-only FOLL_LONGTERM pin, after the protect); the pin here is io_uring's
        // (FOLL_WRITE | FOLL_LONGTERM, native/harness/uffd_pin.c), a kernel-mode write: taken after the protect it raises a
        // WP fault and the handler un-protects the page (the last three steps show it), so it comes before the protect.
        // Step 2 pins in the child, as upstream; there the writable pin CoWs the shared page (with EVENT_FORK after a WP
        // fault on the child's uffd: the child ends without wp where upstream's read-only pin keeps it, §3.5).
        Scenario WpForkPin(MemoryType m, bool evfork) => NewScenario(evfork ? "wp-fork-pin-with-event" : "wp-fork-pin", m, WpFeatures(m) | (evfork ? F.EventFork : 0))
            .Then(Register(R.WriteProtect, 0, 1), Write(0, 0x7a1), Pin(0), WriteProtect(0), Fork(), Unpin(0), Fork(ChildPin(0)),
                  WriteProtect(0), Pin(0), Unpin(0));
        // On hugetlb-private before 6.4 (hugetlb-fork-drops-wp, §3.11 fork) the second fork leaves the child the stale
        // uffd-wp bit of the unpinned shared page: the child's pin (a write) retries forever, the op ends "blocked".
        Add("wp-fork-pin", "§2.1 #8, §3.5", "touch, long-term pin (io_uring fixed buffer), protect, fork: a pinned private anon page is copied for the child at once (early CoW) and the child has no wp; unpin, fork again and pin in the child (a CoW write, wp 0; on hugetlb-private before 6.4 the child keeps wp and its pin never completes: hugetlb-fork-drops-wp); then upstream's order: a pin after the protect is a write and takes a WP fault",
            MemoryTypes.All, m => WpForkPin(m, false), e => e.PinUnavailable);
        Add("wp-fork-pin-with-event", "§2.1 #9, §3.5", "as wp-fork-pin with EVENT_FORK: the early CoW copy keeps the wp bit in the child; the child's pin then takes a WP fault on the child's uffd",
            MemoryTypes.All, m => WpForkPin(m, true), e => e.PinUnavailable);

        Add("wp-unpopulated", "§2.1 #10, §3.3", "never-touched anon page, upstream's steps: WP installs a marker; un-WP clears it; WP then DONTNEED drops it (anon zap); a write then takes no WP fault; DONTNEED; WP then a read maps a page read-only with wp (the zero page where the zero-page fact holds); DONTNEED",
            [MemoryType.Anon], m => NewScenario("wp-unpopulated", m, F.PageFaultFlagWp | F.WpUnpopulated)
                .Then(Register(R.WriteProtect), WriteProtect(0), Unprotect(0), WriteProtect(0), DontNeed(0), Write(0, 0x81), DontNeed(0), WriteProtect(0), Read(0), DontNeed(0)));

        // Upstream's order: register MINOR, fill through the unregistered alias (no fault), read the registered side:
        // the handler inverts each page through the alias and CONTINUEs it, so the reads see ~p (HandlerPolicy.MinorInvertThrough).
        Add("minor", "§2.1 #11, §3.10", "register MINOR, fill the file through the unregistered alias (no fault); reading the registered mapping faults MINOR once per page, the handler inverts the page through the alias and CONTINUEs it, so it reads ~p; a repeated CONTINUE is EEXIST",
            [MemoryType.Shmem, MemoryType.Hugetlb], m => (NewScenario("minor", m, F.MinorShmem | F.MinorHugetlbfs, alias: true)
                .Then(Register(R.Minor), Write(0, 0x91, "al"), Write(1, 0x92, "al"), Write(2, 0x93, "al"), Write(3, 0x94, "al"),
                      Read(0), Read(1), Read(2), Read(3), Continue(0), Read(0, "al"))) with { Policy = new HandlerPolicy { MinorInvertThrough = "al" } });

        Add("minor-wp", "§2.1 #12, §1.4 CONTINUE MODE_WP", "as minor with MINOR|WP and CONTINUE(MODE_WP): pages are inverted through the alias and mapped read-only with wp, reading ~p; a write then faults WP",
            [MemoryType.Shmem, MemoryType.Hugetlb], m => (NewScenario("minor-wp", m, F.MinorShmem | F.MinorHugetlbfs | WpShmemFeatures, alias: true)
                .Then(Register(R.Minor | R.WriteProtect), Write(0, 0xa1, "al"), Write(1, 0xa2, "al"), Write(2, 0xa3, "al"), Write(3, 0xa4, "al"),
                      Read(0), Read(1), Read(2), Read(3), Write(0, 0xa5), Read(0, "al"))) with { Policy = new HandlerPolicy { ContinueWp = true, MinorInvertThrough = "al" } });

        // Upstream fills all 512 pages through the alias and reads all of them through the MINOR-registered mapping; here 4
        // pages of each end, the other 504 are holes that the collapse fills with zeros (max_ptes_none does not bind
        // MADV_COLLAPSE). Then the alias's PMD mapping (smaps ShmemPmdMapped) and its contents; the registered mapping's
        // PTEs were unmapped by the collapse, so its next read faults MINOR again.
        Add("minor-collapse", "§2.1 #13", "as minor over 2 MiB (the alias writes 4 pages, the MINOR-registered mapping reads them, CONTINUE each), then MADV_COLLAPSE of the alias: PMD-mapped (ShmemPmdMapped 2048 kB), holes zero, contents intact; the registered mapping's PTEs are gone and a read faults MINOR again (madv-collapse, 6.1)",
            [MemoryType.Shmem], m => NewScenario("minor-collapse", m, F.MinorShmem, pages: CollapseOp.PmdPages, alias: true)
                .Then(Write(0, 0x1301, "al"), Write(1, 0x1302, "al"), Write(510, 0x1303, "al"), Write(511, 0x1304, "al"), Register(R.Minor, 0, CollapseOp.PmdPages),
                      Read(0), Read(1), Read(510), Read(511), new CollapseOp("al"), Read(0, "al"), Read(2, "al"), Read(511, "al"), Read(1)),
            NeedsShmemThp);

        // Upstream's two parts: (1) faulting_process(1, wp) takes one SIGBUS per page of the first half, COPYs the page and
        // retries (with wp the write back SIGBUSes once more and is un-protected) — here natively in a fork child forked
        // while nothing is registered, on a uffd of its own (ChildSigbusLoop), since a SIGBUS would end the .NET host;
        // (2) the parent registers, releases the area, and a child forked with EVENT_FORK (SIGBUS is inherited) must be
        // signalled on every access, with no message but the FORK.
        Scenario Sigbus(MemoryType m, bool wp) =>
            NewScenario(wp ? "sigbus-wp" : "sigbus", m, F.Sigbus | F.EventFork | (wp ? WpFeatures(m) : 0))
                .Then(Fork(ChildSigbusLoop(0, 2, wp)), Register(wp ? R.Missing | R.WriteProtect : R.Missing), Release(m, 0, 4), Fork(ChildRead(0), ChildRead(1)));
        Add("sigbus", "§2.1 #14, §4.5", "upstream's sigbus loop in a fork child on a uffd of its own with FEATURE_SIGBUS: one SIGBUS per page, COPY and retry; then a child forked with EVENT_FORK (SIGBUS inherited) is signalled on every access, no message",
            MemoryTypes.All, m => Sigbus(m, false));

        Add("sigbus-wp", "§2.1 #15", "as sigbus with MISSING|WP: the first SIGBUS of each page is MISSING (COPY with MODE_WP), the write back raises the second (WP), which is un-protected",
            MemoryTypes.All, m => Sigbus(m, true));

        // Upstream's faulting_process(0) runs in the child (EVENT_FORK: its faults and events come on the child's uffd): it
        // reads and writes back (the same value: the handler's tag) the first half, mremaps the area, does the second
        // half, releases the whole area and reads zeros; the handler follows FORK, REMAP and REMOVE, and UNREGISTERs on
        // REMOVE (HandlerPolicy.UnregisterOnRemove), so the reads after the release fault no more.
        Scenario Events(MemoryType m, bool wp)
        {
            var steps = new List<ChildAccess>();
            void Half(int from, int to)
            {
                for (int p = from; p < to; p++)
                    steps.AddRange([ChildRead(p), ChildWrite(p, HandlerPolicy.CopyTag(0, p))]);
            }
            Half(0, 2);
            steps.Add(ChildMremap());
            Half(2, 4);
            steps.Add(ChildRelease(m, 0, 4));
            steps.AddRange(Enumerable.Range(0, 4).Select(p => ChildRead(p)));
            return (NewScenario(wp ? "events-wp" : "events", m, F.EventFork | F.EventRemap | F.EventRemove | (wp ? WpFeatures(m) : 0))
                .Then(Register(wp ? R.Missing | R.WriteProtect : R.Missing), Fork([.. steps]))) with
            {
                Policy = new HandlerPolicy { Missing = wp ? MissingPolicy.CopyWp : MissingPolicy.Copy, UnregisterOnRemove = true },
            };
        }
        Add("events", "§2.1 #16, §4.6", "a fork child (EVENT_FORK: its faults on the new uffd) reads and writes back half the pages, mremaps the area (REMAP), does the other half, releases it (REMOVE: the handler unregisters the range) and reads zeros without faults",
            MemoryTypes.All, m => Events(m, false));
        Add("events-wp", "§2.1 #17", "as events with MISSING|WP and COPY(MODE_WP): each write back raises a WP fault, which the handler un-protects",
            MemoryTypes.All, m => Events(m, true));

        // Upstream's reader is a thread; here it is a fork child (a SIGBUS would end the .NET host), with EVENT_FORK so
        // that its faults reach the handler, which resolves each as upstream's does: POISON even pages, COPY odd ones.
        Add("poison", "§2.1 #18, §3.10", "register MISSING (ioctls has COPY and POISON); a fork child (EVENT_FORK) reads all 4 pages and the handler resolves each fault as it comes: POISON even pages (the retried read gets SIGBUS), COPY odd ones; beyond upstream, the parent's kernel-mode writes to its own pages afterwards: EFAULT on page 0 (its MISSING fault is POISONed too), ok on page 1",
            MemoryTypes.All, m => (NewScenario("poison", m, F.Poison | F.EventFork)
                .Then(Register(R.Missing, observeIoctls: true), Fork(ChildRead(0), ChildRead(1), ChildRead(2), ChildRead(3)), KernelWrite(0, 0xe2), KernelWrite(1, 0xe3)))
                with { Policy = new HandlerPolicy { PoisonPages = [0, 2] } });

        Add("mmap-changing", "§2.1 #19, §1.6, §4.7", "while a REMOVE event is unread (the madvise blocked), COPY/ZEROPAGE/MOVE/POISON/CONTINUE are EAGAIN with -EAGAIN in the field, WRITEPROTECT EAGAIN, WAKE ok; after reading it COPY works",
            [MemoryType.Shmem], m => NewScenario("mmap-changing", m, F.EventRemove | F.Move | F.Poison | F.MinorShmem)
                .Then(Register(R.Missing), Remove(0, 2, hold: true), Copy(2, 0xf1), ZeroPage(2), new MoveOp("u0", "m0", 2, "m0", 3, 1), Poison(2), Continue(2), WriteProtect(2),
                      new WakeOp("u0", "m0", 0, 4), new DrainOp(), Copy(2, 0xf2)));

        // ================= §3 behaviours =================

        Add("fault-around", "§3.1", "a read maps up to 16 cached neighbours (the aligned 64 KiB window) in unregistered and MISSING-only VMAs, only the faulting page in WP, MISSING|WP and MINOR VMAs",
            MemoryTypes.AllShmem, m =>
            {
                var kind = MemoryTypes.PrimaryKind(m);
                var s = new Scenario
                {
                    Memory = m,
                    FilePages = 32,
                    Mappings = [new("none", kind, 32), new("miss", kind, 32), new("wp", kind, 32), new("misswp", kind, 32), new("minor", kind, 32)],
                    Uffds = [new UffdSpec("u0", WpShmemFeatures | F.MinorShmem)],
                };
                for (int p = 0; p < 32; p++)
                    s = s.Then(new PwriteOp(p, 0x100 + (ulong)p));
                return s.Then(Register(R.Missing, 0, 32, "miss"), Register(R.WriteProtect, 0, 32, "wp"), Register(R.Missing | R.WriteProtect, 0, 32, "misswp"), Register(R.Minor, 0, 32, "minor"),
                    Read(0, "none"), Read(0, "miss"), Read(0, "wp"), Read(0, "misswp"), Read(0, "minor"), Read(21, "none"), Read(21, "wp"));
            });

        Scenario MarkerSurvives(string name, MemoryType m, params ScenarioOp[] zap) =>
            NewScenario(name, m, MarkerFeatures(m), alias: true)
                .Then(Register(R.WriteProtect), Write(0, 0x201), WriteProtect(0, 2))
                .Then(zap)
                .Then(Write(0, 0x202), Write(1, 0x203), Read(0), Read(1));
        Add("marker-survives-dontneed", "§3.2", "a WP'd page and a never-touched WP'd page keep their wp state (markers) across MADV_DONTNEED on shmem; anon zaps drop them; later writes fault WRITE|WP",
            MemoryTypes.ModelledWithHugetlb, m => MarkerSurvives("marker-survives-dontneed", m, DontNeed(0, 2)));
        Add("marker-survives-punch", "§3.2", "markers survive fallocate(PUNCH_HOLE); a read refills the hole with a zero page mapped RO + wp without a message",
            MemoryTypes.SharedHugetlbToo, m => MarkerSurvives("marker-survives-punch", m, new PunchHoleOp(0, 2), Read(0)));
        Add("marker-survives-remove", "§3.2", "markers survive MADV_REMOVE (shared mappings; MAP_PRIVATE is EACCES)",
            MemoryTypes.SharedHugetlbToo, m => MarkerSurvives("marker-survives-remove", m, Remove(0, 2)));
        Add("marker-survives-truncate", "§3.2", "markers survive ftruncate shrink and regrow",
            MemoryTypes.SharedHugetlbToo, m => MarkerSurvives("marker-survives-truncate", m, new TruncateOp(1), new TruncateOp(0), new TruncateOp(4)));
        Add("marker-survives-mprotect", "§3.2, §3.7", "wp bits and markers survive an mprotect(PROT_READ)/mprotect(RW) round trip",
            MemoryTypes.ModelledWithHugetlb, m => MarkerSurvives("marker-survives-mprotect", m, new MprotectOp("m0", 0, 1), new MprotectOp("m0", 0, 4)));

        Add("marker-read", "§3.2, §3.3", "reading a marker maps the page read-only with wp and sends no message; writing it then faults WRITE|WP once",
            MemoryTypes.ModelledWithHugetlb, m => NewScenario("marker-read", m, MarkerFeatures(m))
                .Then(Register(R.WriteProtect), WriteProtect(0, 4), Read(0), Read(1), Write(1, 0x301), Write(2, 0x302), Read(2)));

        Add("alias-writes", "§3.2 alias and other writers", "writes through an unregistered alias mapping and pwrite(2) are never intercepted; the registered mapping's PTE stays RO + wp and its next write faults",
            MemoryTypes.AllShmem, m => NewScenario("alias-writes", m, WpShmemFeatures, alias: true)
                .Then(Register(R.WriteProtect), Write(0, 0x401), Read(1), WriteProtect(0, 3), Write(0, 0x402, "al"), new PwriteOp(1, 0x403), Write(2, 0x404, "al"),
                      new PreadOp(0), Read(0), Read(1), Read(2), Write(0, 0x405), new PreadOp(0)));

        Add("kernel-write", "§1.5, §0.4", "a kernel-mode write (read(2) into the page) is intercepted like a user write: MISSING 0x1, WP 0x3",
            MemoryTypes.ModelledWithHugetlb, m => NewScenario("kernel-write", m, WpFeatures(m))
                .Then(Register(R.Missing | R.WriteProtect), KernelWrite(0, 0x501), WriteProtect(0), KernelWrite(0, 0x502), Read(0)));
        Add("kernel-write-user-mode-only", "§1.1, §1.5", "with UFFD_USER_MODE_ONLY a kernel-mode write that would fault fails with EFAULT and no message; user-mode writes still fault",
            MemoryTypes.ModelledWithHugetlb, m => NewScenario("kernel-write-user-mode-only", m, WpFeatures(m), userModeOnly: true)
                .Then(Register(R.Missing | R.WriteProtect), KernelWrite(0, 0x511), Write(0, 0x512), WriteProtect(0), KernelWrite(0, 0x513), Read(0), Copy(1, 0x514), KernelWrite(1, 0x515), Read(1)));

        Add("fork-marker-event-write", "§3.5, §3.2", "a marker kept by a zap, then fork with EVENT_FORK: the child has the marker and a registered VMA; its write faults WP on the child's uffd, is resolved there, and the parent keeps its markers",
            MemoryTypes.ModelledWithHugetlb, m => NewScenario("fork-marker-event-write", m, MarkerFeatures(m) | F.EventFork)
                .Then(Register(R.WriteProtect), Write(0, 0x601), WriteProtect(0, 2), DontNeed(0), Fork(ChildWrite(0, 0x602), ChildRead(1), ChildWrite(1, 0x603)))
                .Then(MemoryTypes.IsFileBacked(m) ? [new PreadOp(0), new PreadOp(1)] : [])
                .Then(Read(0), Read(1)));
        // On hugetlb-private before 6.4 (hugetlb-fork-drops-wp) the child keeps wp and its write retries forever:
        // the model says "blocked", the executor kills the child that made no progress for the op's bound.
        Add("fork-no-event", "§3.5", "fork without EVENT_FORK: the child's VMA is unregistered, its anon pages lose wp (private hugetlb pages only from 6.4: before, the child's write retries forever), shared shmem PTEs are not copied at all, markers are gone",
            MemoryTypes.All, m => NewScenario("fork-no-event", m, MarkerFeatures(m))
                .Then(Register(R.WriteProtect), Write(0, 0x611), Read(1), WriteProtect(0, 3), Fork(ChildRead(0), ChildWrite(1, 0x612), ChildWrite(2, 0x613)), Read(1)));

        Add("mremap-no-event", "§3.6", "mremap without EVENT_REMAP: the moved VMA is unregistered and its wp bits and markers are cleared (6.13+, CVE-2025-21696); writes no longer fault",
            MemoryTypes.ModelledWithHugetlb, m => NewScenario("mremap-no-event", m, MarkerFeatures(m))
                .Then(Register(R.WriteProtect), Write(0, 0x701), WriteProtect(0, 2), new MremapOp("m0"), Write(0, 0x702), Write(1, 0x703), Read(0)));
        Add("mremap-event", "§3.6", "mremap with EVENT_REMAP: a REMAP event, and the registration and wp state (markers included) move with the VMA",
            MemoryTypes.ModelledWithHugetlb, m => NewScenario("mremap-event", m, MarkerFeatures(m) | F.EventRemap)
                .Then(Register(R.WriteProtect), Write(0, 0x711), WriteProtect(0, 2), new MremapOp("m0"), Write(0, 0x712), Write(1, 0x713), Read(0)));

        Add("unregister-clears-wp", "§1.4 UNREGISTER", "UNREGISTER clears wp bits and markers (~6.0); a partial unregister splits the VMA",
            MemoryTypes.ModelledWithHugetlb, m => NewScenario("unregister-clears-wp", m, MarkerFeatures(m))
                .Then(Register(R.WriteProtect), Write(0, 0x801), WriteProtect(0, 4), Unregister(0, 2), Write(0, 0x802), Write(2, 0x803), Unregister(), Read(3)));
        Add("unregister-other-uffd", "§1.4 UNREGISTER, §0.8", "a second uffd of the same mm: REGISTER over the first's VMA is EBUSY, COPY and WRITEPROTECT into it work, UNREGISTER through it is EINVAL (~6.17)",
            MemoryTypes.ModelledWithHugetlb, m => NewScenario("unregister-other-uffd", m, WpFeatures(m))
                .AddUffd(new UffdSpec("u1", WpFeatures(m)))
                .Then(Register(R.Missing | R.WriteProtect), Register(R.Missing, uffd: "u1"), Copy(0, 0x811, uffd: "u1"), WriteProtect(0, uffd: "u1"), Unregister(0, 4, uffd: "u1"), Write(0, 0x812), Read(1)));
        Add("close-clears-wp", "§1.5 close()", "close(uffd) unregisters and clears wp bits and markers (6.9+, CVE-2024-36881); writes then proceed without messages",
            MemoryTypes.ModelledWithHugetlb, m => NewScenario("close-clears-wp", m, MarkerFeatures(m))
                .Then(Register(R.WriteProtect), Write(0, 0x901), WriteProtect(0, 2), new CloseOp("u0"), Write(0, 0x902), Write(1, 0x903)));

        Add("missing-wp-ordering", "§3.2 MISSING|WP", "MISSING|WP with COPY(MODE_WP): a write to a marker with no page cache faults MISSING then WP; with page cache only WP; COPY without MODE_WP onto a marker drops the wp bit",
            MemoryTypes.ModelledWithHugetlb, m => NewScenario("missing-wp-ordering", m, MarkerFeatures(m), alias: MemoryTypes.IsHugetlb(m))
                // hugetlbfs has no write(2) (§3.11): its page cache is filled through the unregistered alias.
                .Then(MemoryTypes.IsHugetlb(m) ? [Write(1, 0xa01, "al")] : MemoryTypes.IsFileBacked(m) ? [new PwriteOp(1, 0xa01)] : [])
                .Then(Register(R.Missing | R.WriteProtect), WriteProtect(0, 3), Write(0, 0xa02), Write(1, 0xa03), Copy(2, 0xa04), Write(2, 0xa05))
                .WithPolicy(MissingPolicy.CopyWp));

        Add("reregister-replaces-modes", "§0.9, §1.4 REGISTER", "re-registering with other modes replaces them (MISSING then WP gives WP only); a subset is a no-op",
            MemoryTypes.ModelledWithHugetlb, m => NewScenario("reregister-replaces-modes", m, WpFeatures(m))
                .Then(Register(R.Missing), Register(R.WriteProtect), Read(0), Register(R.Missing | R.WriteProtect), Register(R.WriteProtect), Read(1), WriteProtect(1), Write(1, 0xb01)));

        Add("reregister-drops-wp", "§1.4 REGISTER (7.3: notes B12)", "re-registering a WP VMA of the same uffd without WP: the modes are replaced and the wp bit stays behind (through 7.2), or EBUSY and the VMA stays WP-only (7.3, reregister-keeps-wp); the next read tells which",
            MemoryTypes.ModelledWithHugetlb, m => NewScenario("reregister-drops-wp", m, WpFeatures(m))
                .Then(Register(R.WriteProtect), Write(0, 0xb11), WriteProtect(0), Register(R.Missing), Read(1)));

        Add("reregister-merges-anon-vma", "mm/vma.c is_mergeable_anon_vma (6.16)", "registration walks the VMAs in order: re-registering [0,4) after a fault gave [2,4) an anon_vma merges it into [0,2) only from 6.16 (vma-merge-anon-vma); before, a COPY over both VMAs is ENOENT. Found on Debian 6.12.118 (private file and anonymous memory)",
            MemoryTypes.Modelled, m => NewScenario("reregister-merges-anon-vma", m, WpFeatures(m))
                .Then(Register(R.Missing, 2, 2), Read(3), Register(R.Missing | R.WriteProtect, 0, 4), Copy(0, 0xb21, 4), Read(0)));

        Add("fill-checks-registration", "§0.8, §1.4", "the fill ioctls check only that the VMA is registered, not the mode: COPY/ZEROPAGE into a WP-only VMA, CONTINUE into a MISSING-only one work; MODE_WP needs WP (EINVAL); an unregistered range is ENOENT; WRITEPROTECT needs WP (ENOENT)",
            MemoryTypes.ModelledWithHugetlb, m => NewScenario("fill-checks-registration", m, WpFeatures(m), alias: true)
                .Then(Register(R.WriteProtect, 0, 2), Register(R.Missing, 2, 2), Copy(0, 0xc01), ZeroPage(1), Copy(2, 0xc02, wp: true), WriteProtect(2), Copy(3, 0xc03, 1, mapping: MemoryTypes.IsFileBacked(m) ? "al" : "m0"))
                .Then(MemoryTypes.IsFileBacked(m) ? [Write(3, 0xc04, "al"), Continue(3)] : [Continue(3)])
                .Then(Read(0), Read(1), Read(2), Read(3)));

        Add("multi-vma-writeprotect", "§1.4 WRITEPROTECT", "WRITEPROTECT over two WP-registered VMAs (~6.4); over a WP VMA and a non-WP one it is ENOENT with the first VMA already protected",
            MemoryTypes.ModelledWithHugetlb, m => NewScenario("multi-vma-writeprotect", m, WpFeatures(m), pages: 6)
                .Then(Write(0, 0xd01), Write(2, 0xd02), Write(4, 0xd03), Register(R.Missing | R.WriteProtect, 0, 2), Register(R.WriteProtect, 2, 2), Register(R.Missing, 4, 2),
                      WriteProtect(0, 4), Unprotect(0, 4), WriteProtect(2, 4), Read(2)));

        Add("continue-mode-wp", "§1.4 CONTINUE", "UFFDIO_CONTINUE with MODE_WP (6.4+) maps the cached page read-only with wp; without WP registration it is EINVAL",
            MemoryTypes.AllShmem, m => NewScenario("continue-mode-wp", m, F.MinorShmem | WpShmemFeatures)
                .Then(new PwriteOp(0, 0xe01), new PwriteOp(1, 0xe02), new PwriteOp(2, 0xe03), Register(R.Minor | R.WriteProtect, 0, 2), Register(R.Minor, 2, 2),
                      Continue(0, wp: true), Continue(1), Continue(2, wp: true), Read(0), Write(0, 0xe04), Read(1)));

        Add("wp-async", "§3.4", "WP_ASYNC (6.7+): writes to protected pages drop the wp bit without a message; PAGEMAP_SCAN(WP_MATCHING) reports the written pages and re-protects them",
            MemoryTypes.Modelled, m => NewScenario("wp-async", m, F.WpAsync | WpFeatures(m))
                .Then(Write(0, 0xf01), Write(1, 0xf02), Write(2, 0xf03), Register(R.WriteProtect), WriteProtect(0, 3), Write(1, 0xf04), Write(3, 0xf05),
                      new ScanOp("m0", WpMatching: true), Write(1, 0xf06), Read(1)));

        Add("pagemap-scan", "§1.7 PAGEMAP_SCAN", "PAGEMAP_SCAN (6.7+) for written (not wp) pages: categories present/file/pfn-zero/swapped per region",
            MemoryTypes.Modelled, m => NewScenario("pagemap-scan", m, MarkerFeatures(m), pages: 6)
                .Then(Register(R.WriteProtect, 0, 6), Write(0, 0xf11), Read(1), Write(2, 0xf12), WriteProtect(2, 4), new ScanOp("m0"), Unprotect(2, 2), Write(3, 0xf13), WriteProtect(2), new ScanOp("m0")));

        Add("eagain-result-field", "§1.6, §4.7 (~6.15)", "with a REMOVE event unread, COPY/ZEROPAGE/CONTINUE fail EAGAIN and write -EAGAIN into their result field (left untouched before ~6.15)",
            MemoryTypes.Modelled, m => NewScenario("eagain-result-field", m, F.EventRemove | F.MinorShmem)
                .Then(Register(R.Missing), DontNeed(0, 2, hold: true), Copy(2, 0x1001), ZeroPage(3), Continue(3), new DrainOp(), Copy(2, 0x1002), Read(2)));

        Add("poison-vs-markers", "§3.10", "POISON refuses a WP marker (EEXIST) and a present page; COPY overwrites a poison marker",
            MemoryTypes.ModelledWithHugetlb, m => NewScenario("poison-vs-markers", m, F.Poison | MarkerFeatures(m))
                .Then(Register(R.Missing | R.WriteProtect), WriteProtect(0), Poison(0), Poison(1), Copy(1, 0x1101), Copy(2, 0x1102), Poison(2), KernelWrite(0, 0x1103), Fork(ChildRead(1), ChildRead(2))));

        // ================= §1.5 "Waking a blocked thread": a fault left unresolved (HoldOp) =================
        // Each is also a probe row (BehaviourRows.Wake.cs). The held access is on a native worker; the executor
        // synchronises on its message, fdinfo pending/total and its thread state, and releases it at the end.

        Add("unregister-wakes-missing-reader", "§1.4 UNREGISTER, §1.5", "UNREGISTER of a range with a blocked MISSING reader wakes it: it re-faults without uffd, an ordinary fault (no second message), and reads 0",
            MemoryTypes.Modelled, m => NewScenario("unregister-wakes-missing-reader", m)
                .Then(Register(R.Missing), HoldRead(1), Unregister()));

        Add("unregister-keeps-wp-waiter", "§1.4 UNREGISTER, §1.5", "UNREGISTER of a WP-only range leaves a blocked WP writer asleep (its wp bit already cleared: a handler that unregisters instead of resolving hangs it); a WAKE then lets it write, with no second message",
            MemoryTypes.Modelled, m => NewScenario("unregister-keeps-wp-waiter", m, WpFeatures(m))
                .Then(Write(1, 0x1201), Register(R.WriteProtect), WriteProtect(1), HoldWrite(1, 0x1202), Unregister(), Wake(1))
                .Then(MemoryTypes.IsFileBacked(m) ? [new PreadOp(1)] : []));

        Add("unregister-wakes-wp-waiter-of-missing-vma", "§1.4 UNREGISTER, §1.5", "UNREGISTER wakes by the VMA's MISSING mode, not the waiter's kind: a blocked WP writer in a MISSING|WP range is woken and writes",
            MemoryTypes.Modelled, m => NewScenario("unregister-wakes-wp-waiter-of-missing-vma", m, WpFeatures(m))
                .Then(Write(1, 0x1211), Register(R.Missing | R.WriteProtect), WriteProtect(1), HoldWrite(1, 0x1212), Unregister())
                .Then(MemoryTypes.IsFileBacked(m) ? [new PreadOp(1)] : []));

        Add("unregister-keeps-minor-waiter", "§1.4 UNREGISTER, §1.5", "UNREGISTER of a MINOR-only range leaves a blocked MINOR reader asleep (the 2022 patch to wake MINOR waiters is not merged); a WAKE lets it re-fault without uffd and read the page cache",
            MemoryTypes.AllShmem, m => NewScenario("unregister-keeps-minor-waiter", m, F.MinorShmem)
                .Then(new PwriteOp(1, 0x1221), Register(R.Minor), HoldRead(1), Unregister(), Wake(1)));

        Add("copy-dontwake", "§1.4 COPY, §1.5", "COPY with MODE_DONTWAKE maps the page under a blocked reader and leaves it asleep; a WAKE of another page does not reach it; a WAKE of its page releases it and it reads the copy, with no second message",
            MemoryTypes.Modelled, m => NewScenario("copy-dontwake", m)
                .Then(Register(R.Missing), HoldRead(1), Copy(1, 0x1301, dontWake: true), Wake(2), Wake(1)));

        Add("wake-refaults", "§1.4 WAKE, §1.5", "UFFDIO_WAKE without a resolution wakes a blocked reader, which faults again: a second message; ZEROPAGE then releases it",
            MemoryTypes.Modelled, m => NewScenario("wake-refaults", m)
                .Then(Register(R.Missing), HoldRead(1), Wake(1), ZeroPage(1)));

        Add("signal-refaults", "§1.5, §4.5", "a signal to a thread blocked in a user-mode fault: the handler runs and the load faults again, one second message with the same address and flags; a COPY then releases it",
            MemoryTypes.Modelled, m => NewScenario("signal-refaults", m)
                .Then(Register(R.Missing), HoldRead(1), SignalHeld(), Copy(1, 0x1401)));

        Add("signal-kernel-fault-retried", "§1.5, §4.5", "a signal to a thread blocked in a kernel-mode fault (read(2) into the page, full uffd): no EINTR or EFAULT; it is retried without sleeping, a message each time, until a COPY resolves the page; read(2) then returns all 8 bytes and only then does the handler run",
            MemoryTypes.Modelled, m => NewScenario("signal-kernel-fault-retried", m)
                .Then(Register(R.Missing), HoldKernelWrite(1, 0x1501), SignalHeld(), Copy(1, 0x1502)));

        return list;
    }
}
