using System.Globalization;
using UffdNative.Harness.Model;
using UffdNative.Harness.Native;
using UffdNative.PageMap;

namespace UffdNative.Harness.Probing;

/// <summary>
/// What one environment-fact detector found: the value (null when the experiment could not decide; the
/// profile then keeps mainline's default), the raw evidence, and — where the value differs from mainline —
/// the boot parameter, sysctl or sysfs setting that explains it (null when nothing visible names it).
/// </summary>
public sealed record FactFinding(string Name, string? Value, string Evidence, string? Cause)
{
    public FactSpec Spec => EnvironmentFacts.Describe(Name);

    /// <summary>Differs from mainline's default (facts without a default never differ).</summary>
    public bool DiffersFromMainline => Value is not null && Spec.Mainline is { } m && Value != m;
}

/// <summary>
/// One detector per <see cref="EnvironmentFacts"/> fact (reference §0b). The predictive facts are
/// decided by experiment — a real fault and its pagemap evidence — never by the machine's name, version
/// or a setting alone; settings are read as the explanation. Shared by <c>probe</c> (its "environment
/// facts" section) and <see cref="ProfileDetector"/> (the profile every check and fuzz run uses).
/// </summary>
public static class FactDetectors
{
    private static ulong P => Lab.Page;
    private const ulong Huge = 2UL << 20;

    public static (EnvironmentFacts Facts, IReadOnlyList<FactFinding> Findings) DetectAll(Lab lab)
    {
        var findings = new List<FactFinding>
        {
            Guard(EnvironmentFacts.AnonReadZeroPageName, () => AnonReadZeroPage(lab)),
            Guard(EnvironmentFacts.HugeZeroPageName, () => HugeZeroPage(lab)),
            Guard(EnvironmentFacts.FaultAroundPagesName, () => FaultAroundPages(lab)),
            PageSize(),
            ThpAnon(),
            ThpShmem(),
            HugePool(),
            Swap(),
            MemoryLimit(),
            MemoryFailure(),
            Guard(EnvironmentFacts.IoUringName, () => IoUring(lab)),
        };
        return (Build(findings), findings);
    }

    /// <summary>The facts a set of findings gives; undetermined ones keep mainline's default.</summary>
    public static EnvironmentFacts Build(IEnumerable<FactFinding> findings)
    {
        var f = EnvironmentFacts.Mainline;
        foreach (var x in findings)
        {
            if (x.Value is not { } v)
                continue;
            f = x.Name switch
            {
                EnvironmentFacts.AnonReadZeroPageName or EnvironmentFacts.HugeZeroPageName or EnvironmentFacts.FaultAroundPagesName => f.With(x.Name, v),
                EnvironmentFacts.PageSizeName => f with { PageSize = int.Parse(v, CultureInfo.InvariantCulture) },
                EnvironmentFacts.ThpAnonName => f with { ThpAnon = v },
                EnvironmentFacts.ThpShmemName => f with { ThpShmem = v },
                EnvironmentFacts.SwapName => f with { Swap = v == "on" },
                EnvironmentFacts.MemoryLimitName => f with { MemoryLimit = v },
                EnvironmentFacts.MemoryFailureName => f with { MemoryFailure = v == "on" },
                EnvironmentFacts.IoUringName => f with { IoUring = v },
                _ => f,
            };
        }
        var pool = ReadHugePool();
        return f with { HugePagesTotal = pool.Total, HugePagesFree = pool.Free };
    }

    private static FactFinding Guard(string name, Func<FactFinding> detect)
    {
        try
        {
            return detect();
        }
        catch (Exception e) when (e is UffdException or IOException or InvalidOperationException or UnauthorizedAccessException)
        {
            return new FactFinding(name, null, $"experiment failed: {e.Message}", null);
        }
    }

    // ---- the shared zero page -----------------------------------------------------------------------

    /// <summary>
    /// Reads two untouched pages of a private anonymous MADV_NOHUGEPAGE mapping (through the shim) and
    /// looks at what got mapped: the zero page is never "exclusively mapped" (pagemap bit 56: it has no
    /// struct page the pagemap walk counts), is the same PFN for both pages (visible as root), and is
    /// PAGE_IS_PFNZERO in PAGEMAP_SCAN (6.7+); a private zeroed page is exclusive, has its own PFN and
    /// appears in the VMA's Anonymous count in smaps; and a fork child inherits it. All must agree.
    /// </summary>
    public static FactFinding AnonReadZeroPage(Lab lab)
    {
        using var s = lab.NewScope();
        var m = s.Anon(4);
        m.Advise(Advice.NoHugePage);
        Accessor.Touch(m.Address, P, write: false);
        Accessor.Touch(m.PageAddress(2), P, write: false);
        var e = lab.Pm(m.Address, 4);
        bool? pfnZero = ScanPfnZero(lab, m.Address, m.End, m.Address);
        bool pfnVisible = e[0].Pfn != 0 && e[2].Pfn != 0;
        long anonKb = SmapsField(m.Address, "Anonymous:");
        // fork copies PTEs only of VMAs with an anon_vma (vma_needs_copy, §3.5): a zero-page read prepares
        // none, so the child has nothing there; a private page's allocation prepared one, so it has the page.
        bool childHas;
        using (var child = ForkedChild.Start(ChildOps.PageMap(m.Address), ChildOps.Exit(0)))
        {
            childHas = new PageMapEntry(child.WaitFor(0, Lab.WaitMs).Value).Present;
            child.Finish(Lab.WaitMs);
        }
        string ev = $"read of 2 untouched anon pages (MADV_NOHUGEPAGE): page 0 {Describe(e[0])}, page 2 {Describe(e[2])}; " +
                    (pfnVisible ? $"PFNs 0x{e[0].Pfn:x} and 0x{e[2].Pfn:x} ({(e[0].Pfn == e[2].Pfn ? "the same page" : "two pages")}); " : "PFNs hidden (no CAP_SYS_ADMIN); ") +
                    (pfnZero is { } z ? $"PAGEMAP_SCAN PAGE_IS_PFNZERO={(z ? 1 : 0)}; " : "no PAGEMAP_SCAN (before 6.7); ") +
                    $"smaps Anonymous: {anonKb} kB; a fork child {(childHas ? "has" : "does not have")} page 0";
        if (!e[0].Present || !e[2].Present)
            return new FactFinding(EnvironmentFacts.AnonReadZeroPageName, null, ev + " — a read page is not present", null);
        bool zeroLike = !e[0].Exclusive && !e[2].Exclusive && pfnZero != false && (!pfnVisible || e[0].Pfn == e[2].Pfn) && !childHas;
        bool privateLike = e[0].Exclusive && e[2].Exclusive && pfnZero != true && (!pfnVisible || e[0].Pfn != e[2].Pfn) && childHas;
        if (zeroLike == privateLike)
            return new FactFinding(EnvironmentFacts.AnonReadZeroPageName, null, ev + " — the evidence disagrees", null);
        return new FactFinding(EnvironmentFacts.AnonReadZeroPageName, zeroLike ? "on" : "off", ev,
            zeroLike ? null : ZeroPageCause() ?? "no boot or module parameter names it: a kernel build that forbids the zero page (mm_forbids_zeropage) or a vendor patch");
    }

    private static string Describe(PageMapEntry e) =>
        $"present={(e.Present ? 1 : 0)} exclusive={(e.Exclusive ? 1 : 0)} file={(e.FileOrShared ? 1 : 0)}";

    /// <summary>PAGE_IS_PFNZERO of the page at addr, or null before 6.7 (no PAGEMAP_SCAN).</summary>
    private static bool? ScanPfnZero(Lab lab, ulong start, ulong end, ulong addr)
    {
        if (!lab.PageMap.ScanSupported)
            return null;
        var r = lab.PageMap.Scan(new PageMapScanRequest(start, end)
        {
            CategoryAnyOf = PageCategory.Present,
            ReturnMask = PageCategory.Present | PageCategory.PfnZero,
        });
        return r.Regions.Any(x => x.Start <= addr && addr < x.End && (x.Categories & PageCategory.PfnZero) != 0);
    }

    /// <summary>Boot parameters and module parameters whose name mentions the zero page, with their values:
    /// "pvm_no_zero_page=1 (kernel command line)".</summary>
    public static string? ZeroPageCause()
    {
        var found = new List<string>();
        foreach (var t in BehaviourRows.ReadText("/proc/cmdline").Split(' ', StringSplitOptions.RemoveEmptyEntries))
            if (t.Contains("zero_page", StringComparison.OrdinalIgnoreCase) || t.Contains("zeropage", StringComparison.OrdinalIgnoreCase))
                found.Add($"{t} (kernel command line)");
        try
        {
            foreach (var dir in Directory.EnumerateDirectories("/sys/module"))
            {
                var pdir = Path.Combine(dir, "parameters");
                if (!Directory.Exists(pdir))
                    continue;
                foreach (var file in Directory.EnumerateFiles(pdir))
                {
                    var name = Path.GetFileName(file);
                    if (!name.Contains("zero_page", StringComparison.OrdinalIgnoreCase) && !name.Contains("zeropage", StringComparison.OrdinalIgnoreCase))
                        continue;
                    var v = BehaviourRows.ReadText(file);
                    if (!found.Any(f => f.StartsWith(name, StringComparison.Ordinal) || f.Contains("." + name, StringComparison.Ordinal)))
                        found.Add($"{Path.GetFileName(dir)}.{name}={v} (/sys/module)");
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return found.Count == 0 ? null : string.Join(", ", found);
    }

    // ---- the huge zero page --------------------------------------------------------------------------

    /// <summary>
    /// Reads the first byte of a 2 MiB-aligned MADV_HUGEPAGE anon range. A PMD mapping shows as two present
    /// neighbours; the huge zero page carries the pagemap file bit (it is not an anon folio) and is never
    /// exclusive, a real THP is anon and exclusive. Without a PMD mapping (THP off or no huge page free) the
    /// experiment cannot tell and the sysfs setting is reported.
    /// </summary>
    public static FactFinding HugeZeroPage(Lab lab)
    {
        string thp = EnvironmentProbe.Selected(BehaviourRows.ReadText("/sys/kernel/mm/transparent_hugepage/enabled"));
        string use = BehaviourRows.ReadText("/sys/kernel/mm/transparent_hugepage/use_zero_page");
        string setting = $"transparent_hugepage/enabled={thp}, use_zero_page={(use.Length == 0 ? "absent" : use)}";
        if (thp is "never" or "absent")
            return new FactFinding(EnvironmentFacts.HugeZeroPageName, null, $"{setting}: no THP read fault can happen here", null);
        using var s = lab.NewScope();
        var m = s.Anon((long)(2 * Huge / P));
        ulong start = (m.Address + Huge - 1) & ~(Huge - 1);
        m.Advise(Advice.HugePage);
        Accessor.Touch(start, P, write: false);
        var e = lab.Pm(start, 2);
        bool? pfnZero = ScanPfnZero(lab, start, start + Huge, start);
        string ev = $"{setting}; read of a 2 MiB-aligned MADV_HUGEPAGE range: page 0 {Describe(e[0])}, page 1 {Describe(e[1])}" +
                    (pfnZero is { } z ? $", PAGE_IS_PFNZERO={(z ? 1 : 0)}" : "");
        if (!e[0].Present)
            return new FactFinding(EnvironmentFacts.HugeZeroPageName, null, ev + " — the read page is not present", null);
        if (!e[1].Present)
            return new FactFinding(EnvironmentFacts.HugeZeroPageName, null, ev + " — not PMD-mapped (no huge page was available)", null);
        bool hugeZero = e[0].FileOrShared && !e[0].Exclusive;
        bool realThp = !e[0].FileOrShared && e[0].Exclusive;
        if (hugeZero == realThp)
            return new FactFinding(EnvironmentFacts.HugeZeroPageName, null, ev + " — the evidence disagrees", null);
        string? cause = null;
        if (realThp)
            cause = use.Trim() == "0" ? "use_zero_page=0 (/sys/kernel/mm/transparent_hugepage/use_zero_page)" : ZeroPageCause() ?? $"use_zero_page={use}, yet a real THP: a kernel build or boot option";
        return new FactFinding(EnvironmentFacts.HugeZeroPageName, hugeZero ? "on" : "off", ev, cause);
    }

    // ---- fault-around ---------------------------------------------------------------------------------

    /// <summary>
    /// Fills a 4 MiB memfd's page cache with 4 KiB folios, maps it shared (MADV_NOHUGEPAGE), reads the page at
    /// its first 2 MiB boundary and counts the present PTEs: do_fault_around maps a window of fault_around_bytes
    /// starting there (§3.1). debugfs's fault_around_bytes, where readable, is the explanation.
    /// </summary>
    public static FactFinding FaultAroundPages(Lab lab)
    {
        int pages = (int)(Huge / P);
        using var s = lab.NewScope();
        // 4 MiB of file, all cached: the first 2 MiB boundary inside has a whole window after it. The cache is filled
        // by writes through the MADV_NOHUGEPAGE mapping, which allocate 4 KiB folios under every shmem_enabled value
        // (the VMA's pin comes first: SGP_NOHUGE, later vma_thp_disabled), then the PTEs are zapped (the cache stays).
        // write(2) would cache PMD-sized folios under always, within_size or force, and without "mm: don't install
        // PMD mappings when THPs are disabled by the hw/process/vma" (6.12) do_set_pmd maps one even in a
        // MADV_NOHUGEPAGE VMA: the read would show all 512 pages (seen in a Debian 6.1.0-57 guest, within_size).
        var f = s.Memfd(2 * pages, "uffd-fault-around");
        var m = s.Shared(f);
        m.Advise(Advice.NoHugePage);
        Accessor.Touch(m.Address, 2 * Huge, write: true, value: 5);
        m.Advise(Advice.DontNeed);
        ulong at = (m.Address + Huge - 1) & ~(Huge - 1);
        Accessor.Touch(at, P, write: false);
        int present = lab.Pm(at, pages).Count(e => e.Present);
        int? debugfs = HostFacts.ReadInt("/sys/kernel/debug/fault_around_bytes");
        string dbg = debugfs is { } b ? $"debugfs fault_around_bytes = {b}" : "debugfs fault_around_bytes not readable";
        string ev = $"page cache of a 4 MiB memfd filled with 4 KiB folios (writes through the MADV_NOHUGEPAGE mapping, then MADV_DONTNEED), one read at a 2 MiB boundary: {present} of {pages} pages present; {dbg}";
        string value = present.ToString(CultureInfo.InvariantCulture);
        string? cause = present == 16 ? null : debugfs is { } d ? $"fault_around_bytes = {d} (/sys/kernel/debug/fault_around_bytes)" : "fault_around_bytes differs from 64 KiB (debugfs not readable to confirm)";
        if (debugfs is { } d2 && d2 / (int)P != present)
            ev += $" — debugfs says {d2 / (int)P} pages; the experiment's count is used";
        return new FactFinding(EnvironmentFacts.FaultAroundPagesName, value, ev, cause);
    }

    // ---- configuration read from /proc and /sys -------------------------------------------------------------

    private static FactFinding PageSize()
    {
        string v = Mapping.PageSize.ToString(CultureInfo.InvariantCulture);
        return new FactFinding(EnvironmentFacts.PageSizeName, v, $"sysconf(_SC_PAGESIZE) = {v}", v == "4096" ? null : "the architecture or kernel configuration");
    }

    private static FactFinding ThpAnon()
    {
        const string dir = "/sys/kernel/mm/transparent_hugepage";
        string v = EnvironmentProbe.Selected(BehaviourRows.ReadText($"{dir}/enabled"));
        // Multi-size THP (6.8+): per-size settings; any not "never" can back an anon fault with a large folio
        // unless the VMA is MADV_NOHUGEPAGE (which every 4 KiB scenario sets).
        var sizes = new List<string>();
        try
        {
            foreach (var d in Directory.EnumerateDirectories(dir, "hugepages-*kB").Order(StringComparer.Ordinal))
            {
                var sel = EnvironmentProbe.Selected(BehaviourRows.ReadText(Path.Combine(d, "enabled")));
                if (sel is not ("never" or "absent"))
                    sizes.Add($"{Path.GetFileName(d)["hugepages-".Length..]}={sel}");
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return new FactFinding(EnvironmentFacts.ThpAnonName, v,
            $"{dir}/enabled: {v}" + (sizes.Count > 0 ? $"; multi-size THP: {string.Join(", ", sizes)}" : ""), CmdlineCause("transparent_hugepage="));
    }

    private static FactFinding ThpShmem()
    {
        string v = EnvironmentProbe.Selected(BehaviourRows.ReadText("/sys/kernel/mm/transparent_hugepage/shmem_enabled"));
        return new FactFinding(EnvironmentFacts.ThpShmemName, v, $"/sys/kernel/mm/transparent_hugepage/shmem_enabled: {v}", CmdlineCause("transparent_hugepage_shmem="));
    }

    private static (long? Total, long? Free) ReadHugePool()
    {
        const string dir = "/sys/kernel/mm/hugepages/hugepages-2048kB";
        return (HostFacts.ReadInt($"{dir}/nr_hugepages"), HostFacts.ReadInt($"{dir}/free_hugepages"));
    }

    private static FactFinding HugePool()
    {
        var (total, free) = ReadHugePool();
        string? v = total is { } t ? $"{t} reserved, {free ?? 0} free" : null;
        return new FactFinding(EnvironmentFacts.HugePagesName, v ?? "unknown",
            total is null ? "/sys/kernel/mm/hugepages/hugepages-2048kB absent (no 2 MiB hugetlb)" : $"hugepages-2048kB: nr_hugepages {total}, free_hugepages {free}",
            CmdlineCause("hugepages="));
    }

    private static FactFinding Swap()
    {
        var lines = BehaviourRows.ReadText("/proc/swaps").Split('\n', StringSplitOptions.RemoveEmptyEntries);
        bool on = lines.Length > 1;
        return new FactFinding(EnvironmentFacts.SwapName, on ? "on" : "off", $"/proc/swaps: {lines.Length - 1} device(s)", null);
    }

    /// <summary>mm/memory-failure.c registers vm.memory_failure_early_kill and vm.memory_failure_recovery: they
    /// exist exactly when the kernel was built with CONFIG_MEMORY_FAILURE.</summary>
    private static FactFinding MemoryFailure()
    {
        bool on = BehaviourRows.MemoryFailureConfigured;
        return new FactFinding(EnvironmentFacts.MemoryFailureName, on ? "on" : "off",
            $"/proc/sys/vm/memory_failure_recovery {(on ? "exists" : "is absent")}", null);
    }

    // ---- io_uring pins --------------------------------------------------------------------------------------

    /// <summary>
    /// Pins one written anonymous page the way the pin cells do (io_uring_setup + IORING_REGISTER_BUFFERS,
    /// native/harness/uffd_pin.c) and releases it. Where it fails, the errno and the call say what refused it, and
    /// the settings that explain it are read: kernel.io_uring_disabled (6.6+; 2 = off for everyone, 1 = only for
    /// the io_uring_group and CAP_SYS_ADMIN), this process's seccomp mode (Docker's default profile refuses
    /// io_uring with EPERM since 2023), ENOSYS for a kernel without CONFIG_IO_URING.
    /// </summary>
    public static FactFinding IoUring(Lab lab)
    {
        using var s = lab.NewScope();
        var m = s.Anon(1);
        m.Advise(Advice.NoHugePage);
        Accessor.Touch(m.Address, P, write: true);
        using var pin = IoUringPin.TryPin(m.Address, P, out int errno, out var stage);
        int unpin = pin?.Unpin() ?? 0;
        string disabled = BehaviourRows.ReadText("/proc/sys/kernel/io_uring_disabled").Trim();
        string seccomp = StatusField("Seccomp:");
        string settings = $"kernel.io_uring_disabled = {(disabled.Length == 0 ? "absent (before 6.6)" : disabled)}; Seccomp: {(seccomp.Length == 0 ? "?" : seccomp)} (/proc/self/status)";
        if (pin is not null)
            return new FactFinding(EnvironmentFacts.IoUringName, EnvironmentFacts.IoUringAvailable,
                $"io_uring_setup(1) and IORING_REGISTER_BUFFERS of one anonymous page: ok; IORING_UNREGISTER_BUFFERS: {(unpin == 0 ? "ok" : Errno.Name(-unpin))}; {settings}", null);
        string call = stage == PinStage.Setup ? "io_uring_setup(1)" : "IORING_REGISTER_BUFFERS of one anonymous page";
        string? cause = disabled is "1" or "2" ? $"kernel.io_uring_disabled={disabled}"
            : seccomp is not ("" or "0") ? $"seccomp filter, Seccomp: {seccomp}"
            : errno == Errno.ENOSYS ? "a kernel without CONFIG_IO_URING"
            : null;
        return new FactFinding(EnvironmentFacts.IoUringName, $"unavailable: {Errno.Name(errno)} ({cause ?? $"{call} refused"})", $"{call}: {Errno.Name(errno)}; {settings}", cause);
    }

    private static string StatusField(string field)
    {
        foreach (var line in BehaviourRows.ReadText("/proc/self/status").Split('\n'))
            if (line.StartsWith(field, StringComparison.Ordinal))
                return line[field.Length..].Trim();
        return "";
    }

    private static FactFinding MemoryLimit()
    {
        // cgroup v2: "0::/path"; v1: "N:memory:/path".
        string? v = null, where = "";
        foreach (var line in BehaviourRows.ReadText("/proc/self/cgroup").Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = line.Split(':', 3);
            if (parts.Length != 3)
                continue;
            if (parts[0] == "0" && parts[1].Length == 0)
                where = $"/sys/fs/cgroup{parts[2]}/memory.max";
            else if (parts[1].Split(',').Contains("memory"))
                where = $"/sys/fs/cgroup/memory{parts[2]}/memory.limit_in_bytes";
            else
                continue;
            var text = BehaviourRows.ReadText(where);
            if (text.Length > 0)
            {
                // cgroup v1 spells "no limit" as a page-aligned LONG_MAX.
                v = long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var bytes) && bytes >= 1L << 60 ? "max" : text;
                break;
            }
        }
        return new FactFinding(EnvironmentFacts.MemoryLimitName, v ?? "unknown", v is null ? "no readable memory cgroup limit" : $"{where}: {v}", null);
    }

    private static string? CmdlineCause(string prefix)
    {
        var t = BehaviourRows.ReadText("/proc/cmdline").Split(' ', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault(x => x.StartsWith(prefix, StringComparison.Ordinal));
        return t is null ? null : $"{t} (kernel command line)";
    }

    /// <summary>The "Anonymous:" kB of the smaps entry containing addr (0 when absent).</summary>
    internal static long SmapsField(ulong addr, string field)
    {
        bool inside = false;
        foreach (var line in File.ReadLines("/proc/self/smaps"))
        {
            int dash = line.IndexOf('-');
            int sp = line.IndexOf(' ');
            if (dash > 0 && sp > dash && ulong.TryParse(line.AsSpan(0, dash), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var st) &&
                ulong.TryParse(line.AsSpan(dash + 1, sp - dash - 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var en))
            {
                inside = addr >= st && addr < en;
                continue;
            }
            if (inside && line.StartsWith(field, StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
        }
        return 0;
    }
}
