using UffdNative.Access;
using UffdNative.Harness.Scenarios;
using UffdNative.Messages;
using NativeAccess = UffdNative.Access.Op;

namespace UffdNative.Harness.Conformance;

public sealed partial class KernelExecutor
{
    /// <summary>An access whose faults are held (<see cref="HoldOp"/>): its worker, and what the executor knows of it.</summary>
    private sealed class HeldAccess
    {
        public required NativeWorker Worker;
        public required bool Kernel;
        /// <summary>The uffd its latest fault message came on: the queue its waiter sleeps on.</summary>
        public UffdEntry? Uffd;
        public int SignalsSent;
        /// <summary>A kernel-mode fault with a signal pending: it goes round without sleeping (§1.5).</summary>
        public bool Retrying;
    }

    private sealed partial class Execution
    {
        private HeldAccess? heldAccess;

        /// <summary>Starts the access on a native worker and holds its faults: while an access is held the servers
        /// are not stepped at all (the validator lets nothing else fault or raise an event meanwhile); this thread
        /// reads the uffds itself, records each fault "=> held" and resolves nothing.</summary>
        private string Hold(HoldOp op, long deadline)
        {
            ulong addr = Addr(op.M, op.Page);
            bool kernel = op.Mode == AccessMode.Kernel;
            var access = kernel ? NativeAccess.KernelWrite(addr, 8, op.Tag) : op.Write ? NativeAccess.Write64(addr, op.Tag) : NativeAccess.Read64(addr);
            var w = new NativeWorker([access]);
            workers.Add(w); // joined by Abort (every uffd closed first: close wakes every waiter, §1.5)
            heldAccess = new HeldAccess { Worker = w, Kernel = kernel };
            return SettleHeld(deadline);
        }

        private string SignalHeld()
        {
            if (heldAccess is not { } h)
                return SignalOp.NothingHeld;
            h.Worker.Signal();
            h.SignalsSent++;
            return "ok";
        }

        /// <summary>
        /// Waits, on observations only, until the held access is in a state the model can name, and names it:
        /// <list type="bullet">
        /// <item>its result, when the worker finished (the hold ends);</item>
        /// <item>"asleep": every message is read, its waiter is still queued on the uffd of its latest message (fdinfo
        /// pending=0, total≥1) and the thread sleeps (state S). A wake-up unlinks the waiter inside the waking ioctl
        /// (userfaultfd_wake_function), so right after an op this tells "not woken" from "woken, not yet run";</item>
        /// <item>"retrying": with a signal pending and not yet handled the access cannot sleep (§1.5): the op that
        /// starts the retries records <see cref="HoldOp.RetryMessages"/> of its messages; a later op reads and drops them,
        /// and two of them after the op (at most one can be from a retry that began before it) show it still goes round.</item>
        /// </list>
        /// </summary>
        private string SettleHeld(long deadline)
        {
            var h = heldAccess!;
            bool wasRetrying = h.Retrying;
            int seen = 0;
            while (true)
            {
                seen += ReadHeldMessages(h, record: !wasRetrying, limit: wasRetrying ? int.MaxValue : HoldOp.RetryMessages - seen);
                if (h.Worker.Join(0))
                {
                    heldAccess = null;
                    var text = AccessText(h.Worker.Results[0], h.Kernel);
                    return h.SignalsSent > 0 ? $"{text} signals={h.Worker.SignalsReceived}" : text;
                }
                bool signalPending = h.Worker.SignalsReceived < h.SignalsSent;
                if (signalPending && seen >= (wasRetrying ? 2 : HoldOp.RetryMessages))
                {
                    h.Retrying = true;
                    return "retrying";
                }
                if (!signalPending && Asleep(h))
                {
                    h.Retrying = false;
                    return "asleep";
                }
                if (Environment.TickCount64 > deadline)
                    throw new TimeoutException();
                AnyReadable(5, h.Worker.CompletionFd);
            }
        }

        private static bool Asleep(HeldAccess h)
        {
            if (h.Uffd is not { Closed: false } u)
                return false;
            var info = u.Fd.ReadFdInfo();
            return info.Pending == 0 && info.Total >= 1 && h.Worker.State == 'S';
        }

        /// <summary>Reads what is queued on every live uffd (never through a server: nothing is resolved), at most
        /// <paramref name="limit"/> fault messages. Returns how many fault messages it read.</summary>
        private int ReadHeldMessages(HeldAccess h, bool record, int limit)
        {
            int n = 0;
            foreach (var u in Live.ToList())
            {
                while (n < limit && u.Fd.Poll(0) != PollEvents.None)
                {
                    var got = u.Fd.ReadTyped(1);
                    if (got.Count == 0)
                        break;
                    foreach (var m in got)
                    {
                        if (m is PageFault f)
                        {
                            n++;
                            h.Uffd = u;
                            if (record)
                                msgs.Add($"{u.Name} PF 0x{(ulong)f.Flags:x} {(Locate(f.Address) is { } l ? $"{l.Name}+{l.Page}" : $"0x{f.Address:x}")} => held");
                        }
                        else
                        {
                            // Nothing a held scenario may do raises an event; if one comes, it is shown, never lost.
                            msgs.Add($"{u.Name} event {m.GetType().Name}");
                        }
                    }
                }
            }
            return n;
        }
    }
}
