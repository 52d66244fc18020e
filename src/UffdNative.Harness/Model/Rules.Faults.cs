using UffdNative.Harness.Scenarios;

namespace UffdNative.Harness.Model;

/// <summary>Rules of the faulting side: what a load or store does to the page tables, when it becomes a
/// uffd message, and how the scenario's handler resolves it.</summary>
internal sealed partial class ModelRun
{
    private enum Reason { Missing, Wp, Minor }

    private static bool IsAsync(Ctx? c, ModelRun run) =>
        c is not null && c.HasFeature(UffdFeatures.WpAsync) && run.Sw(KernelProfile.WpAsync);

    /// <summary>One access by a thread of <paramref name="mm"/> to page <paramref name="p"/> of
    /// <paramref name="m"/>; faults are delivered, resolved by the handler and retried until the access
    /// completes (or the handler fails: blocked).</summary>
    private Outcome Access(Mm mm, MapState m, int p, bool write, ulong tag, bool kernel)
    {
        while (true)
        {
            var vma = m.VmaAt(p);
            ref var pte = ref m.Ptes[p];
            int idx = m.FileOffset + p;

            switch (pte.Kind)
            {
                case PteKind.Poison:
                    // §1.4 UFFDIO_POISON: any access to a poison marker raises SIGBUS (6.6+), si_code by the build.
                    return new Outcome(kernel ? OutcomeKind.Efault : OutcomeKind.Sigbus, kernel ? 0 : PoisonSigbusCode());

                case PteKind.WpMarker when !vma.Wp:
                    // A marker left in a VMA that is no longer WP-registered (re-registered without WP, or a
                    // stale one on kernels that do not clear on unregister/close/mremap) is cleared and the
                    // fault retried as on a none PTE (pte_marker_handle_uffd_wp, 5.19+).
                    pte = default;
                    continue;

                case PteKind.WpMarker:
                case PteKind.None:
                {
                    var r = MissingPath(mm, m, p, vma, write, tag, kernel, uffdWp: pte.Kind == PteKind.WpMarker);
                    if (r is { } done)
                        return done;
                    continue;
                }

                default:
                    break;
            }

            // Present.
            if (!write)
                return new Outcome(OutcomeKind.Ok, Value(m, p));

            if (pte.Wp && vma.Wp)
            {
                if (IsAsync(vma.Ctx, this))
                {
                    // §3.4 WP_ASYNC (6.7+): the kernel drops the wp bit and the write proceeds, no message.
                    pte.Wp = false;
                }
                else
                {
                    // §3.2/§1.5: a write to a present wp PTE in a WP VMA is a WP fault (flags WRITE|WP).
                    var f = UserFault(vma, Reason.Wp, m, p, write: true, kernel);
                    if (f is { } stop)
                        return stop;
                    continue;
                }
            }

            if (pte.Wp && !vma.Wp && mm != parent && ChildKeepsHugetlbWp(m))
            {
                // §3.11 fork, before 6.4: a private hugetlb page that kept its uffd-wp bit in a VMA without WP (a fork
                // child's): no message, and hugetlb_wp does not CoW a uffd-wp page (60d5b473d61b, 6.3, in 6.1 stable);
                // the fault retries forever (a pin's too: GUP's hugetlb loop re-faults until a fatal signal).
                Block();
                return Outcome.Blocked;
            }

            if (m.IsShared)
            {
                // MAP_SHARED: the store goes to the page-cache page.
                if (!pinFault)
                    file.Tag[idx] = tag;
                return new Outcome(OutcomeKind.Ok);
            }
            if (pte.Mapped == MappedPage.Anon)
            {
                // do_wp_page reuses the exclusive anon page (after a fork child has gone, it becomes
                // exclusive again); the PTE keeps its bits.
                if (!pinFault)
                    pte.Tag = tag;
                pte.Exclusive = true;
                return new Outcome(OutcomeKind.Ok);
            }
            // CoW of the zero page or of a page-cache page in a MAP_PRIVATE mapping: a fresh anon PTE
            // (wp_page_copy builds a new entry: no wp bit).
            AnonVmaPrepare(m, vma);
            pte = Pte.AnonPage(pinFault ? Value(m, p) : tag, wp: false);
            return new Outcome(OutcomeKind.Ok);
        }
    }

    /// <summary>si_code of a plain VM_FAULT_SIGBUS (x86 do_sigbus).</summary>
    private const ulong BusAdrerr = 2;

    /// <summary>§1.4 UFFDIO_POISON: the marker's fault is VM_FAULT_HWPOISON, which x86's do_sigbus reports as
    /// BUS_MCEERR_AR (4) only in a CONFIG_MEMORY_FAILURE build (the memory-failure fact), else BUS_ADRERR.</summary>
    private ulong PoisonSigbusCode()
    {
        ConsultFact(EnvironmentFacts.MemoryFailureName);
        return Facts.MemoryFailure != false ? 4UL : BusAdrerr;
    }

    /// <summary>The environment fact "an anonymous read fault maps the shared zero page" (§0b).</summary>
    private bool ReadMapsZeroPage()
    {
        ConsultFact(EnvironmentFacts.AnonReadZeroPageName);
        return Facts.AnonReadZeroPage;
    }

    private ulong Value(MapState m, int p)
    {
        var pte = m.Ptes[p];
        int idx = m.FileOffset + p;
        return pte.Mapped switch
        {
            MappedPage.Zero => 0,
            MappedPage.Anon => pte.Tag,
            _ => file.Present[idx] ? file.Tag[idx] : 0,
        };
    }

    /// <summary>A fault on a none PTE (or a uffd-wp marker in a WP VMA, which do_pte_missing treats like
    /// none but remembers as "orig pte uffd-wp"). Returns the outcome when the access is finished, null
    /// when it must be retried.</summary>
    private Outcome? MissingPath(Mm mm, MapState m, int p, Vma vma, bool write, ulong tag, bool kernel, bool uffdWp)
    {
        ref var pte = ref m.Ptes[p];
        if (m.IsAnonymous)
        {
            // do_anonymous_page (§1.5, §3.3). A write prepares the anon_vma (vmf_anon_prepare) before it
            // looks at the MISSING registration, so even a write that becomes a uffd fault leaves one. Where
            // the zero page is off (§0b) a read takes the same allocation path.
            if (write || !ReadMapsZeroPage())
                AnonVmaPrepare(m, vma);
            if (vma.Has(RegisterMode.Missing))
                return UserFault(vma, Reason.Missing, m, p, write, kernel);
            if (!write)
            {
                if (ReadMapsZeroPage())
                {
                    // The zero page; over a marker it keeps the wp bit (§3.3 "a read maps the zero page with wp").
                    pte = Pte.ZeroPage(uffdWp);
                    return new Outcome(OutcomeKind.Ok, 0);
                }
                // §0b, zero page off (a build or boot option): do_anonymous_page takes its allocation path for
                // the read — vmf_anon_prepare, a private exclusive zeroed page, writable unless the marker's wp
                // bit is carried over (then read-only with wp, and no message for the read itself).
                AnonVmaPrepare(m, vma);
                pte = Pte.AnonPage(0, wp: uffdWp);
                return new Outcome(OutcomeKind.Ok, 0);
            }
            if (uffdWp)
            {
                // The new page is installed read-only with wp; the retried write takes the WP fault (§3.2).
                pte = Pte.AnonPage(0, wp: true);
                return null;
            }
            pte = Pte.AnonPage(pinFault ? 0 : tag, wp: false);
            return new Outcome(OutcomeKind.Ok);
        }

        int idx = m.FileOffset + p;
        // do_cow_fault (a write to a MAP_PRIVATE file mapping) prepares the anon_vma first, before the page
        // cache or the uffd registration is consulted.
        if (write && !m.IsShared)
            AnonVmaPrepare(m, vma);
        if (!write && FaultAroundEnabled(m, vma))
        {
            // do_read_fault maps the window first, and only then asks shmem_fault for the page itself.
            FaultAround(m, p, vma);
            if (pte.IsPresent)
                return new Outcome(OutcomeKind.Ok, file.Tag[idx]);
        }
        // Beyond EOF: shmem_get_folio_gfp refuses (-EINVAL → VM_FAULT_SIGBUS) before looking at the page
        // cache or the registration; a kernel-mode access gets EFAULT (§1.4 COPY "dst beyond i_size").
        if (idx >= file.Size)
            return new Outcome(kernel ? OutcomeKind.Efault : OutcomeKind.Sigbus, BusAdrerr);

        // shmem_get_folio_gfp (§1.3, §3.10): a cached page in a MINOR VMA is a MINOR fault; no cached page
        // in a MISSING VMA is a MISSING fault; otherwise a hole is filled with a zeroed page-cache page.
        if (file.Present[idx])
        {
            if (vma.Has(RegisterMode.Minor))
                return UserFault(vma, Reason.Minor, m, p, write, kernel);
        }
        else
        {
            if (vma.Has(RegisterMode.Missing))
                return UserFault(vma, Reason.Missing, m, p, write, kernel);
            if (m.Hugetlb && !m.IsShared)
            {
                // hugetlb_no_page (mm/hugetlb.c, §3.11): a hole in a private hugetlb mapping gets a new anonymous
                // huge page (vmf_anon_prepare), never a page-cache page; over a marker it keeps the wp bit, and a
                // write then takes the WP fault first (hugetlb_wp never CoWs a uffd-wp page).
                AnonVmaPrepare(m, vma);
                pte = Pte.AnonPage(0, wp: uffdWp);
                if (!write)
                    return new Outcome(OutcomeKind.Ok, 0);
                if (uffdWp)
                    return null;
                if (!pinFault)
                    pte.Tag = tag;
                return new Outcome(OutcomeKind.Ok);
            }
            file.Present[idx] = true;
            file.Tag[idx] = 0;
        }

        if (!write)
        {
            // §3.2: reading a marker maps the page read-only *with* wp, and sends no message.
            if (uffdWp && Bug(ModelBug.MarkerReadFaults))
            {
                pte = Pte.FilePage(true);
                var f = UserFault(vma, Reason.Wp, m, p, write: true, kernel);
                if (f is { } stop)
                    return stop;
            }
            pte = Pte.FilePage(uffdWp);
            return new Outcome(OutcomeKind.Ok, file.Tag[idx]);
        }
        if (m.IsShared)
        {
            // do_shared_fault: over a marker the page is first installed read-only + wp, and the retried
            // write raises the WP fault (§3.2 "Write to a marker").
            pte = Pte.FilePage(uffdWp);
            if (uffdWp)
                return null;
            if (!pinFault)
                file.Tag[idx] = tag;
            return new Outcome(OutcomeKind.Ok);
        }
        // do_cow_fault: MAP_PRIVATE write copies the page-cache page into a new anon page.
        pte = Pte.AnonPage(file.Tag[idx], wp: uffdWp);
        if (uffdWp)
            return null;
        if (!pinFault)
            pte.Tag = tag;
        return new Outcome(OutcomeKind.Ok);
    }

    /// <summary>§3.1: uffd_disable_fault_around() = VM_UFFD_WP | VM_UFFD_MINOR (MINOR 5.14, WP 5.19);
    /// MISSING-only and unregistered VMAs fault around. Anonymous memory has no map_pages.</summary>
    private bool FaultAroundEnabled(MapState m, Vma vma)
    {
        // hugetlb_fault has no map_pages: no fault-around (§3.11).
        if (m.Hugetlb)
            return false;
        if (vma.Ctx is null)
            return true;
        if ((vma.Modes & RegisterMode.Minor) != 0 && Sw(KernelProfile.FaultAroundOffMinor))
            return false;
        if ((vma.Modes & RegisterMode.WriteProtect) != 0 && Sw(KernelProfile.FaultAroundOffWp) && !Bug(ModelBug.FaultAroundInWpVma))
            return false;
        return true;
    }

    /// <summary>do_fault_around + filemap_map_pages (§3.1): a window of fault_around_bytes, aligned in the
    /// virtual address, clamped to the VMA, the page table and i_size; cached pages are mapped read-only
    /// (without wp) into none PTEs only. Scenario mappings start 2 MiB aligned, so the page index is the
    /// PTE index.</summary>
    private void FaultAround(MapState m, int p, Vma vma)
    {
        ConsultFact(EnvironmentFacts.FaultAroundPagesName);
        int w = Facts.FaultAroundPages;
        if (w <= 1)
            return;
        int from = Math.Max(p - p % w, vma.Start);
        int to = Math.Min(Math.Min(from + w, vma.End), (p / 512 + 1) * 512);
        for (int q = from; q < to; q++)
        {
            int idx = m.FileOffset + q;
            if (idx >= file.Size)
                break;
            if (file.Present[idx] && m.Ptes[q].IsNone)
                m.Ptes[q] = Pte.FilePage(false);
        }
    }

    /// <summary>handle_userfault (§1.5): SIGBUS with FEATURE_SIGBUS, EFAULT for a kernel-mode fault on a
    /// USER_MODE_ONLY uffd, otherwise a PAGEFAULT message the handler resolves. Returns the outcome when the
    /// access ends here, null when it must be retried.</summary>
    private Outcome? UserFault(Vma vma, Reason reason, MapState m, int p, bool write, bool kernel)
    {
        var ctx = vma.Ctx!;
        if (ctx.HasFeature(UffdFeatures.Sigbus) && !(reason == Reason.Wp && Bug(ModelBug.SigbusSparesWpFaults)))
            return new Outcome(kernel ? OutcomeKind.Efault : OutcomeKind.Sigbus, BusAdrerr);
        if (kernel && ctx.UserModeOnly)
            return new Outcome(OutcomeKind.Efault);
        // A pin's GUP that may not drop mmap_lock (pin-fault-waits old) cannot wait: VM_FAULT_SIGBUS, no message.
        if (pinFault && !Sw(KernelProfile.PinFaultWaits))
            return new Outcome(OutcomeKind.Efault);
        ulong flags = (write ? 1UL : 0) | (reason == Reason.Wp ? 2UL : 0) | (reason == Reason.Minor ? 4UL : 0);
        if (holding)
            return HoldFault(ctx, m, p, flags);
        // §4 I3: a thread woken without resolution re-faults; a handler that never resolves livelocks it.
        if (++faultsThisOp > MaxFaultsPerOp)
        {
            Block();
            return Outcome.Blocked;
        }
        var (log, resolved) = Resolve(ctx, m, p, reason);
        msgs.Add($"{ctx.Name} PF 0x{flags:x} {m.Name}+{p} => {log}");
        if (!resolved)
        {
            Block();
            return Outcome.Blocked;
        }
        return null;
    }

    /// <summary>The scenario's handler (HandlerPolicy): the ioctls it issues for one message, through the
    /// uffd that received it, and whether the faulting thread is released.</summary>
    private (string Log, bool Resolved) Resolve(Ctx ctx, MapState m, int p, Reason reason)
    {
        var log = new List<string>();
        IoResult r;
        int first = p, count = 1;
        switch (reason)
        {
            case Reason.Wp:
                r = WriteProtect(ctx, m, p, 1, protect: false, dontWake: false);
                log.Add(Entry("unprotect", r));
                break;
            case Reason.Minor:
                if (sc.Policy.MinorInvertThrough is { } alias)
                {
                    // Upstream's MINOR handler (§2.1): the inverse of the cached page's bytes is written through the
                    // unregistered alias of the handler's process — an ordinary shared write, no fault, into the page
                    // cache the fault found — and only then CONTINUEd.
                    var al = parent.Map(alias);
                    int idx = m.FileOffset + p;
                    Access(parent, al, idx - al.FileOffset, write: true, ~file.Tag[idx], kernel: false);
                }
                if (sc.Policy.ContinueWp)
                {
                    r = Fill(ctx, FillKind.Continue, m, p, 1, 0, wp: true);
                    log.Add(Entry("continue-wp", r));
                    if (r.Errno == UffdNative.Errno.EINVAL)
                    {
                        r = Fill(ctx, FillKind.Continue, m, p, 1, 0, wp: false);
                        log.Add(Entry("continue", r));
                    }
                }
                else
                {
                    r = Fill(ctx, FillKind.Continue, m, p, 1, 0, wp: false);
                    log.Add(Entry("continue", r));
                }
                break;
            default:
                if (sc.Policy.Poisons(p) && sc.Policy.Missing is MissingPolicy.Copy or MissingPolicy.CopyWp)
                {
                    // MissingCopy.PoisonedPages: a page the source reports lost is POISONed, so the access gets SIGBUS (§1.4 POISON).
                    r = Fill(ctx, FillKind.Poison, m, p, 1, 0, wp: false);
                    log.Add(Entry("poison", r));
                    break;
                }
                switch (sc.Policy.Missing)
                {
                    case MissingPolicy.CopyWp:
                        r = Fill(ctx, FillKind.Copy, m, p, 1, HandlerPolicy.CopyTag(m.Index, p), wp: true);
                        log.Add(Entry("copy-wp", r));
                        if (r.Errno == UffdNative.Errno.EINVAL)
                        {
                            r = Fill(ctx, FillKind.Copy, m, p, 1, HandlerPolicy.CopyTag(m.Index, p), wp: false);
                            log.Add(Entry("copy", r));
                        }
                        break;
                    case MissingPolicy.ZeroPage:
                        r = Fill(ctx, FillKind.ZeroPage, m, p, 1, 0, wp: false);
                        log.Add(Entry("zeropage", r));
                        break;
                    case MissingPolicy.Move:
                        count = Math.Max(1, sc.Policy.MoveChunk);
                        first = p - p % count;
                        r = Move(ctx, m, first, ctx.Mm.Map(sc.Policy.MoveSource ?? throw new OutOfScopeException("MISSING policy Move without a source")), first, count, allowHoles: true);
                        log.Add(Entry("move", r));
                        break;
                    default:
                        r = Fill(ctx, FillKind.Copy, m, p, 1, HandlerPolicy.CopyTag(m.Index, p), wp: false);
                        log.Add(Entry("copy", r));
                        break;
                }
                break;
        }
        bool resolved;
        if (r.Errno == 0)
            resolved = true;
        else if (r.Errno == UffdNative.Errno.EEXIST)
        {
            // §2.1 __copy_page: EEXIST means another resolver won; wake anyway.
            log.Add("wake");
            resolved = true;
        }
        else
            // A partial result wakes only the range done (§1.4 result protocol).
            resolved = r.Errno == UffdNative.Errno.EAGAIN && r.Field is > 0 && p < first + (int)(r.Field.Value / PageBytes);
        return (string.Join(" ", log), resolved);
    }

    private static string Entry(string name, IoResult r) =>
        r.Ok ? name : $"{name}:{UffdNative.Errno.Name(r.Errno)}{(r.AltErrno != 0 ? "|" + UffdNative.Errno.Name(r.AltErrno) : "")}";
}
