using UffdNative.Messages;

namespace UffdNative.Serving.External;

/// <summary>Faults a handler injects into itself (`uffdnative serve --inject-delay-ms/--inject-fail-after`,
/// the soak and the reliability tests): a random delay of up to <see cref="DelayMaxMs"/> before each
/// resolution step, and a policy failure after <see cref="FailAfterFaults"/> resolution steps (0: never).
/// Applied through <see cref="HandlerHostOptions.PolicyDecorator"/>; parsed from the handler host's command
/// line only (<see cref="HandlerHostProgram"/>), never a switch of a public type.</summary>
internal sealed record InjectSpec
{
    public int DelayMaxMs { get; init; }
    public int DelayMinMs { get; init; }
    public ulong Seed { get; init; } = 1;
    public long FailAfterFaults { get; init; }

    /// <summary>The policy with the injected faults around it.</summary>
    public FaultPolicy Decorate(FaultPolicy p)
    {
        if (FailAfterFaults > 0)
            p = new InjectedFailure(p, FailAfterFaults);
        if (DelayMaxMs > 0)
            p = new InjectedDelay(p, Math.Max(0, DelayMinMs), DelayMaxMs, Seed);
        return p;
    }
}

/// <summary>Injected fault: a random delay (bounded) before the resolution of each run, like a slow
/// content fetch. A retry of the same run (after EAGAIN: an event arrived meanwhile) is not delayed
/// again — the content is at hand, only the ioctl is repeated — otherwise an event producer faster
/// than the delay would starve every fault forever (the freeze of Firecracker #4990).</summary>
internal sealed class InjectedDelay(FaultPolicy inner, int minMs, int maxMs, ulong seed) : FaultPolicy
{
    private ulong state = seed | 1;
    private ulong lastStart = ulong.MaxValue;

    public override FaultKind Kind => inner.Kind;
    public override string Name => $"{inner.Name}+delay({minMs}..{maxMs} ms)";

    public override ResolveResult Resolve(in FaultContext context, in FaultRun run, bool dontWake)
    {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        int ms = minMs + (int)((state * 2685821657736338717UL >> 33) % (ulong)(maxMs - minMs + 1));
        if (ms > 0 && run.Start != lastStart)
            Thread.Sleep(ms);
        lastStart = run.Start;
        return inner.Resolve(in context, in run, dontWake);
    }
}

/// <summary>Injected fault: the policy fails (throws) after a number of resolution steps; the loop then
/// ends with an error and closes its uffd.</summary>
internal sealed class InjectedFailure(FaultPolicy inner, long after) : FaultPolicy
{
    private long steps;

    public override FaultKind Kind => inner.Kind;
    public override string Name => $"{inner.Name}+fail-after({after})";

    public override ResolveResult Resolve(in FaultContext context, in FaultRun run, bool dontWake)
    {
        if (++steps > after)
            throw new InvalidOperationException($"injected handler failure after {after} resolution steps");
        return inner.Resolve(in context, in run, dontWake);
    }
}
