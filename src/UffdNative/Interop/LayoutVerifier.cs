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

    private static readonly object Gate = new();
    private static bool verified;

    internal static void EnsureVerified()
    {
        if (Volatile.Read(ref verified))
            return;
        lock (Gate)
        {
            if (verified)
                return;
            var problems = Compare();
            if (problems.Count > 0)
                throw new InvalidOperationException(
                    "libuffdshim.so does not match this binding (" + problems.Count + " differences): " + string.Join("; ", problems.Take(8)) +
                    ". Rebuild both from the same commit (dotnet build rebuilds the shim).");
            Volatile.Write(ref verified, true);
        }
    }

    /// <summary>The shim's table as (name, value).</summary>
    internal static IReadOnlyDictionary<string, long> ShimTable()
    {
        var table = new Dictionary<string, long>(StringComparer.Ordinal);
        int n = ShimLayout.uffd_layout_count();
        for (int i = 0; i < n; i++)
        {
            byte* name;
            long value;
            if (ShimLayout.uffd_layout_get(i, &name, &value) != 0)
                throw new InvalidOperationException("uffd_layout_get failed at " + i);
            table[Marshal.PtrToStringUTF8((nint)name)!] = value;
        }
        return table;
    }

    /// <summary>Every difference between the shim's table and <see cref="ManagedTable"/>; empty when equal.</summary>
    internal static List<string> Compare()
    {
        var problems = new List<string>();
        int abi = ShimLayout.uffd_shim_abi_version();
        if (abi != ExpectedAbiVersion)
            problems.Add($"shim ABI version {abi}, binding expects {ExpectedAbiVersion}");
        var shim = ShimTable();
        var managed = ManagedTable();
        foreach (var (name, value) in managed)
        {
            if (!shim.TryGetValue(name, out var native))
                problems.Add($"{name}: missing from the shim's table");
            else if (native != value)
                problems.Add($"{name}: shim 0x{native:x}, binding 0x{value:x}");
        }
        foreach (var name in shim.Keys)
            if (!managed.ContainsKey(name))
                problems.Add($"{name}: missing from the binding's table");
        return problems;
    }

    private static (string, long) Size<T>(string c) where T : unmanaged => ($"sizeof({c})", Unsafe.SizeOf<T>());
    private static (string, long) Off<T>(string c, string cField, string field) => ($"offsetof({c}.{cField})", Marshal.OffsetOf<T>(field).ToInt64());

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
        entries.AddRange(
        [
            Size<UffdHist>("uffd_hist"),
            Off<UffdHist>("uffd_hist", "count", nameof(UffdHist.Count)),
            Off<UffdHist>("uffd_hist", "sum", nameof(UffdHist.Sum)),
            Off<UffdHist>("uffd_hist", "max", nameof(UffdHist.Max)),
            Off<UffdHist>("uffd_hist", "buckets", nameof(UffdHist.Buckets)),
            ("UFFD_HIST_BUCKETS", LoopAbi.HistBuckets),
            Size<UffdLoopStats>("uffd_loop_stats"),
            Off<UffdLoopStats>("uffd_loop_stats", "faults", nameof(UffdLoopStats.Faults)),
            Off<UffdLoopStats>("uffd_loop_stats", "events", nameof(UffdLoopStats.Events)),
            Off<UffdLoopStats>("uffd_loop_stats", "messages", nameof(UffdLoopStats.Messages)),
            Off<UffdLoopStats>("uffd_loop_stats", "reads", nameof(UffdLoopStats.Reads)),
            Off<UffdLoopStats>("uffd_loop_stats", "polls", nameof(UffdLoopStats.Polls)),
            Off<UffdLoopStats>("uffd_loop_stats", "batches", nameof(UffdLoopStats.Batches)),
            Off<UffdLoopStats>("uffd_loop_stats", "max_batch", nameof(UffdLoopStats.MaxBatch)),
            Off<UffdLoopStats>("uffd_loop_stats", "runs", nameof(UffdLoopStats.Runs)),
            Off<UffdLoopStats>("uffd_loop_stats", "resolve_ioctls", nameof(UffdLoopStats.ResolveIoctls)),
            Off<UffdLoopStats>("uffd_loop_stats", "wake_ioctls", nameof(UffdLoopStats.WakeIoctls)),
            Off<UffdLoopStats>("uffd_loop_stats", "pages_resolved", nameof(UffdLoopStats.PagesResolved)),
            Off<UffdLoopStats>("uffd_loop_stats", "eexist", nameof(UffdLoopStats.Eexist)),
            Off<UffdLoopStats>("uffd_loop_stats", "eagain", nameof(UffdLoopStats.Eagain)),
            Off<UffdLoopStats>("uffd_loop_stats", "partial", nameof(UffdLoopStats.Partial)),
            Off<UffdLoopStats>("uffd_loop_stats", "enoent", nameof(UffdLoopStats.Enoent)),
            Off<UffdLoopStats>("uffd_loop_stats", "deferred_max", nameof(UffdLoopStats.DeferredMax)),
            Off<UffdLoopStats>("uffd_loop_stats", "snapshot_pages", nameof(UffdLoopStats.SnapshotPages)),
            Off<UffdLoopStats>("uffd_loop_stats", "zero_pages", nameof(UffdLoopStats.ZeroPages)),
            Off<UffdLoopStats>("uffd_loop_stats", "loop_utime_ns", nameof(UffdLoopStats.LoopUtimeNs)),
            Off<UffdLoopStats>("uffd_loop_stats", "loop_stime_ns", nameof(UffdLoopStats.LoopStimeNs)),
            Off<UffdLoopStats>("uffd_loop_stats", "loop_vcsw", nameof(UffdLoopStats.LoopVcsw)),
            Off<UffdLoopStats>("uffd_loop_stats", "loop_ivcsw", nameof(UffdLoopStats.LoopIvcsw)),
            Off<UffdLoopStats>("uffd_loop_stats", "state", nameof(UffdLoopStats.State)),
            Off<UffdLoopStats>("uffd_loop_stats", "exit_reason", nameof(UffdLoopStats.ExitReason)),
            Off<UffdLoopStats>("uffd_loop_stats", "error", nameof(UffdLoopStats.Error)),
            Off<UffdLoopStats>("uffd_loop_stats", "error_op", nameof(UffdLoopStats.ErrorOp)),
            Off<UffdLoopStats>("uffd_loop_stats", "service", nameof(UffdLoopStats.Service)),
            Size<UffdThreadUsage>("uffd_thread_usage"),
            Off<UffdThreadUsage>("uffd_thread_usage", "utime_ns", nameof(UffdThreadUsage.UtimeNs)),
            Off<UffdThreadUsage>("uffd_thread_usage", "stime_ns", nameof(UffdThreadUsage.StimeNs)),
            Off<UffdThreadUsage>("uffd_thread_usage", "vcsw", nameof(UffdThreadUsage.Vcsw)),
            Off<UffdThreadUsage>("uffd_thread_usage", "ivcsw", nameof(UffdThreadUsage.Ivcsw)),
            Off<UffdThreadUsage>("uffd_thread_usage", "minflt", nameof(UffdThreadUsage.MinorFaults)),
            Off<UffdThreadUsage>("uffd_thread_usage", "majflt", nameof(UffdThreadUsage.MajorFaults)),
            ("UFFD_KIND_MISSING", LoopAbi.KindMissing),
            ("UFFD_KIND_WP", LoopAbi.KindWriteProtect),
            ("UFFD_KIND_MINOR", LoopAbi.KindMinor),
            ("UFFD_EV_FORK", LoopAbi.EventFork),
            ("UFFD_EV_REMAP", LoopAbi.EventRemap),
            ("UFFD_EV_REMOVE", LoopAbi.EventRemove),
            ("UFFD_EV_UNMAP", LoopAbi.EventUnmap),
            ("UFFD_LOOP_RUNNING", LoopAbi.Running),
            ("UFFD_LOOP_EXIT_STOPPED", LoopAbi.ExitStopped),
            ("UFFD_LOOP_EXIT_OWNER_GONE", LoopAbi.ExitOwnerGone),
            ("UFFD_LOOP_EXIT_EOF", LoopAbi.ExitEndOfFile),
            ("UFFD_LOOP_EXIT_ERROR", LoopAbi.ExitError),
            ("UFFD_LOOP_OP_READ", LoopAbi.OpRead),
            ("UFFD_LOOP_OP_POLL", LoopAbi.OpPoll),
            ("UFFD_LOOP_OP_RESOLVE", LoopAbi.OpResolve),
            ("UFFD_LOOP_OP_WAKE", LoopAbi.OpWake),
            ("UFFD_LOOP_OP_POLICY", LoopAbi.OpPolicy),
            ("UFFD_LOOP_OP_EVENT", LoopAbi.OpEvent),
            ("UFFD_LOOP_OP_NO_POLICY", LoopAbi.OpNoPolicy),
            ("UFFD_WAIT_EOF", LoopAbi.WaitEof),
        ]);

        var d = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var (name, value) in entries)
            d.Add(name, value);
        return d;
    }

    // "TouchWrite" -> "TOUCH_WRITE", "Read64" -> "READ64", "PageMap" -> "PAGEMAP" (one word in C).
    private static string Snake(string s)
    {
        if (s == nameof(ChildOpKind.PageMap))
            return "PAGEMAP";
        var sb = new System.Text.StringBuilder();
        for (int i = 0; i < s.Length; i++)
        {
            if (i > 0 && char.IsUpper(s[i]))
                sb.Append('_');
            sb.Append(char.ToUpperInvariant(s[i]));
        }
        return sb.ToString();
    }
}
