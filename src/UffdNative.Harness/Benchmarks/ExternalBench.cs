using UffdNative.Harness.Soak;
using UffdNative.Harness.Native;
using UffdNative.Memory;
using UffdNative.Serving;
using UffdNative.Serving.External;

namespace UffdNative.Harness.Benchmarks;

/// <summary>
/// The bench's "external" loop: the same scenario served by a `uffdnative serve` process (started
/// once per bench run, pinned like the in-process loop) through the external-handler protocol, so its
/// per-fault cost is measured against the managed and native loops in the same run. The handler runs
/// the managed FaultServer; the difference is the process boundary: the handoff, the heartbeat
/// thread, and (for wp-snapshot) reading content through a memfd view.
/// </summary>
internal sealed class ExternalBenchHost : IDisposable
{
    private readonly int cpu;
    private HandlerProcess? handler;

    public ExternalBenchHost(int cpu) => this.cpu = cpu;

    public static bool Supports(BenchCase c) => c.UsesLoop && c.Scenario != "async";

    public HandlerProcess Handler => handler ??= HandlerProcess.Start(["--sessions", "0"], cpu: cpu);

    public void Dispose() => handler?.Dispose();
}

/// <summary>One measured run's external session.</summary>
internal sealed unsafe class ExternalBenchLoop : IDisposable
{
    private readonly ExternalHandler session;
    private readonly MemfdFile? store;
    private readonly MemfdFile? content;
    private SharedSnapshotStore? view;
    private readonly ulong length;

    private ExternalBenchLoop(ExternalHandler session, MemfdFile? store, MemfdFile? content, ulong length)
    {
        this.session = session;
        this.store = store;
        this.content = content;
        this.length = length;
    }

    /// <summary>Hands the uffd (which the session then owns) to the handler for scenario c.</summary>
    public static ExternalBenchLoop Start(ExternalBenchHost host, BenchCase c, Userfaultfd uffd, Mapping map, MemfdFile? file, ulong baseSeed, int readAhead)
    {
        MemfdFile? store = null, content = null;
        var fds = new List<int>();
        var source = new SourceSpec { Kind = "pattern", Seed = baseSeed };
        if (c.Scenario is "missing-copy" or "read-ahead")
        {
            // The content comes as a file, as a VMM's restore does (Firecracker's memory file): a memfd sealed
            // against shrinking, written before the clock starts like the in-process loops' source buffer.
            content = MemfdFile.CreateSealedAgainstShrinking("bench-source", (long)map.Length);
            content.WritePattern(0, (long)map.Length, baseSeed);
            fds.Add(content.Fd);
            source = new SourceSpec { Kind = "fd", Fd = fds.Count };
        }
        PolicySpec policy = c.Scenario switch
        {
            "missing-copy" => PolicySpec.Of("missing-copy", source),
            "read-ahead" => PolicySpec.Of("read-ahead", source, readAhead),
            "missing-zero" => PolicySpec.Of("missing-zero"),
            "wp" => PolicySpec.Of("wp-unprotect"),
            "wp-snapshot" => PolicySpec.Of("wp-snapshot"),
            "minor" => PolicySpec.Of("minor-continue"),
            _ => throw new InvalidOperationException($"{c.Id} has no external variant"),
        };
        string mode = c.Scenario switch { "wp" or "wp-snapshot" => "wp", "minor" => "minor", _ => "missing" };
        int? memfd = null, snapshotFd = null;
        if (file is not null)
        {
            fds.Add(file.Fd);
            memfd = fds.Count;
        }
        if (c.Scenario == "wp-snapshot")
        {
            store = SharedSnapshotStore.CreateMemfd("bench-snapshot-store", map.Length);
            store.Allocate(0, store.Size); // allocated now, not while measuring (as the in-process store is touched)
            fds.Add(store.Fd);
            snapshotFd = fds.Count;
        }
        try
        {
            var session = ExternalHandler.Connect(host.Handler.SocketPath, uffd, new ExternalHandlerOptions
            {
                Regions = [new HandoffRegion { BaseHostVirtAddr = map.Address, Size = map.Length, Memory = file is null ? "anon" : "shmem", Modes = [mode], Memfd = memfd }],
                Policies = [policy],
                ExtraFds = fds,
                SnapshotFd = snapshotFd,
                // The bench's faulting threads live in this process: a dead handler is released (WP) or
                // taken over, never failed with SIGBUS.
                OnFailure = mode == "wp" ? WatchdogAction.Release : WatchdogAction.Takeover,
                TakeoverPolicies = () => [mode == "minor" ? new Serving.Policies.MinorContinue() : new Serving.Policies.MissingZero()],
                HeartbeatMs = 100,
            });
            return new ExternalBenchLoop(session, store, content, map.Length);
        }
        catch
        {
            store?.Dispose();
            content?.Dispose();
            throw;
        }
    }

    /// <summary>Stops the session (the handler serves what is pending and reports). The statistics, as
    /// the in-process loops give them (the service-time histogram stays empty: the handler reports
    /// only its percentiles, kept in <see cref="ServiceP50Ns"/>/<see cref="ServiceP99Ns"/>).</summary>
    public FaultStatistics? Stop(int timeoutMs, out string? failure)
    {
        failure = null;
        if (!session.Stop(timeoutMs))
        {
            failure = $"the external handler did not stop cleanly: {session.State} {session.Failure}";
            return null;
        }
        var h = session.Final!.Stats!;
        var exit = Enum.TryParse<FaultServerExitReason>(session.Final.Exit, out var e) ? e : FaultServerExitReason.Error;
        ServiceP50Ns = h.ServiceP50Ns;
        ServiceP99Ns = h.ServiceP99Ns;
        var s = new FaultStatistics
        {
            MissingFaults = h.Missing,
            WriteProtectFaults = h.Wp,
            MinorFaults = h.Minor,
            PagesResolved = h.PagesResolved,
            Eexist = h.Eexist,
            Eagain = h.Eagain,
            Enoent = h.Enoent,
            SnapshotPages = h.SnapshotPages,
            ZeroPages = h.ZeroPages,
            LoopUsage = new ThreadUsage(h.LoopCpuNs, 0, 0, 0, 0, 0),
            Exited = true,
            ExitReason = exit,
        };
        if (store is not null)
            view = SharedSnapshotStore.Map(store.Fd, length);
        return s;
    }

    public ulong ServiceP50Ns { get; private set; }
    public ulong ServiceP99Ns { get; private set; }

    /// <summary>wp-snapshot: the store's data (valid after <see cref="Stop"/>).</summary>
    public nint StoreAddress => view?.Address ?? 0;

    public void Dispose()
    {
        session.Dispose();
        view?.Dispose();
        store?.Dispose();
        content?.Dispose();
    }
}
