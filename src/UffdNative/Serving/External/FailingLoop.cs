using System.Runtime.InteropServices;
using UffdNative.Interop;
using UffdNative.Uapi;

namespace UffdNative.Serving.External;

/// <summary>
/// The <see cref="WatchdogAction.Fail"/> loop: after the handler died, every fault of the uffd is
/// answered with an error the faulting thread sees, never with a hang. A missing or minor page is
/// poisoned (UFFDIO_POISON, 6.6+) and woken: the retried access gets SIGBUS with BUS_MCEERR_AR at the
/// address, and so does every later access to that page. A write-protect fault (or any fault when
/// POISON is not available) gets SIGBUS on its thread through tgkill, using the message's thread id
/// (UFFD_FEATURE_THREAD_ID). Events are read (their producers must not block) and ignored; a FORK
/// child's uffd is closed. Faults the dead handler read but never resolved are woken once at start, so
/// that they re-fault into this loop. The loop runs until disposed (or the owner is gone).
/// </summary>
internal sealed unsafe class FailingLoop : IDisposable
{
    private const int Sigbus = 7;
    private readonly Userfaultfd uffd;
    private readonly int ownerPid;
    private readonly EventFd stop = new();
    private readonly Thread thread;
    private long failed;
    private volatile bool ended;

    public long Failed => Interlocked.Read(ref failed);

    private FailingLoop(Userfaultfd uffd, int ownerPid)
    {
        this.uffd = uffd;
        this.ownerPid = ownerPid;
        thread = new Thread(Run) { IsBackground = true, Name = "uffd-fail-faults" };
    }

    public static FailingLoop Start(Userfaultfd uffd, int ownerPid, IReadOnlyList<(ulong Start, ulong Length)> ranges)
    {
        var l = new FailingLoop(uffd, ownerPid);
        l.thread.Start();
        foreach (var (s, len) in ranges)
        {
            var w = new UffdioRange(s, len);
            uffd.TryWake(ref w);
        }
        return l;
    }

    private void Run()
    {
        const int Max = 64;
        var msgs = (UffdMsg*)NativeMemory.AllocZeroed(Max * (nuint)sizeof(UffdMsg));
        var deferred = new List<(ulong Addr, uint Tid, bool Wp)>();
        try
        {
            while (!ended)
            {
                int mask;
                int n = Shim.uffd_loop_wait(uffd.Fd, stop.Fd, deferred.Count > 0 ? 1 : -1, msgs, Max, null, &mask);
                if (n < 0 || (n == 0 && (mask & ((int)PollEvents.Stop | (int)PollEvents.HangUp | (int)PollEvents.Error | LoopAbi.WaitEof)) != 0))
                    return;
                for (int i = 0; i < n; i++)
                {
                    ref var m = ref msgs[i];
                    if (m.Kind == UffdEventKind.PageFault)
                        deferred.Add((m.PagefaultAddress & ~(Memory.Mapping.PageSize - 1), m.PagefaultPtid, (m.PagefaultFlags & (ulong)PageFaultFlags.WriteProtect) != 0));
                    else if (m.Kind == UffdEventKind.Fork)
                        Shim.uffd_close((int)m.ForkUfd);
                }
                for (int i = deferred.Count - 1; i >= 0; i--)
                {
                    var (addr, tid, wp) = deferred[i];
                    int r = wp ? -Errno.EEXIST : Poison(addr);
                    if (r == -Errno.EAGAIN)
                        continue; // an event is unread: read it first, then retry
                    if (r == -Errno.ESRCH)
                        return; // the owner is gone: nothing left to fail
                    if (r < 0 && r != -Errno.EEXIST)
                        r = -Errno.EEXIST; // no POISON here: signal the thread instead
                    if (r == -Errno.EEXIST)
                    {
                        // The page is present (a WP fault, or resolved meanwhile): stop the thread itself.
                        if (tid != 0)
                            Shim.uffd_tgkill(ownerPid, (int)tid, Sigbus);
                    }
                    var w = new UffdioRange(addr, Memory.Mapping.PageSize);
                    uffd.TryWake(ref w);
                    Interlocked.Increment(ref failed);
                    deferred.RemoveAt(i);
                }
            }
        }
        finally
        {
            NativeMemory.Free(msgs);
        }
    }

    private int Poison(ulong addr)
    {
        var p = new UffdioPoison { Range = new UffdioRange(addr, Memory.Mapping.PageSize), Mode = (ulong)PoisonMode.DontWake };
        int r = uffd.TryPoison(ref p);
        return r == 0 || p.Updated > 0 ? 0 : r;
    }

    public void Dispose()
    {
        ended = true;
        if (!stop.Handle.IsClosed)
            stop.Signal();
        if (thread.IsAlive && Thread.CurrentThread != thread)
            thread.Join(5000);
        stop.Dispose();
    }
}
