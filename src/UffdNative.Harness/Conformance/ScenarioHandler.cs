using UffdNative.Harness.Scenarios;
using UffdNative.Messages;
using UffdNative.Serving;
using UffdNative.Serving.Policies;

namespace UffdNative.Harness.Conformance;

/// <summary>
/// The scenario's declared handler (<see cref="HandlerPolicy"/>) as the shipping policies of
/// <c>UffdNative.Serving</c>: the conformance executor serves every uffd of a scenario with a stepped
/// <see cref="FaultServer"/> running these, so each <c>check</c>/<c>fuzz</c> cell also tests the engine.
///   MISSING  Copy → <see cref="MissingCopy"/> of <see cref="HandlerPolicy.CopyTag"/> pages; CopyWp → the same
///            with MODE_WP, falling back to a plain COPY on EINVAL; ZeroPage → <see cref="MissingZero"/>;
///            Move → <see cref="MissingMove"/> from the same page of <see cref="HandlerPolicy.MoveSource"/>.
///   WP       <see cref="WpUnprotect"/>.
///   MINOR    <see cref="MinorContinue"/> (MODE_WP with <see cref="HandlerPolicy.ContinueWp"/>, falling back on EINVAL);
///            with <see cref="HandlerPolicy.MinorInvertThrough"/> <see cref="MinorFillContinue"/> of the inverted bytes.
///   POISON   <see cref="HandlerPolicy.PoisonPages"/> → <see cref="MissingCopy.PoisonedPages"/>.
/// A page a REMOVE discarded is copied anew (the tag source stays authoritative), as the model states.
/// In a hugetlb scenario a scenario page is a 2 MiB huge page: each policy is handed the whole huge page of
/// its run (<see cref="HugePageRuns"/>), since the kernel refuses hugetlb ranges that are not huge-page aligned.
/// </summary>
internal static class ScenarioHandler
{
    /// <summary>Source offsets of mapping i start at i × Stride (the tag source decodes the mapping from it).</summary>
    private const ulong Stride = 1UL << 40;

    /// <summary>The policies for one uffd of the scenario. addressOf gives a mapping's current start
    /// (the MOVE source's, read once: <see cref="MoveSourceMoved"/> updates it after an mremap).</summary>
    public static IReadOnlyList<FaultPolicy> Policies(Scenario sc, Func<string, (ulong Address, ulong Length)> addressOf, ulong page = 4096)
    {
        var p = sc.Policy;
        FaultPolicy missing = p.Missing switch
        {
            MissingPolicy.ZeroPage => new MissingZero(),
            MissingPolicy.Move => MoveFrom(addressOf(p.MoveSource ?? throw new InvalidOperationException("MISSING policy Move without a source")), p.MoveChunk),
            MissingPolicy.CopyWp => new MissingCopy(new TagSource(sc.Mappings.Count, page), installWriteProtected: true) { FallBackWithoutWriteProtect = true, RefetchRemovedPages = true, PoisonedPages = Poisoned(sc, page) },
            _ => new MissingCopy(new TagSource(sc.Mappings.Count, page)) { RefetchRemovedPages = true, PoisonedPages = Poisoned(sc, page) },
        };
        FaultPolicy minor = p.MinorInvertThrough is { } alias
            ? new FileOffsetRuns(new MinorFillContinue(new InverseSource(addressOf(alias).Address, addressOf(alias).Length), (nint)addressOf(alias).Address, addressOf(alias).Length, p.ContinueWp) { FallBackWithoutWriteProtect = true }, sc, addressOf, page)
            : new MinorContinue(p.ContinueWp) { FallBackWithoutWriteProtect = true };
        FaultPolicy[] policies = [missing, new WpUnprotect(), minor];
        return page == 4096 ? policies : [.. policies.Select(x => new HugePageRuns(x, page))];
    }

    /// <summary>A shipping policy resolving whole huge pages: the server's runs are 4 KiB pages (the fault address
    /// is the huge page's base, §3.11), so the run is widened to the huge page it starts in. Its progress covers the
    /// server's run, which then wakes the base address the faulting thread waits on.</summary>
    private sealed class HugePageRuns(FaultPolicy inner, ulong page) : FaultPolicy
    {
        public override FaultKind Kind => inner.Kind;

        public override string Name => inner.Name;

        public override ResolveResult Resolve(in FaultContext context, in FaultRun run, bool dontWake)
        {
            ulong start = run.Start & ~(page - 1);
            ulong end = (run.End + page - 1) & ~(page - 1);
            return inner.Resolve(context, new FaultRun(start, end - start, run.Kind, run.Range), dontWake);
        }

        public override FaultPolicy ForForkChild() => inner.ForForkChild() is var c && ReferenceEquals(c, inner) ? this : new HugePageRuns(c, page);
    }

    /// <summary>The source offsets of <see cref="HandlerPolicy.PoisonPages"/> in every mapping (every 4 KiB of a huge
    /// page: the policy walks a run in base pages).</summary>
    private static HashSet<ulong>? Poisoned(Scenario sc, ulong page)
    {
        if (sc.Policy.PoisonPages is not { } pages)
            return null;
        var set = new HashSet<ulong>();
        for (int i = 0; i < sc.Mappings.Count; i++)
            foreach (int p in pages)
                for (ulong b = 0; b < page; b += 4096)
                    set.Add((ulong)i * Stride + (ulong)p * page + b);
        return set;
    }

    /// <summary>Hands the inner policy its run with the file offset as the source offset (the shipping
    /// <see cref="MinorFillContinue"/> addresses its alias by it); the scenario's ranges count source offsets per
    /// mapping (<see cref="Range"/>). The mapping is found by its current address, so an mremap is followed.</summary>
    private sealed class FileOffsetRuns(FaultPolicy inner, Scenario sc, Func<string, (ulong Address, ulong Length)> addressOf, ulong page) : FaultPolicy
    {
        public override FaultKind Kind => inner.Kind;

        public override string Name => inner.Name;

        public override ResolveResult Resolve(in FaultContext context, in FaultRun run, bool dontWake)
        {
            foreach (var m in sc.Mappings)
            {
                var (address, length) = addressOf(m.Name);
                if (m.Kind != MapKind.Anon && run.Start >= address && run.Start - address < length)
                    return inner.Resolve(context, new FaultRun(run.Start, run.Length, run.Kind, new ServedRange(address, length, (ulong)m.FileOffset * page)), dontWake);
            }
            return ResolveResult.Fail(UffdNative.Errno.EFAULT);
        }

        public override FaultPolicy ForForkChild() => inner.ForForkChild() is var c && ReferenceEquals(c, inner) ? this : new FileOffsetRuns(c, sc, addressOf, page);
    }

    /// <summary>The bitwise inverse of the file's current bytes, read through the unregistered alias at file offset
    /// 0 (<see cref="HandlerPolicy.MinorInvertThrough"/>): what upstream's MINOR handler writes before CONTINUE.</summary>
    private sealed unsafe class InverseSource(ulong alias, ulong length) : PageSource
    {
        private byte[] buf = [];

        public override ulong Length => length;

        public override nint Prepare(ulong offset, ulong len, out ulong available)
        {
            const ulong Page = 4096;
            if ((ulong)buf.Length < len + Page)
                buf = GC.AllocateArray<byte>((int)(len + Page), pinned: true);
            fixed (byte* b = buf)
            {
                // A staging buffer of our own; the alias is never registered (ScenarioValidator), so reading it here cannot fault into a uffd.
                ulong* p = (ulong*)(((ulong)b + Page - 1) & ~(Page - 1));
                Buffer.MemoryCopy((void*)(alias + offset), p, len, len);
                for (ulong i = 0; i < len / 8; i++)
                    p[i] = ~p[i];
                available = len;
                return (nint)p; // pinned: the address stays valid after the fixed block
            }
        }

        public override PageSource ForForkChild() => new InverseSource(alias, length);
    }

    private static MissingMove MoveFrom((ulong Address, ulong Length) src, int chunk) => new(src.Address, src.Length, Math.Max(1, chunk));

    /// <summary>The served range of mapping index at address: MOVE takes the page of the same index in
    /// its source (offset from the mapping's start), COPY decodes the mapping from the offset.</summary>
    public static ServedRange Range(Scenario sc, int index, ulong address, ulong length) =>
        new(address, length, sc.Policy.Missing == MissingPolicy.Move ? 0 : (ulong)index * Stride);

    /// <summary>After an mremap of the MOVE source: the policies move from its new place.</summary>
    public static void MoveSourceMoved(IEnumerable<FaultPolicy> policies, ulong newAddress)
    {
        foreach (var p in policies)
            if (p is MissingMove mv)
                mv.SourceStart = newAddress;
    }

    /// <summary>Pages whose first word is <see cref="HandlerPolicy.CopyTag"/> of (mapping, page), the rest
    /// zero, staged in a pinned array (freed by the GC with the policy, nothing to dispose).</summary>
    private sealed unsafe class TagSource(int mappings, ulong page) : PageSource
    {
        private byte[] buf = [];

        public override ulong Length => (ulong)mappings * Stride;

        public override nint Prepare(ulong offset, ulong length, out ulong available)
        {
            const ulong Page = 4096;
            if ((ulong)buf.Length < length + Page)
                buf = GC.AllocateArray<byte>((int)(length + Page), pinned: true);
            fixed (byte* b = buf)
            {
                // A staging buffer of our own, never registered with any uffd: the policy copies from it.
                byte* p = (byte*)(((ulong)b + Page - 1) & ~(Page - 1)); // page aligned
                new Span<byte>(p, (int)length).Clear();
                int mapping = (int)(offset / Stride);
                ulong first = offset % Stride / page;
                for (ulong i = 0; i < length / page; i++)
                    *(ulong*)(p + i * page) = HandlerPolicy.CopyTag(mapping, (int)(first + i));
                available = length;
                return (nint)p; // pinned: the address stays valid after the fixed block
            }
        }

        public override PageSource ForForkChild() => new TagSource(mappings, page);
    }
}
