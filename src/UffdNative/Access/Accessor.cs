using UffdNative.Interop;

namespace UffdNative.Access;

/// <summary>
/// Loads and stores on memory that may be uffd-registered, performed by the shim. A managed thread
/// must never touch such memory directly: blocked in a uffd fault in cooperative mode it stalls the
/// next GC and hangs the whole process (measured on .NET 10). These calls run in preemptive mode, so
/// a fault blocks only the calling thread; use <see cref="NativeWorker"/> to fault without blocking
/// the caller at all.
/// </summary>
public static unsafe class Accessor
{
    public static ulong PatternWord(ulong seed, ulong index) => Shim.uffd_pattern_word(seed, index);

    /// <summary>Fills an ordinary (never registered) buffer with the pattern.</summary>
    public static void PatternFill(Span<byte> buffer, ulong seed, ulong firstIndex = 0)
    {
        fixed (byte* p = buffer)
            Shim.uffd_pattern_fill(p, (ulong)buffer.Length, seed, firstIndex);
    }

    public static AccessResult Run(in AccessOp op)
    {
        AccessResult r;
        fixed (AccessOp* p = &op)
            Shim.uffd_access_run(p, 1, &r);
        return r;
    }

    public static ulong ReadU64(ulong addr) => Run(Op.Read64(addr)).Value;
    public static void WriteU64(ulong addr, ulong value) => Run(Op.Write64(addr, value));
    public static void Fill(ulong addr, ulong len, ulong seed) => Run(Op.Fill(addr, len, seed));

    /// <summary>0 when [addr, addr+len) holds the pattern, else the first differing byte offset + 1.</summary>
    public static long Verify(ulong addr, ulong len, ulong seed) => Run(Op.Verify(addr, len, seed)).Ret;

    public static void Touch(ulong addr, ulong len, bool write, ulong stride = 4096, ulong value = 0) =>
        Run(write ? Op.TouchWrite(addr, len, value, stride) : Op.TouchRead(addr, len, stride));
}

/// <summary>Builders for <see cref="AccessOp"/>.</summary>
public static class Op
{
    public static AccessOp Read64(ulong addr) => new() { Kind = (int)AccessKind.Read64, Addr = addr };
    public static AccessOp Write64(ulong addr, ulong value) => new() { Kind = (int)AccessKind.Write64, Addr = addr, Value = value };
    public static AccessOp Fill(ulong addr, ulong len, ulong seed) => new() { Kind = (int)AccessKind.Fill, Addr = addr, Len = len, Value = seed };
    public static AccessOp Verify(ulong addr, ulong len, ulong seed) => new() { Kind = (int)AccessKind.Verify, Addr = addr, Len = len, Value = seed };
    public static AccessOp TouchRead(ulong addr, ulong len, ulong stride = 4096) => new() { Kind = (int)AccessKind.TouchRead, Addr = addr, Len = len, Stride = stride };
    public static AccessOp TouchWrite(ulong addr, ulong len, ulong value = 0, ulong stride = 4096) => new() { Kind = (int)AccessKind.TouchWrite, Addr = addr, Len = len, Value = value, Stride = stride };
    /// <summary>A kernel-mode write: read(2) from a pipe into addr (intercepted unless user-mode-only, then EFAULT).</summary>
    public static AccessOp KernelWrite(ulong addr, ulong len, ulong value) => new() { Kind = (int)AccessKind.KernelWrite, Addr = addr, Len = len, Value = value };
    public static AccessOp KernelRead(ulong addr, ulong len) => new() { Kind = (int)AccessKind.KernelRead, Addr = addr, Len = len };
}

/// <summary>
/// A native thread that runs accessor ops once, so a caller can cause a fault and observe it (the
/// message, fdinfo pending) without blocking itself. Join with a timeout; a worker that never
/// finishes is reported, and its handle deliberately leaked rather than freed under it.
/// Teardown order: close the uffd (the kernel wakes every blocked worker, which then completes its
/// access normally, reference §1.5 close()), wait for the workers (<see cref="WaitForWorkersIn"/>),
/// then unmap. Unmapping first would make a woken worker fault on memory that is gone: SIGSEGV, and
/// the whole process (a test host and every later result with it) is lost.
/// </summary>
public sealed unsafe class NativeWorker : IDisposable
{
    // Workers not yet seen finished, for WaitForWorkersIn.
    private static readonly object LiveGate = new();
    private static readonly HashSet<NativeWorker> Live = [];

    private nint handle;
    private readonly int count;
    private readonly ulong lowest, highest;
    // Join and Dispose may race (a test body's join, a teardown's wait): the native join and free run once.
    private readonly object gate = new();
    private AccessResult[]? results;

    public NativeWorker(ReadOnlySpan<AccessOp> ops, int cpu = -1)
    {
        count = ops.Length;
        lowest = ulong.MaxValue;
        foreach (ref readonly var op in ops)
        {
            lowest = Math.Min(lowest, op.Addr);
            highest = Math.Max(highest, op.Addr + Math.Max(op.Len, 8));
        }
        fixed (AccessOp* p = ops)
            handle = Shim.uffd_worker_start(p, ops.Length, cpu);
        if (handle == 0)
            throw new UffdException("start native worker", Errno.ENOMEM, "pthread_create failed", "");
        lock (LiveGate)
            Live.Add(this);
    }

    /// <summary>Waits until no unfinished worker accesses [start, start+length): call it after closing
    /// the uffd and before unmapping. False when one still runs after timeoutMs (blocked on a uffd that
    /// is still open): then the memory must stay mapped.</summary>
    internal static bool WaitForWorkersIn(ulong start, ulong length, int timeoutMs)
    {
        NativeWorker[] overlapping;
        lock (LiveGate)
            overlapping = [.. Live.Where(w => w.lowest < start + length && start < w.highest)];
        long deadline = Environment.TickCount64 + timeoutMs;
        foreach (var w in overlapping)
            if (!w.Join((int)Math.Max(0, deadline - Environment.TickCount64)))
                return false;
        return true;
    }

    public static NativeWorker Start(params AccessOp[] ops) => new(ops);

    /// <summary>The worker's kernel thread id (what THREAD_ID reports in a fault message).</summary>
    public int ThreadId => Shim.uffd_worker_tid(handle);

    public int Progress => Shim.uffd_worker_progress(handle);

    public bool IsFinished => results is not null;

    /// <summary>An eventfd that becomes readable when the worker has finished (owned by the worker,
    /// valid until Dispose): poll it together with the uffd, so a loop that serves faults until the
    /// worker is done wakes on either instead of polling the uffd on a timer.</summary>
    public int CompletionFd
    {
        get
        {
            ObjectDisposedException.ThrowIf(handle == 0, this);
            return Shim.uffd_worker_done_fd(handle);
        }
    }

    /// <summary>Waits up to timeoutMs; true when every op finished (results then available).</summary>
    public bool Join(int timeoutMs)
    {
        lock (gate)
        {
            if (results is not null || handle == 0)
                return true; // handle 0: freed by Dispose, which only frees a finished worker
            var r = new AccessResult[count];
            fixed (AccessResult* p = r)
                if (Shim.uffd_worker_join(handle, timeoutMs, p) != 0)
                    return false;
            results = r;
        }
        lock (LiveGate)
            Live.Remove(this);
        return true;
    }

    public IReadOnlyList<AccessResult> Results => results ?? throw new InvalidOperationException("the worker has not finished; Join first");

    /// <summary>Kernel scheduling state of the thread: 'S' while blocked in a user fault (§1.5), 'D'
    /// while an event-producing syscall waits, 'R' running.</summary>
    public char State
    {
        get
        {
            try
            {
                var stat = File.ReadAllText($"/proc/self/task/{ThreadId}/stat");
                int close = stat.LastIndexOf(')');
                return close > 0 && close + 2 < stat.Length ? stat[close + 2] : '?';
            }
            catch (IOException)
            {
                return 'X';
            }
        }
    }

    /// <summary>Delivers a signal to the worker thread (SIGUSR1 = 10 is counted by the worker and ignored). The worker
    /// blocks every asynchronous signal but SIGUSR1, so no other signal wakes an access asleep in its fault; another
    /// signal stays pending on the thread.</summary>
    public void Signal(int sig = 10) => UffdException.Check(Shim.uffd_worker_signal(handle, sig), "tgkill");

    public int SignalsReceived => Shim.uffd_worker_signal_count(handle);

    public void Dispose()
    {
        lock (gate)
        {
            if (handle == 0 || Shim.uffd_worker_free(handle) != 0)
                return; // still running (blocked in a fault); freeing would let it write into freed memory
            handle = 0;
        }
        lock (LiveGate)
            Live.Remove(this);
    }
}
