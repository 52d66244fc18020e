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
///   MINOR    <see cref="MinorContinue"/> (MODE_WP with <see cref="HandlerPolicy.ContinueWp"/>, falling back on EINVAL).
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
            MissingPolicy.CopyWp => new MissingCopy(new TagSource(sc.Mappings.Count, page), installWriteProtected: true) { FallBackWithoutWriteProtect = true, RefetchRemovedPages = true },
            _ => new MissingCopy(new TagSource(sc.Mappings.Count, page)) { RefetchRemovedPages = true },
        };
        FaultPolicy[] policies = [missing, new WpUnprotect(), new MinorContinue(p.ContinueWp) { FallBackWithoutWriteProtect = true }];
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
