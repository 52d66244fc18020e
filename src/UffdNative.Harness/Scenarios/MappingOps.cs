namespace UffdNative.Harness.Scenarios;

/// <summary>DONTNEED and REMOVE zap (and raise REMOVE events); PAGEOUT asks reclaim to write the pages out (no event,
/// best effort: a private anonymous page without swap stays where it is, §3.9).</summary>
public enum MadviseAdvice { DontNeed, Remove, PageOut }

/// <summary>madvise over a page range. With <see cref="Hold"/> the REMOVE event it raises is left unread
/// (the caller stays blocked in D state, and every fill/WP ioctl of that uffd sees mmap_changing, §1.6)
/// until a <see cref="DrainOp"/>.</summary>
public sealed record MadviseOp(string M, int First, int Count, MadviseAdvice Advice, bool Hold = false) : ScenarioOp
{
    public override string Describe() => $"madvise {Range(M, First, Count)} {Advice switch { MadviseAdvice.DontNeed => "DONTNEED", MadviseAdvice.Remove => "REMOVE", _ => "PAGEOUT" }}{(Hold ? " (event held)" : "")}";
}

/// <summary>madvise(MADV_COLLAPSE) of a whole 2 MiB MAP_SHARED shmem mapping (uffd-unit-tests minor-collapse); the result
/// carries the mapping's smaps ShmemPmdMapped afterwards ("ok ShmemPmdMapped=2048kB").</summary>
public sealed record CollapseOp(string M) : ScenarioOp
{
    /// <summary>The pages of one PMD (2 MiB of 4 KiB pages): the size a collapsible mapping has.</summary>
    public const int PmdPages = 512;

    public override string Describe() => $"madvise {M} COLLAPSE";
}

/// <summary>Reads every pending event and lets held callers finish.</summary>
public sealed record DrainOp : ScenarioOp
{
    public override string Describe() => "drain";
}

/// <summary>mprotect(PROT_READ) then mprotect(PROT_READ|PROT_WRITE) over the range.</summary>
public sealed record MprotectOp(string M, int First, int Count) : ScenarioOp
{
    public override string Describe() => $"mprotect-roundtrip {Range(M, First, Count)}";
}

/// <summary>mremap(MAYMOVE|FIXED) of the whole mapping to a free place; the mapping keeps its name.</summary>
public sealed record MremapOp(string M) : ScenarioOp
{
    public override string Describe() => $"mremap {M}";
}

/// <summary>PAGEMAP_SCAN over the mapping for written pages (category_mask = PAGE_IS_WRITTEN), optionally
/// write-protecting them atomically (WP_MATCHING|CHECK_WPASYNC).</summary>
public sealed record ScanOp(string M, bool WpMatching = false) : ScenarioOp
{
    public override string Describe() => $"pagemap-scan {M}{(WpMatching ? " WP_MATCHING|CHECK_WPASYNC" : "")}";
}
