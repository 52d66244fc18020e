using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;

namespace UffdNative.Tests.Serving;

/// <summary>The loop's errno rules, events, stopping and failure behaviour, on the real kernel.
/// Every wait is on an observation (messages, fdinfo pending, thread state, counters).</summary>
public class ServerTests
{
    private const ulong Seed = 0xfeed;

    [Fact]
    public void ConcurrentFaultsOnAdjacentPagesAreCoalescedIntoOneRun()
    {
        using var r = Region.Anon(16, RegisterMode.Missing);
        using var source = new PatternPages(r.Len, Seed);
        Hard.Within(() =>
        {
            var workers = S.PendingReaders(r, 8);
            using var server = S.Serve(r, new MissingCopy(source));
            S.JoinAndDispose(workers);
            S.Until(() => server.Statistics.Runs >= 1, "resolved");
            var st = server.Statistics;
            Assert.Equal(8UL, st.MissingFaults);
            Assert.Equal(1UL, st.Batches);
            Assert.Equal(1UL, st.Runs);           // one run of 8 contiguous pages ...
            Assert.Equal(1UL, st.ResolveIoctls);  // ... one COPY that also woke all 8 threads
            Assert.True(server.Stop());
            Assert.Equal(-1, S.Verify(r.Addr, 8, VerifyBase.Pattern, Seed));
        }, r);
    }

    [Fact]
    public void ARunNeedingSeveralIoctlsUsesDontWakeAndOneWake()
    {
        using var r = Region.Anon(16, RegisterMode.Missing);
        // A staged source of 2 pages: a run of 8 faulting pages takes 4 COPYs. The first wakes its
        // pages, the other 3 use DONTWAKE, and the run is woken once at the end.
        using var source = PageSource.FromDelegate((offset, dest) => Access.Accessor.PatternFill(dest, Seed, offset / 8), r.Len, stagingPages: 2);
        Hard.Within(() =>
        {
            var workers = S.PendingReaders(r, 8, first: 4);
            using var server = S.Serve(r, new MissingCopy(source));
            S.JoinAndDispose(workers);
            Assert.True(server.Stop());
            var st = server.Statistics;
            Assert.Equal(1UL, st.Runs);
            Assert.Equal(4UL, st.ResolveIoctls);
            Assert.Equal(1UL, st.WakeIoctls);
            Assert.Equal(8UL, st.PagesResolved);
            for (int i = 4; i < 12; i++)
                Assert.Equal(Shim.uffd_pattern_word(Seed, (ulong)i * 512), Accessor.ReadU64(r.PageAt(i)));
        }, r);
    }

    [Fact]
    public void TwoThreadsOnOnePageAreResolvedByOneIoctl()
    {
        using var r = Region.Anon(4, RegisterMode.Missing);
        using var source = new PatternPages(r.Len, Seed);
        Hard.Within(() =>
        {
            using var a = S.ReadPages(r, 2, 1);
            using var b = S.ReadPages(r, 2, 1);
            S.Until(() => r.Uffd.ReadFdInfo().Pending == 2, "2 faults pending on one page");
            using var server = S.Serve(r, new MissingCopy(source));
            S.JoinAll(a, b);
            Assert.True(server.Stop());
            var st = server.Statistics;
            Assert.Equal(2UL, st.MissingFaults);
            Assert.Equal(1UL, st.ResolveIoctls);
            Assert.Equal(0UL, st.Eexist);
        }, r);
    }

    [Fact]
    public void PageResolvedByAnotherPathFirstGivesEexistAndIsWokenAnyway()
    {
        using var r = Region.Shmem(4, RegisterMode.Missing, UffdFeatures.MissingShmem);
        const ulong other = 0x0123456789abcdef;
        // The page source writes the page into the file before the COPY: the page cache then has it,
        // so UFFDIO_COPY answers EEXIST (another path won) and the loop must still wake the thread.
        using var source = PageSource.FromDelegate((offset, dest) =>
        {
            r.File!.WriteU64((long)offset, other);
            dest.Clear();
        }, r.Len);
        using var server = S.Serve(r, new MissingCopy(source));
        Hard.Within(() =>
        {
            using var w = new NativeWorker([Op.Read64(r.PageAt(1))]);
            S.JoinAll(w);
            Assert.Equal(other, w.Results[0].Value);
            Assert.True(server.Stop());
            var st = server.Statistics;
            Assert.Equal(1UL, st.Eexist);
            Assert.Equal(1UL, st.WakeIoctls);
        }, server, r);
    }

    [Fact]
    public void RemovePendingWhileResolvingIsEagainThenRetriedWithoutDeadlock()
    {
        using var r = Region.Anon(8, RegisterMode.Missing, UffdFeatures.EventRemove);
        using var source = new PatternPages(r.Len, Seed);
        Hard.Within(() =>
        {
            using var faulter = S.ReadPages(r, 0, 1);
            S.Until(() => r.Uffd.ReadFdInfo().Pending == 1, "the fault is pending");
            // MADV_DONTNEED on page 5 produces a REMOVE event and blocks until it is read; while it is
            // unread every resolving ioctl answers EAGAIN (mmap_changing, reference §1.6).
            int tid = 0;
            var remover = new Thread(() =>
            {
                Volatile.Write(ref tid, Shim.uffd_gettid());
                r.Map.Advise(Memory.Advice.DontNeed, 5 * S.Page, S.Page);
            }) { IsBackground = true };
            remover.Start();
            S.Until(() => Volatile.Read(ref tid) != 0 && ThreadState(Volatile.Read(ref tid)) == 'D', "madvise blocked on the REMOVE event");
            // One message per read: the fault is read and resolved before the REMOVE event.
            using var server = S.Serve(r, new FaultServerOptions { Policies = [new MissingCopy(source)], MaxMessagesPerRead = 1 });
            S.JoinAll(faulter);
            Assert.True(remover.Join(10_000), "madvise still blocked");
            var st = server.Statistics;
            Assert.True(st.Eagain >= 1, $"expected an EAGAIN, got {st}");
            Assert.Equal(1UL, st.RemoveEvents);
            // The removed page now reads as zero, not as the source (its content was discarded).
            using var reader = S.ReadPages(r, 4, 2);
            S.JoinAll(reader);
            Assert.True(server.Stop());
            Assert.Equal(1UL, server.Statistics.ZeroPages);
            Assert.Equal(-1, S.Verify(r.PageAt(5), 1, VerifyBase.Zero, 0));
            Assert.Equal(-1, S.Verify(r.Addr, 1, VerifyBase.Pattern, Seed));
        }, r);
    }

    private static char ThreadState(int tid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/self/task/{tid}/stat");
            int close = stat.LastIndexOf(')');
            return stat[close + 2];
        }
        catch (IOException)
        {
            return 'X';
        }
    }

    [Fact]
    public void OwnerExitEndsTheLoopCleanly()
    {
        Hard.Within(() =>
        {
            using var child = ForkedChild.Start(
                ChildOps.UffdOpen(Uffd.OCloexec | Uffd.ONonblock, UffdFeatures.None),
                ChildOps.MmapAnon(16 * S.Page),
                ChildOps.Register(RegisterMode.Missing),
                ChildOps.SendUffd(),
                ChildOps.WaitParent(),
                ChildOps.Exit(0));
            var (fd, addr) = child.ReceiveUffd(10_000);
            using var uffd = Userfaultfd.Adopt(fd, UffdFeatures.None);
            using var server = new FaultServer(uffd, new FaultServerOptions { Policies = [new MissingZero()], Ranges = [new ServedRange(addr, 16 * S.Page)], OwnerPid = child.Pid });
            server.Start();
            S.Until(() => server.Statistics.Running, "the loop runs");
            child.Release();
            Assert.Equal(0, child.Finish(10_000));
            var exit = server.Completion.Wait(10_000) ? server.Exit : null;
            Assert.NotNull(exit);
            Assert.Equal(FaultServerExitReason.OwnerGone, exit!.Reason);
            Assert.True(uffd.IsDisposed);
        });
    }

    [Fact]
    public void OwnerKilledWithAFaultInFlightEndsTheChildLoopWithEsrch()
    {
        using var r = Region.Anon(8, RegisterMode.Missing, UffdFeatures.EventFork);
        using var source = new GatedSource(r.Len);
        using var server = S.Serve(r, new FaultServerOptions { Policies = [new MissingCopy(source)], OnFork = ForkBehavior.Serve });
        Hard.Within(() =>
        {
            // fork() returns only once the loop has read the FORK event (reference §3.5).
            using var child = ForkedChild.Start(ChildOps.Read64(r.PageAt(3)));
            S.Until(() => server.Children.Count == 1, "a child server");
            var childServer = server.Children[0];
            Assert.True(source.Entered.Wait(10_000), "the child's fault reached the child server");
            Assert.Equal(0, Tmds.Linux.LibC.kill(child.Pid, 9));
            Assert.Equal(-1, child.Finish(10_000)); // killed
            source.Release.Set();
            Assert.True(childServer.Completion.Wait(10_000));
            Assert.Equal(FaultServerExitReason.OwnerGone, childServer.Exit!.Reason);
            Assert.Equal(Errno.ESRCH, childServer.Exit.Errno);
            Assert.True(server.IsRunning);
            Assert.Equal(1UL, server.Statistics.ForkEvents);
        }, server, r);
    }

    [Fact]
    public void ForkChildIsServedWithTheSameContent()
    {
        using var r = Region.Anon(8, RegisterMode.Missing, UffdFeatures.EventFork);
        using var source = new PatternPages(r.Len, Seed);
        using var server = S.Serve(r, new FaultServerOptions { Policies = [new MissingCopy(source)], OnFork = ForkBehavior.Serve });
        Hard.Within(() =>
        {
            using var child = ForkedChild.Start(ChildOps.Verify(r.Addr, r.Len, Seed));
            Assert.Equal(0, child.Finish(10_000));
            Assert.Equal(0, child.Results.Single().Ret);
            Assert.Equal(8UL, server.Children.Single().Statistics.MissingFaults);
        }, server, r);
    }

    [Fact]
    public void ForkChildUffdIsClosedByDefault()
    {
        using var r = Region.Anon(8, RegisterMode.Missing, UffdFeatures.EventFork);
        using var source = new PatternPages(r.Len, Seed);
        using var server = S.Serve(r, new MissingCopy(source));
        Hard.Within(() =>
        {
            // The child's copy of the range is unregistered once its uffd is closed: it reads zero.
            using var child = ForkedChild.Start(ChildOps.Read64(r.PageAt(2)));
            Assert.Equal(0, child.Finish(10_000));
            Assert.Equal(0UL, child.Results.Single().Value);
            Assert.Equal(1UL, server.Statistics.ForkEvents);
            Assert.Empty(server.Children);
        }, server, r);
    }

    [Fact]
    public void RemapMovesTheServedRangeAndUnmapForgetsIt()
    {
        using var r = Region.Anon(8, RegisterMode.Missing, UffdFeatures.EventRemap | UffdFeatures.EventUnmap);
        using var source = new PatternPages(r.Len, Seed);
        using var server = S.Serve(r, new MissingCopy(source));
        Hard.Within(() =>
        {
            var reservation = Memory.Mapping.Reserve(r.Len);
            ulong to = reservation.Address;
            Assert.Equal(0, r.Map.TryRemap(r.Len, reservation)); // blocks until the loop reads REMAP
            // mremap returns once the event is read; the loop applies it right after.
            S.Until(() => server.Ranges is [var moved] && moved.Start == to, "the range moved");
            using var w = S.ReadPages(r, 0, 8);
            S.JoinAll(w);
            Assert.Equal(-1, S.Verify(to, 8, VerifyBase.Pattern, Seed)); // moved memory keeps its source
            Assert.Equal(0, r.Map.Unmap()); // blocks until the loop reads UNMAP
            S.Until(() => server.Ranges.Count == 0, "the range forgotten");
            var st = server.Statistics;
            Assert.Equal(1UL, st.RemapEvents);
            Assert.True(st.UnmapEvents >= 1); // mremap(MREMAP_FIXED) may report one for the range it replaces
        }, server, r);
    }

    [Fact]
    public void StoppingWithFaultsOutstandingLeavesNoThreadBlocked()
    {
        using var r = Region.Anon(16, RegisterMode.Missing);
        using var source = new GatedSource(r.Len, Seed);
        Hard.Within(() =>
        {
            var workers = S.PendingReaders(r, 6, stride: 2);
            using var server = S.Serve(r, new FaultServerOptions { Policies = [new MissingCopy(source)], MaxMessagesPerRead = 1 });
            Assert.True(source.Entered.Wait(10_000));
            var stopper = Task.Run(() => server.Stop());
            source.Release.Set();
            Assert.True(stopper.Wait(10_000) && stopper.Result);
            Assert.Equal(FaultServerExitReason.Stopped, server.Exit!.Reason);
            S.JoinAndDispose(workers); // served during the stop, or released by the close
            Assert.True(r.Uffd.IsDisposed);
        }, r);
    }

    [Fact]
    public void StopWithoutClosingServesWhatIsPending()
    {
        using var r = Region.Anon(16, RegisterMode.Missing);
        using var source = new PatternPages(r.Len, Seed);
        Hard.Within(() =>
        {
            var workers = S.PendingReaders(r, 4, stride: 3);
            using var server = S.Server(r, new FaultServerOptions { Policies = [new MissingCopy(source)], CloseUffdOnStop = false });
            Assert.True(server.Stop()); // requested before the loop even started
            Assert.False(r.Uffd.IsDisposed);
            server.Start();
            Assert.True(server.Completion.Wait(10_000));
            S.JoinAndDispose(workers);
            Assert.Equal(4UL, server.Statistics.MissingFaults);
            Assert.False(r.Uffd.IsDisposed);
        }, r);
    }

    [Fact]
    public void APolicyThatThrowsClosesTheUffdAndReleasesEveryFaultingThread()
    {
        using var r = Region.Anon(16, RegisterMode.Missing);
        using var source = PageSource.FromDelegate((offset, dest) => throw new InvalidOperationException("backing store unavailable"), r.Len);
        Hard.Within(() =>
        {
            var workers = S.PendingReaders(r, 5, stride: 3);
            using var server = S.Serve(r, new MissingCopy(source));
            Assert.True(server.Completion.Wait(10_000));
            var exit = server.Exit!;
            Assert.Equal(FaultServerExitReason.Error, exit.Reason);
            Assert.Equal(LoopOperation.Policy, exit.Operation);
            Assert.IsType<InvalidOperationException>(exit.Exception);
            Assert.Contains("backing store unavailable", exit.Message);
            Assert.True(r.Uffd.IsDisposed);
            S.JoinAll(workers); // the close woke them; the pages resolved normally (zero)
            Assert.All(workers, w => Assert.Equal(0UL, w.Results[0].Value));
            foreach (var w in workers)
                w.Dispose();
        }, r);
    }

    [Fact]
    public void AFaultWithoutAPolicyIsReportedAndReleased()
    {
        using var r = Region.Anon(4, RegisterMode.Missing);
        using var server = S.Serve(r, new WpUnprotect());
        Hard.Within(() =>
        {
            using var w = S.ReadPages(r, 1, 1);
            Assert.True(server.Completion.Wait(10_000));
            Assert.Equal(LoopOperation.NoPolicy, server.Exit!.Operation);
            S.JoinAll(w);
        }, r);
    }

    [Fact]
    public void ABlockingUffdIsRefused()
    {
        // poll() on a blocking uffd always reports POLLERR (reference §1.5): a loop on it would spin.
        using var uffd = Userfaultfd.Open(new UffdOpenOptions { NonBlocking = false });
        var e = Assert.Throws<ArgumentException>(() => new FaultServer(uffd, new FaultServerOptions { Policies = [new MissingZero()] }));
        Assert.Contains("non-blocking", e.Message);
    }

    [Fact]
    public void RangesTrackedWhileRunningAreServedFromTheirSourceOffset()
    {
        using var r = Region.Anon(8, RegisterMode.Missing);
        using var source = new PatternPages(16 * S.Page, Seed);
        // Start with the first half only; the second half is added while running, at source offset 8 pages.
        using var server = S.Serve(r, new FaultServerOptions { Policies = [new MissingCopy(source)], Ranges = [new ServedRange(r.Addr, 4 * S.Page)] });
        Hard.Within(() =>
        {
            server.Track(new ServedRange(r.PageAt(4), 4 * S.Page, sourceOffset: 8 * S.Page));
            using (var w = S.ReadPages(r, 0, 8))
                S.JoinAll(w);
            for (int i = 0; i < 8; i++)
            {
                ulong srcPage = (ulong)(i < 4 ? i : i + 4);
                Assert.Equal(Shim.uffd_pattern_word(Seed, srcPage * 512 + 7), Accessor.ReadU64(r.PageAt(i) + 56));
            }
        }, server, r);
    }

    [Fact]
    public void GarbageCollectionsCompleteWhileFaultsAreOutstanding()
    {
        using var r = Region.Anon(8, RegisterMode.Missing);
        using var source = new GatedSource(r.Len);
        using var server = S.Serve(r, new MissingCopy(source));
        Hard.Within(() =>
        {
            var workers = Enumerable.Range(0, 3).Select(i => S.ReadPages(r, i, 1)).ToArray();
            Assert.True(source.Entered.Wait(10_000));
            for (int i = 0; i < 3; i++)
                GC.Collect(2, GCCollectionMode.Forced, blocking: true);
            source.Release.Set();
            S.JoinAndDispose(workers);
        }, server, r);
    }

    [Fact]
    public void TheLoopAllocatesNothingPerFault()
    {
        const long pages = 2048;
        using var r = Region.Shmem(pages, RegisterMode.None, PolicyTests.Wp);
        PolicyTests.PrefillAndProtect(r);
        using var server = S.Serve(r, new FaultServerOptions { Policies = [new WpUnprotect()], TrackAllocations = true });
        Hard.Within(() =>
        {
            // Warm up: JIT and tiering of the whole path happen during the first faults.
            using (var w = S.WritePages(r, 0, 64, 1))
                S.JoinAll(w);
            S.Until(() => server.LoopAllocatedBytes >= 0 && server.Statistics.Runs == 64, "warm-up served");
            long before = server.LoopAllocatedBytes;
            using (var w = S.WritePages(r, 64, pages - 64, 1))
                S.JoinAll(w);
            S.Until(() => server.Statistics.Runs == (ulong)pages, "all served");
            // The sample after the last batch may lag one batch behind: stop, which samples nothing
            // more, and compare the last sample with the one after the warm-up.
            Assert.True(server.Stop());
            long after = server.LoopAllocatedBytes;
            Assert.Equal((ulong)pages, server.Statistics.WriteProtectFaults);
            Assert.Equal(before, after);
        }, server, r);
    }

    [Fact]
    public void StatisticsAreReadableWhileRunningAndDebugMessagesAreLogged()
    {
        using var r = Region.Anon(8, RegisterMode.Missing);
        var log = new ListLogger();
        using var server = S.Serve(r, new FaultServerOptions { Policies = [new MissingZero()], Logger = log });
        Hard.Within(() =>
        {
            using (var w = S.ReadPages(r, 0, 4))
                S.JoinAll(w);
            S.Until(() => server.Statistics.ServiceTime.Count == 4, "4 faults served");
            var st = server.Statistics;
            Assert.True(st.Running);
            Assert.Equal(4UL, st.ServiceTime.Count);
            Assert.True(st.ServiceTime.Percentile(0.5) > 0);
            Assert.True(server.Stop());
            Assert.Contains(log.Lines, l => l.StartsWith("Debug: fault 0x", StringComparison.Ordinal));
            Assert.Contains(log.Lines, l => l.StartsWith("Information: fault server on uffd", StringComparison.Ordinal) && l.Contains("stopped on request"));
        }, server, r);
    }

    private sealed class ListLogger : ILogger
    {
        private readonly List<string> lines = [];
        public IReadOnlyList<string> Lines
        {
            get
            {
                lock (lines)
                    return [.. lines];
            }
        }

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (lines)
                lines.Add($"{logLevel}: {formatter(state, exception)}");
        }
    }
}
