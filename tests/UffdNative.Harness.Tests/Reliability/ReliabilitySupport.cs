using System.Runtime.InteropServices;

namespace UffdNative.Harness.Tests.Reliability;

/// <summary>Helpers of the reliability tests: hard timeouts, regions, native workers, observations.
/// Registered memory is only ever touched by native code (workers, forked children, the shim's
/// verifier after every fault is resolved).</summary>
public static unsafe class R
{
    public static readonly ulong Page = Mapping.PageSize;

    /// <summary>Runs body on its own thread; fails the test when it does not finish in time, after
    /// running the release actions (closing uffds, killing processes) so nothing stays blocked.</summary>
    public static void Within(int timeoutMs, Action body, params Action[] release) => TestWaits.Within(timeoutMs, body, release);

    /// <summary>Waits (bounded) until an observation holds.</summary>
    public static void Until(Func<bool> cond, string what, int timeoutMs = 15_000) => TestWaits.Until(cond, what, timeoutMs);

    public static Userfaultfd Open(UffdFeatures features) => Userfaultfd.Open(new UffdOpenOptions { RequiredFeatures = features | UffdFeatures.ThreadId });

    /// <summary>A new uffd (features | THREAD_ID) with all of map registered for MISSING faults.</summary>
    public static Userfaultfd RegisterMissing(Mapping map, UffdFeatures features = UffdFeatures.None)
    {
        var uffd = Open(features);
        uffd.Register(map.Address, map.Length, RegisterMode.Missing);
        return uffd;
    }

    /// <summary>The handler's policy: MISSING faults get pattern(seed) pages.</summary>
    public static List<PolicySpec> MissingPattern(ulong seed) => [PolicySpec.Of("missing-copy", new SourceSpec { Kind = "pattern", Seed = seed })];

    /// <summary>The same pattern(seed) content in this process, for a takeover loop.</summary>
    public static PageSource PatternSource(ulong seed, ulong length) => PageSource.FromDelegate((offset, dest) => Accessor.PatternFill(dest, seed, offset / 8), length);

    /// <summary>An external handler serving MISSING faults of an anonymous mapping with pattern(seed)
    /// pages; if it fails, this process takes over with the same content (in-process faulting threads:
    /// never Fail, which would be SIGBUS).</summary>
    public static ExternalHandlerOptions MissingPatternWithTakeover(Mapping map, ulong seed) => new()
    {
        Regions = [Region(map, "anon", "missing")],
        Policies = MissingPattern(seed),
        OnFailure = WatchdogAction.Takeover,
        TakeoverPolicies = () => [new MissingCopy(PatternSource(seed, map.Length))],
    };

    /// <summary>An external handler unprotecting WP faults of a shared (memfd) mapping; if it fails, the
    /// protection is released (WP tracking: releasing loses no memory content).</summary>
    public static ExternalHandlerOptions WpUnprotectWithRelease(Mapping map) => new()
    {
        Regions = [Region(map, "shmem", "wp")],
        Policies = [PolicySpec.Of("wp-unprotect")],
        OnFailure = WatchdogAction.Release,
    };

    public static HandoffRegion Region(Mapping m, string memory, string mode, int? memfd = null, ulong offset = 0) => new()
    {
        BaseHostVirtAddr = m.Address,
        Size = m.Length,
        Offset = offset,
        PageSize = Page,
        Memory = memory,
        Modes = [mode],
        Memfd = memfd,
    };

    /// <summary>A worker reading word 0 of each page [first, first+count).</summary>
    public static NativeWorker Read(Mapping m, long first, long count) => new([Op.TouchRead(m.PageAddress(first), (ulong)count * Page)]);

    /// <summary>A worker writing word (i % 512) of page i := pattern(seed, i), like the bench toucher.</summary>
    public static NativeWorker Write(Mapping m, long first, long count, ulong seed) => TestWaits.WritePattern(m.PageAddress, first, count, seed);

    public static void JoinAll(int timeoutMs, params NativeWorker[] workers) => TestWaits.JoinAll(timeoutMs, workers);

    /// <summary>Hands uffd to the handler with options and runs body on the session within timeoutMs; on a
    /// timeout the uffd is closed and the handler killed, so nothing stays blocked.</summary>
    public static void WithSession(int timeoutMs, HandlerProcess handler, Userfaultfd uffd, ExternalHandlerOptions options, Action<ExternalHandler> body) =>
        Within(timeoutMs, () =>
        {
            using var session = ExternalHandler.Connect(handler.SocketPath, uffd, options);
            body(session);
        }, () => uffd.Dispose(), handler.Kill);

    /// <summary>Joins the workers (bounded: each must finish), then disposes them.</summary>
    public static void JoinAndDispose(int timeoutMs, params NativeWorker[] workers) => TestWaits.JoinAndDispose(timeoutMs, workers);

    /// <summary>A memfd of pages holding pattern(seed), mapped shared, registered WP over all of it on a new
    /// uffd and write-protected: a WP-tracked shmem region. Disposing it unmaps and closes the memfd; the uffd
    /// is the caller's (a session takes it over).</summary>
    public static WpMemfd WpProtectedMemfd(string name, long pages, ulong seed)
    {
        var file = MemfdFile.Create(name, pages * (long)Page);
        file.WritePattern(0, file.Size, seed);
        var map = file.MapShared();
        var uffd = Open(UffdFeatures.PageFaultFlagWp | UffdFeatures.WpHugetlbfsShmem);
        uffd.Register(map.Address, map.Length, RegisterMode.WriteProtect);
        Assert.True(uffd.WriteProtect(map.Address, map.Length, protect: true));
        return new WpMemfd(file, map, uffd);
    }

    public sealed record WpMemfd(MemfdFile File, Mapping Map, Userfaultfd Uffd) : IDisposable
    {
        public void Dispose()
        {
            Map.Dispose();
            File.Dispose();
        }
    }

    /// <summary>-1 when pages [0, pages) at addr match (base pattern/zero, touched slots).</summary>
    public static long Verify(ulong addr, long pages, VerifyBase b, ulong baseSeed, bool touched = false, ulong touchSeed = 0)
        => HarnessNative.VerifyPages(addr, pages, b, baseSeed, touched, touchSeed);
}
