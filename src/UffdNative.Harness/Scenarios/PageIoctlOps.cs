using System.Text.Json.Serialization;

namespace UffdNative.Harness.Scenarios;

/// <summary>UFFDIO_COPY of pages whose first word is the tag. With <see cref="DontWake"/> (MODE_DONTWAKE) the
/// threads waiting in the range are not woken (§1.5); the field is written to JSON only when set, so scenarios
/// without it keep their bytes.</summary>
public sealed record CopyOp(string U, string M, int First, int Count, ulong Tag, bool Wp = false,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] bool DontWake = false) : ScenarioOp
{
    public override string Describe() => $"copy {U} {Range(M, First, Count)} 0x{Tag:x}{(Wp ? " MODE_WP" : "")}{(DontWake ? " DONTWAKE" : "")}";
}

public sealed record ZeroPageOp(string U, string M, int First, int Count) : ScenarioOp
{
    public override string Describe() => $"zeropage {U} {Range(M, First, Count)}";
}

public sealed record ContinueOp(string U, string M, int First, int Count, bool Wp = false) : ScenarioOp
{
    public override string Describe() => $"continue {U} {Range(M, First, Count)}{(Wp ? " MODE_WP" : "")}";
}

public sealed record PoisonOp(string U, string M, int First, int Count) : ScenarioOp
{
    public override string Describe() => $"poison {U} {Range(M, First, Count)}";
}

public sealed record MoveOp(string U, string M, int First, string Src, int SrcFirst, int Count, bool AllowSrcHoles = false) : ScenarioOp
{
    public override string Describe() => $"move {U} {Range(M, First, Count)} <- {Range(Src, SrcFirst, Count)}{(AllowSrcHoles ? " ALLOW_SRC_HOLES" : "")}";
}

public sealed record WriteProtectOp(string U, string M, int First, int Count, bool Protect, bool DontWake = false) : ScenarioOp
{
    public override string Describe() => $"{(Protect ? "wp" : "unwp")} {U} {Range(M, First, Count)}{(DontWake ? " dontwake" : "")}";
}

public sealed record WakeOp(string U, string M, int First, int Count) : ScenarioOp
{
    public override string Describe() => $"wake {U} {Range(M, First, Count)}";
}
