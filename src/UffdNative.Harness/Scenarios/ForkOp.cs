namespace UffdNative.Harness.Scenarios;

/// <summary>What a forked child does: a load or a store (native code only; SIGBUS is caught and counted), or
/// with <see cref="Pin"/> a long-term pin of the page in the child (as <see cref="PinOp"/>; the child's pins are
/// released after its last pagemap report).</summary>
public sealed record ChildAccess(string M, int Page, bool Write = false, ulong Tag = 0)
{
    /// <summary>Left out of the JSON when false, so format v1 files (written before pins) read and write back unchanged.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]
    public bool Pin { get; init; }

    /// <summary>The child's mremap(MAYMOVE|FIXED) of the whole mapping <see cref="M"/> to a free place of its own
    /// address space (upstream's events child mremaps the registered area; with EVENT_REMAP a REMAP event on the
    /// child's uffd). The child's later steps address the mapping at its new place. Left out of the JSON when false.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]
    public bool Mremap { get; init; }

    /// <summary>The child's madvise of pages [<see cref="Page"/>, Page + <see cref="Count"/>) of <see cref="M"/>
    /// (DONTNEED or REMOVE: upstream's events child releases the area; with EVENT_REMOVE a REMOVE event on the
    /// child's uffd). Left out of the JSON when null.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public MadviseAdvice? Madvise { get; init; }

    /// <summary>The pages of a <see cref="Madvise"/> or <see cref="SigbusLoop"/> step (0 for the other steps, left out of the JSON then).</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]
    public int Count { get; init; }

    /// <summary>Upstream's sigbus loop (uffd-unit-tests.c faulting_process(1, wp)) over pages [<see cref="Page"/>, Page +
    /// <see cref="Count"/>) of <see cref="M"/>, on a uffd of the child's own with FEATURE_SIGBUS (the child must be forked
    /// while the range is unregistered): it registers the range MISSING (|WP with <see cref="Write"/>), and per page
    /// reads — a SIGBUS: COPY the handler's tag page (MODE_WP with wp) and retry — and writes the value back — with wp
    /// a SIGBUS: un-protect and retry. Result: "ok sigbus=N wp=N" (the signals), or what failed. Left out of the JSON when false.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]
    public bool SigbusLoop { get; init; }

    /// <summary>A load or a store (not a pin, an mremap, a madvise or a sigbus loop).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool IsAccess => !Pin && !Mremap && Madvise is null && !SigbusLoop;

    public override string ToString() =>
        SigbusLoop ? $"sigbus-loop {(Count == 1 ? $"{M}+{Page}" : $"{M}+{Page}..{(long)Page + Count}")}{(Write ? " MISSING|WP" : " MISSING")}"
        : Mremap ? $"mremap {M}"
        : Madvise is { } adv ? $"madvise {(Count == 1 ? $"{M}+{Page}" : $"{M}+{Page}..{(long)Page + Count}")} {(adv == MadviseAdvice.Remove ? "REMOVE" : adv == MadviseAdvice.DontNeed ? "DONTNEED" : "PAGEOUT")}"
        : Pin ? $"pin {M}+{Page}" : Write ? $"w {M}+{Page} 0x{Tag:x}" : $"r {M}+{Page}";
}

/// <summary>fork(); the child reports its own pagemap, runs the accesses, reports its pagemap again and
/// exits. With EVENT_FORK the parent blocks until the FORK event is read and the child's faults arrive
/// on the new uffd, which the executor serves with the scenario's policy.</summary>
public sealed record ForkOp(IReadOnlyList<ChildAccess> Child) : ScenarioOp
{
    public ForkOp() : this(Array.Empty<ChildAccess>()) { }

    public override string Describe() => Child.Count == 0 ? "fork" : $"fork [{string.Join(", ", Child)}]";

    public bool Equals(ForkOp? other) => other is not null && Child.SequenceEqual(other.Child);
    public override int GetHashCode() => Child.Count;
}
