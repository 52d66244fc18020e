using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using UffdNative.Access;
using UffdNative.Uapi;

namespace UffdNative.Interop;

/// <summary>
/// Compares the binding's own struct sizes, field offsets, ioctl numbers and constants with the
/// shim's layout table (compiled from the kernel headers + uffd_compat.h) and refuses to run on any
/// difference: a wrong offset would read garbage from the kernel silently (ARCHITECTURE.md rule 1).
/// </summary>
internal static unsafe class LayoutVerifier
{
    internal const int ExpectedAbiVersion = 1;

    private static readonly LayoutGate Gate = new("libuffdshim.so", "binding", "dotnet build rebuilds the shim", Compare);

    internal static void EnsureVerified() => Gate.EnsureVerified();

    /// <summary>The shim's table as (name, value).</summary>
    internal static IReadOnlyDictionary<string, long> ShimTable() =>
        NativeLayoutTable.Read(&ShimLayout.uffd_layout_count, &ShimLayout.uffd_layout_get, "uffd_layout_get");

    /// <summary>Every difference between the shim's table and <see cref="ManagedTable"/>; empty when equal.</summary>
    internal static List<string> Compare()
    {
        var problems = new List<string>();
        int abi = ShimLayout.uffd_shim_abi_version();
        if (abi != ExpectedAbiVersion)
            problems.Add($"shim ABI version {abi}, binding expects {ExpectedAbiVersion}");
        NativeLayoutTable.Compare(ShimTable(), ManagedTable(), "shim", "binding", problems);
        return problems;
    }

    private static (string, long) Size<T>(string c) where T : unmanaged => NativeLayoutTable.Size<T>(c);
    private static (string, long) Off<T>(string c, string cField, string field) => NativeLayoutTable.Off<T>(c, cField, field);

    /// <summary>The binding's own view, named as the shim names it.</summary>
    internal static IReadOnlyDictionary<string, long> ManagedTable()
    {
        var entries = new List<(string, long)>
        {
            Size<UffdMsg>("uffd_msg"),
            Off<UffdMsg>("uffd_msg", "event", nameof(UffdMsg.Event)),
            Off<UffdMsg>("uffd_msg", "arg.pagefault.flags", nameof(UffdMsg.PagefaultFlags)),
            Off<UffdMsg>("uffd_msg", "arg.pagefault.address", nameof(UffdMsg.PagefaultAddress)),
            Off<UffdMsg>("uffd_msg", "arg.pagefault.feat.ptid", nameof(UffdMsg.PagefaultPtid)),
            Off<UffdMsg>("uffd_msg", "arg.fork.ufd", nameof(UffdMsg.ForkUfd)),
            Off<UffdMsg>("uffd_msg", "arg.remap.from", nameof(UffdMsg.RemapFrom)),
            Off<UffdMsg>("uffd_msg", "arg.remap.to", nameof(UffdMsg.RemapTo)),
            Off<UffdMsg>("uffd_msg", "arg.remap.len", nameof(UffdMsg.RemapLen)),
            Off<UffdMsg>("uffd_msg", "arg.remove.start", nameof(UffdMsg.RemoveStart)),
            Off<UffdMsg>("uffd_msg", "arg.remove.end", nameof(UffdMsg.RemoveEnd)),
            Size<UffdioApi>("uffdio_api"),
            Off<UffdioApi>("uffdio_api", "api", nameof(UffdioApi.Api)),
            Off<UffdioApi>("uffdio_api", "features", nameof(UffdioApi.Features)),
            Off<UffdioApi>("uffdio_api", "ioctls", nameof(UffdioApi.Ioctls)),
            Size<UffdioRange>("uffdio_range"),
            Off<UffdioRange>("uffdio_range", "start", nameof(UffdioRange.Start)),
            Off<UffdioRange>("uffdio_range", "len", nameof(UffdioRange.Len)),
            Size<UffdioRegister>("uffdio_register"),
            Off<UffdioRegister>("uffdio_register", "range", nameof(UffdioRegister.Range)),
            Off<UffdioRegister>("uffdio_register", "mode", nameof(UffdioRegister.Mode)),
            Off<UffdioRegister>("uffdio_register", "ioctls", nameof(UffdioRegister.Ioctls)),
            Size<UffdioCopy>("uffdio_copy"),
            Off<UffdioCopy>("uffdio_copy", "dst", nameof(UffdioCopy.Dst)),
            Off<UffdioCopy>("uffdio_copy", "src", nameof(UffdioCopy.Src)),
            Off<UffdioCopy>("uffdio_copy", "len", nameof(UffdioCopy.Len)),
            Off<UffdioCopy>("uffdio_copy", "mode", nameof(UffdioCopy.Mode)),
            Off<UffdioCopy>("uffdio_copy", "copy", nameof(UffdioCopy.Copy)),
            Size<UffdioZeropage>("uffdio_zeropage"),
            Off<UffdioZeropage>("uffdio_zeropage", "range", nameof(UffdioZeropage.Range)),
            Off<UffdioZeropage>("uffdio_zeropage", "mode", nameof(UffdioZeropage.Mode)),
            Off<UffdioZeropage>("uffdio_zeropage", "zeropage", nameof(UffdioZeropage.Zeropage)),
            Size<UffdioWriteprotect>("uffdio_writeprotect"),
            Off<UffdioWriteprotect>("uffdio_writeprotect", "range", nameof(UffdioWriteprotect.Range)),
            Off<UffdioWriteprotect>("uffdio_writeprotect", "mode", nameof(UffdioWriteprotect.Mode)),
            Size<UffdioContinue>("uffdio_continue"),
            Off<UffdioContinue>("uffdio_continue", "range", nameof(UffdioContinue.Range)),
            Off<UffdioContinue>("uffdio_continue", "mode", nameof(UffdioContinue.Mode)),
            Off<UffdioContinue>("uffdio_continue", "mapped", nameof(UffdioContinue.Mapped)),
            Size<UffdioPoison>("uffdio_poison"),
            Off<UffdioPoison>("uffdio_poison", "range", nameof(UffdioPoison.Range)),
            Off<UffdioPoison>("uffdio_poison", "mode", nameof(UffdioPoison.Mode)),
            Off<UffdioPoison>("uffdio_poison", "updated", nameof(UffdioPoison.Updated)),
            Size<UffdioMove>("uffdio_move"),
            Off<UffdioMove>("uffdio_move", "dst", nameof(UffdioMove.Dst)),
            Off<UffdioMove>("uffdio_move", "src", nameof(UffdioMove.Src)),
            Off<UffdioMove>("uffdio_move", "len", nameof(UffdioMove.Len)),
            Off<UffdioMove>("uffdio_move", "mode", nameof(UffdioMove.Mode)),
            Off<UffdioMove>("uffdio_move", "move", nameof(UffdioMove.Move)),
            Size<PmScanArg>("pm_scan_arg"),
            Off<PmScanArg>("pm_scan_arg", "size", nameof(PmScanArg.Size)),
            Off<PmScanArg>("pm_scan_arg", "flags", nameof(PmScanArg.Flags)),
            Off<PmScanArg>("pm_scan_arg", "start", nameof(PmScanArg.Start)),
            Off<PmScanArg>("pm_scan_arg", "end", nameof(PmScanArg.End)),
            Off<PmScanArg>("pm_scan_arg", "walk_end", nameof(PmScanArg.WalkEnd)),
            Off<PmScanArg>("pm_scan_arg", "vec", nameof(PmScanArg.Vec)),
            Off<PmScanArg>("pm_scan_arg", "vec_len", nameof(PmScanArg.VecLen)),
            Off<PmScanArg>("pm_scan_arg", "max_pages", nameof(PmScanArg.MaxPages)),
            Off<PmScanArg>("pm_scan_arg", "category_inverted", nameof(PmScanArg.CategoryInverted)),
            Off<PmScanArg>("pm_scan_arg", "category_mask", nameof(PmScanArg.CategoryMask)),
            Off<PmScanArg>("pm_scan_arg", "category_anyof_mask", nameof(PmScanArg.CategoryAnyofMask)),
            Off<PmScanArg>("pm_scan_arg", "return_mask", nameof(PmScanArg.ReturnMask)),
            Size<PageRegion>("page_region"),
            Off<PageRegion>("page_region", "start", nameof(PageRegion.Start)),
            Off<PageRegion>("page_region", "end", nameof(PageRegion.End)),
            Off<PageRegion>("page_region", "categories", nameof(PageRegion.Categories)),
            Size<AccessOp>("uffd_access_op"),
            Off<AccessOp>("uffd_access_op", "kind", nameof(AccessOp.Kind)),
            Off<AccessOp>("uffd_access_op", "addr", nameof(AccessOp.Addr)),
            Off<AccessOp>("uffd_access_op", "len", nameof(AccessOp.Len)),
            Off<AccessOp>("uffd_access_op", "value", nameof(AccessOp.Value)),
            Off<AccessOp>("uffd_access_op", "stride", nameof(AccessOp.Stride)),
            Size<AccessResult>("uffd_access_result"),
            Off<AccessResult>("uffd_access_result", "ret", nameof(AccessResult.Ret)),
            Off<AccessResult>("uffd_access_result", "value", nameof(AccessResult.Value)),
            Off<AccessResult>("uffd_access_result", "elapsed_ns", nameof(AccessResult.ElapsedNs)),
            Size<ChildOp>("uffd_child_op"),
            Off<ChildOp>("uffd_child_op", "kind", nameof(ChildOp.Kind)),
            Off<ChildOp>("uffd_child_op", "arg", nameof(ChildOp.Arg)),
            Off<ChildOp>("uffd_child_op", "addr", nameof(ChildOp.Addr)),
            Off<ChildOp>("uffd_child_op", "len", nameof(ChildOp.Len)),
            Off<ChildOp>("uffd_child_op", "value", nameof(ChildOp.Value)),
            Size<ChildResult>("uffd_child_result"),
            Off<ChildResult>("uffd_child_result", "index", nameof(ChildResult.Index)),
            Off<ChildResult>("uffd_child_result", "sigbus", nameof(ChildResult.Sigbus)),
            Off<ChildResult>("uffd_child_result", "si_code", nameof(ChildResult.SiCode)),
            Off<ChildResult>("uffd_child_result", "ret", nameof(ChildResult.Ret)),
            Off<ChildResult>("uffd_child_result", "value", nameof(ChildResult.Value)),

            ("UFFD_API", Uffd.Api),
            ("UFFDIO_API", (long)IoctlNumbers.Api),
            ("UFFDIO_REGISTER", (long)IoctlNumbers.Register),
            ("UFFDIO_UNREGISTER", (long)IoctlNumbers.Unregister),
            ("UFFDIO_WAKE", (long)IoctlNumbers.Wake),
            ("UFFDIO_COPY", (long)IoctlNumbers.Copy),
            ("UFFDIO_ZEROPAGE", (long)IoctlNumbers.ZeroPage),
            ("UFFDIO_MOVE", (long)IoctlNumbers.Move),
            ("UFFDIO_WRITEPROTECT", (long)IoctlNumbers.WriteProtect),
            ("UFFDIO_CONTINUE", (long)IoctlNumbers.Continue),
            ("UFFDIO_POISON", (long)IoctlNumbers.Poison),
            ("USERFAULTFD_IOC_NEW", (long)IoctlNumbers.UserfaultfdIocNew),
            ("PAGEMAP_SCAN", (long)IoctlNumbers.PagemapScan),
            ("O_CLOEXEC", Uffd.OCloexec),
            ("O_NONBLOCK", Uffd.ONonblock),
            ("UFFD_USER_MODE_ONLY", Uffd.UserModeOnly),
            ("UFFD_SHIM_ABI_VERSION", ExpectedAbiVersion),
            ("UFFD_PM_SOFT_DIRTY", (long)PageMap.PageMapEntry.SoftDirtyBit),
            ("UFFD_PM_MMAP_EXCLUSIVE", (long)PageMap.PageMapEntry.ExclusiveBit),
            ("UFFD_PM_UFFD_WP", (long)PageMap.PageMapEntry.UffdWpBit),
            ("UFFD_PM_GUARD_REGION", (long)PageMap.PageMapEntry.GuardBit),
            ("UFFD_PM_FILE", (long)PageMap.PageMapEntry.FileBit),
            ("UFFD_PM_SWAP", unchecked((long)PageMap.PageMapEntry.SwapBit)),
            ("UFFD_PM_PRESENT", unchecked((long)PageMap.PageMapEntry.PresentBit)),
            ("PM_SCAN_WP_MATCHING", (long)PageMapScanFlags.WpMatching),
            ("PM_SCAN_CHECK_WPASYNC", (long)PageMapScanFlags.CheckWpAsync),
            ("UFFD_POLL_READABLE", (long)PollEvents.Readable),
            ("UFFD_POLL_STOP", (long)PollEvents.Stop),
            ("UFFD_POLL_HUP", (long)PollEvents.HangUp),
            ("UFFD_POLL_ERR", (long)PollEvents.Error),
        };
        string[] ioctlNames = ["REGISTER", "UNREGISTER", "WAKE", "COPY", "ZEROPAGE", "MOVE", "WRITEPROTECT", "CONTINUE", "POISON", "RWPROTECT", "SET_MODE", "API"];
        UffdIoctls[] ioctlBits = [UffdIoctls.Register, UffdIoctls.Unregister, UffdIoctls.Wake, UffdIoctls.Copy, UffdIoctls.ZeroPage, UffdIoctls.Move, UffdIoctls.WriteProtect, UffdIoctls.Continue, UffdIoctls.Poison, UffdIoctls.RwProtect, UffdIoctls.SetMode, UffdIoctls.Api];
        for (int i = 0; i < ioctlNames.Length; i++)
            entries.Add(("_UFFDIO_" + ioctlNames[i], System.Numerics.BitOperations.TrailingZeroCount((ulong)ioctlBits[i])));
        foreach (var f in UffdFeatureInfo.All)
            entries.Add((f.CName, (long)f.Feature));
        entries.Add(("UFFDIO_REGISTER_MODE_MISSING", (long)RegisterMode.Missing));
        entries.Add(("UFFDIO_REGISTER_MODE_WP", (long)RegisterMode.WriteProtect));
        entries.Add(("UFFDIO_REGISTER_MODE_MINOR", (long)RegisterMode.Minor));
        entries.Add(("UFFDIO_COPY_MODE_DONTWAKE", (long)CopyMode.DontWake));
        entries.Add(("UFFDIO_COPY_MODE_WP", (long)CopyMode.WriteProtect));
        entries.Add(("UFFDIO_ZEROPAGE_MODE_DONTWAKE", (long)ZeroPageMode.DontWake));
        entries.Add(("UFFDIO_WRITEPROTECT_MODE_WP", (long)WriteProtectMode.WriteProtect));
        entries.Add(("UFFDIO_WRITEPROTECT_MODE_DONTWAKE", (long)WriteProtectMode.DontWake));
        entries.Add(("UFFDIO_CONTINUE_MODE_DONTWAKE", (long)ContinueMode.DontWake));
        entries.Add(("UFFDIO_CONTINUE_MODE_WP", (long)ContinueMode.WriteProtect));
        entries.Add(("UFFDIO_POISON_MODE_DONTWAKE", (long)PoisonMode.DontWake));
        entries.Add(("UFFDIO_MOVE_MODE_DONTWAKE", (long)MoveMode.DontWake));
        entries.Add(("UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES", (long)MoveMode.AllowSrcHoles));
        entries.Add(("UFFD_EVENT_PAGEFAULT", (long)UffdEventKind.PageFault));
        entries.Add(("UFFD_EVENT_FORK", (long)UffdEventKind.Fork));
        entries.Add(("UFFD_EVENT_REMAP", (long)UffdEventKind.Remap));
        entries.Add(("UFFD_EVENT_REMOVE", (long)UffdEventKind.Remove));
        entries.Add(("UFFD_EVENT_UNMAP", (long)UffdEventKind.Unmap));
        entries.Add(("UFFD_PAGEFAULT_FLAG_WRITE", (long)PageFaultFlags.Write));
        entries.Add(("UFFD_PAGEFAULT_FLAG_WP", (long)PageFaultFlags.WriteProtect));
        entries.Add(("UFFD_PAGEFAULT_FLAG_MINOR", (long)PageFaultFlags.Minor));
        string[] cats = ["WPALLOWED", "WRITTEN", "FILE", "PRESENT", "SWAPPED", "PFNZERO", "HUGE", "SOFT_DIRTY", "GUARD"];
        for (int i = 0; i < cats.Length; i++)
            entries.Add(("PAGE_IS_" + cats[i], 1L << i));
        foreach (var k in Enum.GetValues<AccessKind>())
            entries.Add(("UFFD_ACC_" + Snake(k.ToString()), (long)k));
        foreach (var k in Enum.GetValues<ChildOpKind>())
            entries.Add(("UFFD_CHILD_" + Snake(k.ToString()), (long)k));

        // uffd_wait.c: what every fault loop shares (the serving engine's enums take these values)
        entries.AddRange(LoopLayout.Entries());

        return NativeLayoutTable.ToTable(entries);
    }

    // "PageMap" is one word in C (PAGEMAP).
    private static string Snake(string s) => s == nameof(ChildOpKind.PageMap) ? "PAGEMAP" : NativeLayoutTable.Snake(s);
}
