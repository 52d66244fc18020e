using System.Globalization;
using UffdNative.Access;
using UffdNative.Harness.Model;
using UffdNative.Uapi;
using UffdNative.Memory;
using UffdNative.Messages;

namespace UffdNative.Harness.Probing;

/// <summary>
/// One behaviour row of the probe: an experiment, the mainline version that introduced its new
/// behaviour (null: no dated expectation, the row is informational), and what new and old mean.
/// Rows with <see cref="Switch"/> set are the detectors of <see cref="KernelProfile"/>.
/// </summary>
public sealed record RowSpec(string Id, string Section, string Title, KernelVersion? Since, string New, string Old, Func<Lab, Finding> Run)
{
    public KernelVersion? Until { get; init; }
    public string? Switch { get; init; }

    public bool MainlineAt(KernelVersion v) => Since is { } s && v >= s && (Until is not { } u || v < u);

    public IEnumerable<KernelVersion> ChangePoints => new[] { Since, Until }.Where(x => x is not null).Select(x => x!.Value);
}

/// <summary>
/// The behaviour rows of <c>uffdnative probe</c>: every switch detector, then every other dated
/// behaviour of reference docs/kernel-reference.md §3 (and the §0/§1 facts it rests on) as a minimal real
/// experiment.
/// </summary>
public static partial class BehaviourRows
{
    private static ulong P => Lab.Page;

    public static IReadOnlyList<RowSpec> All { get; } = Build();

    private static List<RowSpec> Build()
    {
        var rows = new List<RowSpec>();
        foreach (var sw in KernelProfile.Switches)
        {
            var name = sw.Name;
            rows.Add(new RowSpec(name, sw.Section, sw.NewBehaviour, sw.Since, sw.NewBehaviour, sw.OldBehaviour, lab => ProfileDetector.RunOne(lab, name))
            { Until = sw.Until, Switch = name });
        }
        KernelVersion V(int a, int b) => new(a, b);
        rows.AddRange(
        [
            new("esrch-after-exit", "§1.8, §3 (4.13)", "COPY after the owning process exited", V(4, 13), "ESRCH, field untouched", "ENOSPC", EsrchAfterExit),
            new("thread-id", "§1.2 (4.14)", "UFFD_FEATURE_THREAD_ID reports the faulting thread", V(4, 14), "ptid = the faulting thread's tid", "no thread id", ThreadId),
            new("event-fork-needs-ptrace", "§1.1, §3 (5.5)", "UFFD_FEATURE_EVENT_FORK without CAP_SYS_PTRACE", V(5, 5), "UFFDIO_API: EPERM", "allowed", EventForkNeedsPtrace),
            new("unprivileged-user-mode-only", "§1.1, §3 (5.11)", "unprivileged open with vm.unprivileged_userfaultfd=0", V(5, 11), "syscall EPERM, UFFD_USER_MODE_ONLY OK", "allowed (or no such flag)", UnprivilegedUserModeOnly),
            new("wp-anon", "§1.3, §3 (5.7)", "WP registration on anonymous memory", V(5, 7), "OK", "EINVAL", WpAnon),
            new("kernel-write-intercepted", "§0.4, §1.5", "a kernel-mode write (read(2) into a WP'd page) on a full uffd", V(5, 7), "intercepted: message flags 0x3", "not intercepted", KernelWriteIntercepted),
            new("user-mode-only-kernel-efault", "§0.4, §1.5 (5.11)", "the same kernel-mode write on a UFFD_USER_MODE_ONLY uffd", V(5, 11), "EFAULT, no message", "intercepted", UserModeOnlyEfault),
            new("fault-around-missing", "§3.1", "fault-around on a MISSING-only registered shmem VMA", V(4, 11), "still on (the 2020 'all armed VMAs' patch was never merged)", "off", FaultAroundMissing),
            new("marker-survives-punch-hole", "§3.2 (5.19)", "shmem wp marker after fallocate(PUNCH_HOLE)", V(5, 19), "marker kept", "marker lost", lab => MarkerSurvives(lab, "punch-hole")),
            new("marker-survives-madv-remove", "§3.2 (5.19)", "shmem wp marker after MADV_REMOVE", V(5, 19), "marker kept", "marker lost", lab => MarkerSurvives(lab, "madv-remove")),
            new("marker-survives-truncate", "§3.2 (5.19)", "shmem wp marker after ftruncate shrink + regrow", V(5, 19), "marker kept", "marker lost", lab => MarkerSurvives(lab, "truncate")),
            new("wp-survives-mprotect", "§3.2, §3.7 (5.19)", "present WP'd shmem page after mprotect(RO) + mprotect(RW)", V(5, 19), "wp kept, VMA still uw", "wp lost", lab => MarkerSurvives(lab, "mprotect")),
            new("marker-read-silent", "§3.2 (5.19)", "read of a shmem wp marker", V(5, 19), "no message; page mapped read-only with wp", "other", MarkerReadSilent),
            new("marker-write-faults", "§3.2 (5.19)", "write to a shmem wp marker", V(5, 19), "one message, flags 0x3 (WRITE|WP)", "other", MarkerWriteFaults),
            new("missing-wp-marker-order", "§3.2 (5.19)", "MISSING|WP shmem: write to a marker with no page cache", V(5, 19), "MISSING 0x1 first, then WP 0x3 after COPY(MODE_WP)", "other", MissingWpMarkerOrder),
            new("alias-writes-not-intercepted", "§0.4, §3.2 (5.19)", "writes through an unregistered alias and pwrite(2)", V(5, 19), "never intercepted; the registered PTE keeps wp", "intercepted", AliasWrites),
            new("wp-unpopulated-read", "§3.3 (6.4)", "read of an anon WP_UNPOPULATED marker", V(6, 4), "no message; mapped read-only with wp (the zero page, or a private page where the zero page is off)", "other", WpUnpopulatedRead),
            new("async-remove-keeps-marker", "§3.4", "MADV_REMOVE on a WP_ASYNC shmem page (the doc says 'dirtied')", null, "marker kept (reads clean)", "wp dropped (reads written)", AsyncRemoveKeepsMarker),
            new("fork-drops-wp", "§3.5, §3 (~5.14 fix)", "fork without EVENT_FORK: the child's copy of a WP'd page", V(5, 14), "anon wp=0 in the child, shmem not copied", "stale wp=1 in the child", ForkDropsWp),
            new("fork-event-keeps-wp", "§3.5 (5.19)", "fork with EVENT_FORK: the child's WP'd pages", V(5, 19), "anon and shmem wp=1 in the child", "wp lost", ForkEventKeepsWp),
            new("mremap-event-keeps-wp", "§3.6", "mremap with EVENT_REMAP of a WP'd anon page", V(5, 7), "blocks until REMAP is read; wp and registration move", "wp or registration lost", MremapEventKeepsWp),
            new("thp-wp-keeps-pmd", "§3.8", "WP over a whole anon THP", V(5, 13), "stays PMD-mapped, all 512 PTEs wp", "split or wp missing", ThpWpKeepsPmd),
            new("shmem-wp-survives-swapout", "§3.9 (5.19)", "WP'd shmem page after MADV_PAGEOUT to swap", V(5, 19), "wp kept across swap", "wp lost", ShmemWpSwap),
            new("continue-errors", "§1.4, §3.10 (5.14)", "CONTINUE with no page cache, then twice on a cached page", V(5, 14), "EFAULT, then OK, then EEXIST", "other", ContinueErrors),
            new("poison-refuses-wp-marker", "§3.10 (6.6)", "POISON over a wp marker; COPY over a poison marker", V(6, 6), "EEXIST; COPY OK", "other", PoisonRefusesMarker),
            new("move-shmem-einval", "§1.4, §3.10 (6.8)", "UFFDIO_MOVE into shmem", V(6, 8), "EINVAL (anon only)", "other", MoveShmemEinval),
            new("pagemap-guard-bit", "§1.7, §0a (~6.15)", "MADV_GUARD_INSTALL and pagemap bit 58", V(6, 15), "guard installed, bit 58 = 1", "no guard regions", PagemapGuardBit),
        ]);
        rows.AddRange(WakeRows());
        return rows;
    }

    private static Finding? NeedShmemWp(Lab lab) => lab.Unsupported(UffdFeatures.PageFaultFlagWp | UffdFeatures.WpHugetlbfsShmem);

    // ---------------------------------------------------------------------------------------------

    private static Finding EsrchAfterExit(Lab lab)
    {
        using var s = lab.NewScope();
        int flags = Uffd.OCloexec | Uffd.ONonblock | (lab.FullPath is null ? Uffd.UserModeOnly : 0);
        var child = s.Own(ForkedChild.Start(ChildOps.UffdOpen(flags, UffdFeatures.None), ChildOps.MmapAnon(P), ChildOps.Register(RegisterMode.Missing), ChildOps.SendUffd(), ChildOps.Exit(0)));
        var (fd, addr) = child.ReceiveUffd(Lab.WaitMs);
        var u = s.Own(Userfaultfd.Adopt(fd, UffdFeatures.None));
        child.Finish(Lab.WaitMs);
        var src = s.Source(1);
        var c = new UffdioCopy { Dst = addr, Src = src.Address, Len = P, Copy = 12345 };
        int r = u.TryCopy(ref c);
        string ev = $"child registered a page, sent its uffd and exited; COPY into it: {Errno.Name(r)} copy={c.Copy}";
        return r switch
        {
            -Errno.ESRCH => Finding.Of(true, c.Copy == 12345 ? "ESRCH, field untouched" : $"ESRCH, field {c.Copy}", ev),
            -Errno.ENOSPC => Finding.Of(false, "ENOSPC", ev),
            _ => Finding.Failed(Errno.Name(r), ev),
        };
    }

    private static Finding ThreadId(Lab lab)
    {
        if (lab.Unsupported(UffdFeatures.ThreadId) is { } no)
            return no;
        using var s = lab.NewScope();
        var (m, u) = s.RegisteredAnon(RegisterMode.Missing, UffdFeatures.ThreadId);
        var o = s.Run(u, [Op.Read64(m.Address)]);
        if (o.Faults.Count == 0)
            return Finding.Failed("no MISSING fault", string.Join("; ", o.Notes));
        string ev = $"MISSING read from worker tid {o.WorkerTid}: message ptid {o.Faults[0].ThreadId}";
        return Finding.Either(o.Faults[0].ThreadId == o.WorkerTid,
            "ptid = worker tid", $"ptid {o.Faults[0].ThreadId}", ev);
    }

    private static Finding EventForkNeedsPtrace(Lab lab)
    {
        if (!lab.HasPtrace)
        {
            int e = lab.ApiErrno(UffdFeatures.EventFork);
            string ev0 = $"no CAP_SYS_PTRACE; UFFDIO_API(EVENT_FORK): {Errno.Name(e)}";
            return e == Errno.EPERM ? Finding.Of(true, "EPERM", ev0) : e == 0 ? Finding.Of(false, "OK", ev0) : Finding.Failed(Errno.Name(e), ev0);
        }
        // Open while privileged, then ask UFFDIO_API from a thread that dropped CAP_SYS_PTRACE.
        using var u = Lab.OpenUninitialized();
        int r = 1;
        if (!Unprivileged.TryRunWithoutPtrace(() =>
        {
            var a = new UffdioApi { Api = (ulong)Uffd.Api, Features = (ulong)UffdFeatures.EventFork };
            r = u.TryApi(ref a);
        }, out var why))
            return Finding.Undetermined("this process has CAP_SYS_PTRACE and could not drop it for the check", why);
        string ev = $"UFFDIO_API(EVENT_FORK) from a thread without CAP_SYS_PTRACE: {Errno.Name(r)}";
        return r == -Errno.EPERM ? Finding.Of(true, "EPERM", ev) : r == 0 ? Finding.Of(false, "OK", ev) : Finding.Failed(Errno.Name(r), ev);
    }

    private static Finding UnprivilegedUserModeOnly(Lab lab)
    {
        int? sysctl = HostFacts.UnprivilegedUserfaultfd;
        if (sysctl != 0)
            return Finding.Undetermined(sysctl is null ? "no vm.unprivileged_userfaultfd sysctl" : $"vm.unprivileged_userfaultfd={sysctl} allows unprivileged opens");
        int plain = 0, umo = 0;
        void Try()
        {
            plain = Userfaultfd.OpenRaw(UffdOpenPath.Syscall, Uffd.OCloexec, out _);
            umo = Userfaultfd.OpenRaw(UffdOpenPath.SyscallUserModeOnly, Uffd.OCloexec, out _);
            foreach (var fd in new[] { plain, umo })
                if (fd >= 0)
                    new SafeFdHandle(fd).Dispose();
        }
        string who = "this unprivileged process";
        if (lab.HasPtrace)
        {
            if (!Unprivileged.TryRunWithoutPtrace(Try, out var why))
                return Finding.Undetermined("could not drop CAP_SYS_PTRACE for the check", why);
            who = "a thread without CAP_SYS_PTRACE";
        }
        else
            Try();
        string ev = $"{who}, vm.unprivileged_userfaultfd=0: syscall(0) {(plain >= 0 ? "OK" : Errno.Name(-plain))}, syscall(UFFD_USER_MODE_ONLY) {(umo >= 0 ? "OK" : Errno.Name(-umo))}";
        if (plain == -Errno.EPERM && umo >= 0)
            return Finding.Of(true, "syscall EPERM, user-mode-only OK", ev);
        if (umo == -Errno.EPERM)
            return Finding.Undetermined("even user-mode-only refused (seccomp?)", ev);
        return Finding.Of(false, $"syscall {(plain >= 0 ? "OK" : Errno.Name(-plain))}, user-mode-only {(umo >= 0 ? "OK" : Errno.Name(-umo))}", ev);
    }

    private static Finding WpAnon(Lab lab)
    {
        if (lab.Unsupported(UffdFeatures.PageFaultFlagWp) is { } no)
            return no;
        using var s = lab.NewScope();
        var m = s.Anon(1);
        var u = s.Uffd();
        int r = u.TryRegister(m.Address, m.Length, RegisterMode.WriteProtect, out var io);
        string ev = $"REGISTER(WP, anon): {Errno.Name(r)} ioctls=0x{(ulong)io:x}";
        return Finding.Either(r == 0,
            "OK", Errno.Name(r), ev);
    }

    private static Finding KernelWrite(Lab lab, bool userModeOnly)
    {
        if (lab.Unsupported(UffdFeatures.PageFaultFlagWp) is { } no)
            return no;
        using var s = lab.NewScope();
        var m = s.Anon(1);
        Accessor.Touch(m.Address, P, write: true, value: 1);
        Userfaultfd? u = userModeOnly ? s.Uffd(userModeOnly: true) : s.FullUffd();
        if (u is null)
            return Finding.Undetermined("only user-mode-only uffds can be opened here", "no privilege for the syscall or the device (see open paths)");
        u.Register(m.Address, m.Length, RegisterMode.WriteProtect);
        u.WriteProtect(m.Address, P, protect: true);
        var o = s.Run(u, [Op.KernelWrite(m.Address, 8, 0x77)]);
        long ret = o.Results.Count > 0 ? o.Results[0].Ret : long.MinValue;
        string ev = $"read(2) of 8 bytes into a WP'd anon page on a {(userModeOnly ? "user-mode-only" : "full")} uffd: returned {(ret < 0 ? Errno.Name((int)-ret) : ret.ToString(CultureInfo.InvariantCulture))}, {o.FaultText}";
        if (userModeOnly)
            return Finding.Either(ret == -Errno.EFAULT && o.Faults.Count == 0,
                "EFAULT, no message", o.FaultText, ev);
        return Finding.Either(o.Faults.Count == 1 && (ulong)o.Faults[0].Flags == 3 && ret == 8,
            "intercepted, flags 0x3", o.FaultText, ev);
    }

    private static Finding KernelWriteIntercepted(Lab lab) => KernelWrite(lab, userModeOnly: false);

    private static Finding UserModeOnlyEfault(Lab lab)
    {
        int fd = Userfaultfd.OpenRaw(UffdOpenPath.SyscallUserModeOnly, Uffd.OCloexec, out _);
        if (fd < 0)
            return fd == -Errno.EINVAL
                ? Finding.NotSupported("not supported by this kernel (userfaultfd: EINVAL for UFFD_USER_MODE_ONLY)", "")
                : Finding.Undetermined($"user-mode-only open: {Errno.Name(-fd)}");
        new SafeFdHandle(fd).Dispose();
        return KernelWrite(lab, userModeOnly: true);
    }

    private static Finding FaultAroundMissing(Lab lab)
    {
        var control = SwitchDetectors.FaultAroundCount(lab, RegisterMode.None);
        var missing = SwitchDetectors.FaultAroundCount(lab, RegisterMode.Missing);
        string ev = $"page cache filled, one read: unregistered {control.Present}/{control.Window}, MISSING {missing.Present}/{missing.Window} ({missing.Faults})";
        if (control.Present <= 1)
            return Finding.Undetermined("fault-around is off even without uffd", ev);
        return Finding.Either(missing.Present == control.Present,
            $"MISSING: {missing.Present} of {missing.Window} mapped (on)", $"MISSING: {missing.Present} of {missing.Window} mapped", ev);
    }

    /// <summary>A 2-page memfd, shared mapping, registered (WP by default) and write-protected:
    /// page 0 becomes a marker (never touched) or stays present + wp (populated first).</summary>
    private static (MemfdFile F, Mapping M, Userfaultfd U) MarkedShmem(LabScope s, bool populate = false, RegisterMode mode = RegisterMode.WriteProtect, UffdFeatures features = UffdFeatures.None)
    {
        var (f, m, u) = s.SharedMemfdAndUffd(2, features);
        if (populate)
            Accessor.Touch(m.Address, m.Length, write: true, value: 5);
        u.Register(m.Address, m.Length, mode);
        u.WriteProtect(m.Address, P, protect: true);
        return (f, m, u);
    }

    private static Finding MarkerSurvives(Lab lab, string op)
    {
        if (NeedShmemWp(lab) is { } no)
            return no;
        using var s = lab.NewScope();
        var (f, m, _) = MarkedShmem(s, populate: op == "mprotect");
        var before = lab.Pm(m.Address);
        switch (op)
        {
            case "punch-hole":
                f.PunchHole(0, (long)P);
                break;
            case "madv-remove":
                m.Advise(Advice.Remove, 0, P);
                break;
            case "truncate":
                f.Truncate(0);
                f.Truncate(2 * (long)P);
                break;
            default:
                m.Protect(Protection.Read);
                m.Protect(Protection.ReadWrite);
                break;
        }
        var after = lab.Pm(m.Address);
        string ev = $"page 0 before {op}: {Lab.Bits(before)}; after: {Lab.Bits(after)}";
        if (op == "mprotect")
        {
            var modes = VmaInfo.Find(m.Address)?.RegisteredModes ?? RegisterMode.None;
            ev += $"; VMA modes {modes}";
            return Finding.Either(after.Present && after.UffdWp && modes.HasFlag(RegisterMode.WriteProtect),
                "wp kept, VMA still uw", $"after: {Lab.Bits(after)}, VMA {modes}", ev);
        }
        if (!before.IsWpMarker)
            return Finding.Undetermined($"no marker to start with ({Lab.Bits(before)})", ev);
        return Finding.Either(after.IsWpMarker,
            "marker kept", $"marker lost ({Lab.Bits(after)})", ev);
    }

    private static Finding MarkerReadSilent(Lab lab)
    {
        if (NeedShmemWp(lab) is { } no)
            return no;
        using var s = lab.NewScope();
        var (_, m, u) = MarkedShmem(s);
        var o = s.Run(u, [Op.Read64(m.Address)]);
        var e = lab.Pm(m.Address);
        string ev = $"read of a marker: {(o.Finished ? "completed" : "blocked")}, {o.FaultText}; then {Lab.Bits(e)}";
        return Finding.Either(o.Finished && o.Faults.Count == 0 && e.Present && e.UffdWp,
            "no message, mapped RO + wp", $"{o.FaultText}, {Lab.Bits(e)}", ev);
    }

    private static Finding MarkerWriteFaults(Lab lab)
    {
        if (NeedShmemWp(lab) is { } no)
            return no;
        using var s = lab.NewScope();
        var (_, m, u) = MarkedShmem(s);
        var o = s.Run(u, [Op.Write64(m.Address, 1)]);
        string ev = $"write to a marker: {o.FaultText}; after un-protect the write {(o.Finished ? "completed" : "stayed blocked")}";
        return Finding.Either(o.Finished && o.Faults.Count == 1 && (ulong)o.Faults[0].Flags == 3,
            "one message, flags 0x3", o.FaultText, ev);
    }

    private static Finding MissingWpMarkerOrder(Lab lab)
    {
        if (NeedShmemWp(lab) is { } no)
            return no;
        using var s = lab.NewScope();
        var src = s.Source(3);
        var (_, m, u) = MarkedShmem(s, mode: RegisterMode.Missing | RegisterMode.WriteProtect);
        var o = s.Run(u, [Op.Write64(m.Address, 1)], f =>
        {
            if (f.FaultKind != FaultKind.Missing)
                return false;
            u.Copy(f.PageAddress(P), src.Address, P, CopyMode.WriteProtect);
            return true;
        });
        var flags = o.Faults.Select(f => (ulong)f.Flags).ToList();
        string ev = $"write to a marker with no page cache: messages {string.Join(" then ", flags.Select(x => $"0x{x:x}"))} (MISSING resolved by COPY(MODE_WP), WP by un-protect)";
        return Finding.Either(o.Finished && flags.SequenceEqual([1UL, 3UL]),
            "0x1 then 0x3", string.Join(" then ", flags.Select(x => $"0x{x:x}")), ev);
    }

    private static Finding AliasWrites(Lab lab)
    {
        if (NeedShmemWp(lab) is { } no)
            return no;
        using var s = lab.NewScope();
        var (f, m, u) = MarkedShmem(s, populate: true);
        var alias = s.Shared(f);
        var o = s.Run(u, [Op.Write64(alias.Address, 0xa1)]);
        f.WriteU64(8, 0xa2);
        var e = lab.Pm(m.Address);
        string ev = $"write through an unregistered alias: {(o.Finished ? "completed" : "blocked")}, {o.FaultText}; pwrite OK; registered PTE {Lab.Bits(e)}";
        return Finding.Either(o.Finished && o.Faults.Count == 0 && e.UffdWp,
            "not intercepted; registered PTE keeps wp", $"{o.FaultText}, registered {Lab.Bits(e)}", ev);
    }

    private static Finding WpUnpopulatedRead(Lab lab)
    {
        if (lab.Unsupported(UffdFeatures.WpUnpopulated) is { } no)
            return no;
        using var s = lab.NewScope();
        var (m, u) = s.RegisteredAnon(RegisterMode.WriteProtect, UffdFeatures.WpUnpopulated);
        u.WriteProtect(m.Address, P, protect: true);
        var o = s.Run(u, [Op.Read64(m.Address)]);
        var e = lab.Pm(m.Address);
        // Which page the read mapped follows the zero-page environment fact (§0b): the shared zero page is
        // never exclusively mapped, a private zeroed page is.
        bool zeroPage = lab.Facts.Facts.AnonReadZeroPage;
        string page = e.Exclusive ? "a private zeroed page" : "the zero page";
        string ev = $"read of an anon marker: {o.FaultText}; then {Lab.Bits(e)} exclusive={(e.Exclusive ? 1 : 0)} ({page}; the {EnvironmentFacts.AnonReadZeroPageName} fact says {(zeroPage ? "the zero page" : "a private page")})";
        if (!(o.Finished && o.Faults.Count == 0 && e.Present && e.UffdWp))
            return Finding.Of(false, $"{o.FaultText}, {Lab.Bits(e)}", ev);
        return e.Exclusive != zeroPage
            ? Finding.Of(true, $"no message, {page} with wp", ev)
            : Finding.Failed($"no message, {page} with wp — but a plain read maps {(zeroPage ? "the zero page" : "a private page")} here", ev);
    }

    private static Finding AsyncRemoveKeepsMarker(Lab lab)
    {
        if (lab.Unsupported(UffdFeatures.WpAsync) is { } no)
            return no;
        using var s = lab.NewScope();
        var (_, m, _) = MarkedShmem(s, features: UffdFeatures.WpAsync);
        var before = lab.Pm(m.Address);
        m.Advise(Advice.Remove, 0, P);
        var after = lab.Pm(m.Address);
        string ev = $"WP_ASYNC shmem marker {Lab.Bits(before)}; after MADV_REMOVE {Lab.Bits(after)}";
        return Finding.Either(after.UffdWp,
            "marker kept", "wp dropped", ev);
    }

    private static Finding ForkDropsWp(Lab lab)
    {
        if (lab.Unsupported(UffdFeatures.PageFaultFlagWp) is { } no)
            return no;
        if (SwitchDetectors.WpBitInvisible(lab) is { } invisible)
            return invisible;
        bool shmem = lab.Has(UffdFeatures.WpHugetlbfsShmem);
        using var s = lab.NewScope();
        var a = s.Anon(1);
        Accessor.Touch(a.Address, P, write: true, value: 1);
        var (_, sh) = s.SharedMemfd(1);
        Accessor.Touch(sh.Address, P, write: true, value: 2);
        var u = s.Uffd();
        u.Register(a.Address, P, RegisterMode.WriteProtect);
        u.WriteProtect(a.Address, P, protect: true);
        if (shmem)
        {
            u.Register(sh.Address, P, RegisterMode.WriteProtect);
            u.WriteProtect(sh.Address, P, protect: true);
        }
        var child = s.Own(ForkedChild.Start(ChildOps.PageMap(a.Address), ChildOps.PageMap(sh.Address), ChildOps.Exit(0)));
        var ca = new PageMap.PageMapEntry(child.WaitFor(0, Lab.WaitMs).Value);
        var cs = new PageMap.PageMapEntry(child.WaitFor(1, Lab.WaitMs).Value);
        child.Finish(Lab.WaitMs);
        string ev = $"parent anon {Lab.Bits(lab.Pm(a.Address))}; child anon {Lab.Bits(ca)}" + (shmem ? $", child shmem {Lab.Bits(cs)}" : " (no shmem WP on this kernel)");
        if (!ca.Present)
            return Finding.Undetermined("the child's anon page is not present", ev);
        return Finding.Either(!ca.UffdWp,
            shmem ? $"anon wp=0, shmem {(cs.IsNone ? "not copied" : Lab.Bits(cs))}" : "anon wp=0", "stale wp=1 in the child", ev);
    }

    private static Finding ForkEventKeepsWp(Lab lab)
    {
        if (NeedShmemWp(lab) is { } no)
            return no;
        using var s = lab.NewScope();
        var a = s.Anon(1);
        Accessor.Touch(a.Address, P, write: true, value: 1);
        var (_, sh) = s.SharedMemfd(1);
        Accessor.Touch(sh.Address, P, write: true, value: 2);
        int api = lab.ApiErrno(UffdFeatures.EventFork);
        if (api != 0)
            return Finding.Undetermined($"UFFDIO_API(EVENT_FORK): {Errno.Name(api)}" + (api == Errno.EPERM ? " (needs CAP_SYS_PTRACE)" : ""));
        var u = s.Uffd(UffdFeatures.EventFork);
        u.Register(a.Address, P, RegisterMode.WriteProtect);
        u.Register(sh.Address, P, RegisterMode.WriteProtect);
        u.WriteProtect(a.Address, P, protect: true);
        u.WriteProtect(sh.Address, P, protect: true);
        // fork() blocks until FORK is read: fork on another thread, read here.
        ForkedChild? child = null;
        Exception? forkError = null;
        var t = new Thread(() =>
        {
            try { child = ForkedChild.Start(ChildOps.PageMap(a.Address), ChildOps.PageMap(sh.Address), ChildOps.WaitParent(), ChildOps.Exit(0)); }
            catch (Exception e) { forkError = e; }
        }) { IsBackground = true, Name = "probe fork" };
        t.Start();
        ForkEvent? fe = null;
        try
        {
            if (u.Poll(Lab.WaitMs) != PollEvents.None)
                fe = u.ReadTyped().OfType<ForkEvent>().FirstOrDefault();
            if (!t.Join(Lab.WaitMs))
            {
                s.Close(u);
                t.Join(Lab.WaitMs);
                return Finding.Failed("fork did not return after the FORK event was read");
            }
            if (forkError is not null || child is null)
                return Finding.Failed($"fork failed: {forkError?.Message}");
            s.Own(child);
            var ca = new PageMap.PageMapEntry(child.WaitFor(0, Lab.WaitMs).Value);
            var cs = new PageMap.PageMapEntry(child.WaitFor(1, Lab.WaitMs).Value);
            var childModes = VmaInfo.Find(a.Address, child.Pid)?.RegisteredModes ?? RegisterMode.None;
            child.Release();
            child.Finish(Lab.WaitMs);
            string ev = $"FORK message {(fe is null ? "not seen" : "read")}; child anon {Lab.Bits(ca)}, child shmem {Lab.Bits(cs)}, child VMA {childModes}";
            return Finding.Either(fe is not null && ca.UffdWp && cs.UffdWp,
                "anon and shmem wp=1 in the child", $"child anon wp={(ca.UffdWp ? 1 : 0)}, shmem wp={(cs.UffdWp ? 1 : 0)}", ev);
        }
        finally
        {
            fe?.Dispose();
        }
    }

    private static Finding MremapEventKeepsWp(Lab lab)
    {
        if (lab.Unsupported(UffdFeatures.PageFaultFlagWp | UffdFeatures.EventRemap) is { } no)
            return no;
        if (SwitchDetectors.WpBitInvisible(lab) is { } invisible)
            return invisible;
        using var s = lab.NewScope();
        var (m, u) = s.WpRegisteredPage(1, UffdFeatures.EventRemap);
        var dest = Mapping.Reserve(P); // consumed by the move
        int rr = int.MinValue;
        var t = new Thread(() => rr = m.TryRemap(P, dest)) { IsBackground = true, Name = "probe mremap" };
        t.Start();
        RemapEvent? ev1 = null;
        if (u.Poll(Lab.WaitMs) != PollEvents.None)
            ev1 = u.ReadTyped().OfType<RemapEvent>().FirstOrDefault();
        if (!t.Join(Lab.WaitMs))
        {
            s.Close(u);
            t.Join(Lab.WaitMs);
            return Finding.Failed("mremap did not return after REMAP was read");
        }
        if (rr < 0)
            return Finding.Failed($"mremap: {Errno.Name(rr)}");
        var e = lab.Pm(m.Address);
        var modes = VmaInfo.Find(m.Address)?.RegisteredModes ?? RegisterMode.None;
        string ev = $"REMAP message {(ev1 is null ? "not seen" : $"read (len {ev1.Length})")}; at the new address {Lab.Bits(e)}, VMA {modes}";
        return Finding.Either(ev1 is not null && e.UffdWp && modes.HasFlag(RegisterMode.WriteProtect),
            "REMAP read; wp=1 and uw at the new address", $"{Lab.Bits(e)}, VMA {modes}", ev);
    }

    private static Finding ThpWpKeepsPmd(Lab lab)
    {
        if (lab.Unsupported(UffdFeatures.PageFaultFlagWp) is { } no)
            return no;
        if (SwitchDetectors.WpBitInvisible(lab) is { } invisible)
            return invisible;
        string thp = ReadText("/sys/kernel/mm/transparent_hugepage/enabled");
        if (thp.Length == 0 || thp.Contains("[never]", StringComparison.Ordinal))
            return Finding.Undetermined($"THP is disabled ({(thp.Length == 0 ? "no THP" : thp)})");
        const ulong huge = 2UL << 20;
        using var s = lab.NewScope();
        var m = s.Anon((long)(2 * huge / P));
        ulong start = (m.Address + huge - 1) & ~(huge - 1);
        m.Advise(Advice.HugePage);
        Accessor.Touch(start, huge, write: true, value: 1);
        long before = AnonHugeKb(start);
        if (before < 2048)
            return Finding.Undetermined($"no THP was allocated (AnonHugePages {before} kB)");
        var u = s.Uffd();
        u.Register(start, huge, RegisterMode.WriteProtect);
        u.WriteProtect(start, huge, protect: true);
        long after = AnonHugeKb(start);
        int wp = lab.Pm(start, (long)(huge / P)).Count(e => e.UffdWp);
        string ev = $"2 MiB THP (AnonHugePages {before} kB) write-protected whole: AnonHugePages {after} kB, {wp}/512 PTEs wp";
        return Finding.Either(after >= 2048 && wp == 512,
            "PMD-mapped, 512/512 wp", $"AnonHugePages {after} kB, {wp}/512 wp", ev);
    }

    private static Finding ShmemWpSwap(Lab lab)
    {
        var swaps = ReadText("/proc/swaps").Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (swaps.Length <= 1)
            return Finding.Undetermined("no swap device: a shmem page cannot be swapped out here");
        if (NeedShmemWp(lab) is { } no)
            return no;
        using var s = lab.NewScope();
        var (_, m, _) = MarkedShmem(s, populate: true);
        int r = m.TryAdvise(Advice.PageOut, 0, P);
        var e = lab.Pm(m.Address);
        string ev = $"MADV_PAGEOUT: {Errno.Name(r)}; then {Lab.Bits(e)}";
        if (e.Present)
            return Finding.Undetermined("MADV_PAGEOUT left the page present", ev);
        return Finding.Of(e.UffdWp, e.UffdWp ? "wp kept across swap-out" : "wp lost", ev);
    }

    private static Finding ContinueErrors(Lab lab)
    {
        if (lab.Unsupported(UffdFeatures.MinorShmem) is { } no)
            return no;
        using var s = lab.NewScope();
        // The uncached page lies in the next 2 MiB extent: with shmem THP 'always' the write(2) that caches page 0
        // allocates one PMD-sized folio for its whole extent (no VMA, no MADV_NOHUGEPAGE pin; mm/shmem.c
        // shmem_allowable_huge_orders), which would leave no page of it uncached.
        const int holePage = 512;
        var (_, m, u) = s.RegisteredMemfd(holePage + 1, RegisterMode.Minor, cachedPages: 1, seed: 13);
        var hole = new UffdioContinue { Range = new UffdioRange(m.PageAddress(holePage), P) };
        int r1 = u.TryContinue(ref hole);
        var first = new UffdioContinue { Range = new UffdioRange(m.Address, P) };
        int r2 = u.TryContinue(ref first);
        var again = new UffdioContinue { Range = new UffdioRange(m.Address, P) };
        int r3 = u.TryContinue(ref again);
        string ev = $"no cache: {Errno.Name(r1)} mapped={hole.Mapped}; cached: {Errno.Name(r2)} mapped={first.Mapped}; again: {Errno.Name(r3)} mapped={again.Mapped}";
        return Finding.Either(r1 == -Errno.EFAULT && r2 == 0 && r3 == -Errno.EEXIST,
            "EFAULT, OK, EEXIST", $"{Errno.Name(r1)}, {Errno.Name(r2)}, {Errno.Name(r3)}", ev);
    }

    private static Finding PoisonRefusesMarker(Lab lab)
    {
        if (lab.Unsupported(UffdFeatures.Poison) is { } no)
            return no;
        if (NeedShmemWp(lab) is { } no2)
            return no2;
        using var s = lab.NewScope();
        var src = s.Source(3);
        var (_, m, u) = MarkedShmem(s, mode: RegisterMode.Missing | RegisterMode.WriteProtect, features: UffdFeatures.Poison);
        var p0 = new UffdioPoison { Range = new UffdioRange(m.Address, P) };
        int r1 = u.TryPoison(ref p0);
        var p1 = new UffdioPoison { Range = new UffdioRange(m.PageAddress(1), P) };
        int r2 = u.TryPoison(ref p1);
        var c = new UffdioCopy { Dst = m.PageAddress(1), Src = src.Address, Len = P };
        int r3 = u.TryCopy(ref c);
        string ev = $"POISON over a wp marker: {Errno.Name(r1)}; POISON a hole: {Errno.Name(r2)}; COPY over that poison marker: {Errno.Name(r3)}";
        return Finding.Either(r1 == -Errno.EEXIST && r2 == 0 && r3 == 0,
            "EEXIST; COPY over poison OK", $"{Errno.Name(r1)}; {Errno.Name(r2)}; {Errno.Name(r3)}", ev);
    }

    private static Finding MoveShmemEinval(Lab lab)
    {
        if (lab.Unsupported(UffdFeatures.Move) is { } no)
            return no;
        using var s = lab.NewScope();
        var src = s.Source(3);
        var (_, m, u) = s.SharedMemfdAndUffd(1, UffdFeatures.Move);
        var io = u.Register(m.Address, m.Length, RegisterMode.Missing);
        var mv = new UffdioMove { Dst = m.Address, Src = src.Address, Len = P };
        int r = u.TryMove(ref mv);
        string ev = $"REGISTER(MISSING, shmem) ioctls=0x{(ulong)io:x} (MOVE {((io & UffdIoctls.Move) != 0 ? "advertised" : "not advertised")}); MOVE into it: {Errno.Name(r)}";
        return Finding.Either(r == -Errno.EINVAL,
            "EINVAL", Errno.Name(r), ev);
    }

    private static Finding PagemapGuardBit(Lab lab)
    {
        using var s = lab.NewScope();
        var m = s.Anon(1);
        const int MadvGuardInstall = 102;
        int r = m.TryAdvise((Advice)MadvGuardInstall, 0, P);
        var e = lab.Pm(m.Address);
        string ev = $"madvise(MADV_GUARD_INSTALL): {Errno.Name(r)}; pagemap bit 58 = {(e.Guard ? 1 : 0)}";
        if (r == 0 && e.Guard)
            return Finding.Of(true, "guard installed, bit 58 = 1", ev);
        return Finding.Of(false, r == 0 ? "guard installed, bit 58 = 0" : $"MADV_GUARD_INSTALL: {Errno.Name(r)}", ev);
    }

    // ---------------------------------------------------------------------------------------------

    internal static string ReadText(string path)
    {
        try
        {
            return File.ReadAllText(path).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }

    /// <summary>AnonHugePages (kB) of the VMA containing addr, from /proc/self/smaps.</summary>
    internal static long AnonHugeKb(ulong addr) => FactDetectors.SmapsField(addr, "AnonHugePages:");
}
