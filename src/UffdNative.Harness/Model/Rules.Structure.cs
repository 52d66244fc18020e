using UffdNative.Harness.Scenarios;
using E = UffdNative.Errno;

namespace UffdNative.Harness.Model;

/// <summary>Rules of the calls that change mappings or the file behind them: madvise, fallocate,
/// ftruncate, pwrite, mprotect, mremap, fork, PAGEMAP_SCAN (reference §1.6, §3.2, §3.5, §3.6, §3.7).</summary>
internal sealed partial class ModelRun
{
    // ---- zap ----------------------------------------------------------------------------------------

    /// <summary>zap_pte_range (mm/memory.c) for one PTE. A present page or a zero page goes; on a file VMA
    /// that is WP-registered a wp PTE leaves a uffd-wp marker behind (zap_install_uffd_wp_if_needed, 5.19+,
    /// §3.2); anonymous zaps drop everything, markers included (§3.3). A wp marker on a file VMA survives
    /// every zap except munmap/exit. A poison marker survives only zaps that spare private COWs
    /// (hole punch). A hugetlb zap (__unmap_hugepage_range, mm/hugetlb.c; §3.11) spares nothing, leaves a marker
    /// for any wp PTE (it looks at the PTE's bit, not the VMA) and keeps markers — unless dropMarkers
    /// (ZAP_FLAG_DROP_MARKER: hugetlbfs truncate), which leaves none.</summary>
    private void ZapPte(MapState m, Vma v, int p, bool evenCows, bool dropMarkers = false)
    {
        ref var pte = ref m.Ptes[p];
        if (m.Hugetlb)
        {
            pte = !dropMarkers && (pte.Kind == PteKind.WpMarker || (pte.IsPresent && pte.Wp)) && !Bug(ModelBug.ZapDropsFileMarker) ? Pte.Marker : default;
            return;
        }
        switch (pte.Kind)
        {
            case PteKind.Present:
                if (!evenCows && pte.Mapped == MappedPage.Anon)
                    return; // should_zap_folio: a hole punch keeps private COWed pages
                bool keepWp = m.IsFile && v.Wp && pte.Wp && !Bug(ModelBug.ZapDropsFileMarker);
                pte = keepWp ? Pte.Marker : default;
                return;
            case PteKind.WpMarker:
                if (m.IsAnonymous || Bug(ModelBug.ZapDropsFileMarker))
                    pte = default;
                return;
            case PteKind.Poison:
                if (evenCows)
                    pte = default;
                return;
        }
    }

    /// <summary>unmap_mapping_range over file pages [first, first+count) in every mapping of the memfd.</summary>
    private void ZapFileRange(int first, int count, bool evenCows, bool dropMarkers = false)
    {
        foreach (var m in parent.Maps.Concat(liveChild?.Maps ?? []).Where(m => m.IsFile))
        {
            // A private hugetlb mapping under a hole punch or truncate: hugetlb_vmdelete_list zapped it until 6.17
            // and skips it since (dd83609b8898, VMAs without a shareable lock); neither is modelled.
            if (m.Hugetlb && !m.IsShared)
                throw new OutOfScopeException("hole punch or truncate of a hugetlbfs file under a private mapping (hugetlb_vmdelete_list skips private VMAs since 6.17) is not modelled");
            for (int p = 0; p < m.Pages; p++)
            {
                int idx = m.FileOffset + p;
                if (idx >= first && idx < first + count)
                    ZapPte(m, m.VmaAt(p), p, evenCows, dropMarkers);
            }
        }
    }

    // ---- madvise ------------------------------------------------------------------------------------

    private static List<(int Start, int End)> Pieces(MapState m, int first, int count) =>
        m.VmasIn(first, count).Select(v => (Math.Max(first, v.Start), Math.Min(first + count, v.End))).ToList();

    /// <summary>madvise(DONTNEED | REMOVE) (§1.6, §3.2), VMA by VMA: first userfaultfd_remove (a REMOVE
    /// event if the VMA's uffd has EVENT_REMOVE, the caller blocked until it is read), then the zap
    /// (DONTNEED) or the hole punch (REMOVE). MADV_REMOVE needs a shared writable file mapping:
    /// EINVAL on anonymous memory, EACCES on MAP_PRIVATE.</summary>
    private string Madvise(MadviseOp op, MapState? inChild = null)
    {
        var m = inChild ?? M(op.M);
        if (op.Advice == MadviseAdvice.PageOut)
            return PageOut(m, op.First, op.Count);
        if (op.Advice == MadviseAdvice.Remove)
        {
            if (m.IsAnonymous)
                return "EINVAL";
            if (!m.IsShared)
                return "EACCES";
        }
        var pieces = new Queue<(int, int)>(Pieces(m, op.First, op.Count));
        while (pieces.Count > 0)
        {
            var (s, e) = pieces.Dequeue();
            var v = m.VmaAt(s);
            var ev = v.Ctx is { } c && c.HasFeature(UffdFeatures.EventRemove) ? c : null;
            if (ev is not null)
            {
                if (op.Hold)
                {
                    ev.MmapChanging++;
                    held.Add(new HeldMadvise { Map = m, Advice = op.Advice, Pieces = pieces, EventCtx = ev, PendingPiece = (s, e) });
                    return "held";
                }
                msgs.Add($"{ev.Name} REMOVE {m.Name}+{s}..{e}{UnregisterRemoved(ev, m, s, e)}");
            }
            MadvisePiece(m, op.Advice, s, e);
        }
        return "ok";
    }

    /// <summary>The handler's UNREGISTER of a removed range (HandlerPolicy.UnregisterOnRemove, upstream's events handler), as
    /// the message's suffix. It runs while the madvise goes on to zap; here before the zap: the two orders end alike
    /// (UNREGISTER clears the wp a zap would leave as markers, unregister-clears-wp), except on kernels before it
    /// (stale markers), which the events scenarios do not reach (their pages are un-protected before the release).</summary>
    private string UnregisterRemoved(Ctx ctx, MapState m, int s, int e)
    {
        if (!sc.Policy.UnregisterOnRemove)
            return "";
        var r = Unregister(ctx, m, s, e - s);
        return r.Errno == 0 ? " => unregister" : $" => unregister:{E.Name(r.Errno)}";
    }

    private void MadvisePiece(MapState m, MadviseAdvice advice, int s, int e)
    {
        if (advice == MadviseAdvice.DontNeed)
        {
            // zap_page_range_single with no details: private COWs go too.
            for (int p = s; p < e; p++)
                ZapPte(m, m.VmaAt(p), p, evenCows: !(m.IsFile && Bug(ModelBug.DontNeedKeepsFileCows)));
        }
        else
            PunchFile(m.FileOffset + s, e - s);
    }

    /// <summary>Reads the events held by MadviseOp.Hold; each caller continues with its remaining VMAs.</summary>
    private string Drain()
    {
        var results = new List<string>();
        foreach (var h in held)
        {
            msgs.Add($"{h.EventCtx.Name} REMOVE {h.Map.Name}+{h.PendingPiece.Start}..{h.PendingPiece.End}{UnregisterRemoved(h.EventCtx, h.Map, h.PendingPiece.Start, h.PendingPiece.End)}");
            h.EventCtx.MmapChanging--;
            MadvisePiece(h.Map, h.Advice, h.PendingPiece.Start, h.PendingPiece.End);
            while (h.Pieces.Count > 0)
            {
                var (s, e) = h.Pieces.Dequeue();
                if (h.Map.VmaAt(s).Ctx is { } c && c.HasFeature(UffdFeatures.EventRemove))
                    msgs.Add($"{c.Name} REMOVE {h.Map.Name}+{s}..{e}{UnregisterRemoved(c, h.Map, s, e)}");
                MadvisePiece(h.Map, h.Advice, s, e);
            }
            results.Add("madvise=ok");
        }
        held.Clear();
        return results.Count == 0 ? "ok" : "ok " + string.Join(" ", results);
    }

    // ---- the file -------------------------------------------------------------------------------------

    /// <summary>The scenario's memfd is a hugetlbfs file (MFD_HUGETLB).</summary>
    private bool IsHugetlbFile => MemoryTypes.IsHugetlb(sc.Memory);

    /// <summary>shmem_fallocate(PUNCH_HOLE): unmap_mapping_range without even_cows (private COWs and
    /// poison markers stay; wp PTEs leave markers), then the page-cache pages go (§3.2).</summary>
    private void PunchFile(int first, int count)
    {
        // hugetlbfs_punch_hole zaps every mapping of the hole, private COWs included, markers kept (§3.11).
        ZapFileRange(first, count, evenCows: IsHugetlbFile);
        for (int i = first; i < Math.Min(first + count, file.Size); i++)
        {
            file.Present[i] = false;
            file.Tag[i] = 0;
        }
    }

    private string PunchHole(int first, int count)
    {
        PunchFile(first, count);
        return "ok";
    }

    /// <summary>ftruncate (shmem_setattr): shrinking unmaps everything beyond the new end, private COWs
    /// included (even_cows), then drops the pages; wp markers survive and wp PTEs leave markers (§3.2
    /// "ftruncate shrink, then regrow"). Growing only moves i_size.</summary>
    private string Truncate(int pages)
    {
        if (pages < file.Size)
        {
            // hugetlb_vmtruncate (fs/hugetlbfs/inode.c) zaps with ZAP_FLAG_DROP_MARKER: on hugetlbfs no marker
            // survives a shrink (§3.11).
            ZapFileRange(pages, file.Capacity - pages, evenCows: true, dropMarkers: IsHugetlbFile);
            for (int i = pages; i < file.Capacity; i++)
            {
                file.Present[i] = false;
                file.Tag[i] = 0;
            }
        }
        file.Size = pages;
        return "ok";
    }

    /// <summary>pwrite(2): into the page cache directly, never through a PTE, so never intercepted
    /// (§3.2 "Alias and other writers").</summary>
    private string Pwrite(int page, ulong tag)
    {
        // hugetlbfs has no write_iter: vfs_write refuses the file (no FMODE_CAN_WRITE) with EINVAL (§3.11).
        if (IsHugetlbFile)
            return "EINVAL";
        WriteAllocatesHugeFolio(page);
        file.Present[page] = true;
        file.Tag[page] = tag;
        return "ok";
    }

    /// <summary>write(2) allocates shmem page cache with no VMA, so no MADV_NOHUGEPAGE pin applies: with shmem THP
    /// 'always' or 'force' (for memfd the same: force turns huge on for every mount, and the VMA's pin still holds at
    /// faults), or 'within_size' with i_size over the whole aligned 2 MiB extent,
    /// shmem_get_folio_gfp allocates one PMD-sized folio for the extent — its other pages cached, zero-filled —
    /// unless a page of the extent is cached already (shmem_suitable_orders' xa_find conflict: order 0). mm/shmem.c
    /// shmem_huge_global_enabled, shmem_allowable_huge_orders (tmpfs/memfd: PMD order only). Seen on 6.12 with
    /// shmem_enabled=always: pwrite of page 1 left page 0 cached (no MISSING fault, CONTINUE of it OK).</summary>
    private void WriteAllocatesHugeFolio(int page)
    {
        ConsultFact(EnvironmentFacts.ThpShmemName);
        const int extent = 512;
        int first = page - page % extent, end = Math.Min(first + extent, file.Capacity);
        bool huge = Facts.ThpShmem switch
        {
            "always" or "force" => true,
            "within_size" => Math.Max(file.Size, page + 1) >= first + extent,
            _ => false,
        };
        if (!huge || Enumerable.Range(first, end - first).Any(i => file.Present[i]))
            return;
        for (int i = first; i < end; i++)
        {
            file.Present[i] = true;
            file.Tag[i] = 0;
        }
    }

    /// <summary>mprotect(PROT_READ) then back to read-write (§3.7): change_pte_range keeps the uffd-wp bit
    /// and markers, the VMA split merges back; nothing a pagemap shows changes.</summary>
    private static string Mprotect(MapState m, int first, int count)
    {
        _ = (m, first, count);
        return "ok";
    }

    // ---- mremap ---------------------------------------------------------------------------------------

    /// <summary>mremap of the whole mapping (§3.6): with EVENT_REMAP the registration and the wp state move
    /// and a REMAP event is delivered; without it the new VMA is unregistered and, since 6.13 (0cef0bb836e3,
    /// CVE-2025-21696; 6.12.11 stable), its wp bits and markers are cleared (stale before).</summary>
    private string Mremap(MapState m, bool inChild = false)
    {
        if (m.Vmas.Count > 1)
            throw new OutOfScopeException("mremap of a mapping split into several VMAs (moving several VMAs at once is allowed only on recent kernels; not modelled)");
        var v = m.Vmas[0];
        // A fork child's mremap moves the child's mapping only: the parent's places (FORK event order) stay.
        if (!inChild)
            slot[m] = nextSlot++;
        if (v.Ctx is { } c)
        {
            if (c.HasFeature(UffdFeatures.EventRemap))
                msgs.Add($"{c.Name} REMAP {m.Name}");
            else
            {
                if (Sw(KernelProfile.MremapClearsWp))
                    ClearWp(m, 0, m.Pages);
                v.Ctx = null;
                v.Modes = RegisterMode.None;
            }
        }
        return "ok";
    }

    // ---- fork -----------------------------------------------------------------------------------------

    /// <summary>fork (§3.5): dup_userfaultfd gives each VMA of a ctx with EVENT_FORK a new child ctx (one
    /// FORK event per ctx, in address order) and unregisters the others; copy_page_range runs only when the
    /// child VMA is WP-registered or the parent VMA has an anon_vma (vma_needs_copy); copied PTEs keep wp
    /// only in a WP child VMA, uffd-wp markers likewise, poison markers always; shared anon pages lose
    /// exclusivity in both.</summary>
    /// <summary>MADV_COLLAPSE of a whole 2 MiB MAP_SHARED shmem mapping (uffd-unit-tests minor-collapse, reference §2.1 #13):
    /// collapse_file fills the holes with zeros, unmaps every PTE of the old small pages (try_to_unmap: every mapping of
    /// the range, a MINOR-registered one too) and the calling mapping gets the PMD (collapse_pte_mapped_thp); no uffd
    /// message (the scan takes no faults). Refused with EINVAL before 6.1 (madv-collapse) and on a WP-registered VMA.
    /// The shmem_enabled fact only decides applicability (deny refuses; never does not: MADV_COLLAPSE is forced).</summary>
    private string Collapse(MapState m)
    {
        if (!Sw(KernelProfile.MadvCollapse))
            return "EINVAL";
        if (m.Vmas.Any(v => v.Wp))
            return "EINVAL";
        int off = m.FileOffset;
        if (off + m.Pages > file.Size)
            throw new OutOfScopeException("MADV_COLLAPSE of a range beyond the memfd's end");
        foreach (var other in parent.Maps.Where(o => !o.IsAnonymous))
            for (int p = 0; p < other.Pages; p++)
            {
                int idx = other.FileOffset + p;
                if (idx < off || idx >= off + m.Pages)
                    continue;
                ref var pte = ref other.Ptes[p];
                if (pte.Kind is PteKind.WpMarker or PteKind.Poison)
                    throw new OutOfScopeException("MADV_COLLAPSE over a PTE marker");
                if (pte.IsPresent && pte.Mapped == MappedPage.File)
                    pte = default;
            }
        for (int i = off; i < off + m.Pages; i++)
            file.Present[i] = true;
        for (int p = 0; p < m.Pages; p++)
            m.Ptes[p] = Pte.FilePage(wp: false);
        return $"ok ShmemPmdMapped={m.Pages * 4}kB";
    }

    /// <summary>§3.11 fork: before 6.4 (hugetlb-fork-drops-wp) copy_hugetlb_page_range keeps the uffd-wp bit of a
    /// present private hugetlb PTE for a child VMA without WP.</summary>
    private bool ChildKeepsHugetlbWp(MapState m) => m.Hugetlb && !m.IsShared && !Sw(KernelProfile.HugetlbForkDropsWp);

    private string Fork(ForkOp op, List<string> childObs)
    {
        var child = new Mm("child");
        var childCtx = new Dictionary<Ctx, Ctx>();
        var order = parent.Maps.OrderBy(m => slot[m]).ToList();
        var cloned = new Dictionary<MapState, MapState>();
        foreach (var pm in order)
        {
            var cm = new MapState
            {
                Name = pm.Name,
                Index = pm.Index,
                Kind = pm.Kind,
                FileOffset = pm.FileOffset,
                Pages = pm.Pages,
                Hugetlb = pm.Hugetlb,
                Ptes = new Pte[pm.Pages],
                Vmas = [],
            };
            foreach (var pv in pm.Vmas)
            {
                var cv = pv.Clone();
                if (pv.Ctx is { } pc)
                {
                    if (pc.HasFeature(UffdFeatures.EventFork))
                    {
                        if (!childCtx.TryGetValue(pc, out var cc))
                        {
                            cc = new Ctx(pc.Name + "c", pc.Features, pc.UserModeOnly, child) { Initialized = true };
                            childCtx[pc] = cc;
                            msgs.Add($"{pc.Name} FORK");
                        }
                        cv.Ctx = cc;
                    }
                    else
                    {
                        cv.Ctx = null;
                        cv.Modes = RegisterMode.None;
                    }
                }
                cm.Vmas.Add(cv);
                bool needsCopy = cv.Wp || pv.AnonVma != 0;
                if (!needsCopy)
                    continue;
                for (int p = pv.Start; p < pv.End; p++)
                {
                    ref var src = ref pm.Ptes[p];
                    switch (src.Kind)
                    {
                        case PteKind.Present when src.Pinned && src.Mapped == MappedPage.Anon:
                            // Early CoW (copy_present_page, mm/memory.c; hugetlb: copy_hugetlb_page_range): a
                            // maybe-DMA-pinned anon folio of an mm with MMF_HAS_PINNED is copied for the child at
                            // once (folio_needs_cow_for_dma), writable, with uffd-wp only when
                            // userfaultfd_pte_wp(dst_vma, src pte): the child VMA is WP-registered (EVENT_FORK).
                            // The parent keeps its page exclusive, pinned, with its wp bit.
                            // Before the hugetlb fork fix (hugetlb-fork-drops-wp old, 6.4), copy_hugetlb_page_range's early
                            // CoW installed the child's copy without the uffd-wp bit (hugetlb_install_page: make_huge_pte(.., 1)
                            // only; 5a2f8d22ace4 passes the src pte to hugetlb_install_folio and carries the bit when
                            // userfaultfd_wp(dst_vma)); measured on 6.1.192 with EVENT_FORK.
                            bool earlyCowKeepsWp = !(pm.Hugetlb && !Sw(KernelProfile.HugetlbForkDropsWp));
                            cm.Ptes[p] = Pte.AnonPage(src.Tag, wp: cv.Wp && src.Wp && earlyCowKeepsWp && !Bug(ModelBug.EarlyCowDropsWp));
                            break;
                        case PteKind.Present:
                            var c = src;
                            c.Pinned = false;
                            if (!cv.Wp && !ChildKeepsHugetlbWp(pm))
                                c.Wp = false;
                            if (src.Mapped == MappedPage.Anon)
                            {
                                src.Exclusive = false;
                                c.Exclusive = false;
                            }
                            cm.Ptes[p] = c;
                            break;
                        case PteKind.WpMarker:
                            cm.Ptes[p] = cv.Wp ? Pte.Marker : default;
                            break;
                        case PteKind.Poison:
                            cm.Ptes[p] = Pte.PoisonMarker;
                            break;
                    }
                }
            }
            cloned[pm] = cm;
        }
        foreach (var pm in parent.Maps)
            child.Maps.Add(cloned[pm]);

        string ChildMaps() => "pagemap " + string.Join(" ", child.Maps.Select(m => $"{m.Name}={PageMapOf(m)}"));
        childObs.Add(ChildMaps());
        // While the child runs, a hole punch of the file reaches its mappings too (ZapFileRange).
        liveChild = child;
        try
        {
            foreach (var a in op.Child)
            {
                // The child's own mremap and release (upstream's events child): their events go to the child's ctx.
                if (a.Mremap)
                    childObs.Add($"{a} {Mremap(child.Map(a.M), inChild: true)}");
                else if (a.Madvise is { } adv)
                    childObs.Add($"{a} {Madvise(new MadviseOp(a.M, a.Page, a.Count, adv), child.Map(a.M))}");
                else if (a.SigbusLoop)
                    childObs.Add($"{a} {SigbusLoop(child, child.Map(a.M), a)}");
                else if (!ChildAccessStep(child, a, childObs))
                    return "blocked";
            }
        }
        finally
        {
            liveChild = null;
        }
        if (op.Child.Count > 0)
            childObs.Add(ChildMaps());
        child.Alive = false;
        foreach (var cc in childCtx.Values)
            cc.Released = true;
        return "ok";
    }

    /// <summary>Upstream's sigbus loop in the fork child (ChildAccess.SigbusLoop, §2.1 #14): a uffd of the child's own with
    /// FEATURE_SIGBUS (its faults raise SIGBUS, no message, §4.5) registers the range; per page a read that SIGBUSes is
    /// answered by COPY of the handler's tag page through that uffd (MODE_WP with wp) and retried, a second SIGBUS before
    /// the write back is "Signal repeated" (EPROTO); the write back of a protected page SIGBUSes once, is un-protected and
    /// the page retried.</summary>
    private string SigbusLoop(Mm child, MapState m, ChildAccess a)
    {
        bool wp = a.Write;
        var features = UffdFeatures.Sigbus | (wp ? UffdFeatures.PageFaultFlagWp : 0) | (wp && m.IsFile ? UffdFeatures.WpHugetlbfsShmem : 0);
        var ctx = new Ctx("loop", features, false, child) { Initialized = true };
        var reg = Register(ctx, m, a.Page, a.Count, RegisterMode.Missing | (wp ? RegisterMode.WriteProtect : 0), observeIoctls: false);
        if (reg != "ok")
            return reg;
        int missing = 0, wpSignals = 0;
        for (int p = a.Page; p < a.Page + a.Count; p++)
        {
            ulong tag = HandlerPolicy.CopyTag(m.Index, p);
            int steps = 1;
            while (true)
            {
                var r = Access(child, m, p, write: false, 0, kernel: false);
                if (r.Kind == OutcomeKind.Sigbus)
                {
                    if (steps != 1)
                        return $"EPROTO page={p - a.Page}";
                    steps = 2;
                    missing++;
                    if (Fill(ctx, FillKind.Copy, m, p, 1, tag, wp) is { Errno: not 0 } c)
                        return E.Name(c.Errno);
                    continue;
                }
                if (r.Kind != OutcomeKind.Ok)
                    return AccessResultText(r, kernel: false);
                if (r.Value != tag)
                    return $"EIO page={p - a.Page}";
                var w = Access(child, m, p, write: true, tag, kernel: false);
                if (w.Kind == OutcomeKind.Sigbus)
                {
                    if (steps != 2 || !wp)
                        return $"EPROTO page={p - a.Page}";
                    steps = 3;
                    wpSignals++;
                    if (WriteProtect(ctx, m, p, 1, protect: false, dontWake: false) is { Errno: not 0 } u)
                        return E.Name(u.Errno);
                    continue;
                }
                if (w.Kind != OutcomeKind.Ok)
                    return AccessResultText(w, kernel: false);
                break;
            }
        }
        return $"ok sigbus={missing} wp={wpSignals}";
    }

    /// <summary>The fork child's mm while its steps run (null otherwise).</summary>
    private Mm? liveChild;

    /// <summary>One load, store or pin of the fork child: false when it left a thread blocked.</summary>
    private bool ChildAccessStep(Mm child, ChildAccess a, List<string> childObs)
    {
        if (a.Pin)
        {
            // The child's own pin (its own ring): a kernel-mode write fault in the child's mm, on the child's uffd.
            childObs.Add($"{a} {Pin(child, child.Map(a.M), a.Page, 1)}");
            return !blocked;
        }
        var o = Access(child, child.Map(a.M), a.Page, a.Write, a.Tag, kernel: false);
        childObs.Add($"{a} {AccessResultText(o, kernel: false)}");
        return !blocked;
    }

    // ---- PAGEMAP_SCAN --------------------------------------------------------------------------------

    /// <summary>Is a none PTE PAGE_IS_WRITTEN? In a page table (pagemap_scan_pte_entry's generic path):
    /// scan-none-written; without one (pagemap_scan_pte_hole, uffd-wp VMAs only): scan-hole-written. Where the
    /// model cannot tell whether the table exists and the two answers differ, it says so.</summary>
    private bool NoneWritten(MapState m, Vma vma)
    {
        bool inTable = Sw(KernelProfile.ScanNoneWritten);
        bool inHole = vma.Wp && Sw(KernelProfile.ScanHoleWritten);
        return m.PageTable switch
        {
            PageTableState.Present => inTable,
            PageTableState.Absent => inHole,
            _ when inTable == inHole => inTable,
            _ => throw new OutOfScopeException("PAGEMAP_SCAN over a none PTE whose page table may or may not exist (a fault or fill may have allocated it, MADV_DONTNEED may have freed it): the written category depends on it here"),
        };
    }

    private const ulong PageIsWpAllowed = 1, PageIsWritten = 2, PageIsFile = 4, PageIsPresent = 8, PageIsSwapped = 0x10, PageIsPfnZero = 0x20;

    /// <summary>The return mask the scan op asks for.</summary>
    internal const ulong ScanReturnMask = PageIsWritten | PageIsFile | PageIsPresent | PageIsSwapped | PageIsPfnZero;

    /// <summary>PAGEMAP_SCAN (6.7+, §1.7) with category_mask = PAGE_IS_WRITTEN (the generic path, not the
    /// WRITTEN-only fast path): pagemap_page_category per PTE ("written" = no uffd-wp bit), contiguous equal pages
    /// form a region. A none PTE is written since scan-none-written when its table exists, and in a uffd-wp VMA
    /// since scan-hole-written when it does not; from 7.3 (scan-written-wp-only) nothing outside a uffd-wp VMA is
    /// written. WP_MATCHING|CHECK_WPASYNC also write-protects what matched (a none PTE gets a marker), and is
    /// EPERM on a VMA without async WP.</summary>
    private string Scan(MapState m, bool wpMatching)
    {
        if (!Sw(KernelProfile.PagemapScan))
            return "ENOTTY";
        if (m.Hugetlb)
            throw new OutOfScopeException("PAGEMAP_SCAN of a hugetlb mapping (pagemap_scan_hugetlb_entry) is not modelled");
        if (wpMatching)
        {
            if (m.Vmas.Count > 1)
                throw new OutOfScopeException("PAGEMAP_SCAN with WP_MATCHING over several VMAs is not modelled");
            var v0 = m.Vmas[0];
            if (!(IsAsync(v0.Ctx, this) && UseMarkers(m, v0)))
                return "EPERM";
            if (m.Ptes.Any(p => p.Kind == PteKind.Poison))
                throw new OutOfScopeException("PAGEMAP_SCAN WP_MATCHING over a poison marker is not modelled");
        }
        var regions = new List<(int Start, int End, ulong Cat)>();
        for (int p = 0; p < m.Pages; p++)
        {
            var pte = m.Ptes[p];
            var vma = m.VmaAt(p);
            ulong cat = pte.Kind switch
            {
                PteKind.Present => PageIsPresent | (pte.Wp ? 0 : PageIsWritten) | (pte.Mapped == MappedPage.File ? PageIsFile : 0) | (pte.Mapped == MappedPage.Zero ? PageIsPfnZero : 0),
                PteKind.WpMarker => PageIsSwapped,
                PteKind.Poison => PageIsSwapped | PageIsWritten,
                _ => NoneWritten(m, vma) ? PageIsWritten : 0,
            };
            if ((cat & PageIsWritten) != 0 && !vma.Wp && Sw(KernelProfile.ScanWrittenWpOnly))
                cat &= ~PageIsWritten;
            if ((cat & PageIsWritten) == 0)
                continue;
            cat &= ScanReturnMask;
            if (regions.Count > 0 && regions[^1].End == p && regions[^1].Cat == cat)
                regions[^1] = (regions[^1].Start, p + 1, cat);
            else
                regions.Add((p, p + 1, cat));
            if (wpMatching && pte.Kind == PteKind.Present)
                m.Ptes[p].Wp = true;
            else if (wpMatching && pte.IsNone)
                m.Ptes[p] = Pte.Marker;
        }
        return $"ok regions={regions.Count}" + string.Concat(regions.Select(r => $" [{r.Start},{r.End}):0x{r.Cat:x}"));
    }
}
