using System.Runtime.CompilerServices;
using UffdNative.Messages;

namespace UffdNative.Serving.Policies;

/// <summary>WP faults: UFFDIO_WRITEPROTECT(mode 0) over the run, letting the writes through.</summary>
public sealed class WpUnprotect : FaultPolicy
{
    public override FaultKind Kind => FaultKind.WriteProtect;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public override ResolveResult Resolve(in FaultContext context, in FaultRun run, bool dontWake) =>
        context.Unprotect(run.Start, run.Length, dontWake);
}
