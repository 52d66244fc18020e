namespace UffdNative.Harness.Tests.Reliability;

/// <summary>
/// Injected faults, each with a hard timeout, each asserting the outcome: nothing hangs, the faulting
/// side ends in the configured state, and no data is lost where the policy promises it. Waits are on
/// observations (fdinfo, heartbeats, thread state, process exit, output lines); the only sleeps are
/// the handler's injected delays.
/// </summary>
public class FaultInjectionTests
{
    private const ulong Seed = 0x5eed7;
    private const int Hard = 90_000;

    private static PageSource PatternSource(ulong len) => R.PatternSource(Seed, len);

    private static List<PolicySpec> MissingPattern => R.MissingPattern(Seed);

    /// <summary>An owner process (64 pages, mode, access) whose handler (started with a fixed delay of delayMs per
    /// resolution) has read its first fault and holds it: body runs on the handler, owner and session under the
    /// hard timeout; on a timeout both processes are killed. afterSession runs on the handler once the session is closed.</summary>
    private static void WithHeldFault(int delayMs, string mode, string access, List<PolicySpec> policies, Action<HandlerProcess, OwnerProcess, ExternalHandler> body,
        Action<HandlerProcess>? afterSession = null)
    {
        using var handler = HandlerProcess.Start(["--inject-delay-ms", $"{delayMs}..{delayMs}"]);
        using var owner = OwnerProcess.Start(64, mode, access, Seed, handlerSocket: handler.SocketPath);
        R.Within(Hard, () =>
        {
            using var session = owner.ConnectAndHoldFirstFault(mode, policies);
            body(handler, owner, session);
        }, owner.Kill, handler.Kill);
        afterSession?.Invoke(handler);
    }

    // ---- handler delays ---------------------------------------------------------------------------

    [Fact]
    public void RandomBoundedHandlerDelays_EveryFaultServedOnce_NoFalseStall()
    {
        using var handler = HandlerProcess.Start(["--inject-delay-ms", "0..25", "--inject-seed", "7"]);
        using var map = Mapping.Anonymous(512 * R.Page);
        var uffd = R.RegisterMissing(map);
        // StallDeadlineMs: far above the largest injected delay, even on a loaded machine.
        R.WithSession(Hard, handler, uffd, R.MissingPatternWithTakeover(map, Seed) with { StallDeadlineMs = 5000 }, session =>
        {
            R.JoinAndDispose(60_000, [.. Enumerable.Range(0, 4).Select(i => R.Read(map, i * 128, 128))]);
            Assert.Equal(ExternalHandlerState.Serving, session.State); // no false stall alarm
            Assert.True(session.Stop(), $"{session.State} {session.Failure}");
            var st = session.Final!.Stats!;
            Assert.Equal(st.Faults, st.Resolved);
            Assert.Equal(512UL, st.PagesResolved); // every page installed exactly once
            Assert.Equal(-1, R.Verify(map.Address, 512, VerifyBase.Pattern, Seed));
        });
    }

    // ---- EAGAIN storms ------------------------------------------------------------------------------

    [Fact]
    public void EagainStorm_EventsLeftUnreadWhileTheHandlerHolds_AllServedWithTheRightContent()
    {
        // The handler sleeps 2..15 ms before each resolution; meanwhile another thread's madvise
        // produces REMOVE events that stay unread until the next wait, so every ioctl in between
        // answers EAGAIN (mmap_changing, §1.6): the storm Firecracker #4990 froze on.
        using var handler = HandlerProcess.Start(["--inject-delay-ms", "2..15", "--inject-seed", "11"]);
        const long pages = 512;
        using var map = Mapping.Anonymous((ulong)pages * R.Page);
        var uffd = R.RegisterMissing(map, UffdFeatures.EventRemove);
        R.WithSession(Hard, handler, uffd, R.MissingPatternWithTakeover(map, Seed) with { StallDeadlineMs = 10_000 }, session =>
        {
            var readers = Enumerable.Range(0, 4).Select(i => R.Read(map, i * (pages / 4), pages / 4)).ToArray();
            int removes = 0;
            var rng = new Random(3);
            // A bounded storm: discards back to back (each blocks until its REMOVE is read) until the
            // handler reported EAGAIN and at least 50 went by, at most 3 s. An unbounded storm faster
            // than the handler starves every fault (the producer re-arms mmap_changing right after its
            // event is read): the kernel's design, documented in docs/reliability.md.
            long stormEnd = Environment.TickCount64 + 3000;
            while (Environment.TickCount64 < stormEnd && !(removes >= 50 && session.Stats is { Eagain: > 0 }))
            {
                long first = rng.NextInt64(0, pages - 16);
                Assert.Equal(0, map.TryAdvise(Advice.DontNeed, (ulong)first * R.Page, 16 * R.Page));
                removes++;
            }
            R.JoinAndDispose(60_000, readers); // the storm is over: everything is served
            Assert.Equal(ExternalHandlerState.Serving, session.State);
            // Every page once more, then check each one: the source content, or zero once discarded.
            var ops = Enumerable.Range(0, (int)pages).Select(i => Op.Read64(map.PageAddress(i) + 8)).ToArray();
            using var check = new NativeWorker(ops);
            Assert.True(check.Join(60_000));
            Assert.True(session.Stop(), $"{session.State} {session.Failure}");
            var st = session.Final!.Stats!;
            Assert.True(st.Eagain > 0, "the storm produced no EAGAIN");
            Assert.True(st.Events >= (ulong)removes, $"{st.Events} events read for {removes} discards");
            Assert.Equal(st.Faults, st.Resolved);
            for (int i = 0; i < pages; i++)
            {
                ulong v = check.Results[i].Value;
                Assert.True(v == 0 || v == Shim.uffd_pattern_word(Seed, (ulong)i * 512 + 1), $"page {i} holds 0x{v:x}");
            }
        });
    }

    /// <summary>SIGKILLs the handler and waits (bounded) for the client's session to end in expected.</summary>
    private static void KillHandler(HandlerProcess handler, ExternalHandler session, ExternalHandlerState expected)
    {
        handler.Kill();
        Assert.True(session.Completion.Wait(20_000), "the session did not end");
        Assert.Equal(expected, session.State);
    }

    // ---- the owner exits mid-copy -------------------------------------------------------------------

    [Fact]
    public void OwnerExitsWhileTheHandlerHoldsItsFault_SessionEndsOwnerGone()
    {
        // The handler has read the fault and is inside its (delayed) resolution: read, unresolved.
        WithHeldFault(400, "missing", "read", MissingPattern, (_, owner, session) =>
        {
            owner.Kill();
            Assert.Equal(-9, owner.WaitForExit(10_000));
            Assert.True(session.Completion.Wait(20_000), "the session did not end");
            Assert.Equal(ExternalHandlerState.Ended, session.State);
            Assert.Null(session.Failure);
            Assert.Equal(nameof(FaultServerExitReason.OwnerGone), session.Final!.Exit);
        }, handler =>
        {
            Assert.Equal(0, handler.WaitForExit(20_000));
            Assert.Contains(handler.Output, l => l.Contains("ended: OwnerGone", StringComparison.Ordinal));
        });
    }

    // ---- the handler SIGKILLed mid-run, with each watchdog action -----------------------------------

    [Fact]
    public void HandlerKilledMidRun_Takeover_ServesEveryPageWithTheSameContent()
    {
        using var handler = HandlerProcess.Start(["--inject-delay-ms", "20..60"]);
        const long pages = 256;
        using var map = Mapping.Anonymous((ulong)pages * R.Page);
        var uffd = R.RegisterMissing(map);
        R.WithSession(Hard, handler, uffd, R.MissingPatternWithTakeover(map, Seed), session =>
        {
            var workers = Enumerable.Range(0, 4).Select(i => R.Read(map, i * 64, 64)).ToArray();
            R.Until(() => session.Stats is { Resolved: >= 8 } && uffd.ReadFdInfo().Total > 0, "the handler is mid-run with faults outstanding");
            KillHandler(handler, session, ExternalHandlerState.TakenOver);
            Assert.Contains(session.Failure!.Kind, new[] { HandlerFailureKind.SocketClosed, HandlerFailureKind.ProcessExited });
            R.JoinAndDispose(30_000, workers);
            Assert.True(session.TakeoverServer!.Statistics.Faults > 0, "the takeover loop served nothing");
            Assert.Equal(-1, R.Verify(map.Address, pages, VerifyBase.Pattern, Seed)); // no page lost or zero-filled
        });
    }

    [Fact]
    public void HandlerKilledMidRun_Release_WritesGoThroughAndNothingIsLost()
    {
        using var handler = HandlerProcess.Start(["--inject-delay-ms", "20..60"]);
        const long pages = 256;
        using var wp = R.WpProtectedMemfd("reliability-release", pages, Seed);
        var (map, uffd) = (wp.Map, wp.Uffd);
        R.WithSession(Hard, handler, uffd, R.WpUnprotectWithRelease(map), session =>
        {
            var workers = Enumerable.Range(0, 4).Select(i => R.Write(map, i * 64, 64, 0x77)).ToArray();
            R.Until(() => session.Stats is { Resolved: >= 8 } && uffd.ReadFdInfo().Total > 0, "the handler is mid-run with faults outstanding");
            KillHandler(handler, session, ExternalHandlerState.Released);
            R.JoinAndDispose(30_000, workers);
            // Every write landed (served or, after the release, let through by the kernel).
            Assert.Equal(-1, R.Verify(map.Address, pages, VerifyBase.Pattern, Seed, touched: true, touchSeed: 0x77));
        });
    }

    [Fact]
    public void HandlerKilledMidRun_Fail_TheOwnerStopsWithSigbusInsteadOfHanging()
    {
        WithHeldFault(300, "missing", "read", MissingPattern, (handler, owner, session) =>
        {
            KillHandler(handler, session, ExternalHandlerState.Failing);
            Assert.Equal(42, owner.WaitForExit(20_000)); // the tool's SIGBUS exit
            // A poisoned page: BUS_MCEERR_AR (4) with CONFIG_MEMORY_FAILURE, BUS_ADRERR (2) without
            // (reference §0a), at the page the owner was reading.
            Assert.Contains(owner.Lines, l => l == $"sigbus addr=0x{owner.Address:x} code=4" || l == $"sigbus addr=0x{owner.Address:x} code=2");
            Assert.True(session.FailedFaults >= 1);
        });
    }

    [Fact]
    public void HandlerKilledMidRun_Fail_OnWriteProtect_SignalsTheWritingThread()
    {
        WithHeldFault(300, "wp", "write", [PolicySpec.Of("wp-unprotect")], (handler, owner, session) =>
        {
            KillHandler(handler, session, ExternalHandlerState.Failing);
            Assert.Equal(42, owner.WaitForExit(20_000));
            Assert.Contains(owner.Lines, l => l.StartsWith("sigbus", StringComparison.Ordinal) && l.EndsWith("code=-6", StringComparison.Ordinal)); // SI_TKILL
        });
    }

    [Fact]
    public void StalledHandler_IsKilledAtTheDeadline_AndTakenOver()
    {
        using var handler = HandlerProcess.Start([]);
        const long pages = 64;
        using var map = Mapping.Anonymous((ulong)pages * R.Page);
        var uffd = R.RegisterMissing(map);
        R.WithSession(Hard, handler, uffd, R.MissingPatternWithTakeover(map, Seed) with { StallDeadlineMs = 1000 }, session =>
        {
            Assert.Equal(0, Tmds.Linux.LibC.kill(handler.Pid, 19)); // SIGSTOP: alive, but serving nothing
            using var w = R.Read(map, 0, pages);
            Assert.True(session.Completion.Wait(20_000));
            Assert.Equal(HandlerFailureKind.Stalled, session.Failure!.Kind);
            Assert.Equal(ExternalHandlerState.TakenOver, session.State);
            R.JoinAll(20_000, w);
            Assert.True(handler.HasExited || handler.WaitForExit(5000) is not null, "the stalled handler was not killed");
            Assert.Equal(-1, R.Verify(map.Address, pages, VerifyBase.Pattern, Seed));
        });
    }

    // ---- the uffd closed under outstanding faults ---------------------------------------------------

    /// <summary>Blocks the loop thread in its first resolution until released, then throws.</summary>
    private sealed class HoldThenThrow(ManualResetEventSlim held, ManualResetEventSlim release) : FaultPolicy
    {
        public override Messages.FaultKind Kind => Messages.FaultKind.Missing;

        public override ResolveResult Resolve(in FaultContext context, in FaultRun run, bool dontWake)
        {
            held.Set();
            release.Wait(30_000);
            throw new InvalidOperationException("injected: the loop fails with faults outstanding");
        }
    }

    [Fact]
    public void UffdClosedUnderOutstandingFaults_EveryWaiterResolvesNormally()
    {
        // The loop fails while it holds faults (read, unresolved) and others are unread: it closes the
        // uffd, and the kernel wakes every waiter, which then resolves as if unregistered (§1.5).
        const long pages = 64;
        using var map = Mapping.Anonymous((ulong)pages * R.Page);
        using var uffd = R.Open(UffdFeatures.None);
        uffd.Register(map.Address, map.Length, RegisterMode.Missing);
        using var held = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        R.Within(Hard, () =>
        {
            using var server = new FaultServer(uffd, new FaultServerOptions { Policies = [new HoldThenThrow(held, release)], Ranges = [new ServedRange(map.Address, map.Length)], MaxMessagesPerRead = 1 });
            server.Start();
            var workers = Enumerable.Range(0, 4).Select(i => R.Read(map, i * 16, 16)).ToArray();
            Assert.True(held.Wait(20_000));
            R.Until(() => uffd.ReadFdInfo() is { Total: 4, Pending: >= 1 }, "one fault held by the loop, the others unread");
            release.Set();
            Assert.True(server.Completion.Wait(20_000));
            Assert.Equal(FaultServerExitReason.Error, server.Exit!.Reason);
            Assert.True(uffd.IsDisposed, "the failing loop did not close the uffd");
            R.JoinAndDispose(20_000, workers); // nobody stays blocked
            Assert.Equal(-1, R.Verify(map.Address, pages, VerifyBase.Zero, 0)); // resolved by the kernel: zero-filled
        }, () => { release.Set(); uffd.Dispose(); });
    }

    [Fact]
    public void HandlerLoopFails_ItsUffdCopyClosed_ClientReleasesTheLastOne()
    {
        // An external handler's loop fails (injected) and closes its copy of the uffd; the client still
        // holds one, so the faults stay blocked until the watchdog acts on the final frame (HandlerError):
        // Release closes the last copy under outstanding faults, and every write goes through.
        using var handler = HandlerProcess.Start(["--inject-fail-after", "3", "--inject-delay-ms", "10..10"]);
        const long pages = 128;
        using var wp = R.WpProtectedMemfd("reliability-fail", pages, Seed);
        var (map, uffd) = (wp.Map, wp.Uffd);
        R.WithSession(Hard, handler, uffd, R.WpUnprotectWithRelease(map), session =>
        {
            var workers = Enumerable.Range(0, 4).Select(i => R.Write(map, i * 32, 32, 0x99)).ToArray();
            Assert.True(session.Completion.Wait(30_000));
            Assert.Equal(HandlerFailureKind.HandlerError, session.Failure!.Kind);
            Assert.Contains("injected handler failure", session.Failure.Message, StringComparison.Ordinal);
            Assert.Equal(ExternalHandlerState.Released, session.State);
            R.JoinAndDispose(20_000, workers);
            Assert.Equal(-1, R.Verify(map.Address, pages, VerifyBase.Pattern, Seed, touched: true, touchSeed: 0x99));
        });
    }

    // ---- signals delivered to faulting threads ------------------------------------------------------

    [Fact]
    public void SignalToAFaultingThread_TheRefaultIsServedAndThePageInstalledOnce()
    {
        // The handler reads the fault and holds it (1 s). A signal aborts the blocked access; after
        // the handler runs the access re-faults: a new message (pending 1, total 1: the aborted waiter
        // left). A REMOVE on another page then makes the held COPY answer EAGAIN, so the loop reads
        // the re-fault's message before it resolves: two messages for one page, handled together.
        using var handler = HandlerProcess.Start(["--inject-delay-ms", "1000..1000"]);
        using var map = Mapping.Anonymous(4 * R.Page);
        var uffd = R.RegisterMissing(map, UffdFeatures.EventRemove);
        R.WithSession(Hard, handler, uffd, R.MissingPatternWithTakeover(map, Seed), session =>
        {
            using var w = new NativeWorker([Op.Read64(map.PageAddress(1) + 16)]);
            R.Until(() => uffd.ReadFdInfo() is { Pending: 0, Total: 1 }, "the fault read by the handler");
            w.Signal(); // SIGUSR1: counted by the worker, which then retries the access
            R.Until(() => w.SignalsReceived == 1, "the signal handled");
            R.Until(() => uffd.ReadFdInfo() is { Pending: 1, Total: 1 }, "the re-fault's new message, while the first is still held");
            var advise = Task.Run(() => map.TryAdvise(Advice.DontNeed, 3 * R.Page, R.Page));
            Assert.True(w.Join(20_000), $"the worker is still blocked (state {w.State})");
            Assert.True(advise.Wait(20_000));
            Assert.Equal(0, advise.Result);
            Assert.Equal(Shim.uffd_pattern_word(Seed, 512 + 2), w.Results[0].Value);
            Assert.Equal(1, w.SignalsReceived);
            Assert.True(session.Stop());
            var st = session.Final!.Stats!;
            Assert.Equal(2UL, st.Faults);        // the original message and the re-fault's
            Assert.Equal(2UL, st.Resolved);      // both handled
            Assert.Equal(1UL, st.PagesResolved); // the page installed once: not double counted
            Assert.True(st.Eagain >= 1, "the REMOVE did not defer the held resolution");
        });
    }

    // ---- memory pressure ----------------------------------------------------------------------------

    [Fact]
    public void MemoryPressure_OwnerInACgroupOverItsLimit_IsOomKilledAndTheSessionEndsCleanly_OrTheProjectSaysWhyNot()
    {
        if (!CgroupMemoryLimit.TryCreate(32UL << 20, out var cg, out var reason))
        {
            // This machine does not allow it: the project must say why, precisely.
            Assert.Equal(reason, CgroupMemoryLimit.WhyUnavailable() ?? reason);
            Assert.Contains("cgroup", reason, StringComparison.Ordinal);
            Assert.True(reason.Length > 40, reason);
            if (!File.Exists("/sys/fs/cgroup/cgroup.controllers"))
                Assert.Contains("not a cgroup v2 mount", reason, StringComparison.Ordinal);
            return;
        }
        using (cg)
        {
            // The owner (exec'd into the cgroup) has 64 MiB of MISSING memory; the handler's copies are
            // charged to the owner's cgroup, whose 32 MiB limit (no swap) is reached half way: the OOM
            // killer ends the owner, and the handler must end its session cleanly (owner gone).
            using var handler = HandlerProcess.Start([]);
            using var owner = OwnerProcess.Start(16384, "missing", "verify", Seed, cg!.ProcsPath, handler.SocketPath);
            R.Within(Hard, () =>
            {
                using var session = owner.ConnectFailing("missing", MissingPattern);
                owner.Go();
                Assert.Equal(-9, owner.WaitForExit(60_000));
                Assert.True(session.Completion.Wait(30_000), "the session did not end");
                Assert.Equal(ExternalHandlerState.Ended, session.State);
                Assert.Equal(nameof(FaultServerExitReason.OwnerGone), session.Final!.Exit);
                Assert.True(cg.Event("oom_kill") >= 1, "no OOM kill was recorded in memory.events");
                Assert.Contains(owner.Lines, l => l.StartsWith("touched", StringComparison.Ordinal)); // it ran (verified content) until the kill
            }, owner.Kill, handler.Kill);
        }
    }
}
