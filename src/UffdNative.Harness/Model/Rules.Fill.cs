using UffdNative.Harness.Scenarios;
using E = UffdNative.Errno;

namespace UffdNative.Harness.Model;

/// <summary>Rules of the resolving ioctls: COPY, ZEROPAGE, CONTINUE, POISON (mfill_atomic), MOVE,
/// WRITEPROTECT and WAKE (reference §1.4, §1.6, §1.8).</summary>
internal sealed partial class ModelRun
{
    internal enum FillKind { Copy, ZeroPage, Continue, Poison }

    /// <summary>The result field when mmap_changing makes an ioctl fail: -EAGAIN since ~6.15 (and stable
    /// backports), left as the caller set it before (§1.6, §4.7, the early check in fs/userfaultfd.c).</summary>
    private IoResult MmapChangingResult() =>
        IoResult.Fail(E.EAGAIN, Sw(KernelProfile.EagainResultField) ? -E.EAGAIN : IoResult.FieldUntouched);

    /// <summary>mfill_atomic (§1.4): validation, then page by page; the result protocol of §0.7 / I4:
    /// full (0, field = len), partial (EAGAIN, field = bytes), failed (errno, field = -errno).</summary>
    private IoResult Fill(Ctx ctx, FillKind kind, MapState m, int first, int count, ulong tag, bool wp)
    {
        if (!ctx.Initialized)
            return IoResult.Fail(E.EINVAL, IoResult.FieldUntouched);
        // An ioctl the kernel does not know is EINVAL before anything is written (§1.4 "Unknown command numbers").
        if (kind == FillKind.Poison && !Sw(KernelProfile.Poison))
            return IoResult.Fail(E.EINVAL, IoResult.FieldUntouched);
        if (kind == FillKind.Continue && !Sw(KernelProfile.ContinueIoctl))
            return IoResult.Fail(E.EINVAL, IoResult.FieldUntouched);
        // CONTINUE_MODE_WP is 6.4+; before, an unknown mode bit is EINVAL before the field is written.
        if (kind == FillKind.Continue && wp && !Sw(KernelProfile.ContinueModeWp))
            return IoResult.Fail(E.EINVAL, IoResult.FieldUntouched);
        if (ctx.MmapChanging > 0)
            return MmapChangingResult();

        var mm = ctx.Mm;
        // The dst VMA is the one holding the start address; for a private VMA its anon_vma is prepared on
        // lookup, before any validation (uffd_lock_vma / find_vma_and_prepare_anon, 6.8+).
        var vma = m.VmaAt(first);
        if (!m.IsShared)
            AnonVmaPrepare(m, vma);
        // find_dst_vma / validate_dst_vma: the whole range in one VMA registered with *any* uffd of this mm
        // (§0.8): otherwise ENOENT.
        if (first + count > vma.End || vma.Ctx is null)
            return IoResult.Fail(E.ENOENT, -E.ENOENT);
        // MODE_WP needs VM_UFFD_WP (§1.4 COPY, CONTINUE).
        if (wp && !vma.Wp)
            return IoResult.Fail(E.EINVAL, -E.EINVAL);
        // CONTINUE is shmem/hugetlb only.
        if (kind == FillKind.Continue && m.IsAnonymous)
            return IoResult.Fail(E.EINVAL, -E.EINVAL);
        // mfill_atomic_hugetlb (mm/userfaultfd.c) refuses ZEROPAGE outright: hugetlb has no zero page (§3.11). Its
        // range must also be huge-page aligned (EINVAL), which a scenario's page indices always are.
        if (kind == FillKind.ZeroPage && m.Hugetlb)
            return IoResult.Fail(E.EINVAL, -E.EINVAL);

        long done = 0;
        int err = 0;
        for (int p = first; p < first + count; p++)
        {
            err = FillPage(kind, m, p, tag, wp);
            if (err != 0)
                break;
            done += PageBytes;
        }
        if (done == count * PageBytes)
            return IoResult.Success(done);
        return done > 0 ? IoResult.Fail(E.EAGAIN, done) : IoResult.Fail(err, -err);
    }

    private int FillPage(FillKind kind, MapState m, int p, ulong tag, bool wp)
    {
        ref var pte = ref m.Ptes[p];
        int idx = m.FileOffset + p;
        bool beyondEof = m.IsFile && idx >= file.Size;
        if (m.Hugetlb)
            return FillHugePage(kind, m, p, tag, wp);
        switch (kind)
        {
            case FillKind.Copy when m.IsShared:
            case FillKind.ZeroPage when m.IsShared:
                // shmem_mfill_atomic_pte: i_size (EFAULT), then the page cache (EEXIST if a page exists
                // even without a PTE), then the PTE (EEXIST unless none or a marker). From 7.1 the folio comes
                // from vm_uffd_ops->alloc_folio, which returns NULL beyond i_size: ENOMEM (shmem-fill-beyond-eof).
                if (beyondEof)
                    return Sw(KernelProfile.ShmemFillBeyondEof) ? E.ENOMEM : E.EFAULT;
                if (file.Present[idx])
                    return E.EEXIST;
                if (!pte.IsNoneMostly)
                    return E.EEXIST;
                file.Present[idx] = true;
                file.Tag[idx] = kind == FillKind.Copy ? tag : 0;
                pte = Pte.FilePage(wp);
                return 0;

            case FillKind.Copy:
                // A private mapping (anon, or MAP_PRIVATE shmem) gets a new anon page, whatever the page
                // cache holds; a marker may be overwritten, and the wp bit is then only MODE_WP's (§3.2).
                return FillPte(ref pte, efault: beyondEof, overMarker: true, Pte.AnonPage(tag, wp));

            case FillKind.ZeroPage:
                // mfill_atomic_pte_zeropage: the zero page, only into a truly none PTE (a marker is EEXIST).
                return FillPte(ref pte, efault: beyondEof, overMarker: false, Pte.ZeroPage(false));

            case FillKind.Continue:
                // shmem_get_folio(SGP_NOALLOC): beyond i_size -EINVAL, no cached page EFAULT (§3.10); then
                // the page-cache page is mapped (read-only in a private mapping), wp only with MODE_WP. From 7.1
                // every get_folio_noalloc error is EFAULT (shmem-fill-beyond-eof).
                if (beyondEof)
                    return Sw(KernelProfile.ShmemFillBeyondEof) ? E.EFAULT : E.EINVAL;
                return FillPte(ref pte, efault: !file.Present[idx], overMarker: true, Pte.FilePage(wp));

            default:
                // mfill_atomic_pte_poison: refuses any PTE that is not none, a WP marker included (§3.10).
                return FillPte(ref pte, efault: beyondEof, overMarker: false, Pte.PoisonMarker);
        }
    }

    /// <summary>The last steps of a fill (mfill_atomic_pte_*, hugetlb_mfill_atomic_pte): EFAULT where efault (beyond
    /// i_size, or no page-cache page to map), EEXIST unless the PTE is none (or, where overMarker, a WP or poison
    /// marker), then the PTE becomes filled.</summary>
    private static int FillPte(ref Pte pte, bool efault, bool overMarker, Pte filled)
    {
        if (efault)
            return E.EFAULT;
        if (!(overMarker ? pte.IsNoneMostly : pte.IsNone))
            return E.EEXIST;
        pte = filled;
        return 0;
    }

    /// <summary>One huge page of a hugetlb fill (§3.11): mfill_atomic_hugetlb checks the PTE first (EEXIST unless none
    /// or a marker; not for CONTINUE), then hugetlb_mfill_atomic_pte (mm/hugetlb.c): POISON only into a truly none PTE;
    /// CONTINUE needs the page-cache page (EFAULT without it, beyond i_size included); COPY into a shared mapping is
    /// EEXIST when the page cache has the page and EFAULT beyond i_size (checked after the page is allocated), and
    /// into a private one makes an anonymous page whatever i_size says.</summary>
    private int FillHugePage(FillKind kind, MapState m, int p, ulong tag, bool wp)
    {
        ref var pte = ref m.Ptes[p];
        int idx = m.FileOffset + p;
        bool cached = idx < file.Size && file.Present[idx];
        switch (kind)
        {
            case FillKind.Poison:
                return FillPte(ref pte, efault: false, overMarker: false, Pte.PoisonMarker);
            case FillKind.Continue:
                return FillPte(ref pte, efault: !cached, overMarker: true, Pte.FilePage(wp));
            default:
                if (!pte.IsNoneMostly)
                    return E.EEXIST;
                if (!m.IsShared)
                {
                    pte = Pte.AnonPage(tag, wp);
                    return 0;
                }
                if (cached)
                    return E.EEXIST;
                if (idx >= file.Size)
                    return E.EFAULT;
                file.Present[idx] = true;
                file.Tag[idx] = tag;
                pte = Pte.FilePage(wp);
                return 0;
        }
    }

    /// <summary>UFFDIO_MOVE (6.8+, §1.4): anon private VMAs only, dst registered with this very uffd;
    /// page by page: dst must be none (EEXIST), src none is ENOENT unless ALLOW_SRC_HOLES, a shared
    /// (non-exclusive) page is EBUSY, a marker is EFAULT. The moved PTE is fresh: writable, no wp.</summary>
    private IoResult Move(Ctx ctx, MapState dst, int first, MapState src, int srcFirst, int count, bool allowHoles)
    {
        if (!ctx.Initialized || !Sw(KernelProfile.Move))
            return IoResult.Fail(E.EINVAL, IoResult.FieldUntouched);
        if (ctx.MmapChanging > 0)
            return MmapChangingResult();
        // MOVE works only inside the caller's own mm (§1.4 MOVE, §1.8 "EINVAL (cross-mm)"): a uffd of a
        // fork child, served from the parent, cannot move.
        if (ctx.Mm != parent)
            return IoResult.Fail(E.EINVAL, -E.EINVAL);
        var dvma = dst.VmaAt(first);
        if (!dst.IsShared)
            AnonVmaPrepare(dst, dvma);
        var svma = src.VmaAt(srcFirst);
        if (src.IsShared || srcFirst + count > svma.End || dst.IsShared || first + count > dvma.End)
            return IoResult.Fail(E.EINVAL, -E.EINVAL);
        if (dvma.Ctx != ctx || !src.IsAnonymous || !dst.IsAnonymous)
            return IoResult.Fail(E.EINVAL, -E.EINVAL);

        long done = 0;
        int err = 0;
        bool unspecified = false;
        for (int i = 0; i < count; i++)
        {
            ref var d = ref dst.Ptes[first + i];
            ref var s = ref src.Ptes[srcFirst + i];
            if (!d.IsNone)
            {
                // A src range with no page table at all is ENOENT before dst is looked at; the model does
                // not track page-table allocation, so with a none src either answer is possible.
                err = E.EEXIST;
                unspecified = s.IsNone && !allowHoles;
                break;
            }
            if (s.IsNone)
            {
                if (!allowHoles)
                {
                    err = E.ENOENT;
                    break;
                }
                done += 4096;
                continue;
            }
            if (s.Kind != PteKind.Present)
            {
                err = E.EFAULT;
                break;
            }
            if (s.Mapped == MappedPage.Zero)
            {
                d = Pte.ZeroPage(false);
                s = default;
            }
            else
            {
                // move_pages_pte: a maybe-DMA-pinned folio is EBUSY like a shared one (mm/userfaultfd.c).
                if (!s.Exclusive || s.Pinned)
                {
                    err = E.EBUSY;
                    break;
                }
                d = Pte.AnonPage(s.Tag, wp: false);
                s = default;
            }
            done += 4096;
        }
        if (done == (long)count * 4096)
            return IoResult.Success(done);
        if (done > 0)
            return IoResult.Fail(E.EAGAIN, done);
        if (unspecified)
            return new IoResult(E.EEXIST, null, FieldUnspecified: true, AltErrno: E.ENOENT);
        return IoResult.Fail(err, -err);
    }

    /// <summary>UFFDIO_WAKE (§1.4): touches no page table, works even while an event is unread.</summary>
    private static IoResult Wake(Ctx ctx) => ctx.Initialized ? IoResult.Success() : IoResult.Fail(E.EINVAL);

    /// <summary>UFFDIO_WRITEPROTECT (§1.4): VMA by VMA, each must be WP-registered (with any uffd) or
    /// ENOENT with earlier VMAs already changed (multi-VMA since ~6.4; before, one registered VMA).
    /// Protect: present PTEs get wp; none PTEs get a marker where markers are used (shmem always, anon with
    /// WP_UNPOPULATED). Un-protect: clears wp and markers.</summary>
    private IoResult WriteProtect(Ctx ctx, MapState m, int first, int count, bool protect, bool dontWake)
    {
        if (!ctx.Initialized)
            return IoResult.Fail(E.EINVAL);
        if (protect && dontWake)
            return IoResult.Fail(E.EINVAL);
        if (ctx.MmapChanging > 0)
            return IoResult.Fail(E.EAGAIN);
        var vmas = m.VmasIn(first, count).ToList();
        // Over a single VMA both rules agree (it must be WP-registered); the switch decides only ranges
        // spanning several VMAs.
        if (vmas.Count > 1 && !Sw(KernelProfile.MultiVmaWriteProtect))
        {
            var v = m.VmaAt(first);
            if (first + count > v.End || v.Ctx is null || !v.Wp)
                return IoResult.Fail(E.ENOENT);
            ProtectRange(m, v, first, first + count, protect);
            return IoResult.Success();
        }
        foreach (var v in vmas)
        {
            if (!v.Wp)
                return IoResult.Fail(E.ENOENT);
            ProtectRange(m, v, Math.Max(first, v.Start), Math.Min(first + count, v.End), protect);
        }
        return IoResult.Success();
    }

    /// <summary>userfaultfd_wp_use_markers (§1.4 "Unpopulated pages", §3.3).</summary>
    private bool UseMarkers(MapState m, Vma v)
    {
        if (!v.Wp)
            return false;
        if (m.IsFile)
            return !Bug(ModelBug.WpSkipsNoneShmem);
        return v.Ctx!.HasFeature(UffdFeatures.WpUnpopulated) && Sw(KernelProfile.WpUnpopulated);
    }

    private void ProtectRange(MapState m, Vma v, int start, int end, bool protect)
    {
        for (int p = start; p < end; p++)
        {
            ref var pte = ref m.Ptes[p];
            if (protect)
            {
                if (pte.IsPresent)
                    pte.Wp = true;
                else if (pte.IsNone && UseMarkers(m, v))
                    pte = Pte.Marker;
            }
            else
            {
                if (pte.IsPresent)
                    pte.Wp = false;
                else if (pte.Kind == PteKind.WpMarker)
                    pte = default;
            }
        }
    }

    /// <summary>Clears wp bits and wp markers (uffd_wp_range(..., false)): unregister (~6.0), close (6.9),
    /// mremap without EVENT_REMAP (6.13).</summary>
    private static void ClearWp(MapState m, int start, int end)
    {
        for (int p = start; p < end; p++)
        {
            ref var pte = ref m.Ptes[p];
            if (pte.IsPresent)
                pte.Wp = false;
            else if (pte.Kind == PteKind.WpMarker)
                pte = default;
        }
    }

    /// <summary>anon_vma_prepare: reuse a compatible neighbour's anon_vma (next first, then prev: same
    /// flags except access bits), else a new one.</summary>
    private void AnonVmaPrepare(MapState m, Vma v)
    {
        if (v.AnonVma != 0)
            return;
        int i = m.Vmas.IndexOf(v);
        RegisterMode Flags(Vma x) => x.Ctx is null ? RegisterMode.None : x.Modes;
        if (i + 1 < m.Vmas.Count && m.Vmas[i + 1].AnonVma != 0 && Flags(m.Vmas[i + 1]) == Flags(v))
            v.AnonVma = m.Vmas[i + 1].AnonVma;
        else if (i > 0 && m.Vmas[i - 1].AnonVma != 0 && Flags(m.Vmas[i - 1]) == Flags(v))
            v.AnonVma = m.Vmas[i - 1].AnonVma;
        else
            v.AnonVma = nextAnonVma++;
    }
}
