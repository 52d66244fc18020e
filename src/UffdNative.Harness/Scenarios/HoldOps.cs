namespace UffdNative.Harness.Scenarios;

/// <summary>
/// A faulting access whose fault the handler reads and records ("u0 PF 0x0 m0+1 => held") but does not resolve:
/// the access runs on a native worker that stays blocked in the fault until a later op releases it — a WAKE, a fill
/// or un-protect covering the page without DONTWAKE, UNREGISTER of a MISSING range, close(), or a signal that makes
/// it fault again (reference §1.5 "Waking a blocked thread"). Every fault the held access raises is held the same
/// way, until the access completes. At most one access is held at a time; while it is, the scenario runs no other
/// access and nothing that raises an event (<see cref="ScenarioValidator"/>).
/// The op's result is the held access's state; every later op's result ends with it in brackets while it lasts:
/// "asleep" (its waiter is still queued on the uffd: fdinfo pending=0 total≥1, thread state S), "retrying" (a
/// kernel-mode fault with a signal pending goes round without sleeping, a message each time, §1.5), or, once it
/// completed, its result as a plain access reports it ("ok value=0x0", "ok bytes=8", "EFAULT"), with " signals=N"
/// when it was signalled (N: the times its handler ran).
/// </summary>
public sealed record HoldOp(string M, int Page, bool Write = false, ulong Tag = 0, AccessMode Mode = AccessMode.User) : ScenarioOp
{
    /// <summary>How many messages of a retrying access (a kernel-mode fault with a signal pending) the op that starts
    /// the retries shows: the model writes this many, the executor and the C reproducer record this many; later ops
    /// show none (how many arrive before the page is resolved is timing).</summary>
    public const int RetryMessages = 3;

    public override string Describe() => Write
        ? $"hold write{(Mode == AccessMode.Kernel ? "(kernel)" : "")} {M}+{Page} 0x{Tag:x}"
        : $"hold read {M}+{Page}";
}

/// <summary>SIGUSR1 (tgkill) to the thread of the held access (<see cref="HoldOp"/>); its handler counts the signal.</summary>
public sealed record SignalOp : ScenarioOp
{
    /// <summary>The result when the held access has already completed: there is no thread to signal.</summary>
    public const string NothingHeld = "ok (nothing held)";

    public override string Describe() => "signal held";
}
