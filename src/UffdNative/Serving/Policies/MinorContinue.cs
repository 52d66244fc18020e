using System.Runtime.CompilerServices;
using UffdNative.Messages;

namespace UffdNative.Serving.Policies;

/// <summary>MINOR faults: UFFDIO_CONTINUE maps the page already in the page cache (the content was
/// put there through another mapping or the file). With <see cref="InstallWriteProtected"/> it is
/// mapped write-protected (CONTINUE_MODE_WP, 6.4+).</summary>
public sealed class MinorContinue(bool installWriteProtected = false) : FaultPolicy
{
    public bool InstallWriteProtected { get; } = installWriteProtected;

    /// <summary>With <see cref="InstallWriteProtected"/>: when the kernel refuses MODE_WP with EINVAL (the
    /// range is not registered for WP, or the kernel predates CONTINUE_MODE_WP, 6.4), map the page
    /// without write protection instead of failing — a second CONTINUE in the same step.</summary>
    public bool FallBackWithoutWriteProtect { get; init; }

    public override FaultKind Kind => FaultKind.Minor;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public override ResolveResult Resolve(in FaultContext context, in FaultRun run, bool dontWake) =>
        Continue(context, run.Start, run.Length, dontWake, InstallWriteProtected, FallBackWithoutWriteProtect);

    /// <summary>UFFDIO_CONTINUE of [start, start+len), with MODE_WP when writeProtect; when the kernel refuses MODE_WP
    /// with EINVAL and fallBack, a second CONTINUE without it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ResolveResult Continue(in FaultContext context, ulong start, ulong len, bool dontWake, bool writeProtect, bool fallBack)
    {
        var r = context.Continue(start, len, dontWake, writeProtect);
        if (writeProtect && fallBack && r.Ret == -Errno.EINVAL)
            r = context.Continue(start, len, dontWake);
        return r;
    }
}
