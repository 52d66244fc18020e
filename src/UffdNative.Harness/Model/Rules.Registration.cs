using UffdNative.Harness.Scenarios;
using E = UffdNative.Errno;

namespace UffdNative.Harness.Model;

/// <summary>Rules of UFFDIO_API, REGISTER, UNREGISTER and close() (reference §1.2, §1.4, §1.5).</summary>
internal sealed partial class ModelRun
{
    /// <summary>The features a kernel supports (§1.2 table): bits 0–9 since 4.x/5.13, the rest by switch.</summary>
    private ulong SupportedFeatures()
    {
        ulong f = 0x1ff | (1UL << 9);
        if (Sw(KernelProfile.MinorShmem))
            f |= 1UL << 10;
        if (Sw(KernelProfile.ExactAddress))
            f |= 1UL << 11;
        if (Sw(KernelProfile.WpShmem))
            f |= 1UL << 12;
        if (Sw(KernelProfile.WpUnpopulated))
            f |= 1UL << 13;
        if (Sw(KernelProfile.Poison))
            f |= 1UL << 14;
        if (Sw(KernelProfile.WpAsync))
            f |= 1UL << 15;
        if (Sw(KernelProfile.Move))
            f |= 1UL << 16;
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
        }
        foreach (var v in vmas)
        {
            if (v.Ctx == ctx && (v.Modes & modes) == modes)
                continue;
            var piece = Isolate(m, v, Math.Max(first, v.Start), Math.Min(first + count, v.End));
            piece.Ctx = ctx;
            piece.Modes = modes;
        }
        MergeVmas(m);
        if (!observeIoctls)
            return "ok";
        // The returned ioctls (§1.4 "Returned ioctls"): WAKE|COPY|ZEROPAGE (+MOVE|POISON since 6.8), plus
        // WRITEPROTECT for WP and CONTINUE for MINOR registrations.
        ulong ioctls = (1UL << 2) | (1UL << 3) | (1UL << 4);
        if (Sw(KernelProfile.RegisterMaskMovePoison))
            ioctls |= (1UL << 5) | (1UL << 8);
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
            var piece = Isolate(m, v, s, e);
            piece.Ctx = null;
            piece.Modes = RegisterMode.None;
        }
        MergeVmas(m);
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
            {
                if (v.Wp && Sw(KernelProfile.CloseClearsWp))
                    ClearWp(m, v.Start, v.End);
                v.Ctx = null;
                v.Modes = RegisterMode.None;
            }
            MergeVmas(m);
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

    /// <summary>vma_merge after a flag change: neighbours merge when their uffd ctx and flags are equal and
    /// their anon_vmas compatible (one missing, or the same).</summary>
    private static void MergeVmas(MapState m)
    {
        for (int i = 0; i + 1 < m.Vmas.Count;)
        {
            var a = m.Vmas[i];
            var b = m.Vmas[i + 1];
            var fa = a.Ctx is null ? RegisterMode.None : a.Modes;
            var fb = b.Ctx is null ? RegisterMode.None : b.Modes;
            if (a.Ctx == b.Ctx && fa == fb && (a.AnonVma == 0 || b.AnonVma == 0 || a.AnonVma == b.AnonVma))
            {
                a.End = b.End;
                if (a.AnonVma == 0)
                    a.AnonVma = b.AnonVma;
                m.Vmas.RemoveAt(i + 1);
            }
            else
                i++;
        }
    }
}
