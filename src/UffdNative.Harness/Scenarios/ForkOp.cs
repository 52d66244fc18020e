namespace UffdNative.Harness.Scenarios;

/// <summary>What a forked child does: a load or a store (native code only; SIGBUS is caught and counted), or
/// with <see cref="Pin"/> a long-term pin of the page in the child (as <see cref="PinOp"/>; the child's pins are
/// released after its last pagemap report).</summary>
public sealed record ChildAccess(string M, int Page, bool Write = false, ulong Tag = 0)
{
    /// <summary>Left out of the JSON when false, so format v1 files (written before pins) read and write back unchanged.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]
    public bool Pin { get; init; }

    public override string ToString() => Pin ? $"pin {M}+{Page}" : Write ? $"w {M}+{Page} 0x{Tag:x}" : $"r {M}+{Page}";
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
