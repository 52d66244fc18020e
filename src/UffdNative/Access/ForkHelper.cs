using UffdNative.Interop;

namespace UffdNative.Access;

/// <summary>Builders for the fork helper's child ops (native/uffd_fork.c).</summary>
public static class ChildOps
{
    public static ChildOp Read64(ulong addr) => new() { Kind = (int)ChildOpKind.Read64, Addr = addr };
    public static ChildOp Write64(ulong addr, ulong value) => new() { Kind = (int)ChildOpKind.Write64, Addr = addr, Value = value };
    public static ChildOp PageMap(ulong addr) => new() { Kind = (int)ChildOpKind.PageMap, Addr = addr };
    public static ChildOp Verify(ulong addr, ulong len, ulong seed) => new() { Kind = (int)ChildOpKind.Verify, Addr = addr, Len = len, Value = seed };
    public static ChildOp Fill(ulong addr, ulong len, ulong seed) => new() { Kind = (int)ChildOpKind.Fill, Addr = addr, Len = len, Value = seed };
    public static ChildOp WaitParent() => new() { Kind = (int)ChildOpKind.WaitParent };
    public static ChildOp UffdOpen(int flags, UffdFeatures features) => new() { Kind = (int)ChildOpKind.UffdOpen, Arg = flags, Value = (ulong)features };
    public static ChildOp MmapAnon(ulong len) => new() { Kind = (int)ChildOpKind.MmapAnon, Len = len };
    public static ChildOp MmapFill(ulong len, ulong seed) => new() { Kind = (int)ChildOpKind.MmapFill, Len = len, Value = seed };
    public static ChildOp Register(RegisterMode mode) => new() { Kind = (int)ChildOpKind.Register, Arg = (int)mode };
    public static ChildOp SendUffd() => new() { Kind = (int)ChildOpKind.SendUffd };
    public static ChildOp TouchWrite(ulong addr, ulong len, ulong value, int stride = 4096) => new() { Kind = (int)ChildOpKind.TouchWrite, Addr = addr, Len = len, Value = value, Arg = stride };
    public static ChildOp Exit(int code) => new() { Kind = (int)ChildOpKind.Exit, Arg = code };
}

/// <summary>
/// A forked child that runs only native, async-signal-safe code (the ops) and reports each result
/// through a pipe. .NET code never runs in a forked child. SIGBUS in the child is caught and
/// reported per op (FEATURE_SIGBUS, POISON). With EVENT_FORK registered, <see cref="Start"/> blocks
/// until the FORK message is read, so never call it on the thread that reads the uffd.
/// </summary>
public sealed unsafe class ForkedChild : IDisposable
{
    private nint handle;
    public int Pid { get; }
    private readonly List<ChildResult> results = [];

    private ForkedChild(nint h)
    {
        handle = h;
        Pid = Shim.uffd_fork_pid(h);
    }

    public static ForkedChild Start(params ChildOp[] ops)
    {
        nint h;
        int err;
        fixed (ChildOp* p = ops)
            h = Shim.uffd_fork_start(p, ops.Length, out err);
        if (h == 0)
            throw new UffdException("fork", -err, "", "");
        return new ForkedChild(h);
    }

    /// <summary>Results received so far, in op order.</summary>
    public IReadOnlyList<ChildResult> Results => results;

    /// <summary>Waits for the next result: true with one, false when the child finished.</summary>
    public bool Next(int timeoutMs, out ChildResult result)
    {
        ChildResult r;
        int rc = Shim.uffd_fork_next(handle, timeoutMs, &r);
        result = r;
        if (rc == 1)
        {
            results.Add(r);
            return true;
        }
        if (rc == 0)
            return false;
        throw new UffdException("fork helper: read result", -rc, rc == -Errno.ETIMEDOUT ? $"no result from child {Pid} within {timeoutMs} ms" : "", "");
    }

    /// <summary>Waits until the result of op index (or any later one) arrived.</summary>
    public ChildResult WaitFor(int index, int timeoutMs)
    {
        var deadline = Environment.TickCount64 + timeoutMs;
        while (true)
        {
            foreach (var r in results)
                if (r.Index == index)
                    return r;
            int left = (int)Math.Max(0, deadline - Environment.TickCount64);
            if (!Next(left, out _))
                throw new UffdException("fork helper", Errno.ECHILD, $"child {Pid} finished without a result for op {index}", "");
        }
    }

    /// <summary>Receives the uffd a SendUffd op sent, with the address of the child's last mapping.</summary>
    public (int Fd, ulong Address) ReceiveUffd(int timeoutMs)
    {
        int fd = Shim.uffd_fork_recv_fd(handle, timeoutMs, out var addr);
        UffdException.Check(fd, "fork helper: receive uffd");
        return (fd, addr);
    }

    /// <summary>Lets a child parked in WaitParent continue.</summary>
    public void Release() => UffdException.Check(Shim.uffd_fork_release(handle), "fork helper: release");

    /// <summary>Collects every remaining result and waits for the exit (killing the child after the
    /// timeout). Returns the exit code, or -1 when it was killed by a signal.</summary>
    public int Finish(int timeoutMs)
    {
        var deadline = Environment.TickCount64 + timeoutMs;
        try
        {
            while (Next((int)Math.Max(0, deadline - Environment.TickCount64), out _)) { }
        }
        catch (UffdException e) when (e.Errno == Errno.ETIMEDOUT) { }
        int rc = Shim.uffd_fork_finish(handle, (int)Math.Max(0, deadline - Environment.TickCount64), out int status);
        handle = 0;
        if (rc == -Errno.ETIMEDOUT)
            throw new UffdException("fork helper", Errno.ETIMEDOUT, $"child {Pid} did not exit within {timeoutMs} ms and was killed", "");
        UffdException.Check(rc, "waitpid");
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : -1;
    }

    public void Dispose()
    {
        if (handle != 0)
        {
            Shim.uffd_fork_finish(handle, 2000, out _);
            handle = 0;
        }
    }
}
