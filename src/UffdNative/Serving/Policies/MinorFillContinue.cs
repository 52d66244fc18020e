using System.Runtime.CompilerServices;
using UffdNative.Messages;

namespace UffdNative.Serving.Policies;

/// <summary>
/// MINOR faults, populating the page cache first: the page's content is taken from a
/// <see cref="PageSource"/> and written through <see cref="CacheAlias"/>, a second, unregistered mapping of
/// the same shmem or hugetlbfs file, then UFFDIO_CONTINUE maps that page-cache page into the registered
/// mapping (with <see cref="InstallWriteProtected"/>: CONTINUE_MODE_WP, 6.4+). This is how a VMM serves
/// guest memory it registered MINOR (and how the kernel's uffd-unit-tests handler serves its MINOR faults,
/// reference §2.1): the alias write fills the cache without a fault, CONTINUE only installs the PTE.
/// <para>Layout: the page at source offset <c>o</c> (the served range's <see cref="ServedRange.SourceOffsetOf"/>,
/// i.e. the file offset when the range's source offset is its file offset) is at <c>CacheAlias + o</c>; a run
/// whose bytes would fall outside [CacheAlias, CacheAlias + AliasLength) is refused with EFAULT, nothing written.
/// The alias must stay mapped, unregistered, and the file must not shrink below it while the server runs: the
/// loop thread writes it natively (a write to a registered alias would fault on the loop thread itself, one past
/// i_size raises SIGBUS).</para>
/// </summary>
public sealed class MinorFillContinue(PageSource source, nint cacheAlias, ulong aliasLength, bool installWriteProtected = false) : FaultPolicy
{
    public PageSource Source { get; } = source;
    public nint CacheAlias { get; } = cacheAlias;
    public ulong AliasLength { get; } = aliasLength;
    public bool InstallWriteProtected { get; } = installWriteProtected;

    /// <summary>With <see cref="InstallWriteProtected"/>: when the kernel refuses MODE_WP with EINVAL (the
    /// range is not registered for WP, or the kernel predates CONTINUE_MODE_WP, 6.4), map the page without
    /// write protection instead of failing — a second CONTINUE in the same step.</summary>
    public bool FallBackWithoutWriteProtect { get; init; }

    public override FaultKind Kind => FaultKind.Minor;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public override ResolveResult Resolve(in FaultContext context, in FaultRun run, bool dontWake)
    {
        if (run.Range is not { } range)
            return ResolveResult.Fail(Errno.EFAULT); // no source offset for memory the server does not serve
        ulong offset = range.SourceOffsetOf(run.Start);
        if (offset >= AliasLength || run.Length > AliasLength - offset)
            return ResolveResult.Fail(Errno.EFAULT);
        nint src = Source.Prepare(offset, run.Length, out ulong available);
        context.CopyMemory(CacheAlias + (nint)offset, (ulong)src, available);
        return MinorContinue.Continue(context, run.Start, available, dontWake, InstallWriteProtected, FallBackWithoutWriteProtect);
    }

    public override FaultPolicy ForForkChild() => Source.ForForkChild() is var s && ReferenceEquals(s, Source)
        ? this
        : new MinorFillContinue(s, CacheAlias, AliasLength, InstallWriteProtected) { FallBackWithoutWriteProtect = FallBackWithoutWriteProtect };
}
