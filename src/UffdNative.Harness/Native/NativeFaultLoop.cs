namespace UffdNative.Harness.Native;

/// <summary>What the native twin loop serves (one range, one policy).</summary>
public sealed record NativeLoopOptions
{
    public required NativePolicy Policy { get; init; }
    public required ulong RangeStart { get; init; }
    public required ulong RangeLength { get; init; }
    /// <summary>MissingCopy/ReadAhead: the source bytes of RangeStart (ordinary memory).</summary>
    public nint Source { get; init; }
    /// <summary>WpSnapshot: a store of RangeLength bytes.</summary>
    public nint Snapshot { get; init; }
    public int ReadAheadPages { get; init; }
    public int Cpu { get; init; } = -1;
    public int MaxMessagesPerRead { get; init; } = 64;
    public int RetryPollMs { get; init; } = 1;
}

/// <summary>
/// The native twin of <see cref="FaultServer"/> (native/harness/uffd_loop.c, in libuffdharness.so):
/// the benchmark's yardstick. The same wait step, batching,
/// run coalescing, DONTWAKE/WAKE strategy, errno rules, events and statistics, with the policies
/// implemented in C. It takes the uffd over (and closes it when it ends), exactly as a FaultServer
/// with CloseUffdOnStop does. It exists so that `uffdnative bench` can measure both loops in one run.
/// </summary>
public sealed unsafe class NativeFaultLoop : IDisposable
{
    private nint handle;
    private FaultStatistics? final;

    private NativeFaultLoop(nint h) => handle = h;

    /// <summary>Starts the loop on uffd, which it then owns: the Userfaultfd is left invalid.</summary>
    public static NativeFaultLoop Start(Userfaultfd uffd, NativeLoopOptions o)
    {
        if (!uffd.NonBlocking)
            throw new ArgumentException("the uffd must be non-blocking", nameof(uffd));
        var cfg = new LoopConfig
        {
            Uffd = uffd.Fd,
            Policy = (int)o.Policy,
            Cpu = o.Cpu,
            MaxMsgs = o.MaxMessagesPerRead,
            RetryMs = o.RetryPollMs,
            RangeStart = o.RangeStart,
            RangeLen = o.RangeLength,
            Source = (ulong)o.Source,
            Snapshot = (ulong)o.Snapshot,
            ReadAhead = (ulong)o.ReadAheadPages,
        };
        int err;
        nint h = HarnessNative.uffd_loop_start(&cfg, &err);
        if (h == 0)
            throw new UffdException("start native loop", -err, "", "");
        uffd.Handle.SetHandleAsInvalid(); // the loop closes the fd when it ends
        return new NativeFaultLoop(h);
    }

    public FaultStatistics Statistics
    {
        get
        {
            if (handle == 0)
                return final ?? throw new ObjectDisposedException(nameof(NativeFaultLoop));
            UffdLoopStats s;
            HarnessNative.uffd_loop_stats(handle, &s);
            return s.ToStatistics();
        }
    }

    /// <summary>Page-fault messages read so far (all kinds), without allocating.</summary>
    public ulong FaultCount
    {
        get
        {
            if (handle == 0)
                return final?.Faults ?? 0;
            UffdLoopStats s;
            HarnessNative.uffd_loop_stats(handle, &s);
            return s.Faults[0] + s.Faults[1] + s.Faults[2];
        }
    }

    /// <summary>Requests a stop (serving what is pending) and waits; true when the loop ended.</summary>
    public bool Stop(int timeoutMs = 10_000) => handle == 0 || HarnessNative.uffd_loop_stop(handle, timeoutMs) == 0;

    public void Dispose()
    {
        if (handle == 0 || !Stop())
            return;
        final = Statistics;
        if (HarnessNative.uffd_loop_free(handle) == 0)
            handle = 0;
    }
}
