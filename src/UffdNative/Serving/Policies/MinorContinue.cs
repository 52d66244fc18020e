using System.Runtime.CompilerServices;
using UffdNative.Messages;

namespace UffdNative.Serving.Policies;

/// <summary>MINOR faults: UFFDIO_CONTINUE maps the page already in the page cache (the content was
/// put there through another mapping or the file). With <see cref="InstallWriteProtected"/> it is
/// mapped write-protected (CONTINUE_MODE_WP, 6.4+).</summary>
public sealed class MinorContinue(bool installWriteProtected = false) : FaultPolicy
{
    public bool InstallWriteProtected { get; } = installWriteProtected;

    public override FaultKind Kind => FaultKind.Minor;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public override ResolveResult Resolve(in FaultContext context, in FaultRun run, bool dontWake) =>
        context.Continue(run.Start, run.Length, dontWake, InstallWriteProtected);
}
