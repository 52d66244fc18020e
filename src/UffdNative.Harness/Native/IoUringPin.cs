using UffdNative.Access;

namespace UffdNative.Harness.Native;

/// <summary>Which call of a pin failed: io_uring_setup (io_uring unavailable) or IORING_REGISTER_BUFFERS.</summary>
public enum PinStage { None = 0, Setup = 1, Register = 2 }

/// <summary>
/// A real long-term pin (native/harness/uffd_pin.c): [addr, addr+len) registered as an io_uring fixed
/// buffer, which pins it with FOLL_WRITE | FOLL_LONGTERM until <see cref="Dispose"/> unregisters it. The
/// pin faults every page in as a kernel-mode write first — on a write-protected page of a WP-registered
/// range that is a WP fault, and the calling thread blocks until a handler resolves it: never call it on
/// the thread that serves the uffd.
/// </summary>
public sealed class IoUringPin : IDisposable
{
    private int ring;

    private IoUringPin(int ring) => this.ring = ring;

    /// <summary>Pins the range: the pin, or null with -errno and the stage that failed.</summary>
    public static unsafe IoUringPin? TryPin(ulong addr, ulong len, out int errno, out PinStage stage)
    {
        int st;
        int r = HarnessNative.uffd_pin(addr, len, &st);
        stage = (PinStage)st;
        errno = r < 0 ? -r : 0;
        return r < 0 ? null : new IoUringPin(r);
    }

    /// <summary>Unregisters the buffer (unpin_user_pages) and closes the ring: 0 or -errno.</summary>
    public int Unpin()
    {
        int r = ring;
        ring = -1;
        return r < 0 ? 0 : HarnessNative.uffd_unpin(r);
    }

    public void Dispose() => Unpin();

    /// <summary>A fork child's step that pins [addr, addr+len) in the child (its own ring; Ret 0 or -errno,
    /// Value the failed stage).</summary>
    public static ChildOp ChildPin(ulong addr, ulong len) =>
        new() { Kind = HarnessAbi.ChildCall, Addr = addr, Len = len, Value = HarnessNative.uffd_child_fn_of(HarnessAbi.ChildFnPin) };

    /// <summary>A fork child's step that unregisters every ring the child pinned (Value: how many).</summary>
    public static ChildOp ChildUnpinAll() =>
        new() { Kind = HarnessAbi.ChildCall, Value = HarnessNative.uffd_child_fn_of(HarnessAbi.ChildFnUnpinAll) };
}
