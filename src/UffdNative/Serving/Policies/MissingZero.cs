using System.Runtime.CompilerServices;
using UffdNative.Messages;

namespace UffdNative.Serving.Policies;

/// <summary>MISSING faults: UFFDIO_ZEROPAGE (anonymous memory gets the zero page, shmem a zeroed page).</summary>
public sealed class MissingZero : FaultPolicy
{
    public override FaultKind Kind => FaultKind.Missing;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public override ResolveResult Resolve(in FaultContext context, in FaultRun run, bool dontWake) =>
        context.ZeroPage(run.Start, run.Length, dontWake);
}
