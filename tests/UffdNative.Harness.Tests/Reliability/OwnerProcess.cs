namespace UffdNative.Harness.Tests.Reliability;

/// <summary>
/// The native tool native/tools/uffd_owner.c as the faulting side in a process of its own: it opens a
/// uffd over its own anonymous memory and gives it to this process (the supervisor) over a Unix
/// socket, then touches its pages when told to. Killing it, OOM-killing it or stopping it with
/// SIGBUS never touches the test host.
/// </summary>
public sealed unsafe class OwnerProcess : IDisposable
{
    private readonly Process process;
    private readonly FrameChannel channel;
    private readonly List<string> lines;

    public int Pid { get; }
    public Userfaultfd Uffd { get; }
    public ulong Address { get; }
    public ulong Length { get; }
    /// <summary>The uffd's descriptor number in the owner (for /proc/PID/fdinfo).</summary>
    public int OwnerFd { get; }

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (lines)
                return [.. lines];
        }
    }

    public static string ToolPath()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var p = Path.Combine(dir.FullName, "native", "build", "uffd_owner");
            if (File.Exists(p))
                return p;
        }
        throw new FileNotFoundException("native/build/uffd_owner was not built (native/Makefile builds native/tools/*.c)");
    }

    private OwnerProcess(Process p, List<string> lines, FrameChannel channel, int pid, Userfaultfd uffd, ulong addr, ulong len, int ownerFd)
    {
        process = p;
        this.lines = lines;
        this.channel = channel;
        Pid = pid;
        Uffd = uffd;
        Address = addr;
        Length = len;
        OwnerFd = ownerFd;
    }

    /// <summary>Starts the tool (through /bin/sh -c when cgroupProcs is given: it first moves itself
    /// into that cgroup, then execs) and receives its uffd.</summary>
    /// <param name="handlerSocket">The handler to connect to from the owner itself (the handler serves
    /// only the process that connects): the connection comes back as <see cref="HandlerConnection"/>.</param>
    /// <summary>The owner's own connection to the handler (Start with handlerSocket), or null.</summary>
    public SafeFdHandle? HandlerConnection { get; private init; }

    public static OwnerProcess Start(long pages, string mode, string action, ulong seed, string? cgroupProcs = null, string? handlerSocket = null)
    {
        var sock = Soak.HandlerProcess.NewSocketPath("owner");
        int lfd = Shim.uffd_sock_listen(sock, 1);
        if (lfd < 0)
            throw new InvalidOperationException($"listen {sock}: {Errno.Name(-lfd)}");
        var tool = ToolPath();
        var psi = new ProcessStartInfo { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        string[] args = [sock, pages.ToString(System.Globalization.CultureInfo.InvariantCulture), mode, action, seed.ToString(System.Globalization.CultureInfo.InvariantCulture), .. handlerSocket is null ? Array.Empty<string>() : [handlerSocket]];
        if (cgroupProcs is null)
        {
            psi.FileName = tool;
            foreach (var a in args)
                psi.ArgumentList.Add(a);
        }
        else
        {
            psi.FileName = "/bin/sh";
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add("echo $$ > \"$0\" && exec \"$@\"");
            psi.ArgumentList.Add(cgroupProcs);
            psi.ArgumentList.Add(tool);
            foreach (var a in args)
                psi.ArgumentList.Add(a);
        }
        var p = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var collected = new List<string>();
        p.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
                lock (collected)
                    collected.Add(e.Data);
        };
        p.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
                lock (collected)
                    collected.Add("stderr: " + e.Data);
        };
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        int cfd = Shim.uffd_sock_accept(lfd, 30_000);
        Shim.uffd_close(lfd);
        Soak.HandlerProcess.RemoveSocketPath(sock); // the socket and its private directory
        if (cfd < 0)
        {
            p.Kill();
            throw new InvalidOperationException($"uffd_owner did not connect ({Errno.Name(-cfd)}): {string.Join(" | ", collected)}");
        }
        var buf = stackalloc ulong[3];
        int* fds = stackalloc int[Shim.SockMaxFds];
        int nfd;
        int n = Shim.uffd_sock_recv(cfd, buf, 24, fds, Shim.SockMaxFds, &nfd, 30_000);
        if (n != 24 || nfd != (handlerSocket is null ? 1 : 2))
        {
            p.Kill();
            throw new InvalidOperationException($"uffd_owner sent {n} bytes and {nfd} descriptors: {string.Join(" | ", collected)}");
        }
        var uffd = Userfaultfd.Adopt(fds[0], (UffdFeatures)buf[2]);
        R.Until(() => { lock (collected) return collected.Any(l => l.StartsWith("ready ", StringComparison.Ordinal)); }, "uffd_owner ready line");
        string ready;
        lock (collected)
            ready = collected.First(l => l.StartsWith("ready ", StringComparison.Ordinal));
        var parts = ready.Split(' ');
        var connection = handlerSocket is null ? null : new SafeFdHandle(fds[1]);
        return new OwnerProcess(p, collected, new FrameChannel(new SafeFdHandle(cfd)), int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture), uffd, buf[0], buf[1],
            int.Parse(parts[2], System.Globalization.CultureInfo.InvariantCulture)) { HandlerConnection = connection };
    }

    public HandoffRegion Region(string mode) => new() { BaseHostVirtAddr = Address, Size = Length, Memory = "anon", Modes = [mode] };

    /// <summary>Hands this owner's uffd to the handler it connected to, watched with OnFailure = Fail
    /// (the owner, another process, gets SIGBUS rather than a hang).</summary>
    public ExternalHandler ConnectFailing(string mode, List<PolicySpec> policies) => ExternalHandler.Connect(HandlerConnection!, Uffd, new ExternalHandlerOptions
    {
        Regions = [Region(mode)],
        Policies = policies,
        OwnerPid = Pid,
        OnFailure = WatchdogAction.Fail,
    });

    /// <summary><see cref="ConnectFailing"/>, then the owner touches its pages and this waits until the handler
    /// has read the first fault and holds it (read, unresolved: the handlers these tests start delay it).</summary>
    public ExternalHandler ConnectAndHoldFirstFault(string mode, List<PolicySpec> policies)
    {
        var session = ConnectFailing(mode, policies);
        try
        {
            Go();
            R.Until(() => FdInfo() is { Pending: 0, Total: 1 }, "the handler holds the owner's first fault");
            return session;
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>Lets the owner touch its pages.</summary>
    public void Go()
    {
        byte b = 1;
        Assert.Equal(0, Shim.uffd_sock_send(channel.Socket.Fd, &b, 1, null, 0));
    }

    /// <summary>fdinfo of the uffd as the owner holds it (root can read another process's fdinfo).</summary>
    public (long Pending, long Total) FdInfo()
    {
        long pending = -1, total = -1;
        try
        {
            foreach (var line in File.ReadLines($"/proc/{Pid}/fdinfo/{OwnerFd}"))
            {
                if (line.StartsWith("pending:", StringComparison.Ordinal))
                    pending = long.Parse(line[8..].Trim(), System.Globalization.CultureInfo.InvariantCulture);
                else if (line.StartsWith("total:", StringComparison.Ordinal))
                    total = long.Parse(line[6..].Trim(), System.Globalization.CultureInfo.InvariantCulture);
            }
        }
        catch (IOException)
        {
        }
        return (pending, total);
    }

    /// <summary>Waits for the exit: the exit code, -signal when killed, null on timeout.</summary>
    public int? WaitForExit(int timeoutMs)
    {
        if (!process.WaitForExit(timeoutMs))
            return null;
        process.WaitForExit();
        // .NET reports 128 + signal for a process killed by a signal.
        return process.ExitCode > 128 ? -(process.ExitCode - 128) : process.ExitCode;
    }

    public void Kill() => process.KillIfRunning();

    public void Dispose()
    {
        process.Reap();
        channel.Dispose();
        Uffd.Dispose();
        process.Dispose();
    }
}
