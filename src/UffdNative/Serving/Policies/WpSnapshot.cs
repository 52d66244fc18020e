using System.Runtime.CompilerServices;
using UffdNative.Memory;
using UffdNative.Messages;

namespace UffdNative.Serving.Policies;

/// <summary>
/// WP faults for a background snapshot (QEMU's uffd-wp live snapshot): before a page may change, its
/// current content is copied into the <see cref="SnapshotStore"/>, then the page is unprotected. The
/// copy is native (the page is read, never through managed code). Register the range WP only: a
/// MISSING registration would make the snapshot read fault on the loop thread itself.
/// </summary>
public sealed class WpSnapshot(SnapshotStore store) : FaultPolicy
{
    public SnapshotStore Store { get; } = store;

    public override FaultKind Kind => FaultKind.WriteProtect;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public override ResolveResult Resolve(in FaultContext context, in FaultRun run, bool dontWake)
    {
        if (run.Range is not { } range)
            return ResolveResult.Fail(Errno.EFAULT);
        ulong page = Mapping.PageSize, saved = 0;
        for (ulong a = run.Start; a < run.End; a += page)
        {
            ulong offset = range.SourceOffsetOf(a);
            if (Store.TryClaim(offset))
            {
                context.CopyMemory(Store.AddressOf(offset), a, page);
                saved++;
            }
        }
        context.CountSnapshotPages(saved);
        return context.Unprotect(run.Start, run.Length, dontWake);
    }
}
