using UffdNative.Harness.Scenarios;
using E = UffdNative.Errno;

namespace UffdNative.Harness.Model;

/// <summary>Rules of UFFDIO_API, REGISTER, UNREGISTER and close() (reference §1.2, §1.4, §1.5).</summary>
internal sealed partial class ModelRun
{
    /// <summary>The feature bits 9 and up (§1.2 table), each with the switch that says the kernel has it.</summary>
    private static readonly (string Switch, int Bit)[] FeatureBits =
    [
        (KernelProfile.ContinueIoctl, 9),   // MINOR_HUGETLBFS came with the UFFDIO_CONTINUE ioctl (5.13)
        (KernelProfile.MinorShmem, 10),
        (KernelProfile.ExactAddress, 11),
        (KernelProfile.WpShmem, 12),
        (KernelProfile.WpUnpopulated, 13),
        (KernelProfile.Poison, 14),
        (KernelProfile.WpAsync, 15),
        (KernelProfile.Move, 16),
    ];

    /// <summary>The features a kernel supports (§1.2 table): bits 0–8 since 4.x/5.7, the rest by switch.</summary>
    private ulong SupportedFeatures()
    {
        ulong f = 0x1ff;
        foreach (var (sw, bit) in FeatureBits)
            if (Sw(sw))
                f |= 1UL << bit;
        return f;
    }

    /// <summary>One UFFDIO_API call (§1.2 rules 1, 4, 6): api must be 0xAA and every feature known, and
    /// only one successful call per fd. In the 914eedcb window (~6.0–6.3) neither check existed: unknown
    /// features were silently dropped.</summary>
    private int ApiCall(ulong api, ulong features, bool initialized)
    {
        if (initialized)
            return E.EINVAL;
        ulong unknown = features & ~SupportedFeatures();
        if (api != 0xAA || unknown != 0)
            return Sw(KernelProfile.UnknownFeatureAccepted) ? 0 : E.EINVAL;
        return 0;
    }

    private string Api(ApiOp op)
    {
        // /dev/userfaultfd + USERFAULTFD_IOC_NEW exists since 6.1 (§1.1).
        if (op.Device && !Sw(KernelProfile.DevUserfaultfd))
            return "open=ENOENT";
        var parts = new List<string> { "open=ok" };
        bool init = false;
        for (int i = 0; i < op.Steps.Count; i++)
        {
            int e = ApiCall(op.Steps[i].Api, op.Steps[i].Features, init);
            init |= e == 0;
            parts.Add($"api{i}={(e == 0 ? "ok" : E.Name(e))}");
        }
        return string.Join(" ", parts);
    }

    /// <summary>vma_can_userfault (§1.3): MINOR only on shmem/hugetlb; WP on shmem since 5.19; with a
    /// WP_ASYNC ctx a WP-only registration is accepted on any VMA.</summary>
    private bool CanUserfault(Ctx ctx, MapState m, RegisterMode modes)
    {
        if ((modes & RegisterMode.Minor) != 0 && m.IsAnonymous)
            return false;
        if (modes == RegisterMode.WriteProtect && IsAsync(ctx, this))
            return true;
        if ((modes & RegisterMode.WriteProtect) != 0 && m.IsFile && !Sw(KernelProfile.WpShmem))
            return false;
        if ((modes & RegisterMode.Minor) != 0 && m.IsFile && !Sw(KernelProfile.MinorShmem))
            return false;
        return true;
    }

    /// <summary>UFFDIO_REGISTER (§1.4): every VMA in range must be registrable and not owned by another
    /// uffd (EBUSY), checked before anything changes; a VMA already registered here with a superset of the
    /// modes is left alone, otherwise its modes are *replaced* (§0.9). Returns the ioctl mask.</summary>
    private string Register(Ctx ctx, MapState m, int first, int count, RegisterMode modes, bool observeIoctls)
    {
        if (!ctx.Initialized)
            return "EINVAL";
        if (modes == RegisterMode.None || (modes & ~(RegisterMode.Missing | RegisterMode.WriteProtect | RegisterMode.Minor)) != 0)
            return "EINVAL";
        var vmas = m.VmasIn(first, count).ToList();
        if (vmas.Count == 0)
            return "EINVAL";
        foreach (var v in vmas)
        {
            if (!CanUserfault(ctx, m, modes))
                return "EINVAL";
            if (v.Ctx is not null && v.Ctx != ctx)
                return "EBUSY";
            // 7.3 (RWP series): a mode switch that drops VM_UFFD_WP would leave wp bits and markers without
            // the flag that describes them: EBUSY, unregister first. Before, the modes were replaced.
            if (v.Ctx == ctx && v.Wp && (modes & RegisterMode.WriteProtect) == 0 && Sw(KernelProfile.ReregisterKeepsWp))
                return "EBUSY";
        }
        ModifyRange(m, first, first + count, v => v.Ctx == ctx && (v.Modes & modes) == modes, ctx, modes);
        if (!observeIoctls)
            return "ok";
        // The returned ioctls (§1.4 "Returned ioctls"): WAKE|COPY|ZEROPAGE (+MOVE|POISON since 6.8), plus
        // WRITEPROTECT for WP and CONTINUE for MINOR registrations. A range with a hugetlb VMA gets the basic set
        // (UFFD_API_RANGE_IOCTLS_BASIC, userfaultfd_register's basic_ioctls): WAKE|COPY (+POISON), no ZEROPAGE or
        // MOVE (§3.11).
        bool basic = m.Hugetlb;
        ulong ioctls = (1UL << 2) | (1UL << 3) | (basic ? 0 : 1UL << 4);
        if (Sw(KernelProfile.RegisterMaskMovePoison))
            ioctls |= (basic ? 0 : 1UL << 5) | (1UL << 8);
        if ((modes & RegisterMode.WriteProtect) != 0)
            ioctls |= 1UL << 6;
        if ((modes & RegisterMode.Minor) != 0)
            ioctls |= 1UL << 7;
        return $"ok ioctls=0x{ioctls:x}";
    }

    /// <summary>UFFDIO_UNREGISTER (§1.4): a VMA owned by another uffd is EINVAL since ~6.17 (before, it was
    /// unregistered); wp bits and markers of WP VMAs are cleared since ~6.0 (f369b07c8614). An unregistered
    /// range is fine (0).</summary>
    private IoResult Unregister(Ctx ctx, MapState m, int first, int count)
    {
        if (!ctx.Initialized)
            return IoResult.Fail(E.EINVAL);
        var vmas = m.VmasIn(first, count).ToList();
        if (vmas.Any(v => v.Ctx is not null && v.Ctx != ctx) && Sw(KernelProfile.UnregisterOtherUffdEinval))
            return IoResult.Fail(E.EINVAL);
        foreach (var v in vmas)
        {
            if (v.Ctx is null)
                continue;
            int s = Math.Max(first, v.Start), e = Math.Min(first + count, v.End);
            if (v.Wp && Sw(KernelProfile.UnregisterClearsWp) && !Bug(ModelBug.UnregisterKeepsWp))
                ClearWp(m, s, e);
        }
        ModifyRange(m, first, first + count, v => v.Ctx is null, null, RegisterMode.None);
        return IoResult.Success();
    }

    /// <summary>close(uffd) (§1.5 close()): every VMA of the ctx is unregistered; its wp bits and markers
    /// are cleared since 6.9 (c88033efe9a3, CVE-2024-36881), left stale before.</summary>
    private string Close(Ctx ctx)
    {
        ctx.Released = true;
        foreach (var m in ctx.Mm.Maps)
        {
            foreach (var v in m.Vmas.Where(v => v.Ctx == ctx))
                if (v.Wp && Sw(KernelProfile.CloseClearsWp))
                    ClearWp(m, v.Start, v.End);
            // userfaultfd_release_all: every VMA of the ctx, in address order, through vma_modify.
            if (m.Vmas.Any(v => v.Ctx == ctx))
                ModifyRange(m, 0, m.Pages, v => v.Ctx != ctx, null, RegisterMode.None);
        }
        return "ok";
    }

    /// <summary>Splits <paramref name="v"/> so that [start, end) is a VMA of its own and returns it.</summary>
    private static Vma Isolate(MapState m, Vma v, int start, int end)
    {
        int i = m.Vmas.IndexOf(v);
        if (v.Start < start)
        {
            var left = v.Clone();
            left.End = start;
            v.Start = start;
            m.Vmas.Insert(i, left);
            i++;
        }
        if (v.End > end)
        {
            var right = v.Clone();
            right.Start = end;
            v.End = end;
            m.Vmas.Insert(i + 1, right);
        }
        return v;
    }

    /// <summary>The flags a VMA has for merging: its uffd ctx and modes (none when unregistered).</summary>
    private static RegisterMode FlagsOf(Vma v) => v.Ctx is null ? RegisterMode.None : v.Modes;

    /// <summary>The loops of userfaultfd_register_range, userfaultfd_unregister and userfaultfd_release_all
    /// (mm/userfaultfd.c): VMA by VMA in address order, skipping those that need no change, each modified
    /// through vma_modify with the previous VMA as the merge candidate on its left (the VMA itself when the
    /// range starts inside it).</summary>
    private void ModifyRange(MapState m, int start, int end, Func<Vma, bool> skip, Ctx? ctx, RegisterMode modes)
    {
        int i = m.Vmas.FindIndex(v => v.End > start);
        if (i < 0 || m.Vmas[i].Start >= end)
            return;
        Vma? prev = m.Vmas[i].Start < start ? m.Vmas[i] : i > 0 ? m.Vmas[i - 1] : null;
        int cur = start;
        while (cur < end)
        {
            var v = m.Vmas.FirstOrDefault(x => x.End > cur);
            if (v is null || v.Start >= end)
                break;
            if (!skip(v))
                v = Modify(m, prev, v, Math.Max(cur, v.Start), Math.Min(end, v.End), ctx, modes);
            prev = v;
            cur = v.End;
        }
    }

    /// <summary>vma_modify (mm/vma.c vma_merge_existing_range, then split): [start, end) of <paramref name="v"/>
    /// gets the new flags; it merges into the previous VMA when it starts at v's start, into the next when it
    /// ends at v's end, if their flags are then equal and their anon_vmas compatible; otherwise v is split.
    /// Returns the VMA that now holds [start, end).</summary>
    private Vma Modify(MapState m, Vma? prev, Vma v, int start, int end, Ctx? ctx, RegisterMode modes)
    {
        bool Same(Vma x) => x.Ctx == ctx && FlagsOf(x) == modes;
        int vi = m.Vmas.IndexOf(v);
        bool leftSide = start == v.Start, rightSide = end == v.End;
        var next = rightSide && vi + 1 < m.Vmas.Count ? m.Vmas[vi + 1] : null;
        bool left = leftSide && prev is not null && prev != v && prev.End == start && Same(prev) && AnonVmaMergeable(v.AnonVma, prev.AnonVma);
        bool right = next is not null && next.Start == end && Same(next) && AnonVmaMergeable(v.AnonVma, next.AnonVma) &&
                     (!left || prev!.AnonVma == 0 || next.AnonVma == 0 || prev.AnonVma == next.AnonVma);
        if (left && right)
        {
            prev!.End = next!.End;
            if (prev.AnonVma == 0)
                prev.AnonVma = next.AnonVma != 0 ? next.AnonVma : v.AnonVma;
            m.Vmas.Remove(v);
            m.Vmas.Remove(next);
            return prev;
        }
        if (left || right)
        {
            // One neighbour takes [start, end) (reusing v's anon_vma if it has none); what is left of v shrinks
            // away from that side, or goes when nothing is.
            var into = left ? prev! : next!;
            if (left)
                into.End = end;
            else
                into.Start = start;
            if (into.AnonVma == 0)
                into.AnonVma = v.AnonVma;
            if (leftSide && rightSide)
                m.Vmas.Remove(v);
            else if (left)
                v.Start = end;
            else
                v.End = start;
            return into;
        }
        var piece = Isolate(m, v, start, end);
        piece.Ctx = ctx;
        piece.Modes = modes;
        return piece;
    }

    /// <summary>is_mergeable_anon_vma (mm/vma.c): may the modified VMA (anon_vma <paramref name="src"/>, 0 for
    /// none) merge into a neighbour with <paramref name="target"/>? The same anon_vma, or neither, always; a
    /// neighbour with one and the VMA without, always (the neighbour's is reused); the VMA with one and the
    /// neighbour without only since 6.16 (vma-merge-anon-vma) — before, the test was list_is_singular() of the
    /// neighbour's anon_vma_chain, which is empty. (Fork children are never merged either way: the model
    /// re-registers only the parent's VMAs.)</summary>
    private bool AnonVmaMergeable(int src, int target)
    {
        if (src == target || src == 0)
            return true;
        return target == 0 && Sw(KernelProfile.VmaMergeAnonVma);
    }

}
