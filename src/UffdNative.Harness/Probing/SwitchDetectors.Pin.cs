using UffdNative.Harness.Model;
using UffdNative.Harness.Native;
using UffdNative.Messages;

namespace UffdNative.Harness.Probing;

public static partial class SwitchDetectors
{
    // ---- pin-fault-waits: a long-term pin that faults on a uffd page waits for the handler ---------------------

    /// <summary>An untouched anonymous page registered MISSING on a uffd that sees kernel-mode faults, pinned as an
    /// io_uring fixed buffer on a thread of its own while this thread serves the uffd: where the pin may wait, its
    /// GUP fault queues a MISSING message and the pin completes after the ZEROPAGE; before, pin_user_pages under
    /// mmap_read_lock cannot retry, handle_userfault gives VM_FAULT_SIGBUS and the pin fails EFAULT with no message
    /// (kernel-reference §3.5). Not determined where io_uring is refused or only user-mode-only uffds open.</summary>
    public static Finding PinFaultWaits(Lab lab)
    {
        using var s = lab.NewScope();
        var u = s.FullUffd();
        if (u is null)
            return Finding.Undetermined("only user-mode-only uffds can be opened here: a pin's fault is kernel-mode");
        var m = s.Anon(1);
        u.Register(m.Address, P, RegisterMode.Missing);
        IoUringPin? pin = null;
        int err = 0;
        var stage = PinStage.None;
        var pinner = new Thread(() => pin = IoUringPin.TryPin(m.Address, P, out err, out stage)) { IsBackground = true, Name = "pin-probe" };
        pinner.Start();
        PageFault? fault = null;
        long deadline = Environment.TickCount64 + Lab.WaitMs;
        while (fault is null && !pinner.Join(0) && Environment.TickCount64 < deadline)
        {
            if (u.Poll(10) != PollEvents.None)
                fault = u.ReadTyped().OfType<PageFault>().FirstOrDefault();
        }
        if (fault is not null)
            u.ZeroPage(m.Address, P);
        if (!pinner.Join(Lab.WaitMs))
        {
            s.Close(u); // wakes the pin's fault; the pin then fails and the thread ends
            pinner.Join(Lab.WaitMs);
            pin?.Dispose();
            return Finding.Undetermined("the pin neither failed nor completed within the bound");
        }
        using (pin)
        {
            string ev = $"untouched anon page registered MISSING, pinned (IORING_REGISTER_BUFFERS) on another thread: "
                + (fault is null ? "no message" : $"MISSING message flags 0x{(ulong)fault.Flags:x}, resolved by ZEROPAGE")
                + (pin is not null ? "; pin ok" : $"; pin {(stage == PinStage.Setup ? "io_uring_setup" : "register")} {Errno.Name(err)}");
            if (pin is null && stage == PinStage.Setup)
                return Finding.Undetermined($"io_uring unavailable here (io_uring_setup: {Errno.Name(err)})", ev);
            if (fault is not null && pin is not null)
                return Finding.Of(true, "the pin waited for the handler, then pinned", ev);
            if (fault is null && pin is null && err == Errno.EFAULT)
                return Finding.Of(false, "the pin failed EFAULT at once, no message", ev);
            return Finding.Failed("neither behaviour", ev);
        }
    }
}
