namespace UffdNative.Harness.Scenarios;

/// <summary>How an access reaches the page: a user-mode load/store by a native thread, or a
/// kernel-mode store (read(2) from a pipe into the page, reference §1.5 "USER_MODE_ONLY").</summary>
public enum AccessMode { User, Kernel }

/// <summary>A load of the page's first word by a native worker thread (never managed code).</summary>
public sealed record ReadOp(string M, int Page) : ScenarioOp
{
    public override string Describe() => $"read {M}+{Page}";
}

/// <summary>A store of <see cref="Tag"/> to the page's first word (user mode by a native worker, or
/// kernel mode through read(2)). Through an unregistered alias mapping this is the "alias write".</summary>
public sealed record WriteOp(string M, int Page, ulong Tag, AccessMode Mode = AccessMode.User) : ScenarioOp
{
    public override string Describe() => $"write{(Mode == AccessMode.Kernel ? "(kernel)" : "")} {M}+{Page} 0x{Tag:x}";
}
