namespace UffdNative.Harness.Scenarios;

/// <summary>How a MISSING fault is resolved by the scenario's handler (reference §2.1 "Generic handler").</summary>
public enum MissingPolicy
{
    /// <summary>UFFDIO_COPY of a page whose first word is <see cref="HandlerPolicy.CopyTag"/>.</summary>
    Copy,
    /// <summary>UFFDIO_COPY with MODE_WP (falls back to a plain COPY when the ioctl says EINVAL).</summary>
    CopyWp,
    ZeroPage,
    /// <summary>UFFDIO_MOVE from the same offset of <see cref="HandlerPolicy.MoveSource"/> (ALLOW_SRC_HOLES),
    /// <see cref="HandlerPolicy.MoveChunk"/> pages at a time, aligned.</summary>
    Move,
}

/// <summary>The handler's declared policy. WP faults are always resolved by un-protecting the page; MINOR
/// faults by UFFDIO_CONTINUE (with MODE_WP when <see cref="ContinueWp"/>, falling back on EINVAL). An
/// EEXIST answer is followed by UFFDIO_WAKE. Any other failure leaves the faulting thread blocked: the
/// scenario then ends with "blocked".</summary>
public sealed record HandlerPolicy
{
    public MissingPolicy Missing { get; init; } = MissingPolicy.Copy;
    public bool ContinueWp { get; init; }
    public string? MoveSource { get; init; }
    public int MoveChunk { get; init; } = 1;

    /// <summary>The first word of the page COPY installs for a MISSING fault on page p of mapping number m.</summary>
    public static ulong CopyTag(int mapping, int page) => 0xC0000UL + ((ulong)mapping << 8) + (ulong)page;
}
