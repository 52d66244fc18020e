using System.Text.Json.Serialization;

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

    /// <summary>MINOR faults as upstream's handler resolves them (uffd-unit-tests.c, reference §2.1 "Generic
    /// handler"): the bitwise inverse of the page's current bytes is written through this mapping — an unregistered
    /// MAP_SHARED mapping of the file from file page 0 — and then the page is CONTINUEd, so the registered mapping
    /// reads the inverted content (shipping policy <c>MinorFillContinue</c>). Null: CONTINUE the cached page as it is.
    /// Absent from the JSON when null (format v1 files write back unchanged).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? MinorInvertThrough { get; init; }

    /// <summary>Page numbers (of any mapping) whose MISSING faults are resolved by UFFDIO_POISON instead of the MISSING
    /// policy's COPY (shipping <c>MissingCopy.PoisonedPages</c>; upstream's poison test POISONs even pages and COPYs odd
    /// ones). Only with <see cref="MissingPolicy.Copy"/> or <see cref="MissingPolicy.CopyWp"/>. Absent from the JSON when null.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<int>? PoisonPages { get; init; }

    /// <summary>On a REMOVE event the handler UNREGISTERs the removed range on the uffd the event came from, as upstream's
    /// handler does in the events cases (uffd-common.c uffd_handle_page_fault's UFFD_EVENT_REMOVE), so the releasing
    /// process then reads zeros without faults; the message says so (<c>u0c REMOVE m0+0..4 => unregister</c>). False: the
    /// event is only recorded (the served range remembers the pages were removed). Absent from the JSON when false.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool UnregisterOnRemove { get; init; }

    /// <summary>Whether page p's MISSING faults are resolved by POISON.</summary>
    public bool Poisons(int page) => PoisonPages is { } pp && pp.Contains(page);

    public bool Equals(HandlerPolicy? other) =>
        other is not null && Missing == other.Missing && ContinueWp == other.ContinueWp && MoveSource == other.MoveSource && MoveChunk == other.MoveChunk
        && MinorInvertThrough == other.MinorInvertThrough && UnregisterOnRemove == other.UnregisterOnRemove
        && (PoisonPages ?? []).SequenceEqual(other.PoisonPages ?? []) && (PoisonPages is null) == (other.PoisonPages is null);

    public override int GetHashCode() => HashCode.Combine(Missing, ContinueWp, MoveSource, MoveChunk, MinorInvertThrough, PoisonPages?.Count, UnregisterOnRemove);

    /// <summary>The first word of the page COPY installs for a MISSING fault on page p of mapping number m.</summary>
    public static ulong CopyTag(int mapping, int page) => 0xC0000UL + ((ulong)mapping << 8) + (ulong)page;
}
