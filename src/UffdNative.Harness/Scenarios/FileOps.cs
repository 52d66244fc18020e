namespace UffdNative.Harness.Scenarios;

/// <summary>fallocate(PUNCH_HOLE|KEEP_SIZE) on the memfd, in file pages.</summary>
public sealed record PunchHoleOp(int First, int Count) : ScenarioOp
{
    public override string Describe() => $"punch f+{First}..{(long)First + Count}";
}

/// <summary>ftruncate of the memfd to <see cref="Pages"/> pages (shrink or regrow).</summary>
public sealed record TruncateOp(int Pages) : ScenarioOp
{
    public override string Describe() => $"truncate {Pages}p";
}

/// <summary>pwrite(2) of the tag into the memfd at file page <see cref="Page"/>.</summary>
public sealed record PwriteOp(int Page, ulong Tag) : ScenarioOp
{
    public override string Describe() => $"pwrite f+{Page} 0x{Tag:x}";
}

public sealed record PreadOp(int Page) : ScenarioOp
{
    public override string Describe() => $"pread f+{Page}";
}
