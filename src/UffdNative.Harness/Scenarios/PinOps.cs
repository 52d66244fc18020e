namespace UffdNative.Harness.Scenarios;

/// <summary>A long-term pin of the pages (io_uring fixed buffers: FOLL_WRITE | FOLL_LONGTERM, native/harness/uffd_pin.c).
/// Each page is faulted in as a kernel-mode write first — with uffd messages where the range is registered (a
/// write-protected page raises a WP fault, a missing one a MISSING fault) — then pinned until the matching
/// <see cref="UnpinOp"/>. A pinned private anonymous page is copied for the child at fork (§3.5 early CoW).</summary>
public sealed record PinOp(string M, int First, int Count) : ScenarioOp
{
    public override string Describe() => $"pin {Range(M, First, Count)}";
}

/// <summary>Releases the pin of the same range (IORING_UNREGISTER_BUFFERS).</summary>
public sealed record UnpinOp(string M, int First, int Count) : ScenarioOp
{
    public override string Describe() => $"unpin {Range(M, First, Count)}";
}
