using System.Globalization;

namespace UffdNative.Tests;

/// <summary>An access worker asleep in a user-mode fault is woken by what a test or scenario sends it (SIGUSR1), never
/// by a process-directed signal the kernel happens to pick its thread for: the fault's wait is interruptible (reference
/// §1.5), so such a signal would re-run the access — after an UNREGISTER that cleared the wp bit, a blocked write then
/// completes (seen once in a guest's unregister-keeps-wp-waiter × anon cell).</summary>
public class WorkerSignalTests
{
    private static ulong Mask(int tid, string field) =>
        ulong.Parse(File.ReadAllLines($"/proc/self/task/{tid}/status").Single(l => l.StartsWith(field + ":", StringComparison.Ordinal))[(field.Length + 1)..].Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    private static ulong Bit(int sig) => 1UL << (sig - 1);

    private const int Sigint = 2, Sigtrap = 5, Sigbus = 7, Sigusr1 = 10, Sigsegv = 11, Sigterm = 15, Sigchld = 17, Sigwinch = 28, Sigrtmin = 34;

    [Fact]
    public void AWorkerBlockedInAFaultKeepsEveryAsynchronousSignalButSigusr1Pending()
    {
        using var r = Region.Anon(1, RegisterMode.Missing);
        Hard.Within(() =>
        {
            using var w = r.StartFaulting(Op.Read64(r.PageAt(0)), out _);
            int tid = w.ThreadId;
            ulong blocked = Mask(tid, "SigBlk");
            foreach (int sig in new[] { Sigint, Sigterm, Sigchld, Sigwinch, Sigrtmin })
                Assert.True((blocked & Bit(sig)) != 0, $"signal {sig} not blocked (SigBlk {blocked:x16})");
            foreach (int sig in new[] { Sigusr1, Sigbus, Sigsegv, Sigtrap })
                Assert.True((blocked & Bit(sig)) == 0, $"signal {sig} blocked (SigBlk {blocked:x16})");

            // SIGCHLD stays pending on the thread: it sleeps on in its fault, with no second message.
            w.Signal(Sigchld);
            Assert.True((Mask(tid, "SigPnd") & Bit(Sigchld)) != 0, "SIGCHLD was delivered to the worker");
            Assert.Equal('S', w.State);
            Assert.True(r.Uffd.ReadFdInfo() is { Pending: 0, Total: 1 }, $"{r.Uffd.ReadFdInfo()}");

            // SIGUSR1 wakes it: counted, and the access faults again (a new message for the same page).
            w.Signal();
            Observe.Until(() => w.SignalsReceived == 1, "SIGUSR1 handled");
            var again = Assert.IsType<PageFault>(Assert.Single(r.Uffd.WaitMessages(5000)));
            Assert.Equal(r.PageAt(0), again.Address);
            Assert.Equal(FillStatus.Complete, r.Uffd.ZeroPage(r.PageAt(0), Region.Page).Status);
            Assert.True(w.Join(5000));
            Assert.Equal(0UL, w.Results[0].Value);
        }, r.Uffd);
    }
}
