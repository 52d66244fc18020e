using System.Runtime.InteropServices;

namespace UffdNative.Harness.Probing;

/// <summary>
/// Runs a check as if the process lacked CAP_SYS_PTRACE: on a dedicated thread that removes the
/// capability from its own effective set with capset(2). Linux credentials are per thread, so the
/// rest of the process keeps its privileges, and the thread ends afterwards. This lets a root probe
/// observe the unprivileged rules of reference §1.1 (syscall EPERM, user-mode-only OK, EVENT_FORK
/// EPERM) without changing anything on the host.
/// </summary>
public static unsafe partial class Unprivileged
{
    private const long SysCapget = 125, SysCapset = 126;
    private const uint CapabilityVersion3 = 0x20080522;

    [StructLayout(LayoutKind.Sequential)]
    private struct CapHeader
    {
        public uint Version;
        public int Pid;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct CapData
    {
        public uint Effective;
        public uint Permitted;
        public uint Inheritable;
    }

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall2(long number, void* a, void* b);

    /// <summary>Runs body on a thread without CAP_SYS_PTRACE in its effective set. Returns false
    /// (and does not run body) when the capability could not be dropped.</summary>
    public static bool TryRunWithoutPtrace(Action body, out string why)
    {
        string reason = "";
        bool ran = false;
        Exception? error = null;
        var t = new Thread(() =>
        {
            try
            {
                var hdr = new CapHeader { Version = CapabilityVersion3 };
                var data = stackalloc CapData[2];
                if (Syscall2(SysCapget, &hdr, data) < 0)
                {
                    reason = $"capget: errno {Marshal.GetLastPInvokeError()}";
                    return;
                }
                data[0].Effective &= ~(1u << HostFacts.CapSysPtrace);
                hdr = new CapHeader { Version = CapabilityVersion3 };
                if (Syscall2(SysCapset, &hdr, data) < 0)
                {
                    reason = $"capset: errno {Marshal.GetLastPInvokeError()}";
                    return;
                }
                ran = true;
                body();
            }
            catch (Exception e)
            {
                error = e;
            }
        }) { IsBackground = true, Name = "probe without CAP_SYS_PTRACE" };
        t.Start();
        if (!t.Join(Lab.WaitMs))
        {
            why = "the unprivileged check did not finish in time";
            return false;
        }
        if (error is not null)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw();
        why = reason;
        return ran;
    }
}
