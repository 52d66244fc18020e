// Compiled into the binding (namespace UffdNative.Interop) and into the harness (namespace
// UffdNative.Harness.Native), written once:
// - how a managed assembly proves its mirror of a native library's structs and constants against the
//   layout table that library exports (ARCHITECTURE.md rule 1; native/uffd_layout_table.h), and finds
//   the library;
// - the mirror of what every fault loop shares (native/uffd_shim.h, section "uffd_wait.c"): the managed
//   FaultServer and the harness's native twin loop both fill struct uffd_loop_stats, and each assembly
//   proves this mirror against the shim's layout table (LoopLayout.Entries). These types are internal
//   unless an assembly's own part says otherwise.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

#if UFFDNATIVE_HARNESS
namespace UffdNative.Harness.Native;
#else
namespace UffdNative.Interop;
#endif

/// <summary>Reads a native layout table, builds the managed one and lists their differences.</summary>
internal static unsafe class NativeLayoutTable
{
    /// <summary>A library's table as (name, value), read through its count/get exports.</summary>
    internal static Dictionary<string, long> Read(delegate*<int> count, delegate*<int, byte**, long*, int> get, string getName)
    {
        var table = new Dictionary<string, long>(StringComparer.Ordinal);
        int n = count();
        for (int i = 0; i < n; i++)
        {
            byte* name;
            long value;
            if (get(i, &name, &value) != 0)
                throw new InvalidOperationException(getName + " failed at " + i);
            table[Marshal.PtrToStringUTF8((nint)name)!] = value;
        }
        return table;
    }

    /// <summary>Every difference between <paramref name="native"/> and <paramref name="managed"/>, in
    /// words naming both sides; with <paramref name="subset"/>, entries only the native table has are
    /// not differences (a library's table may describe more than one assembly mirrors).</summary>
    internal static void Compare(IReadOnlyDictionary<string, long> native, IReadOnlyDictionary<string, long> managed,
        string nativeSide, string managedSide, List<string> problems, bool subset = false)
    {
        foreach (var (name, value) in managed)
        {
            if (!native.TryGetValue(name, out var v))
                problems.Add($"{name}: missing from the {nativeSide}'s table");
            else if (v != value)
                problems.Add($"{name}: {nativeSide} 0x{v:x}, {managedSide} 0x{value:x}");
        }
        if (subset)
            return;
        foreach (var name in native.Keys)
            if (!managed.ContainsKey(name))
                problems.Add($"{name}: missing from the {managedSide}'s table");
    }

    internal static Dictionary<string, long> ToTable(IEnumerable<(string Name, long Value)> entries)
    {
        var d = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var (name, value) in entries)
            d.Add(name, value);
        return d;
    }

    internal static (string, long) Size<T>(string c) where T : unmanaged => ($"sizeof({c})", Unsafe.SizeOf<T>());

    internal static (string, long) Off<T>(string c, string cField, string field) => ($"offsetof({c}.{cField})", Marshal.OffsetOf<T>(field).ToInt64());

    /// <summary>"TouchWrite" → "TOUCH_WRITE", "Read64" → "READ64": a managed enum member as its C constant.</summary>
    internal static string Snake(string s)
    {
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

/// <summary>Runs a layout comparison once per process and refuses to go on after a difference: a wrong
/// offset would read garbage from native code silently.</summary>
internal sealed class LayoutGate(string library, string side, string rebuild, Func<List<string>> compare)
{
    private readonly object gate = new();
    private bool verified;

    internal void EnsureVerified()
    {
        if (Volatile.Read(ref verified))
            return;
        lock (gate)
        {
            if (verified)
                return;
            var problems = compare();
            if (problems.Count > 0)
                throw new InvalidOperationException(
                    $"{library} does not match this {side} ({problems.Count} differences): " + string.Join("; ", problems.Take(8)) +
                    $". Rebuild both from the same commit ({rebuild}).");
            Volatile.Write(ref verified, true);
        }
    }
}

/// <summary>Installs an assembly's resolver for one native library: the first candidate path that
/// loads, else 0 (default probing, then DllNotFoundException naming the library).</summary>
internal static class NativeLibraryProbe
{
    internal static void Register(System.Reflection.Assembly assembly, Func<string, IEnumerable<string>?> candidates) =>
        NativeLibrary.SetDllImportResolver(assembly, (name, _, _) =>
        {
            foreach (var candidate in candidates(name) ?? [])
                if (File.Exists(candidate) && NativeLibrary.TryLoad(candidate, out var h))
                    return h;
            return 0;
        });

    /// <summary>Where an app has its native libraries: $ENV (when set), the app directory, and its
    /// runtimes/linux-x64/native (a tool package's layout, NuGet's native asset directory).</summary>
    internal static IEnumerable<string> AppCandidates(string environmentVariable, string fileName)
    {
        var env = Environment.GetEnvironmentVariable(environmentVariable);
        if (!string.IsNullOrEmpty(env))
            yield return env;
        var dir = AppContext.BaseDirectory;
        yield return Path.Combine(dir, fileName);
        yield return Path.Combine(dir, NativeAssetDir, fileName);
    }

    internal static readonly string NativeAssetDir = Path.Combine("runtimes", "linux-x64", "native");
}

/// <summary>Constants of the wait section of the ABI (each one is in the layout table). The serving
/// engine's public enums take their values from here, so the numbers are written once.</summary>
internal static class LoopAbi
{
    internal const int HistBuckets = 2304;
    /// <summary>uffd_loop_wait: read() returned 0 (end of file).</summary>
    internal const int WaitEof = 16;
    internal const int StateCreated = 0, StateRunning = 1, StateExited = 2;
    /// <summary>UFFD_KIND_*: index of uffd_loop_stats.faults.</summary>
    internal const int KindMissing = 0, KindWriteProtect = 1, KindMinor = 2;
    /// <summary>UFFD_EV_*: index of uffd_loop_stats.events.</summary>
    internal const int EventFork = 0, EventRemap = 1, EventRemove = 2, EventUnmap = 3;
    /// <summary>UFFD_LOOP_RUNNING and UFFD_LOOP_EXIT_*: uffd_loop_stats.exit_reason.</summary>
    internal const int Running = 0, ExitStopped = 1, ExitOwnerGone = 2, ExitEndOfFile = 3, ExitError = 4, ExitAllocationFailure = 5;
    /// <summary>UFFD_ENOMEM_RETRIES: how often a loop retries a fill that failed with ENOMEM.</summary>
    internal const int EnomemRetries = 5;
    /// <summary>UFFD_LOOP_OP_*: uffd_loop_stats.error_op.</summary>
    internal const int OpNone = 0, OpRead = 1, OpPoll = 2, OpResolve = 3, OpWake = 4, OpPolicy = 5, OpEvent = 6, OpNoPolicy = 7;
}

/// <summary>struct uffd_hist: a fixed log-linear histogram (bucket index: uffd_shim.h).</summary>
[StructLayout(LayoutKind.Sequential)]
unsafe partial struct UffdHist
{
    public ulong Count;
    public ulong Sum;
    public ulong Max;
    public fixed ulong Buckets[LoopAbi.HistBuckets];
}

/// <summary>struct uffd_loop_stats: written by one loop thread, copied by anyone.</summary>
[StructLayout(LayoutKind.Sequential)]
unsafe partial struct UffdLoopStats
{
    public fixed ulong Faults[3];
    public fixed ulong Events[4];
    public ulong Messages;
    public ulong Reads;
    public ulong Polls;
    public ulong Batches;
    public ulong MaxBatch;
    public ulong Runs;
    public ulong ResolveIoctls;
    public ulong WakeIoctls;
    public ulong PagesResolved;
    public ulong Eexist;
    public ulong Eagain;
    public ulong Partial;
    public ulong Enoent;
    public ulong DeferredMax;
    public ulong SnapshotPages;
    public ulong ZeroPages;
    public long LoopUtimeNs;
    public long LoopStimeNs;
    public long LoopVcsw;
    public long LoopIvcsw;
    public int State;
    public int ExitReason;
    public int Error;
    public int ErrorOp;
    public UffdHist Service;
}

/// <summary>struct uffd_thread_usage: getrusage(RUSAGE_THREAD) of one thread.</summary>
[StructLayout(LayoutKind.Sequential)]
partial struct UffdThreadUsage
{
    public long UtimeNs;
    public long StimeNs;
    public long Vcsw;
    public long Ivcsw;
    public long MinorFaults;
    public long MajorFaults;
}

/// <summary>The rows of the shim's layout table that prove this mirror.</summary>
internal static class LoopLayout
{
    internal static IEnumerable<(string, long)> Entries()
    {
        yield return NativeLayoutTable.Size<UffdHist>("uffd_hist");
        foreach (var (c, m) in new[] { ("count", nameof(UffdHist.Count)), ("sum", nameof(UffdHist.Sum)), ("max", nameof(UffdHist.Max)), ("buckets", nameof(UffdHist.Buckets)) })
            yield return NativeLayoutTable.Off<UffdHist>("uffd_hist", c, m);
        yield return ("UFFD_HIST_BUCKETS", LoopAbi.HistBuckets);
        yield return NativeLayoutTable.Size<UffdLoopStats>("uffd_loop_stats");
        (string C, string M)[] stats =
        [
            ("faults", nameof(UffdLoopStats.Faults)), ("events", nameof(UffdLoopStats.Events)), ("messages", nameof(UffdLoopStats.Messages)),
            ("reads", nameof(UffdLoopStats.Reads)), ("polls", nameof(UffdLoopStats.Polls)), ("batches", nameof(UffdLoopStats.Batches)),
            ("max_batch", nameof(UffdLoopStats.MaxBatch)), ("runs", nameof(UffdLoopStats.Runs)), ("resolve_ioctls", nameof(UffdLoopStats.ResolveIoctls)),
            ("wake_ioctls", nameof(UffdLoopStats.WakeIoctls)), ("pages_resolved", nameof(UffdLoopStats.PagesResolved)), ("eexist", nameof(UffdLoopStats.Eexist)),
            ("eagain", nameof(UffdLoopStats.Eagain)), ("partial", nameof(UffdLoopStats.Partial)), ("enoent", nameof(UffdLoopStats.Enoent)),
            ("deferred_max", nameof(UffdLoopStats.DeferredMax)), ("snapshot_pages", nameof(UffdLoopStats.SnapshotPages)), ("zero_pages", nameof(UffdLoopStats.ZeroPages)),
            ("loop_utime_ns", nameof(UffdLoopStats.LoopUtimeNs)), ("loop_stime_ns", nameof(UffdLoopStats.LoopStimeNs)), ("loop_vcsw", nameof(UffdLoopStats.LoopVcsw)),
            ("loop_ivcsw", nameof(UffdLoopStats.LoopIvcsw)), ("state", nameof(UffdLoopStats.State)), ("exit_reason", nameof(UffdLoopStats.ExitReason)),
            ("error", nameof(UffdLoopStats.Error)), ("error_op", nameof(UffdLoopStats.ErrorOp)), ("service", nameof(UffdLoopStats.Service)),
        ];
        foreach (var (c, m) in stats)
            yield return NativeLayoutTable.Off<UffdLoopStats>("uffd_loop_stats", c, m);
        yield return NativeLayoutTable.Size<UffdThreadUsage>("uffd_thread_usage");
        foreach (var (c, m) in new[] { ("utime_ns", nameof(UffdThreadUsage.UtimeNs)), ("stime_ns", nameof(UffdThreadUsage.StimeNs)), ("vcsw", nameof(UffdThreadUsage.Vcsw)), ("ivcsw", nameof(UffdThreadUsage.Ivcsw)), ("minflt", nameof(UffdThreadUsage.MinorFaults)), ("majflt", nameof(UffdThreadUsage.MajorFaults)) })
            yield return NativeLayoutTable.Off<UffdThreadUsage>("uffd_thread_usage", c, m);
        (string, int)[] constants =
        [
            ("UFFD_KIND_MISSING", LoopAbi.KindMissing), ("UFFD_KIND_WP", LoopAbi.KindWriteProtect), ("UFFD_KIND_MINOR", LoopAbi.KindMinor),
            ("UFFD_EV_FORK", LoopAbi.EventFork), ("UFFD_EV_REMAP", LoopAbi.EventRemap), ("UFFD_EV_REMOVE", LoopAbi.EventRemove), ("UFFD_EV_UNMAP", LoopAbi.EventUnmap),
            ("UFFD_LOOP_RUNNING", LoopAbi.Running), ("UFFD_LOOP_EXIT_STOPPED", LoopAbi.ExitStopped), ("UFFD_LOOP_EXIT_OWNER_GONE", LoopAbi.ExitOwnerGone),
            ("UFFD_LOOP_EXIT_EOF", LoopAbi.ExitEndOfFile), ("UFFD_LOOP_EXIT_ERROR", LoopAbi.ExitError),
            ("UFFD_LOOP_EXIT_ALLOC_FAILURE", LoopAbi.ExitAllocationFailure), ("UFFD_ENOMEM_RETRIES", LoopAbi.EnomemRetries),
            ("UFFD_LOOP_OP_READ", LoopAbi.OpRead), ("UFFD_LOOP_OP_POLL", LoopAbi.OpPoll), ("UFFD_LOOP_OP_RESOLVE", LoopAbi.OpResolve), ("UFFD_LOOP_OP_WAKE", LoopAbi.OpWake),
            ("UFFD_LOOP_OP_POLICY", LoopAbi.OpPolicy), ("UFFD_LOOP_OP_EVENT", LoopAbi.OpEvent), ("UFFD_LOOP_OP_NO_POLICY", LoopAbi.OpNoPolicy),
            ("UFFD_WAIT_EOF", LoopAbi.WaitEof),
        ];
        foreach (var (name, value) in constants)
            yield return (name, value);
    }
}
