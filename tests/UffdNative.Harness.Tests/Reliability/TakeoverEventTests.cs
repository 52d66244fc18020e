using UffdNative.Access;
using UffdNative.Harness.Soak;
using UffdNative.Interop;
using UffdNative.Memory;
using UffdNative.Serving;
using UffdNative.Serving.External;
using UffdNative.Serving.Policies;

namespace UffdNative.Harness.Tests.Reliability;

/// <summary>
/// A takeover starts from the range table the handler acknowledged, and the handler acknowledges every
/// REMAP/REMOVE/UNMAP (a "ranges" frame sent by its loop) before it resolves the next fault. Each test
/// lets the handler resolve one fault after the event, SIGKILLs it the moment that fault is observed
/// resolved (no heartbeat in between to report the table), and checks what the takeover serves.
/// </summary>
public class TakeoverEventTests
{
    private const ulong Seed = 0x7a6e;
    private const int Hard = 90_000;
    private const long Pages = 8;

    private static List<PolicySpec> MissingPattern => [PolicySpec.Of("missing-copy", new SourceSpec { Kind = "pattern", Seed = Seed })];

    private static ExternalHandlerOptions Options(Mapping map) => new()
    {
        Regions = [R.Region(map, "anon", "missing")],
        Policies = MissingPattern,
        HeartbeatMs = 60_000, // the table must come from the acknowledgment, not from a heartbeat
        OnFailure = WatchdogAction.Takeover,
        TakeoverPolicies = () => [new MissingCopy(PageSource.FromDelegate((o, d) => Accessor.PatternFill(d, Seed, o / 8), Pages * R.Page))],
    };

    private static ulong ReadWord(ulong address)
    {
        using var w = new NativeWorker([Op.Read64(address)]);
        Assert.True(w.Join(30_000), $"the read of 0x{address:x} is still blocked (state {w.State})");
        return w.Results[0].Value;
    }

    private static void KillAndWaitForTakeover(HandlerProcess handler, ExternalHandler session)
    {
        handler.Kill();
        R.Until(() => session.State != ExternalHandlerState.Serving, "the client's watchdog acting on the handler's death", 30_000);
        Assert.Equal(ExternalHandlerState.TakenOver, session.State);
    }

    [Fact]
    public void AFaultInTheRemapTargetAfterTheHandlerDied_IsServedFromTheMovedSource()
    {
        using var handler = HandlerProcess.Start([]);
        using var map = Mapping.Anonymous((ulong)Pages * R.Page);
        using var target = Mapping.Reserve(map.Length);
        var uffd = R.Open(UffdFeatures.EventRemap);
        uffd.Register(map.Address, map.Length, RegisterMode.Missing);
        R.WithSession(Hard, handler, uffd, Options(map), session =>
        {
            ulong old = map.Address;
            map.Remap(map.Length, target); // blocks until the handler read the REMAP event
            Assert.NotEqual(old, map.Address);
            // One fault in the target, resolved by the handler after the event: its acknowledgment of
            // the moved table was sent before this resolution.
            Assert.Equal(Shim.uffd_pattern_word(Seed, 2), ReadWord(map.PageAddress(0) + 16));
            KillAndWaitForTakeover(handler, session);
            Assert.Contains(session.Ranges, r => r.Start == map.Address && r.Length == map.Length && r.SourceOffset == 0);
            // Page 5 of the target: the takeover knows the move, so it serves source page 5 — not EFAULT
            // (outside its table) and then a zero page.
            Assert.Equal(Shim.uffd_pattern_word(Seed, (5 * R.Page + 24) / 8), ReadWord(map.PageAddress(5) + 24));
            Assert.Equal(FaultServerExitReason.None, session.TakeoverServer!.Exit?.Reason ?? FaultServerExitReason.None);
        });
    }

    [Fact]
    public void ARemovedPageAfterTheHandlerDied_IsZeroFilledNotServedStale()
    {
        using var handler = HandlerProcess.Start([]);
        using var map = Mapping.Anonymous((ulong)Pages * R.Page);
        var uffd = R.Open(UffdFeatures.EventRemove);
        uffd.Register(map.Address, map.Length, RegisterMode.Missing);
        R.WithSession(Hard, handler, uffd, Options(map), session =>
        {
            using (var all = R.Read(map, 0, Pages))
                R.JoinAll(30_000, all); // every page served from the source
            Assert.Equal(0, map.TryAdvise(Advice.DontNeed, 2 * R.Page, 4 * R.Page)); // REMOVE 2..5, read before this returns
            // One fault in the removed range, resolved by the handler after the event (zero: removed).
            Assert.Equal(0UL, ReadWord(map.PageAddress(2) + 8));
            KillAndWaitForTakeover(handler, session);
            // Page 3 was removed too: the takeover must know it and zero-fill, not copy the source again.
            Assert.Equal(0UL, ReadWord(map.PageAddress(3) + 8));
            Assert.Equal(0UL, ReadWord(map.PageAddress(5) + 8));
            Assert.Equal(Shim.uffd_pattern_word(Seed, (6 * R.Page + 8) / 8), ReadWord(map.PageAddress(6) + 8)); // untouched by the REMOVE
        });
    }
}
