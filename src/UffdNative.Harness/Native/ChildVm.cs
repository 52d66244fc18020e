using UffdNative.Access;

namespace UffdNative.Harness.Native;

/// <summary>A fork child's own mremap and madvise (native/harness/uffd_child_vm.c, run by the shim's fork child
/// as UFFD_CHILD_CALL steps): what upstream's events child does to its address space, so that the REMAP and
/// REMOVE events come from the child's mm, on the uffd context the FORK event handed over.</summary>
public static class ChildVm
{
    /// <summary>mremap(MAYMOVE|FIXED) of [from, from+len) to <paramref name="to"/> (Ret 0 or -errno; Value the new address).</summary>
    public static ChildOp Mremap(ulong from, ulong len, ulong to)
    {
        long pages = ((long)to - (long)from) / 4096;
        if ((to - from) % 4096 != 0 || pages is < int.MinValue or > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(to), "the destination must be a 4 KiB multiple within ±8 TiB of the source");
        return new() { Kind = HarnessAbi.ChildCall, Addr = from, Len = len, Arg = (int)pages, Value = HarnessNative.uffd_child_fn_of(HarnessAbi.ChildFnMremap) };
    }

    /// <summary>Upstream's sigbus loop (faulting_process(1, wp)) over [addr, addr+len) of mapping number <paramref name="mapping"/>
    /// on a uffd of the child's own with FEATURE_SIGBUS (native/harness/uffd_child_sigbus.c): Ret 0 with Value = MISSING
    /// signals | WP signals &lt;&lt; 32, or -errno (-EPROTO: a signal repeated, -EIO: a wrong word; Value the page).</summary>
    public static ChildOp SigbusLoop(ulong addr, ulong len, int mapping, bool wp, bool wpFile, bool huge)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan((uint)mapping, 255u, nameof(mapping));
        int arg = (mapping << 8) | (wp ? HarnessAbi.ChildSigbusWp : 0) | (wpFile ? HarnessAbi.ChildSigbusWpFile : 0) | (huge ? HarnessAbi.ChildSigbusHuge : 0);
        return new() { Kind = HarnessAbi.ChildCall, Addr = addr, Len = len, Arg = arg, Value = HarnessNative.uffd_child_fn_of(HarnessAbi.ChildFnSigbusLoop) };
    }

    /// <summary>madvise(addr, len, advice) in the child (Ret 0 or -errno).</summary>
    public static ChildOp Madvise(ulong addr, ulong len, int advice) =>
        new() { Kind = HarnessAbi.ChildCall, Addr = addr, Len = len, Arg = advice, Value = HarnessNative.uffd_child_fn_of(HarnessAbi.ChildFnMadvise) };
}
