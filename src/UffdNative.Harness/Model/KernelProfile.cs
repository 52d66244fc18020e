using System.Collections.Immutable;

namespace UffdNative.Harness.Model;

/// <summary>
/// One behaviour that changed between kernel versions: a switch of <see cref="KernelProfile"/>.
/// <see cref="Since"/> is the mainline release that introduced the new behaviour (reference
/// docs/kernel-reference.md §3 and §0a). Stable and distribution kernels carry backports, so the profile a
/// check uses is detected by experiment (Probing) and this version is only the prior.
/// </summary>
public sealed record ProfileSwitch(string Name, KernelVersion Since, string Section, string NewBehaviour, string OldBehaviour)
{
    /// <summary>For switches whose change was later reverted (the 914eedcb window): the first
    /// mainline release without it. Null: still in effect.</summary>
    public KernelVersion? Until { get; init; }

    /// <summary>False for a switch no model rule reads: detected and reported by probe (a kernel finding, a
    /// behaviour no scenario op can reach), never a cause of a check divergence.</summary>
    public bool Modelled { get; init; } = true;

    /// <summary>A switch whose rules are reached only when this other switch is on (the scan switches need
    /// PAGEMAP_SCAN): under a profile without it, no scenario can show this one.</summary>
    public string? Needs { get; init; }

    /// <summary>A switch whose rules are reached only in hugetlb cells: where no 2 MiB page is free, no scenario can show it.</summary>
    public bool HugetlbOnly { get; init; }

    public bool MainlineValue(KernelVersion v) => v >= Since && (Until is not { } u || v < u);
}

/// <summary>
/// The version-dependent behaviours of userfaultfd the model is parameterised by. A switch is true
/// when the kernel shows the *new* behaviour. Build one with <see cref="Mainline"/> (the prior from a
/// version number), from detectors (what this kernel really does), or by overriding single switches.
/// </summary>
public sealed record KernelProfile
{
    // Names are stable identifiers: used by --profile overrides, probe JSON and reports.
    public const string WpShmem = "wp-shmem-markers";
    public const string FaultAroundOffMinor = "fault-around-off-minor";
    public const string FaultAroundOffWp = "fault-around-off-wp";
    public const string WpUnpopulated = "wp-unpopulated";
    public const string UnregisterClearsWp = "unregister-clears-wp";
    public const string CloseClearsWp = "close-clears-wp";
    public const string MremapClearsWp = "mremap-clears-wp";
    public const string EagainResultField = "eagain-result-field";
    public const string UnregisterOtherUffdEinval = "unregister-other-uffd-einval";
    public const string UnknownFeatureAccepted = "unknown-feature-accepted";
    public const string ContinueModeWp = "continue-mode-wp";
    public const string MultiVmaWriteProtect = "multi-vma-writeprotect";
    public const string Poison = "poison";
    public const string WpAsync = "wp-async";
    public const string PagemapScan = "pagemap-scan";
    public const string Move = "move";
    public const string RegisterMaskMovePoison = "register-mask-move-poison";
    public const string ExactAddress = "exact-address";
    public const string MinorShmem = "minor-shmem";
    public const string DevUserfaultfd = "dev-userfaultfd";
    public const string UserModeOnly = "user-mode-only";
    public const string PagemapWpAnon = "pagemap-wp-anon";
    public const string ContinueIoctl = "continue-ioctl";
    public const string VmaMergeAnonVma = "vma-merge-anon-vma";
    public const string CopyOverGuardEexist = "copy-over-guard-eexist";
    public const string MinAddrNotValidated = "min-addr-not-validated";
    public const string ShmemFillBeyondEof = "shmem-fill-beyond-eof";
    public const string SpecialVmaWpAsyncEinval = "special-vma-wp-async-einval";
    public const string ScanNoneWritten = "scan-none-written";
    public const string ScanHoleWritten = "scan-hole-written";
    public const string ReregisterKeepsWp = "reregister-keeps-wp";
    public const string ScanWrittenWpOnly = "scan-written-wp-only";
    public const string HugetlbForkDropsWp = "hugetlb-fork-drops-wp";
    public const string MadvCollapse = "madv-collapse";
    public const string PinFaultWaits = "pin-fault-waits";

    /// <summary>The newest mainline release whose behaviour this table describes (the research behind the
    /// switches after 6.18 read Debian's 6.19, 7.1, 7.2 and 7.3-rc7 sources). A kernel newer than this may
    /// behave in ways no switch covers: probe says so ("newer than the model").</summary>
    public static readonly KernelVersion NewestKnown = new(7, 3);

    /// <summary>The UFFDIO_API feature bits the model has rules for (bits 0–16, through UFFD_FEATURE_MOVE).
    /// Bits the binding can name but the model does not model (RWP, RWP_ASYNC: 7.3), and bits nobody here
    /// knows, are reported as "newer than the model" by probe, never judged.</summary>
    public const ulong ModelledFeatures = 0x1ffff;

    public static readonly ImmutableArray<ProfileSwitch> Switches =
    [
        new(WpShmem, new(5, 19), "§3.2", "WP registration on shmem; WP on a none PTE installs a marker that survives zaps", "WP on shmem is EINVAL"),
        new(FaultAroundOffMinor, new(5, 14), "§3.1", "no fault-around on MINOR-registered VMAs (1 page mapped per read)", "fault-around maps neighbours"),
        new(FaultAroundOffWp, new(5, 19), "§3.1", "no fault-around on WP-registered VMAs (1 page mapped per read)", "fault-around maps up to 16 neighbours"),
        new(WpUnpopulated, new(6, 4), "§3.3", "UFFD_FEATURE_WP_UNPOPULATED: anon WP marks none PTEs", "anon WP skips none PTEs"),
        new(UnregisterClearsWp, new(6, 0), "§1.4 UFFDIO_UNREGISTER", "UNREGISTER clears wp bits and markers", "stale wp bits stay after UNREGISTER"),
        new(CloseClearsWp, new(6, 9), "§1.5 close()", "close(uffd) clears wp bits and markers (CVE-2024-36881)", "stale wp bits stay after close"),
        new(MremapClearsWp, new(6, 13), "§3.6", "mremap without EVENT_REMAP clears wp bits (CVE-2025-21696)", "stale wp bits move with the pages"),
        new(EagainResultField, new(6, 15), "§1.6, §4.7", "EAGAIN on the mmap-changing path writes -EAGAIN into the result field", "the result field is left unwritten"),
        new(UnregisterOtherUffdEinval, new(6, 17), "§1.4 UFFDIO_UNREGISTER", "UNREGISTER through another uffd of the same mm is EINVAL", "it returns 0 and unregisters"),
        new(UnknownFeatureAccepted, new(6, 0), "§1.2 old-kernel quirk", "UFFDIO_API accepts unknown features and api != 0xAA (914eedcb)", "both are EINVAL") { Until = new(6, 3) },
        new(ContinueModeWp, new(6, 4), "§1.4 UFFDIO_CONTINUE", "UFFDIO_CONTINUE_MODE_WP maps read-only with wp", "CONTINUE with mode WP is EINVAL"),
        new(MultiVmaWriteProtect, new(6, 4), "§1.4 UFFDIO_WRITEPROTECT", "WRITEPROTECT may span several WP-registered VMAs", "a range over two VMAs is ENOENT, no partial effect"),
        new(Poison, new(6, 6), "§1.4 UFFDIO_POISON", "UFFD_FEATURE_POISON and UFFDIO_POISON", "no POISON"),
        new(WpAsync, new(6, 7), "§3.4", "UFFD_FEATURE_WP_ASYNC", "no async WP"),
        new(PagemapScan, new(6, 7), "§1.7", "PAGEMAP_SCAN ioctl on pagemap", "ENOTTY"),
        new(Move, new(6, 8), "§1.4 UFFDIO_MOVE", "UFFD_FEATURE_MOVE and UFFDIO_MOVE", "no MOVE"),
        new(RegisterMaskMovePoison, new(6, 8), "§0a", "REGISTER's ioctl mask includes MOVE and POISON (anon/shmem MISSING 0x13c)", "mask without them (MISSING 0x1c)"),
        new(ExactAddress, new(5, 18), "§1.2", "UFFD_FEATURE_EXACT_ADDRESS", "addresses always page-masked"),
        new(MinorShmem, new(5, 14), "§1.3", "MINOR registration on shmem", "MINOR on shmem is EINVAL"),
        new(DevUserfaultfd, new(6, 1), "§1.1", "/dev/userfaultfd with USERFAULTFD_IOC_NEW", "no device"),
        new(UserModeOnly, new(5, 11), "§1.1", "UFFD_USER_MODE_ONLY", "flag is EINVAL"),
        new(PagemapWpAnon, new(5, 13), "§1.7 (\"mm/pagemap: export uffd-wp protection information\")", "pagemap bit 57 shows the uffd-wp bit of anonymous PTEs", "bit 57 is never set for anonymous PTEs: a wp bit cannot be observed"),
        new(ContinueIoctl, new(5, 13), "§1.4 UFFDIO_CONTINUE (\"userfaultfd: add UFFDIO_CONTINUE ioctl\")", "UFFDIO_CONTINUE is a known ioctl: validated, errors written into 'mapped'", "an unknown ioctl: EINVAL before 'mapped' is written"),
        new(VmaMergeAnonVma, new(6, 16), "mm/vma.c is_mergeable_anon_vma (\"mm/vma: fix incorrectly disallowed anonymous VMA merges\")",
            "a VMA whose flags change merges with a neighbour that has no anon_vma even when it has one (re-registration joins the VMAs)",
            "refused (list_is_singular of the neighbour's empty anon_vma_chain): the VMAs stay split, so a fill over both is ENOENT"),
        new(CopyOverGuardEexist, new(6, 19), "§1.4 COPY (\"mm: correctly handle UFFD PTE markers\")", "COPY onto a guard-region marker (MADV_GUARD_INSTALL) is EEXIST", "COPY overwrites the guard marker") { Modelled = false },
        new(MinAddrNotValidated, new(7, 1), "§1.4 validate_range (161ce69c2c89, Cc stable: seen in 5.10.262, 6.1.192, 6.12.117, 6.18.44)",
            "ranges below vm.mmap_min_addr are no longer refused up front: COPY with src below it is EFAULT (copy=-14)", "EINVAL before the lookup, the result field untouched") { Modelled = false },
        new(ShmemFillBeyondEof, new(7, 1), "§1.4 COPY/CONTINUE (vm_uffd_ops rework)",
            "beyond i_size: COPY/ZEROPAGE into MAP_SHARED shmem ENOMEM, CONTINUE EFAULT", "COPY/ZEROPAGE EFAULT, CONTINUE EINVAL"),
        new(SpecialVmaWpAsyncEinval, new(7, 2), "§1.3 vma_can_userfault (\"userfaultfd: prevent registration of special VMAs\", Cc stable: 7.1.13, 6.12.117)",
            "with a WP_ASYNC uffd, WP registration of a special mapping ([vvar]: VM_PFNMAP) is EINVAL", "EPERM (it passes vma_can_userfault, then fails the VM_MAYWRITE check)") { Modelled = false },
        new(ScanNoneWritten, new(7, 2), "§1.7 PAGEMAP_SCAN (\"fix PAGEMAP_SCAN written state for unpopulated ptes\", Cc stable: 7.1.13, 6.12.117)",
            "a none PTE inside a page table is reported PAGE_IS_WRITTEN (and armed by WP_MATCHING)", "a none PTE has no category") { Needs = PagemapScan },
        new(ScanHoleWritten, new(7, 2), "§1.7 PAGEMAP_SCAN (\"fix PAGEMAP_SCAN written state for PMD holes\", Cc stable: 7.1.13, 6.12.117)",
            "a range without a page table in a uffd-wp VMA is reported PAGE_IS_WRITTEN", "not reported") { Needs = PagemapScan },
        new(ReregisterKeepsWp, new(7, 3), "§1.4 REGISTER (RWP series, patch 09)", "re-registering a VMA of the same uffd without WP is EBUSY (unregister first)",
            "the modes are replaced; the wp bits stay behind on a VMA without VM_UFFD_WP"),
        new(ScanWrittenWpOnly, new(7, 3), "§1.7 PAGEMAP_SCAN (\"mm/pagemap: add PAGE_IS_ACCESSED for RWP tracking\")",
            "PAGE_IS_WRITTEN only on uffd-wp VMAs", "any present page without the wp bit, in any VMA, is WRITTEN") { Needs = PagemapScan },
        new(HugetlbForkDropsWp, new(6, 4), "§3.11 fork (\"mm/hugetlb: fix uffd-wp during fork()\", Cc stable 5.19+, not in Debian's 6.1.192)",
            "a fork child without EVENT_FORK has no uffd-wp bit on private hugetlb pages",
            "the child keeps the uffd-wp bit of private hugetlb pages in its unregistered VMA; its write to such a page retries forever (hugetlb_wp never CoWs a uffd-wp page)") { HugetlbOnly = true },
        new(MadvCollapse, new(6, 1), "§2.1 #13 (\"mm/madvise: add file and shmem support to MADV_COLLAPSE\")",
            "MADV_COLLAPSE collapses a shmem range into a huge page and PMD-maps it in the calling mapping (even with shmem_enabled=never: it is forced; deny refuses)",
            "MADV_COLLAPSE is an unknown advice: EINVAL"),
        // 1943f96b3816 ("io_uring: unify io_pin_pages()", 6.10) replaced rsrc.c's pin_user_pages under mmap_read_lock
        // with pin_user_pages_fast (read from the patch; measured old on Debian's 5.10.262 and 6.1.192, new on 6.12.118,
        // 7.2 and 7.3). The detector decides on every real kernel.
        new(PinFaultWaits, new(6, 10), "§3.5 pins (io_uring fixed buffers: io_pin_pages, 1943f96b3816 \"io_uring: unify io_pin_pages()\")",
            "a long-term pin that faults on a uffd-registered page waits for the handler (pin_user_pages_fast: the GUP fault may retry), then pins",
            "the pin fails EFAULT at once, with no message (pin_user_pages under mmap_read_lock: no FAULT_FLAG_ALLOW_RETRY, so handle_userfault gives VM_FAULT_SIGBUS)"),
    ];

    public static ProfileSwitch Describe(string name) =>
        Switches.FirstOrDefault(s => s.Name == name) ?? throw new ArgumentException($"unknown profile switch '{name}'; known: {string.Join(", ", Switches.Select(s => s.Name))}");

    /// <summary>Where this profile came from: "mainline 6.1", "detected on 6.18.44-fc-v669", ...</summary>
    public string Origin { get; init; } = "";

    /// <summary>The kernel version the profile is for (the prior's version, or the running one).</summary>
    public KernelVersion Version { get; init; }

    /// <summary>Switch values; a switch absent from the map is false.</summary>
    public ImmutableDictionary<string, bool> Values { get; init; } = ImmutableDictionary<string, bool>.Empty;

    /// <summary>Facts of this kernel's build, boot and configuration (zero page, fault-around, ...): detected,
    /// never implied by the version. A mainline profile carries mainline's defaults.</summary>
    public EnvironmentFacts Facts { get; init; } = EnvironmentFacts.Mainline;

    public bool this[string name] => Values.TryGetValue(name, out var v) && v;

    public bool Has(string name) => this[name];

    /// <summary>The answer mainline release v.x (patch level ignored) gives for every switch.</summary>
    public static KernelProfile Mainline(KernelVersion v)
    {
        var major = new KernelVersion(v.Major, v.Minor);
        var b = ImmutableDictionary.CreateBuilder<string, bool>();
        foreach (var s in Switches)
            b[s.Name] = s.MainlineValue(major);
        return new KernelProfile { Origin = $"mainline {major}", Version = major, Values = b.ToImmutable() };
    }

    /// <summary>"6.1" → the mainline 6.1 profile.</summary>
    public static KernelProfile Mainline(string version) => Mainline(KernelVersion.Parse(version));

    public KernelProfile With(string name, bool value)
    {
        Describe(name);
        return this with { Values = Values.SetItem(name, value), Origin = Origin + $" +{name}={(value ? "new" : "old")}" };
    }

    /// <summary>This profile with other environment facts (and their difference from mainline in its origin).</summary>
    public KernelProfile WithFacts(EnvironmentFacts facts)
    {
        var diff = facts.DifferenceText();
        return this with { Facts = facts, Origin = diff.Length == 0 ? Origin : $"{Origin} + {diff}" };
    }

    /// <summary>Applies "name=new|old|true|false" switch overrides and "fact=value" environment-fact
    /// overrides (comma separated; e.g. anon-read-zero-page=off, fault-around-pages=1).</summary>
    public KernelProfile WithOverrides(string? spec)
    {
        var p = this;
        if (string.IsNullOrWhiteSpace(spec))
            return p;
        foreach (var part in spec.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var kv = part.Split('=', 2);
            if (kv.Length != 2)
                throw new FormatException($"profile override '{part}' must be name=new or name=old");
            if (EnvironmentFacts.IsFact(kv[0]))
            {
                p = p with { Facts = p.Facts.With(kv[0], kv[1]), Origin = p.Origin + $" +{kv[0]}={kv[1]}" };
                continue;
            }
            bool value = kv[1] switch
            {
                "new" or "true" or "1" or "yes" => true,
                "old" or "false" or "0" or "no" => false,
                _ => throw new FormatException($"profile override '{part}': value must be new/old (or true/false)"),
            };
            p = p.With(kv[0], value);
        }
        return p;
    }

    /// <summary>Switches whose values differ between two profiles.</summary>
    public IEnumerable<ProfileSwitch> Differences(KernelProfile other) => Switches.Where(s => this[s.Name] != other[s.Name]);

    /// <summary>Names of the switches and the predictive environment facts that differ between two profiles
    /// (what a divergence can be attributed to).</summary>
    public IEnumerable<string> DifferingNames(KernelProfile other) =>
        Differences(other).Select(s => s.Name).Concat(Facts.PredictiveDifferences(other.Facts).Select(f => f.Name));
}
