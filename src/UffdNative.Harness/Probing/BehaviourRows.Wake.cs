using System.Globalization;
using UffdNative.Access;
using UffdNative.Memory;
using UffdNative.Messages;
using UffdNative.Uapi;

namespace UffdNative.Harness.Probing;

/// <summary>
/// Rows about a thread blocked in a fault (reference docs/kernel-reference.md §1.5 "Waking a blocked thread"):
/// which ioctls wake it, what a signal does to it, and the SIGBUS a POISON marker raises. The blocked thread is
/// always a native worker; every step waits on what it can observe (the fault message, the waiter count of the
/// uffd's fdinfo, the thread's state in /proc/self/task/TID/stat), never on time.
/// </summary>
public static partial class BehaviourRows
{
    private static IEnumerable<RowSpec> WakeRows()
    {
        KernelVersion V(int a, int b) => new(a, b);
        return
        [
            new("unregister-wakes-missing", "§1.4 UNREGISTER, §1.5", "UNREGISTER of a range with a blocked MISSING reader", V(5, 10), "the reader is woken and re-faults without uffd: an ordinary fault, no second message", "stays blocked", UnregisterWakesMissing),
            new("unregister-keeps-wp-waiter", "§1.4 UNREGISTER, §1.5", "UNREGISTER of a range with a blocked WP writer", V(5, 10), "not woken (its wp bit is cleared): it stays blocked until a WAKE, then writes without a second message", "woken by UNREGISTER", UnregisterKeepsWpWaiter),
            new("copy-dontwake", "§1.4 COPY, §1.5", "COPY with MODE_DONTWAKE under a blocked reader", V(5, 10), "the page is mapped, the reader stays blocked; WAKE releases it and it reads the copy", "woken by the COPY", CopyDontWake),
            new("signal-refaults", "§1.5, §4.5", "a signal to a thread blocked in a user-mode fault", V(5, 10), "the handler runs and the access faults again: a second message for the same address", "other", SignalRefaults),
            new("signal-kernel-fault-retried", "§1.5, §4.5", "a signal to a thread blocked in a kernel-mode fault (read(2) into the page, full uffd)", V(5, 10), "not aborted: retried without sleeping while the signal is pending, a new message each time, until resolved; then the syscall completes and the handler runs", "aborted (EFAULT or a short read)", SignalKernelFault),
            new("poison-sigbus-code", "§1.4 POISON", "the SIGBUS si_code of an access to a POISON marker", V(6, 6), "BUS_MCEERR_AR (4) with CONFIG_MEMORY_FAILURE, BUS_ADRERR (2) without", "other", PoisonSigbusCode),
        ];
    }

    /// <summary>A worker blocked in a fault: its message was read and its thread sleeps in state S.</summary>
    private sealed record BlockedWorker(NativeWorker Worker, PageFault Fault);

    /// <summary>Starts a worker on op and waits until its fault message is read and the thread sleeps ('S').
    /// Null with the reason when it did not block (the worker is then joined or left to the scope's close).</summary>
    private static BlockedWorker? Block(LabScope s, Userfaultfd u, AccessOp op, out string why)
    {
        var w = new NativeWorker([op]);
        PageFault? f = null;
        if (u.Poll(Lab.WaitMs) != PollEvents.None)
            f = u.ReadTyped().OfType<PageFault>().FirstOrDefault();
        if (f is null)
        {
            why = w.Join(0) ? "the access did not fault" : "no fault message";
            s.Close(u);
            w.Join(Lab.WaitMs);
            return null;
        }
        // The message is queued before the thread goes to sleep (handle_userfault): wait for the sleep itself.
        long deadline = Environment.TickCount64 + Lab.WaitMs;
        while (w.State != 'S' && Environment.TickCount64 < deadline && !w.Join(0))
            Thread.Yield();
        if (w.State != 'S')
        {
            why = $"the faulting thread is in state {w.State}, not sleeping";
            s.Close(u);
            w.Join(Lab.WaitMs);
            return null;
        }
        why = "";
        return new BlockedWorker(w, f);
    }

    /// <summary>Messages that arrive within a short bounded poll (0 ms: what is queued now).</summary>
    private static List<PageFault> Queued(Userfaultfd u, int timeoutMs = 0) =>
        u.Poll(timeoutMs) == PollEvents.None ? [] : [.. u.ReadTyped().OfType<PageFault>()];

    /// <summary>Where the messages after a signal came, next to the first fault's: " at the same address flags 0x0"....</summary>
    private static string Refaults(List<PageFault> again, PageFault first) =>
        string.Concat(again.Select(f => $" at {(f.Address == first.Address ? "the same address" : $"0x{f.Address:x}")} flags 0x{(ulong)f.Flags:x}"));

    private static string Waiters(Userfaultfd u)
    {
        var i = u.ReadFdInfo();
        return $"fdinfo pending={i.Pending} total={i.Total}";
    }

    private static Finding UnregisterWakesMissing(Lab lab)
    {
        using var s = lab.NewScope();
        var (m, u) = s.RegisteredAnon(RegisterMode.Missing);
        if (Block(s, u, Op.Read64(m.Address), out var why) is not { } b)
            return Finding.Failed(why);
        string before = Waiters(u);
        u.Unregister(m.Address, P);
        bool woke = b.Worker.Join(Lab.WaitMs);
        var again = Queued(u);
        string ev = $"MISSING read blocked (flags 0x{(ulong)b.Fault.Flags:x}, {before}); UNREGISTER: worker {(woke ? "finished" : $"still {b.Worker.State}")}, {again.Count} new message(s), {Waiters(u)}";
        if (!woke)
            return Finding.Of(false, "stays blocked", ev);
        var r = b.Worker.Results[0];
        ev += $"; it read 0x{r.Value:x} ({Lab.Bits(lab.Pm(m.Address))})";
        b.Worker.Dispose();
        return again.Count == 0 && r.Ret == 0 && r.Value == 0
            ? Finding.Of(true, "woken, read 0, no second message", ev)
            : Finding.Failed($"woken, read 0x{r.Value:x}, {again.Count} new message(s)", ev);
    }

    private static Finding UnregisterKeepsWpWaiter(Lab lab)
    {
        if (lab.Unsupported(UffdFeatures.PageFaultFlagWp) is { } no)
            return no;
        if (SwitchDetectors.WpBitInvisible(lab) is { } invisible)
            return invisible;
        using var s = lab.NewScope();
        var (m, u) = s.WpRegisteredPage(1);
        if (Block(s, u, Op.Write64(m.Address, 0x5a), out var why) is not { } b)
            return Finding.Failed(why);
        u.Unregister(m.Address, P);
        // A wake-up inside UNREGISTER would have made the thread runnable before the ioctl returned: if it is
        // still asleep now, with its waiter still on the uffd, UNREGISTER did not wake it.
        char state = b.Worker.IsFinished ? 'F' : b.Worker.State;
        string after = Waiters(u);
        var e = lab.Pm(m.Address);
        string ev = $"WP write blocked (flags 0x{(ulong)b.Fault.Flags:x}); UNREGISTER: thread state {state}, {after}, page {Lab.Bits(e)}";
        if (b.Worker.Join(0))
        {
            b.Worker.Dispose();
            return Finding.Of(false, "woken by UNREGISTER", ev);
        }
        u.Wake(m.Address, P);
        bool done = b.Worker.Join(Lab.WaitMs);
        var again = Queued(u);
        ulong value = Accessor.ReadU64(m.Address);
        ev += $"; WAKE: worker {(done ? "finished" : "still blocked")}, {again.Count} new message(s), page reads 0x{value:x}";
        if (!done)
            return Finding.Failed("still blocked after WAKE", ev);
        b.Worker.Dispose();
        return state == 'S' && again.Count == 0 && value == 0x5a && !e.UffdWp
            ? Finding.Of(true, "stays blocked (wp cleared) until WAKE, then writes", ev)
            : Finding.Failed($"state {state}, wp={(e.UffdWp ? 1 : 0)}, {again.Count} new message(s), 0x{value:x}", ev);
    }

    private static Finding CopyDontWake(Lab lab)
    {
        using var s = lab.NewScope();
        var (m, u) = s.RegisteredAnon(RegisterMode.Missing);
        var src = s.Source(0x77);
        if (Block(s, u, Op.Read64(m.Address), out var why) is not { } b)
            return Finding.Failed(why);
        var c = u.Copy(m.Address, src.Address, P, CopyMode.DontWake);
        char state = b.Worker.Join(0) ? 'F' : b.Worker.State;
        var e = lab.Pm(m.Address);
        string ev = $"MISSING read blocked; COPY(DONTWAKE): {c.Status} {c.Field}; thread state {state}, {Waiters(u)}, page {Lab.Bits(e)}";
        if (state == 'F')
        {
            b.Worker.Dispose();
            return Finding.Of(false, "woken by the COPY", ev);
        }
        u.Wake(m.Address, P);
        bool done = b.Worker.Join(Lab.WaitMs);
        var again = Queued(u);
        ev += $"; WAKE: worker {(done ? $"read 0x{b.Worker.Results[0].Value:x}" : "still blocked")}, {again.Count} new message(s)";
        if (!done)
            return Finding.Failed("still blocked after WAKE", ev);
        ulong v = b.Worker.Results[0].Value;
        b.Worker.Dispose();
        return state == 'S' && e.Present && v == 0x77 && again.Count == 0
            ? Finding.Of(true, "mapped, still blocked; WAKE: reads the copy", ev)
            : Finding.Failed($"state {state}, present={(e.Present ? 1 : 0)}, read 0x{v:x}, {again.Count} new message(s)", ev);
    }

    private static Finding SignalRefaults(Lab lab)
    {
        using var s = lab.NewScope();
        var (m, u) = s.RegisteredAnon(RegisterMode.Missing);
        if (Block(s, u, Op.Read64(m.Address), out var why) is not { } b)
            return Finding.Failed(why);
        b.Worker.Signal();
        // The interrupted fault returns to user space, the handler runs, the load faults again: wait for that message.
        var again = Queued(u, Lab.WaitMs);
        int handled = b.Worker.SignalsReceived;
        string ev = $"MISSING read blocked (message at 0x{b.Fault.Address:x}); SIGUSR1: handler ran {handled} time(s), {again.Count} new message(s)" +
                    Refaults(again, b.Fault);
        if (again.Count > 0)
            u.ZeroPage(m.Address, P);
        bool done = b.Worker.Join(Lab.WaitMs);
        ev += $"; ZEROPAGE: worker {(done ? "finished" : "still blocked")}";
        if (!done)
            return Finding.Failed("still blocked after the second fault was resolved", ev);
        b.Worker.Dispose();
        return Finding.Either(handled == 1 && again.Count == 1 && again[0].Address == b.Fault.Address && again[0].Flags == b.Fault.Flags,
            "handler ran, one new message for the same address", $"handler {handled}, {again.Count} new message(s)", ev);
    }

    private static Finding SignalKernelFault(Lab lab)
    {
        using var s = lab.NewScope();
        var m = s.Anon(1);
        var u = s.FullUffd();
        if (u is null)
            return Finding.Undetermined("only user-mode-only uffds can be opened here", "a kernel-mode fault on one is EFAULT at once (§1.5)");
        u.Register(m.Address, P, RegisterMode.Missing);
        if (Block(s, u, Op.KernelWrite(m.Address, 8, 0x66), out var why) is not { } b)
            return Finding.Failed(why);
        b.Worker.Signal();
        // A kernel-mode fault does not return to user space on a signal that is not fatal: x86's fault handler
        // retries it (FAULT_FLAG_TRIED), which queues a new message; with the signal still pending the retry does
        // not sleep either. Count the new messages (3 at least: one read may return more than the count still
        // missing, as a slow guest's did), or see the syscall end.
        var again = new List<PageFault>();
        long until = Environment.TickCount64 + Lab.WaitMs;
        while (again.Count < 3 && !b.Worker.Join(0) && Environment.TickCount64 < until)
            again.AddRange(Queued(u, 10));
        bool ended = b.Worker.Join(0);
        int handledBefore = b.Worker.SignalsReceived;
        string ev = $"read(2) into a MISSING page blocked (flags 0x{(ulong)b.Fault.Flags:x}); SIGUSR1: {again.Count} new message(s)" +
                    Refaults(again, b.Fault) +
                    $", syscall {(ended ? "ended" : "still in progress")}, handler ran {handledBefore} time(s)";
        if (!ended)
            u.ZeroPage(m.Address, P);
        if (!b.Worker.Join(Lab.WaitMs))
            return Finding.Failed("still blocked after ZEROPAGE", ev);
        long ret = b.Worker.Results[0].Ret;
        int handled = b.Worker.SignalsReceived;
        b.Worker.Dispose();
        ev += $"; ZEROPAGE: read(2) returned {(ret < 0 ? Errno.Name((int)-ret) : ret.ToString(CultureInfo.InvariantCulture))}, handler ran {handled} time(s)";
        if (ended)
            return Finding.Of(false, ret < 0 ? $"aborted: {Errno.Name((int)-ret)}" : $"aborted: {ret} bytes", ev);
        return again.Count >= 3 && again.All(f => f.Address == b.Fault.Address) && handledBefore == 0 && ret == 8 && handled == 1
            ? Finding.Of(true, "retried over and over (a message each time) until resolved; read(2) completes, then the handler runs", ev)
            : Finding.Failed($"{again.Count} new message(s), read(2) {ret}, handler {handledBefore}/{handled}", ev);
    }

    /// <summary>Whether this kernel was built with CONFIG_MEMORY_FAILURE: its vm.memory_failure_* sysctls exist
    /// only then (mm/memory-failure.c registers them).</summary>
    internal static bool MemoryFailureConfigured => File.Exists("/proc/sys/vm/memory_failure_recovery");

    private static Finding PoisonSigbusCode(Lab lab)
    {
        if (lab.Unsupported(UffdFeatures.Poison) is { } no)
            return Finding.Undetermined($"no UFFDIO_POISON on this kernel: {no.Observed}", no.Evidence);
        using var s = lab.NewScope();
        var m = s.Anon(2);
        // Touch page 1 so the VMA has an anon_vma: fork copies the page tables (and the marker) only then.
        Accessor.Touch(m.PageAddress(1), P, write: true, value: 1);
        var u = s.Uffd(UffdFeatures.Poison);
        u.Register(m.Address, m.Length, RegisterMode.Missing);
        var p = u.Poison(m.Address, P);
        var child = s.Own(ForkedChild.Start(ChildOps.Read64(m.Address), ChildOps.Exit(0)));
        var r = child.WaitFor(0, Lab.WaitMs);
        child.Finish(Lab.WaitMs);
        bool mf = MemoryFailureConfigured;
        int expected = mf ? 4 : 2; // BUS_MCEERR_AR : BUS_ADRERR (arch/x86/mm/fault.c do_sigbus)
        string ev = $"POISON: {p.Status}; the fork child's read: sigbus={r.Sigbus} si_code={r.SiCode}; CONFIG_MEMORY_FAILURE {(mf ? "set" : "not set")} (/proc/sys/vm/memory_failure_recovery {(mf ? "exists" : "absent")}), so {(mf ? "BUS_MCEERR_AR (4)" : "BUS_ADRERR (2)")} expected";
        if (r.Sigbus == 0)
            return Finding.Failed("no SIGBUS", ev);
        return Finding.Either(r.SiCode == expected,
            $"si_code {r.SiCode} ({(expected == 4 ? "BUS_MCEERR_AR" : "BUS_ADRERR")})", $"si_code {r.SiCode}", ev);
    }
}
