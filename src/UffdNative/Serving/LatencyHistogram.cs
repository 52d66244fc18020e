using System.Numerics;
using System.Runtime.CompilerServices;
using UffdNative.Interop;

namespace UffdNative.Serving;

/// <summary>
/// The fixed log-linear histogram both loops record into (struct uffd_hist): values below 128 have
/// their own bucket, above that 64 buckets per power of two (relative error at most 1/64) up to 2^41;
/// bucket(v) = s*64 + (v &gt;&gt; s) with s = max(0, msb(v) - 6). Recording is a few instructions and
/// never allocates; the native side computes the same index (a test compares them).
/// </summary>
public static unsafe class LatencyHistogram
{
    public const int Buckets = LoopAbi.HistBuckets;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Index(ulong value)
    {
        if (value < 128)
            return (int)value;
        int s = 63 - BitOperations.LeadingZeroCount(value) - 6;
        int idx = s * 64 + (int)(value >> s);
        return idx < Buckets ? idx : Buckets - 1;
    }

    /// <summary>The smallest value that lands in bucket index.</summary>
    public static ulong LowerBound(int index)
    {
        if (index < 128)
            return (ulong)index;
        int s = index / 64 - 1;
        return (ulong)(index - s * 64) << s;
    }

    /// <summary>The largest value that lands in bucket index.</summary>
    public static ulong UpperBound(int index) => index < 128 ? (ulong)index : LowerBound(index) + (1UL << (index / 64 - 1)) - 1;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Record(UffdHist* h, ulong value)
    {
        h->Buckets[Index(value)]++;
        h->Count++;
        h->Sum += value;
        if (value > h->Max)
            h->Max = value;
    }
}

/// <summary>A copy of a histogram, with percentiles (values in nanoseconds).</summary>
public sealed unsafe class HistogramSnapshot
{
    private readonly ulong[] buckets;

    public ulong Count { get; }
    public ulong Sum { get; }
    public ulong Max { get; }
    public double Mean => Count == 0 ? 0 : (double)Sum / Count;

    internal HistogramSnapshot(in UffdHist h)
    {
        Count = h.Count;
        Sum = h.Sum;
        Max = h.Max;
        buckets = new ulong[LatencyHistogram.Buckets];
        for (int i = 0; i < buckets.Length; i++)
            buckets[i] = h.Buckets[i];
    }

    /// <summary>A histogram from its bucket counts (<see cref="LatencyHistogram.Buckets"/> of them, indexed
    /// as <see cref="LatencyHistogram.Index"/> does), e.g. one another loop recorded.</summary>
    public HistogramSnapshot(ReadOnlySpan<ulong> buckets, ulong count, ulong sum, ulong max)
    {
        if (buckets.Length != LatencyHistogram.Buckets)
            throw new ArgumentException($"a histogram has {LatencyHistogram.Buckets} buckets, not {buckets.Length}", nameof(buckets));
        this.buckets = buckets.ToArray();
        Count = count;
        Sum = sum;
        Max = max;
    }

    /// <summary>A histogram of nothing.</summary>
    public static HistogramSnapshot Empty { get; } = new(new ulong[LatencyHistogram.Buckets], 0, 0, 0);

    private HistogramSnapshot(ulong[] b, ulong count, ulong sum, ulong max)
    {
        buckets = b;
        Count = count;
        Sum = sum;
        Max = max;
    }

    public ulong BucketCount(int index) => buckets[index];

    /// <summary>The value at quantile q (0..1): the upper bound of the bucket holding it, capped by Max.</summary>
    public ulong Percentile(double q)
    {
        if (Count == 0)
            return 0;
        ulong rank = (ulong)Math.Ceiling(Math.Clamp(q, 0, 1) * Count);
        if (rank == 0)
            rank = 1;
        ulong seen = 0;
        for (int i = 0; i < buckets.Length; i++)
        {
            seen += buckets[i];
            if (seen >= rank)
                return Math.Min(LatencyHistogram.UpperBound(i), Max);
        }
        return Max;
    }

    /// <summary>The sum of several histograms (e.g. two touchers).</summary>
    public static HistogramSnapshot Merge(IEnumerable<HistogramSnapshot> parts)
    {
        var b = new ulong[LatencyHistogram.Buckets];
        ulong count = 0, sum = 0, max = 0;
        foreach (var p in parts)
        {
            for (int i = 0; i < b.Length; i++)
                b[i] += p.buckets[i];
            count += p.Count;
            sum += p.Sum;
            max = Math.Max(max, p.Max);
        }
        return new HistogramSnapshot(b, count, sum, max);
    }
}
