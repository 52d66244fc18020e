using Microsoft.Win32.SafeHandles;
using UffdNative.Interop;

namespace UffdNative;

/// <summary>Owns one file descriptor (a uffd, memfd, eventfd or pagemap fd) and closes it once.</summary>
public sealed class SafeFdHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public SafeFdHandle(int fd, bool ownsHandle = true) : base(ownsHandle) => SetHandle(fd);

    public int Fd => (int)handle;

    protected override bool ReleaseHandle() => Shim.uffd_close((int)handle) == 0;

    // fd 0 is a valid descriptor; only -1 means "none".
    public override bool IsInvalid => handle == -1;
}

/// <summary>An eventfd: the loop's stop channel.</summary>
public sealed class EventFd : IDisposable
{
    public SafeFdHandle Handle { get; }
    public int Fd => Handle.Fd;

    public EventFd(bool nonBlocking = true) =>
        Handle = new SafeFdHandle(UffdException.Check(Shim.uffd_eventfd(nonBlocking ? 1 : 0), "eventfd"));

    public void Signal() => UffdException.Check(Shim.uffd_eventfd_signal(Fd), "eventfd write");

    /// <summary>Resets the counter; returns how many signals were pending (0 if none).</summary>
    public int Drain()
    {
        int r = Shim.uffd_eventfd_drain(Fd);
        return r == -Errno.EAGAIN ? 0 : UffdException.Check(r, "eventfd read");
    }

    public void Dispose() => Handle.Dispose();
}
