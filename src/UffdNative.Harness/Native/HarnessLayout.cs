using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace UffdNative.Harness.Native;

/// <summary>
/// Compares the harness's own struct layouts and constants with libuffdharness.so's layout table
/// (native/harness/uffd_harness_layout.c) and refuses to run on any difference, as the binding does
/// with the shim's (ARCHITECTURE.md rule 1).
/// </summary>
public static unsafe partial class HarnessLayout
{
    private static readonly object Gate = new();
    private static bool verified;

    [LibraryImport(HarnessNative.Library)] private static partial int uffd_harness_abi_version();
    [LibraryImport(HarnessNative.Library)] private static partial int uffd_harness_layout_count();
    [LibraryImport(HarnessNative.Library)] private static partial int uffd_harness_layout_get(int index, byte** name, long* value);

    public static void EnsureVerified()
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
                    "libuffdharness.so does not match this harness (" + problems.Count + " differences): " + string.Join("; ", problems.Take(8)) +
                    ". Rebuild both from the same commit (dotnet build rebuilds the library).");
            Volatile.Write(ref verified, true);
        }
    }

    /// <summary>The library's table as (name, value).</summary>
    public static IReadOnlyDictionary<string, long> LibraryTable()
    {
        var table = new Dictionary<string, long>(StringComparer.Ordinal);
        int n = uffd_harness_layout_count();
        for (int i = 0; i < n; i++)
        {
            byte* name;
            long value;
            if (uffd_harness_layout_get(i, &name, &value) != 0)
                throw new InvalidOperationException("uffd_harness_layout_get failed at " + i);
            table[Marshal.PtrToStringUTF8((nint)name)!] = value;
        }
        return table;
    }

    /// <summary>Every difference between the library's table and <see cref="ManagedTable"/>; empty when equal.</summary>
    public static List<string> Compare()
    {
        var problems = new List<string>();
        int abi = uffd_harness_abi_version();
        if (abi != HarnessAbi.Version)
            problems.Add($"harness ABI version {abi}, the harness expects {HarnessAbi.Version}");
        var native = LibraryTable();
        var managed = ManagedTable();
        foreach (var (name, value) in managed)
        {
            if (!native.TryGetValue(name, out var v))
                problems.Add($"{name}: missing from the library's table");
            else if (v != value)
                problems.Add($"{name}: library 0x{v:x}, harness 0x{value:x}");
        }
        foreach (var name in native.Keys)
            if (!managed.ContainsKey(name))
                problems.Add($"{name}: missing from the harness's table");
        return problems;
    }

    private static (string, long) Size<T>(string c) where T : unmanaged => ($"sizeof({c})", Unsafe.SizeOf<T>());
    private static (string, long) Off<T>(string c, string cField, string field) => ($"offsetof({c}.{cField})", Marshal.OffsetOf<T>(field).ToInt64());

    // "MissingCopy" -> "MISSING_COPY".
    private static string Snake(string s) => string.Concat(s.Select((ch, i) => i > 0 && char.IsUpper(ch) ? "_" + ch : char.ToUpperInvariant(ch).ToString()));

    /// <summary>The harness's own view, named as the library names it.</summary>
    public static IReadOnlyDictionary<string, long> ManagedTable()
    {
        var e = new List<(string, long)>
        {
            Size<HarnessHist>("uffd_hist"),
            Off<HarnessHist>("uffd_hist", "count", nameof(HarnessHist.Count)),
            Off<HarnessHist>("uffd_hist", "sum", nameof(HarnessHist.Sum)),
            Off<HarnessHist>("uffd_hist", "max", nameof(HarnessHist.Max)),
            Off<HarnessHist>("uffd_hist", "buckets", nameof(HarnessHist.Buckets)),
            Size<HarnessLoopStats>("uffd_loop_stats"),
        };
        (string C, string M)[] stats =
        [
            ("faults", "Faults"), ("events", "Events"), ("messages", "Messages"), ("reads", "Reads"), ("polls", "Polls"), ("batches", "Batches"),
            ("max_batch", "MaxBatch"), ("runs", "Runs"), ("resolve_ioctls", "ResolveIoctls"), ("wake_ioctls", "WakeIoctls"),
            ("pages_resolved", "PagesResolved"), ("eexist", "Eexist"), ("eagain", "Eagain"), ("partial", "Partial"), ("enoent", "Enoent"),
            ("deferred_max", "DeferredMax"), ("snapshot_pages", "SnapshotPages"), ("zero_pages", "ZeroPages"), ("loop_utime_ns", "LoopUtimeNs"),
            ("loop_stime_ns", "LoopStimeNs"), ("loop_vcsw", "LoopVcsw"), ("loop_ivcsw", "LoopIvcsw"), ("state", "State"),
            ("exit_reason", "ExitReason"), ("error", "Error"), ("error_op", "ErrorOp"), ("service", "Service"),
        ];
        foreach (var (c, m) in stats)
            e.Add(Off<HarnessLoopStats>("uffd_loop_stats", c, m));
        e.Add(Size<HarnessThreadUsage>("uffd_thread_usage"));
        foreach (var (c, m) in new[] { ("utime_ns", "UtimeNs"), ("stime_ns", "StimeNs"), ("vcsw", "Vcsw"), ("ivcsw", "Ivcsw"), ("minflt", "MinorFaults"), ("majflt", "MajorFaults") })
            e.Add(Off<HarnessThreadUsage>("uffd_thread_usage", c, m));
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
            ("UFFD_HARNESS_ABI_VERSION", HarnessAbi.Version),
        ]);
        var d = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var (name, value) in e)
            d.Add(name, value);
        return d;
    }
}
