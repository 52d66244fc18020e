using UffdNative.Access;
using UffdNative.Harness.Model;
using UffdNative.Uapi;
using UffdNative.Memory;
using UffdNative.PageMap;

namespace UffdNative.Harness.Probing;

/// <summary>
/// One minimal real experiment per <see cref="KernelProfile"/> switch (reference
/// docs/kernel-reference.md §3 "Observable test" column; §0a for what 6.1/6.12/6.18 really answer). Each
/// returns a <see cref="Finding"/> whose Value is true for the switch's new behaviour. The probe shows
/// the same findings as rows; <see cref="ProfileDetector"/> turns them into the detected profile.
/// </summary>
public static partial class SwitchDetectors
{
    public static readonly IReadOnlyDictionary<string, Func<Lab, Finding>> All = new Dictionary<string, Func<Lab, Finding>>
    {
        [KernelProfile.WpShmem] = WpShmemMarkers,
        [KernelProfile.FaultAroundOffMinor] = lab => FaultAroundOff(lab, RegisterMode.Minor),
        [KernelProfile.FaultAroundOffWp] = lab => FaultAroundOff(lab, RegisterMode.WriteProtect),
        [KernelProfile.WpUnpopulated] = WpUnpopulated,
        [KernelProfile.UnregisterClearsWp] = lab => WpClearedBy(lab, "UNREGISTER"),
        [KernelProfile.CloseClearsWp] = lab => WpClearedBy(lab, "close"),
        [KernelProfile.MremapClearsWp] = lab => WpClearedBy(lab, "mremap"),
        [KernelProfile.EagainResultField] = EagainResultField,
        [KernelProfile.UnregisterOtherUffdEinval] = UnregisterOtherUffd,
        [KernelProfile.UnknownFeatureAccepted] = UnknownFeatureAccepted,
        [KernelProfile.ContinueModeWp] = ContinueModeWp,
        [KernelProfile.MultiVmaWriteProtect] = MultiVmaWriteProtect,
        [KernelProfile.Poison] = Poison,
        [KernelProfile.WpAsync] = WpAsync,
        [KernelProfile.PagemapScan] = PagemapScan,
        [KernelProfile.Move] = Move,
        [KernelProfile.RegisterMaskMovePoison] = RegisterMaskMovePoison,
        [KernelProfile.ExactAddress] = ExactAddress,
        [KernelProfile.MinorShmem] = MinorShmem,
        [KernelProfile.DevUserfaultfd] = DevUserfaultfd,
        [KernelProfile.UserModeOnly] = UserModeOnly,
        [KernelProfile.PagemapWpAnon] = PagemapWpAnon,
        [KernelProfile.ContinueIoctl] = ContinueIoctl,
        [KernelProfile.VmaMergeAnonVma] = VmaMergeAnonVma,
        [KernelProfile.CopyOverGuardEexist] = CopyOverGuardEexist,
        [KernelProfile.MinAddrNotValidated] = MinAddrNotValidated,
        [KernelProfile.ShmemFillBeyondEof] = ShmemFillBeyondEof,
        [KernelProfile.SpecialVmaWpAsyncEinval] = SpecialVmaWpAsyncEinval,
        [KernelProfile.ScanNoneWritten] = ScanNoneWritten,
        [KernelProfile.ScanHoleWritten] = ScanHoleWritten,
        [KernelProfile.ReregisterKeepsWp] = ReregisterKeepsWp,
        [KernelProfile.ScanWrittenWpOnly] = ScanWrittenWpOnly,
        [KernelProfile.HugetlbForkDropsWp] = HugetlbForkDropsWp,
        [KernelProfile.MadvCollapse] = MadvCollapse,
        [KernelProfile.PinFaultWaits] = PinFaultWaits,
    };

    private static ulong P => Lab.Page;

    // ---- §3.2 (5.19): WP on shmem installs PTE markers that survive zaps ---------------------------

    public static Finding WpShmemMarkers(Lab lab)
    {
        if (lab.Unsupported(UffdFeatures.WpHugetlbfsShmem) is { } no)
            return no;
        using var s = lab.NewScope();
        var (_, m, u) = s.SharedMemfdAndUffd(2);
        int r = u.TryRegister(m.Address, m.Length, RegisterMode.WriteProtect, out _);
        if (r < 0)
            return Finding.Of(false, $"REGISTER(WP, shmem): {Errno.Name(r)}", "the kernel reports WP_HUGETLBFS_SHMEM but refuses WP on a memfd");
        u.WriteProtect(m.Address, m.Length, protect: true);
        var before = lab.Pm(m.Address);
        m.Advise(Advice.DontNeed, 0, P);
        var after = lab.Pm(m.Address);
        string ev = $"never-touched page after WRITEPROTECT: {Lab.Bits(before)}; after MADV_DONTNEED: {Lab.Bits(after)}";
        if (!before.IsWpMarker)
            return Finding.Of(false, $"no marker after WP ({Lab.Bits(before)})", ev);
        return Finding.Either(after.IsWpMarker,
            "marker (present=0 wp=1) after WP, kept by MADV_DONTNEED", $"marker lost by MADV_DONTNEED ({Lab.Bits(after)})", ev);
    }

    // ---- §3.1 fault-around ---------------------------------------------------------------------------

    /// <summary>
    /// Fills a 64-page memfd's page cache by pwrite, maps it shared, registers it (or not: mode None),
    /// reads one 64 KiB-aligned page from a worker (serving a MINOR fault with CONTINUE) and counts
    /// the present PTEs among the 16 pages from there (§3.1 "Observable").
    /// </summary>
    public static (int Present, int Window, string Faults) FaultAroundCount(Lab lab, RegisterMode mode)
    {
        using var s = lab.NewScope();
        const int pages = 64, window = 16;
        var f = s.Memfd(pages);
        f.WritePattern(0, pages * (long)P, 11);
        var m = s.Shared(f);
        int first = 0;
        while (first < pages - window && (m.PageAddress(first) & (window * P - 1)) != 0)
            first++;
        Userfaultfd? u = null;
        if (mode != RegisterMode.None)
        {
            u = s.Uffd();
            u.Register(m.Address, m.Length, mode);
        }
        var outcome = s.Run(u, [Op.Read64(m.PageAddress(first))]);
        if (!outcome.Finished)
            throw new InvalidOperationException("fault-around read did not complete: " + string.Join("; ", outcome.Notes));
        int present = lab.Pm(m.PageAddress(first), window).Count(e => e.Present);
        return (present, window, outcome.FaultText);
    }

    public static Finding FaultAroundOff(Lab lab, RegisterMode mode)
    {
        var need = mode == RegisterMode.Minor ? UffdFeatures.MinorShmem : UffdFeatures.PageFaultFlagWp | UffdFeatures.WpHugetlbfsShmem;
        if (lab.Unsupported(need) is { } no)
            return no;
        var control = FaultAroundCount(lab, RegisterMode.None);
        var reg = FaultAroundCount(lab, mode);
        string name = mode == RegisterMode.Minor ? "MINOR" : "WP";
        string ev = $"page cache filled, one read: unregistered {control.Present}/{control.Window} present, {name}-registered {reg.Present}/{reg.Window} ({reg.Faults})";
        if (control.Present <= 1)
            return Finding.Undetermined($"fault-around is off even without uffd ({control.Present} of {control.Window} mapped)", ev + "; fault_around_bytes is probably one page");
        if (reg.Present == 1)
            return Finding.Of(true, $"{name}: 1 of {reg.Window} pages mapped (unregistered: {control.Present})", ev);
        if (reg.Present >= control.Present)
            return Finding.Of(false, $"{name}: {reg.Present} of {reg.Window} pages mapped, like unregistered", ev);
        return Finding.Undetermined($"{name}: {reg.Present} of {reg.Window} pages mapped (unregistered: {control.Present})", ev);
    }

    // ---- §3.3 (6.4): WP_UNPOPULATED -----------------------------------------------------------------

    public static Finding WpUnpopulated(Lab lab)
    {
        if (lab.Unsupported(UffdFeatures.WpUnpopulated) is { } no)
            return no;
        using var s = lab.NewScope();
        var (m, u) = s.RegisteredAnon(RegisterMode.WriteProtect, UffdFeatures.WpUnpopulated);
        u.WriteProtect(m.Address, m.Length, protect: true);
        var e = lab.Pm(m.Address);
        return e.IsWpMarker
            ? Finding.Of(true, "never-touched anon page after WP: marker (present=0 wp=1)", Lab.Bits(e))
            : Finding.Of(false, $"never-touched anon page after WP: {Lab.Bits(e)} (skipped)", "UFFDIO_API accepted WP_UNPOPULATED but WRITEPROTECT left the none PTE alone");
    }

    // ---- §1.4 UNREGISTER (~6.0), §1.5 close() (6.9), §3.6 mremap (6.13) --------------------------------

    /// <summary>Write-protects a present anon page, then UNREGISTERs / closes / mremaps (without
    /// EVENT_REMAP) and reads pagemap bit 57 where the page now is.</summary>
    public static Finding WpClearedBy(Lab lab, string how)
    {
        if (lab.Unsupported(UffdFeatures.PageFaultFlagWp) is { } no)
            return no;
        using var s = lab.NewScope();
        var (m, u) = s.WpRegisteredPage(0x5a); // populated before registration
        var before = lab.Pm(m.Address);
        if (!before.UffdWp)
            return WpBitInvisible(lab) ?? Finding.Undetermined($"WRITEPROTECT did not set pagemap bit 57 ({Lab.Bits(before)})");
        string extra = "";
        switch (how)
        {
            case "UNREGISTER":
                u.Unregister(m.Address, m.Length);
                break;
            case "close":
                s.Close(u);
                break;
            default:
                // Reserve a destination and move over it (MREMAP_FIXED replaces the reservation).
                var dest = Mapping.Reserve(P);
                int r = m.TryRemap(P, dest);
                if (r < 0)
                    return Finding.Failed($"mremap: {Errno.Name(r)}");
                var vma = VmaInfo.Find(m.Address);
                extra = $"; VMA at the new address registered: {(vma?.RegisteredModes ?? RegisterMode.None) != RegisterMode.None}";
                break;
        }
        var after = lab.Pm(m.Address);
        string ev = $"present WP'd anon page: before {how} {Lab.Bits(before)}, after {Lab.Bits(after)}{extra}";
        string where = how == "mremap" ? " at the new address" : "";
        return after.UffdWp
            ? Finding.Of(false, $"wp=1 stays after {how}{where}", ev)
            : Finding.Of(true, $"wp=0 after {how}{where}", ev);
    }

    // ---- §1.6 / §4.7 (~6.15, stable 6.12.29): -EAGAIN in the result field on the mmap-changing path -----

    public static unsafe Finding EagainResultField(Lab lab)
    {
        using var s = lab.NewScope();
        var f = s.Memfd(4);
        f.WritePattern(0, (long)P, 21); // page 0 in the page cache: a valid CONTINUE target
        var m = s.Shared(f);
        var src = s.Source(1);
        bool poison = lab.Has(UffdFeatures.Poison), move = lab.Has(UffdFeatures.Move);
        // UFFDIO_CONTINUE is an unknown command before 5.13 (EINVAL whatever the state): asked only where it exists.
        bool cont = lab.Has(UffdFeatures.MinorHugetlbfs);
        var feats = UffdFeatures.EventRemove | (poison ? UffdFeatures.Poison : 0) | (move ? UffdFeatures.Move : 0);
        var u = s.Uffd(feats);
        u.Register(m.Address, m.Length, RegisterMode.Missing);
        Mapping? anon = null;
        if (move)
        {
            anon = s.Anon(2);
            Accessor.Touch(anon.PageAddress(1), P, write: true, value: 2);
            u.Register(anon.Address, P, RegisterMode.Missing);
        }
        // MADV_REMOVE of page 3 raises REMOVE and blocks (state D) until the event is read: on another thread.
        int madviseResult = int.MinValue;
        var t = new Thread(() => madviseResult = m.TryAdvise(Advice.Remove, 3 * P, P)) { IsBackground = true, Name = "probe madvise" };
        t.Start();
        try
        {
            if (u.Poll(Lab.WaitMs) == PollEvents.None)
                return Finding.Undetermined("no REMOVE event within the wait", $"madvise thread alive: {t.IsAlive}");
            var parts = new List<(string Op, int Ret, long Field)>();
            var c = new UffdioCopy { Dst = m.PageAddress(1), Src = src.Address, Len = P, Copy = 1 };
            parts.Add(("COPY", u.TryCopy(ref c), c.Copy));
            var z = new UffdioZeropage { Range = new UffdioRange(m.PageAddress(2), P), Zeropage = 1 };
            parts.Add(("ZEROPAGE", u.TryZeroPage(ref z), z.Zeropage));
            if (cont)
            {
                var k = new UffdioContinue { Range = new UffdioRange(m.Address, P), Mapped = 1 };
                parts.Add(("CONTINUE", u.TryContinue(ref k), k.Mapped));
            }
            if (poison)
            {
                var p = new UffdioPoison { Range = new UffdioRange(m.PageAddress(2), P), Updated = 1 };
                parts.Add(("POISON", u.TryPoison(ref p), p.Updated));
            }
            if (move)
            {
                var mv = new UffdioMove { Dst = anon!.Address, Src = anon.PageAddress(1), Len = P, Move = 1 };
                parts.Add(("MOVE", u.TryMove(ref mv), mv.Move));
            }
            var msgs = u.ReadTyped();
            bool joined = t.Join(Lab.WaitMs);
            string ev = "while REMOVE was unread, field pre-set to 1: " + string.Join(", ", parts.Select(p => $"{p.Op} {Errno.Name(p.Ret)} field={p.Field}")) +
                $"; then read {string.Join(",", msgs.Select(x => x.Kind))}; madvise returned {(joined ? Errno.Name(madviseResult) : "not yet")}";
            if (parts.Any(p => p.Ret != -Errno.EAGAIN))
                return Finding.Failed("an ioctl did not return EAGAIN while an event was unread", ev);
            if (parts.All(p => p.Field == -Errno.EAGAIN))
                return Finding.Of(true, $"EAGAIN with field = -11 ({string.Join(", ", parts.Select(p => p.Op))})", ev);
            var left = parts.Where(p => p.Field == 1).Select(p => p.Op).ToList();
            return Finding.Of(false, left.Count > 0 ? $"EAGAIN, field left unwritten ({string.Join(", ", left)})" : "EAGAIN, fields mixed", ev);
        }
        finally
        {
            if (t.IsAlive)
            {
                u.ReadTyped(); // the event, if still unread
                if (!t.Join(Lab.WaitMs))
                    s.Close(u);
                t.Join(Lab.WaitMs);
            }
        }
    }

    // ---- ~6.17: UNREGISTER through another uffd of the same mm ----------------------------------------

    public static Finding UnregisterOtherUffd(Lab lab)
    {
        using var s = lab.NewScope();
        var m = s.Anon(1);
        var a = s.Uffd();
        var b = s.Uffd();
        a.Register(m.Address, m.Length, RegisterMode.Missing);
        var range = new UffdioRange(m.Address, m.Length);
        int r = b.TryUnregister(ref range);
        var modes = VmaInfo.Find(m.Address)?.RegisteredModes ?? RegisterMode.None;
        string ev = $"registered MISSING with uffd A; UNREGISTER through uffd B: {Errno.Name(r)}; VmFlags afterwards: {(modes == RegisterMode.None ? "unregistered" : "still " + modes)}";
        return r switch
        {
            -Errno.EINVAL => Finding.Of(true, "EINVAL (registration kept)", ev),
            0 => Finding.Of(false, modes == RegisterMode.None ? "0, and it unregistered A's range" : "0 (range still registered)", ev),
            _ => Finding.Failed($"UNREGISTER through another uffd: {Errno.Name(r)}", ev),
        };
    }

    // ---- §1.2 the 914eedcb window (~6.0 → reverted ~6.3, and in 6.1.26) ----------------------------------

    public static Finding UnknownFeatureAccepted(Lab lab)
    {
        int badApi = lab.ApiErrno(UffdFeatures.None, api: 0xAB);
        int badBit = lab.ApiErrno((UffdFeatures)(1UL << 63));
        string ev = $"UFFDIO_API api=0xAB: {Errno.Name(badApi)}; features=1<<63: {Errno.Name(badBit)}";
        return Finding.Either(badApi == 0 || badBit == 0,
            "accepted (" + (badApi == 0 ? "api=0xAB" : "bit 63") + ")", "both refused (EINVAL)", ev);
    }

    // ---- 6.4: UFFDIO_CONTINUE_MODE_WP -----------------------------------------------------------------

    public static Finding ContinueModeWp(Lab lab)
    {
        if (lab.Unsupported(UffdFeatures.MinorShmem | UffdFeatures.WpHugetlbfsShmem) is { } no)
            return no;
        using var s = lab.NewScope();
        var (_, m, u) = s.RegisteredMemfd(1, RegisterMode.Minor | RegisterMode.WriteProtect, cachedPages: 1, seed: 31);
        var c = new UffdioContinue { Range = new UffdioRange(m.Address, P), Mode = (ulong)ContinueMode.WriteProtect };
        int r = u.TryContinue(ref c);
        var e = lab.Pm(m.Address);
        string ev = $"CONTINUE(mode=WP) on a cached, unmapped page: {Errno.Name(r)} mapped={c.Mapped}; then {Lab.Bits(e)}";
        if (r == 0)
            return e.Present && e.UffdWp ? Finding.Of(true, "OK, mapped read-only with wp=1", ev) : Finding.Failed($"OK but {Lab.Bits(e)}", ev);
        return r == -Errno.EINVAL ? Finding.Of(false, "EINVAL", ev) : Finding.Failed(Errno.Name(r), ev);
    }

    // ---- ~6.4: WRITEPROTECT across several VMAs -----------------------------------------------------

    public static Finding MultiVmaWriteProtect(Lab lab)
    {
        if (lab.Unsupported(UffdFeatures.PageFaultFlagWp) is { } no)
            return no;
        using var s = lab.NewScope();
        var m = s.Anon(2);
        Accessor.Touch(m.Address, 2 * P, write: true, value: 7);
        var u = s.Uffd();
        // Different modes keep the two pages in two VMAs.
        u.Register(m.Address, P, RegisterMode.WriteProtect);
        u.Register(m.PageAddress(1), P, RegisterMode.Missing | RegisterMode.WriteProtect);
        int vmas = VmaInfo.Overlapping(m.Address, 2 * P).Count();
        if (vmas != 2)
            return Finding.Undetermined($"the two registrations did not give two VMAs ({vmas})");
        var w = new UffdioWriteprotect { Range = new UffdioRange(m.Address, 2 * P), Mode = (ulong)WriteProtectMode.WriteProtect };
        int r = u.TryWriteProtect(ref w);
        var e = lab.Pm(m.Address, 2);
        string ev = $"WRITEPROTECT over 2 WP-registered VMAs: {Errno.Name(r)}; page 0 {Lab.Bits(e[0])}, page 1 {Lab.Bits(e[1])}";
        if (r == 0)
            return e[0].UffdWp && e[1].UffdWp ? Finding.Of(true, "OK, both pages wp=1", ev) : Finding.Failed("OK but not both pages protected", ev);
        if (r == -Errno.ENOENT)
            return Finding.Of(false, e[0].UffdWp ? "ENOENT (page 0 already protected)" : "ENOENT, no partial effect", ev);
        return Finding.Failed(Errno.Name(r), ev);
    }

    // ---- 6.6: UFFDIO_POISON ---------------------------------------------------------------------------

    public static Finding Poison(Lab lab)
    {
        if (lab.Unsupported(UffdFeatures.Poison) is { } no)
            return no;
        using var s = lab.NewScope();
        var (m, u) = s.RegisteredAnon(RegisterMode.Missing, UffdFeatures.Poison);
        var p = new UffdioPoison { Range = new UffdioRange(m.Address, P) };
        int r = u.TryPoison(ref p);
        var e = lab.Pm(m.Address);
        string ev = $"POISON one hole: {Errno.Name(r)} updated={p.Updated}; then {Lab.Bits(e)} (poison marker: present=0 wp=0 swap=1)";
        return Finding.Either(r == 0 && p.Updated == (long)P && !e.Present && e.Swap && !e.UffdWp,
            "POISON OK, poison marker installed", $"POISON: {Errno.Name(r)} updated={p.Updated}", ev);
    }

    // ---- 6.7: WP_ASYNC --------------------------------------------------------------------------------

    public static Finding WpAsync(Lab lab)
    {
        if (lab.Unsupported(UffdFeatures.WpAsync) is { } no)
            return no;
        using var s = lab.NewScope();
        var (m, u) = s.WpRegisteredPage(3, UffdFeatures.WpAsync);
        var before = lab.Pm(m.Address);
        var o = s.Run(u, [Op.Write64(m.Address, 4)]);
        var after = lab.Pm(m.Address);
        string ev = $"WP'd page {Lab.Bits(before)}; write from a worker: {(o.Finished ? "completed" : "blocked")}, {o.FaultText}; then {Lab.Bits(after)}";
        return Finding.Either(o.Finished && o.Faults.Count == 0 && before.UffdWp && !after.UffdWp,
            "write resolved by the kernel, no message, wp dropped", "write not resolved asynchronously", ev);
    }

    // ---- 6.7: PAGEMAP_SCAN ----------------------------------------------------------------------------

    public static unsafe Finding PagemapScan(Lab lab)
    {
        using var s = lab.NewScope();
        var m = s.Anon(2);
        Accessor.Touch(m.Address, P, write: true, value: 1); // page 0 present, page 1 not
        PageRegion region = default;
        int r = lab.PageMap.TryScan(m.Address, m.End, new Span<PageRegion>(ref region), PageCategory.Present, PageCategory.Present, out _);
        string ev = $"ioctl(pagemap, PAGEMAP_SCAN 0x{IoctlPagemapScan:x}) for PRESENT over 2 pages (1 present): {(r >= 0 ? r + " region(s)" : Errno.Name(r))}";
        if (r == 1 && region.Start == m.Address && region.End == m.Address + P)
            return Finding.Of(true, "OK (1 region, the present page)", ev);
        if (r is -Errno.ENOTTY or -Errno.EINVAL)
            return Finding.Of(false, Errno.Name(r), ev);
        return Finding.Failed(r >= 0 ? $"{r} regions" : Errno.Name(r), ev);
    }

    private const uint IoctlPagemapScan = 0xC0606610;

    // ---- 6.8: UFFDIO_MOVE -----------------------------------------------------------------------------

    public static Finding Move(Lab lab)
    {
        if (lab.Unsupported(UffdFeatures.Move) is { } no)
            return no;
        using var s = lab.NewScope();
        var src = s.Anon(1);
        Accessor.Fill(src.Address, P, 41);
        var (dst, u) = s.RegisteredAnon(RegisterMode.Missing, UffdFeatures.Move);
        var mv = new UffdioMove { Dst = dst.Address, Src = src.Address, Len = P };
        int r = u.TryMove(ref mv);
        var d = lab.Pm(dst.Address);
        var sr = lab.Pm(src.Address);
        u.Unregister(dst.Address, dst.Length);
        long verify = r == 0 && d.Present ? Accessor.Verify(dst.Address, P, 41) : -1;
        string ev = $"MOVE one filled anon page into a registered hole: {Errno.Name(r)} move={mv.Move}; dst {Lab.Bits(d)}, src {Lab.Bits(sr)}, content {(verify == 0 ? "intact" : "wrong")}";
        return Finding.Either(r == 0 && mv.Move == (long)P && d.Present && !sr.Present && verify == 0,
            "MOVE OK (page moved, src now empty)", $"MOVE: {Errno.Name(r)} move={mv.Move}", ev);
    }

    // ---- §0a (6.6/6.8): REGISTER's ioctl mask gains POISON and MOVE ----------------------------------------

    public static Finding RegisterMaskMovePoison(Lab lab)
    {
        using var s = lab.NewScope();
        var m = s.Anon(1);
        var u = s.Uffd();
        int r = u.TryRegister(m.Address, m.Length, RegisterMode.Missing, out var ioctls);
        if (r < 0)
            return Finding.Failed($"REGISTER(MISSING, anon): {Errno.Name(r)}");
        bool mv = (ioctls & UffdIoctls.Move) != 0, po = (ioctls & UffdIoctls.Poison) != 0;
        string ev = $"REGISTER(MISSING, anon) ioctls=0x{(ulong)ioctls:x}: MOVE {(mv ? "yes" : "no")}, POISON {(po ? "yes" : "no")}";
        return Finding.Of(mv && po, $"anon MISSING mask 0x{(ulong)ioctls:x}", ev);
    }

    // ---- 5.18: EXACT_ADDRESS ------------------------------------------------------------------------------

    public static Finding ExactAddress(Lab lab)
    {
        if (lab.Unsupported(UffdFeatures.ExactAddress) is { } no)
            return no;
        using var s = lab.NewScope();
        var (m, u) = s.RegisteredAnon(RegisterMode.Missing, UffdFeatures.ExactAddress);
        var o = s.Run(u, [Op.Read64(m.Address + 0x123)]);
        if (o.Faults.Count == 0)
            return Finding.Failed("no MISSING fault for a read of a registered hole", string.Join("; ", o.Notes));
        ulong off = o.Faults[0].Address - m.Address;
        string ev = $"read at +0x123 of a MISSING-registered hole: message address +0x{off:x}";
        return Finding.Either(off == 0x123,
            "fault address +0x123 (exact)", $"fault address +0x{off:x} (masked)", ev);
    }

    // ---- 5.14: MINOR on shmem -----------------------------------------------------------------------------

    public static Finding MinorShmem(Lab lab)
    {
        if (lab.Unsupported(UffdFeatures.MinorShmem) is { } no)
            return no;
        using var s = lab.NewScope();
        var (_, m, u) = s.SharedMemfdAndUffd(1);
        int r = u.TryRegister(m.Address, m.Length, RegisterMode.Minor, out var ioctls);
        string ev = $"REGISTER(MINOR, memfd MAP_SHARED): {Errno.Name(r)} ioctls=0x{(ulong)ioctls:x}";
        return Finding.Either(r == 0,
            $"OK (ioctls 0x{(ulong)ioctls:x})", Errno.Name(r), ev);
    }

    // ---- §1.1 (6.1): /dev/userfaultfd -----------------------------------------------------------------------

    public static Finding DevUserfaultfd(Lab lab)
    {
        bool misc = Directory.Exists("/sys/class/misc/userfaultfd");
        int fd = Userfaultfd.OpenRaw(UffdOpenPath.Device, Uffd.OCloexec | Uffd.ONonblock, out int stage);
        if (fd >= 0)
            new SafeFdHandle(fd).Dispose();
        string ev = $"open {Uffd.DevicePath} + USERFAULTFD_IOC_NEW: {(fd >= 0 ? "OK" : Errno.Name(-fd) + (stage == 1 ? " at open" : " at the ioctl"))}; /sys/class/misc/userfaultfd {(misc ? "present" : "absent")}";
        if (fd >= 0)
            return Finding.Of(true, "present, USERFAULTFD_IOC_NEW OK", ev);
        if (stage == 1 && fd is -Errno.EACCES or -Errno.EPERM)
            return Finding.Of(true, $"present ({Errno.Name(-fd)} for uid {HostFacts.EffectiveUid})", ev);
        if (stage == 1 && fd == -Errno.ENOENT)
            return Finding.Either(misc,
                "kernel has it; no node in this /dev (container?)", "absent", ev);
        return Finding.Failed(Errno.Name(-fd), ev);
    }

    // ---- §1.1 (5.11): UFFD_USER_MODE_ONLY --------------------------------------------------------------------

    public static Finding UserModeOnly(Lab lab)
    {
        int fd = Userfaultfd.OpenRaw(UffdOpenPath.SyscallUserModeOnly, Uffd.OCloexec | Uffd.ONonblock, out _);
        if (fd >= 0)
            new SafeFdHandle(fd).Dispose();
        string ev = $"userfaultfd(UFFD_USER_MODE_ONLY|O_CLOEXEC|O_NONBLOCK): {(fd >= 0 ? "OK" : Errno.Name(-fd))}";
        return fd switch
        {
            >= 0 => Finding.Of(true, "OK", ev),
            -Errno.EINVAL => Finding.Of(false, "EINVAL (flag unknown)", ev),
            -Errno.EPERM => Finding.Undetermined("EPERM: a seccomp filter refuses even user-mode-only", ev + $"; Seccomp: {HostFacts.SeccompMode}"),
            _ => Finding.Failed(Errno.Name(-fd), ev),
        };
    }
}
