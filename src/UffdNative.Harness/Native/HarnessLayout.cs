using System.Runtime.InteropServices;

namespace UffdNative.Harness.Native;

/// <summary>
/// Compares the harness's own struct layouts and constants with libuffdharness.so's layout table
/// (native/harness/uffd_harness_layout.c) and refuses to run on any difference, as the binding does
/// with the shim's (ARCHITECTURE.md rule 1).
/// </summary>
public static unsafe partial class HarnessLayout
{
    private static readonly LayoutGate Gate = new("libuffdharness.so", "harness", "dotnet build rebuilds the library", Compare);

    [LibraryImport(HarnessNative.Library)] private static partial int uffd_harness_abi_version();
    [LibraryImport(HarnessNative.Library)] private static partial int uffd_harness_layout_count();
    [LibraryImport(HarnessNative.Library)] private static partial int uffd_harness_layout_get(int index, byte** name, long* value);
    // The shim's own table proves the shim structs the harness mirrors (src/Shared/NativeMirror.cs).
    [LibraryImport(HarnessLibrary.ShimImport)] private static partial int uffd_layout_count();
    [LibraryImport(HarnessLibrary.ShimImport)] private static partial int uffd_layout_get(int index, byte** name, long* value);

    public static void EnsureVerified() => Gate.EnsureVerified();

    /// <summary>The library's table as (name, value).</summary>
    public static IReadOnlyDictionary<string, long> LibraryTable() =>
        NativeLayoutTable.Read(&uffd_harness_layout_count, &uffd_harness_layout_get, "uffd_harness_layout_get");

    /// <summary>Every difference between the library's table and <see cref="ManagedTable"/>, and between
    /// the shim's table and the harness's mirror of the loop structs; empty when equal.</summary>
    public static List<string> Compare()
    {
        var problems = new List<string>();
        int abi = uffd_harness_abi_version();
        if (abi != HarnessAbi.Version)
            problems.Add($"harness ABI version {abi}, the harness expects {HarnessAbi.Version}");
        NativeLayoutTable.Compare(LibraryTable(), ManagedTable(), "library", "harness", problems);
        var shim = NativeLayoutTable.Read(&uffd_layout_count, &uffd_layout_get, "uffd_layout_get");
        NativeLayoutTable.Compare(shim, NativeLayoutTable.ToTable(LoopLayout.Entries()), "shim", "harness", problems, subset: true);
        return problems;
    }

    private static (string, long) Size<T>(string c) where T : unmanaged => NativeLayoutTable.Size<T>(c);
    private static (string, long) Off<T>(string c, string cField, string field) => NativeLayoutTable.Off<T>(c, cField, field);
    private static string Snake(string s) => NativeLayoutTable.Snake(s);

    /// <summary>The harness's own view, named as the library names it.</summary>
    public static IReadOnlyDictionary<string, long> ManagedTable()
    {
        var e = new List<(string, long)>();
        e.Add(Size<LoopConfig>("uffd_loop_config"));
        foreach (var (c, m) in new[] { ("uffd", "Uffd"), ("policy", "Policy"), ("cpu", "Cpu"), ("max_msgs", "MaxMsgs"), ("retry_ms", "RetryMs"), ("range_start", "RangeStart"), ("range_len", "RangeLen"), ("source", "Source"), ("snapshot", "Snapshot"), ("read_ahead", "ReadAhead") })
            e.Add(Off<LoopConfig>("uffd_loop_config", c, m));
        e.Add(Size<TouchConfig>("uffd_touch_config"));
        foreach (var (c, m) in new[] { ("addr", "Addr"), ("pages", "Pages"), ("first_page", "FirstPage"), ("seed", "Seed"), ("mode", "Mode"), ("cpu", "Cpu") })
            e.Add(Off<TouchConfig>("uffd_touch_config", c, m));
        e.Add(Size<TouchResult>("uffd_touch_result"));
        foreach (var (c, m) in new[] { ("start_ns", "StartNs"), ("end_ns", "EndNs"), ("pages", "Pages"), ("checksum", "Checksum"), ("usage", "Usage"), ("latency", "Latency") })
            e.Add(Off<TouchResult>("uffd_touch_result", c, m));
        e.Add(Size<VerifySpec>("uffd_verify_spec"));
        foreach (var (c, m) in new[] { ("addr", "Addr"), ("pages", "Pages"), ("base_seed", "BaseSeed"), ("touch_seed", "TouchSeed"), ("base", "Base"), ("touched", "Touched") })
            e.Add(Off<VerifySpec>("uffd_verify_spec", c, m));
        foreach (var p in Enum.GetValues<NativePolicy>())
            e.Add(("UFFD_POLICY_" + Snake(p.ToString()), (long)p));
        e.Add(("UFFD_TOUCH_READ", (long)TouchMode.Read));
        e.Add(("UFFD_TOUCH_WRITE", (long)TouchMode.Write));
        e.Add(("UFFD_VERIFY_ZERO", (long)VerifyBase.Zero));
        e.Add(("UFFD_VERIFY_PATTERN", (long)VerifyBase.Pattern));
        e.Add(Size<SoakRegionConfig>("uffd_soak_region_config"));
        foreach (var (c, m) in new[] { ("addr", "Addr"), ("pages", "Pages"), ("seed", "Seed"), ("base", "Base"), ("may_remove", "MayRemove"), ("weight", "Weight"), ("write_pct", "WritePct") })
            e.Add(Off<SoakRegionConfig>("uffd_soak_region_config", c, m));
        e.Add(Size<SoakConfig>("uffd_soak_config"));
        foreach (var (c, m) in new[] { ("threads", "Threads"), ("regions", "Regions"), ("seed", "Seed"), ("region", "Region") })
            e.Add(Off<SoakConfig>("uffd_soak_config", c, m));
        e.Add(Size<SoakThreadStats>("uffd_soak_thread_stats"));
        foreach (var (c, m) in new[] { ("ops", "Ops"), ("reads", "Reads"), ("writes", "Writes"), ("verified", "Verified"), ("inconclusive", "Inconclusive"), ("lost", "Lost"), ("corrupt", "Corrupt"), ("sweep_pages", "SweepPages"), ("op_start_ns", "OpStartNs"), ("op_addr", "OpAddr"), ("state", "State"), ("tid", "Tid") })
            e.Add(Off<SoakThreadStats>("uffd_soak_thread_stats", c, m));
        e.Add(Size<SoakFailure>("uffd_soak_failure"));
        foreach (var (c, m) in new[] { ("kind", "Kind"), ("region", "Region"), ("thread", "Thread"), ("page", "Page"), ("word", "Word"), ("got", "Got"), ("expected", "Expected") })
            e.Add(Off<SoakFailure>("uffd_soak_failure", c, m));
        e.AddRange(
        [
            ("UFFD_SOAK_MAX_REGIONS", SoakConfig.MaxRegions),
            ("UFFD_SOAK_MAX_THREADS", SoakConfig.MaxThreads),
            ("UFFD_SOAK_RUNNING", SoakAbi.Running),
            ("UFFD_SOAK_PARKED", SoakAbi.Parked),
            ("UFFD_SOAK_DONE", SoakAbi.Done),
            ("UFFD_SOAK_SWEEP_READ", SoakAbi.SweepRead),
            ("UFFD_SOAK_SWEEP_WRITE", SoakAbi.SweepWrite),
            ("UFFD_SOAK_LOST", SoakAbi.Lost),
            ("UFFD_SOAK_CORRUPT", SoakAbi.Corrupt),
            ("UFFD_PIN_STAGE_SETUP", HarnessAbi.PinStageSetup),
            ("UFFD_PIN_STAGE_REGISTER", HarnessAbi.PinStageRegister),
            ("UFFD_CHILD_FN_PIN", HarnessAbi.ChildFnPin),
            ("UFFD_CHILD_FN_UNPIN_ALL", HarnessAbi.ChildFnUnpinAll),
            ("UFFD_CHILD_FN_MREMAP", HarnessAbi.ChildFnMremap),
            ("UFFD_CHILD_FN_MADVISE", HarnessAbi.ChildFnMadvise),
            ("UFFD_CHILD_FN_SIGBUS_LOOP", HarnessAbi.ChildFnSigbusLoop),
            ("UFFD_CHILD_SIGBUS_WP", HarnessAbi.ChildSigbusWp),
            ("UFFD_CHILD_SIGBUS_WP_FILE", HarnessAbi.ChildSigbusWpFile),
            ("UFFD_CHILD_SIGBUS_HUGE", HarnessAbi.ChildSigbusHuge),
            ("UFFD_CHILD_SIGBUS_TAG_BASE", HarnessAbi.ChildSigbusTagBase),
            ("UFFD_CHILD_CALL", HarnessAbi.ChildCall),
            ("UFFD_HARNESS_ABI_VERSION", HarnessAbi.Version),
        ]);
        return NativeLayoutTable.ToTable(e);
    }
}
