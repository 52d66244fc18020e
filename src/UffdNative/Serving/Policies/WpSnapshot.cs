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
        var saver = new Saver(Store);
        return SnapshotResolution.SaveThenUnprotect(ref saver, context, run, dontWake);
    }

    // The copy is native (uffd_copy_memory): a read of a WP page never faults, but managed code never
    // touches registered memory.
    private readonly struct Saver(SnapshotStore store) : IPageSaver
    {
        public int Save(in FaultContext context, ulong offset, ulong address)
        {
            if (!store.TryClaim(offset))
                return 0;
            context.CopyMemory(store.AddressOf(offset), address, Memory.Mapping.PageSize);
            return 1;
        }
    }
}
