using System.Globalization;
using UffdNative.Harness.Scenarios;

namespace UffdNative.Harness.Model;

/// <summary>An access left blocked in its fault (HoldOp), and what releases it: the rules of reference §1.5
/// "Waking a blocked thread", each a probe row (BehaviourRows.Wake.cs) run on every kernel since 5.10.</summary>
internal sealed class HeldAccessState
{
    public required MapState Map { get; init; }
    public required int Page { get; init; }
    public required bool Write { get; init; }
    public required ulong Tag { get; init; }
    public required bool Kernel { get; init; }
    /// <summary>The uffd whose queue the thread sleeps on (the one its latest message came from).</summary>
    public Ctx? Ctx { get; set; }
    public int Signals { get; set; }
    /// <summary>A kernel-mode fault with a signal pending: retried without sleeping (§1.5).</summary>
    public bool Retrying { get; set; }
}

internal sealed partial class ModelRun
{
    private HeldAccessState? heldAccess;
    /// <summary>While set, a fault that would become a message is held instead of resolved (UserFault).</summary>
    private bool holding;
    /// <summary>How many times each held message is recorded (0: none, a retry the op that started it has shown).</summary>
    private int holdRecord;
    private Ctx? heldOn;

    private string Hold(HoldOp op)
    {
        var h = new HeldAccessState { Map = M(op.M), Page = op.Page, Write = op.Write, Tag = op.Tag, Kernel = op.Mode == AccessMode.Kernel };
        return RunHeld(h, record: 1);
    }

    /// <summary>In hold mode (UserFault): the message is queued and read, the handler does nothing, the thread sleeps.</summary>
    private Outcome HoldFault(Ctx ctx, MapState m, int p, ulong flags)
    {
        heldOn = ctx;
        for (int i = 0; i < holdRecord; i++)
            msgs.Add($"{ctx.Name} PF 0x{flags:x} {m.Name}+{p} => held");
        return Outcome.Held;
    }

    /// <summary>Runs (again) the held access: it completes — the hold ends and its result is the state — or it
    /// faults and is held again ("asleep").</summary>
    private string RunHeld(HeldAccessState h, int record)
    {
        holding = true;
        holdRecord = record;
        Outcome o;
        try
        {
            o = Access(parent, h.Map, h.Page, h.Write, h.Tag, h.Kernel);
        }
        finally
        {
            holding = false;
        }
        if (o.Kind == OutcomeKind.Held)
        {
            h.Ctx = heldOn;
            heldAccess = h;
            return "asleep";
        }
        heldAccess = null;
        var text = AccessResultText(o, h.Kernel);
        return h.Signals > 0 ? $"{text} signals={h.Signals.ToString(CultureInfo.InvariantCulture)}" : text;
    }

    /// <summary>Whether op wakes the held thread, decided from what the op was given and (for ioctls) what it
    /// answered. A wake reaches the waiters queued on the ioctl's own uffd, in the range the ioctl covers.</summary>
    private Func<string, bool>? HeldWake(ScenarioOp op, HeldAccessState h)
    {
        bool Covers(string u, string m, int first, int count) =>
            h.Ctx is { } c && u == c.Name && m == h.Map.Name && h.Page >= first && h.Page < first + count;
        // §1.4: a fill wakes exactly the range it resolved (len = its progress), partial results included.
        bool Resolved(string result, int first)
        {
            if (result.StartsWith("ok", StringComparison.Ordinal))
                return true;
            int at = result.IndexOf("field=", StringComparison.Ordinal);
            return at >= 0 && long.TryParse(result[(at + 6)..].Split(' ')[0], CultureInfo.InvariantCulture, out long bytes)
                && bytes > 0 && h.Page < first + bytes / PageBytes;
        }
        switch (op)
        {
            case WakeOp w when Covers(w.U, w.M, w.First, w.Count):
                return r => r.StartsWith("ok", StringComparison.Ordinal);
            case UnregisterOp u when u.M == h.Map.Name && h.Page >= u.First && h.Page < u.First + u.Count:
            {
                // §1.4 UFFDIO_UNREGISTER "Wake-ups": userfaultfd_unregister calls wake_userfault(vma's ctx) only under
                // userfaultfd_missing(vma): a MISSING waiter is woken (it re-faults without uffd); a WP or MINOR
                // waiter of a VMA without MISSING sleeps on (probe rows unregister-wakes-missing, unregister-keeps-wp-waiter).
                var v = h.Map.VmaAt(h.Page);
                bool missing = v.Ctx is not null && v.Ctx == h.Ctx && (v.Has(RegisterMode.Missing) || Bug(ModelBug.UnregisterWakesEveryWaiter));
                return r => missing && r.StartsWith("ok", StringComparison.Ordinal);
            }
            case CloseOp c when h.Ctx is { } hc && c.U == hc.Name:
                return _ => true; // §1.5 close(): every waiter
            case CopyOp c when Covers(c.U, c.M, c.First, c.Count):
                // §1.5: COPY with MODE_DONTWAKE maps the page and leaves the reader asleep (probe row copy-dontwake).
                return r => (!c.DontWake || Bug(ModelBug.CopyIgnoresDontWake)) && Resolved(r, c.First);
            case ZeroPageOp z when Covers(z.U, z.M, z.First, z.Count):
                return r => Resolved(r, z.First);
            case ContinueOp c when Covers(c.U, c.M, c.First, c.Count):
                return r => Resolved(r, c.First);
            case PoisonOp p when Covers(p.U, p.M, p.First, p.Count):
                return r => Resolved(r, p.First);
            case MoveOp mv when Covers(mv.U, mv.M, mv.First, mv.Count):
                return r => Resolved(r, mv.First);
            case WriteProtectOp w when !w.Protect && !w.DontWake && Covers(w.U, w.M, w.First, w.Count):
                return r => r.StartsWith("ok", StringComparison.Ordinal);
            default:
                return null;
        }
    }

    /// <summary>What the held access does after an op (the bracketed state of the op's result).</summary>
    private string SettleHeld(ScenarioOp op, bool woken)
    {
        var h = heldAccess!;
        if (h.Retrying)
            // It goes round without sleeping: each retry sees the page tables as they are now (messages not shown:
            // how many arrive is timing).
            return RunHeld(h, record: 0) is var s && s == "asleep" ? "retrying" : s;
        if (op is SignalOp)
        {
            h.Signals++;
            if (!h.Kernel && Bug(ModelBug.SignalKeepsUserFaultAsleep))
                return "asleep";
            if (h.Kernel && Bug(ModelBug.SignalAbortsKernelFault))
            {
                heldAccess = null;
                return $"EFAULT signals={h.Signals.ToString(CultureInfo.InvariantCulture)}";
            }
            if (!h.Kernel)
                // §1.5, §4.5 (probe row signal-refaults): the interruptible sleep ends, the handler runs on the way
                // back to user space, the instruction faults again: one new message, the same address and flags.
                return RunHeld(h, record: 1);
            // §1.5 (probe row signal-kernel-fault-retried): x86's fault handler gives up a retried kernel-mode fault
            // only for a fatal signal; an ordinary one pending makes every retry's sleep end at once: a message
            // each time, no EINTR, until the page is resolved; the handler runs after the syscall returns.
            var k = RunHeld(h, record: HoldOp.RetryMessages);
            if (k != "asleep")
                return k;
            h.Retrying = true;
            return "retrying";
        }
        // A waiter that was not woken sleeps on, whatever the op did to the page (§1.5).
        return woken ? RunHeld(h, record: 1) : "asleep";
    }
}
