namespace UffdNative.Harness.Scenarios;

/// <summary>One UFFDIO_API call.</summary>
public sealed record ApiStep(ulong Api, ulong Features)
{
    public override string ToString() => $"api=0x{Api:x} features=0x{Features:x}";
}

/// <summary>Opens a fresh uffd (syscall or /dev/userfaultfd) and runs the UFFDIO_API steps on it.</summary>
public sealed record ApiOp(bool Device, IReadOnlyList<ApiStep> Steps) : ScenarioOp
{
    public override string Describe() => $"api-{(Device ? "device" : "syscall")} [{string.Join("; ", Steps)}]";

    public bool Equals(ApiOp? other) => other is not null && Device == other.Device && Steps.SequenceEqual(other.Steps);
    public override int GetHashCode() => Steps.Count;
}

public sealed record RegisterOp(string U, string M, int First, int Count, RegisterMode Modes, bool ObserveIoctls = false) : ScenarioOp
{
    public override string Describe() => $"register {U} {Range(M, First, Count)} {ModeText(Modes)}{(ObserveIoctls ? " (ioctls)" : "")}";

    public static string ModeText(RegisterMode m) =>
        m == RegisterMode.None ? "none" : string.Join("|", new[] { (RegisterMode.Missing, "MISSING"), (RegisterMode.WriteProtect, "WP"), (RegisterMode.Minor, "MINOR") }.Where(x => (m & x.Item1) != 0).Select(x => x.Item2));
}

public sealed record UnregisterOp(string U, string M, int First, int Count) : ScenarioOp
{
    public override string Describe() => $"unregister {U} {Range(M, First, Count)}";
}

public sealed record CloseOp(string U) : ScenarioOp
{
    public override string Describe() => $"close {U}";
}
