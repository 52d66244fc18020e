using System.Runtime.InteropServices;

namespace UffdNative.Tests.Serving;

/// <summary>Helpers for the serving tests: ordinary (never registered) pattern buffers, native
/// toucher workers, content checks through the shim, and waits on observations.</summary>
public static unsafe class S
{
    public static readonly ulong Page = Region.Page;

    /// <summary>Verifies pages [0, pages) at addr (after the uffd is closed or every page resolved):
    /// -1 when all match.</summary>
    public static long Verify(ulong addr, long pages, VerifyBase b, ulong baseSeed, bool touched = false, ulong touchSeed = 0)
        => HarnessNative.VerifyPages(addr, pages, b, baseSeed, touched, touchSeed);

    /// <summary>A native worker that reads one word of each page in [first, first+count).</summary>
    public static NativeWorker ReadPages(Region r, long first, long count) =>
        new([Op.TouchRead(r.PageAt(first), (ulong)count * Page)]);

    /// <summary>count native workers, each reading one page (first, first + stride, ...), returned once fdinfo
    /// shows all count faults pending: a server started next finds them queued.</summary>
    public static NativeWorker[] PendingReaders(Region r, int count, long first = 0, long stride = 1)
    {
        var workers = Enumerable.Range(0, count).Select(i => ReadPages(r, first + i * stride, 1)).ToArray();
        Until(() => r.Uffd.ReadFdInfo().Pending == count, $"{count} faults pending");
        return workers;
    }

    /// <summary>A native worker that writes word (i % 512) of page i := pattern(seed, i), like the bench toucher.</summary>
    public static NativeWorker WritePages(Region r, long first, long count, ulong seed) => TestWaits.WritePattern(r.PageAt, first, count, seed);

    /// <summary>Waits (hard bound) until cond holds, yielding between observations.</summary>
    public static void Until(Func<bool> cond, string what, int timeoutMs = 10_000) => TestWaits.Until(cond, what, timeoutMs);

    public static void JoinAll(params NativeWorker[] workers) => TestWaits.JoinAll(10_000, workers);

    /// <summary>Joins the workers (each must finish), then disposes them.</summary>
    public static void JoinAndDispose(params NativeWorker[] workers) => TestWaits.JoinAndDispose(10_000, workers);

    public static FaultServer Serve(Region r, params FaultPolicy[] policies) => Serve(r, new FaultServerOptions { Policies = policies });

    public static FaultServer Serve(Region r, FaultServerOptions o)
    {
        var s = Server(r, o);
        s.Start();
        return s;
    }

    /// <summary>A server of r (all of it, unless o names ranges), not started: stepped tests drive it.</summary>
    public static FaultServer Server(Region r, FaultServerOptions o) =>
        new(r.Uffd, o.Ranges.Count == 0 ? o with { Ranges = [new ServedRange(r.Addr, r.Len)] } : o);
}

/// <summary>pattern(seed) pages in an ordinary (never registered) buffer and the page source over them,
/// released together; usable wherever a <see cref="PageSource"/> is.</summary>
public sealed class PatternPages : IDisposable
{
    public PageBuffer Buffer { get; }
    public PageSource Source { get; }

    public PatternPages(ulong length, ulong seed)
    {
        Buffer = new PageBuffer(length, seed);
        Source = PageSource.FromBuffer(Buffer);
    }

    public static implicit operator PageSource(PatternPages p) => p.Source;

    public void Dispose()
    {
        Source.Dispose();
        Buffer.Dispose();
    }
}

/// <summary>A page source that holds the loop inside its fill: <see cref="Entered"/> is set when a fill
/// starts, which then waits for <see cref="Release"/> and fills zeros (or pattern(seed) when given).</summary>
public sealed class GatedSource : IDisposable
{
    public ManualResetEventSlim Entered { get; } = new();
    public ManualResetEventSlim Release { get; } = new();
    public PageSource Source { get; }

    public GatedSource(ulong length, ulong? patternSeed = null) => Source = PageSource.FromDelegate((offset, dest) =>
    {
        Entered.Set();
        Release.Wait();
        if (patternSeed is { } seed)
            Accessor.PatternFill(dest, seed, offset / 8);
        else
            dest.Clear();
    }, length);

    public static implicit operator PageSource(GatedSource g) => g.Source;

    public void Dispose()
    {
        Source.Dispose();
        Entered.Dispose();
        Release.Dispose();
    }
}
