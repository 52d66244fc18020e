using UffdNative.Harness.Scenarios;

namespace UffdNative.Harness.Model;

/// <summary>What a page-table entry holds (reference §1.7, §3.2).</summary>
public enum PteKind : byte
{
    None,
    Present,
    /// <summary>PTE_MARKER_UFFD_WP: a zapped or never-populated page that is write-protected (5.19+ for
    /// shmem; anon with WP_UNPOPULATED, 6.4+).</summary>
    WpMarker,
    /// <summary>PTE_MARKER_POISONED installed by UFFDIO_POISON (6.6+): any access raises SIGBUS.</summary>
    Poison,
}

/// <summary>What a present PTE maps: the zero page, a page-cache page or a private anonymous page (not to be
/// confused with <c>UffdNative.Serving.PageSource</c>, where a MISSING policy's bytes come from).</summary>
public enum MappedPage : byte
{
    /// <summary>The shared zero page (anonymous read fault, UFFDIO_ZEROPAGE on a private mapping).</summary>
    Zero,
    /// <summary>The memfd's page-cache page (its content is the file page's tag).</summary>
    File,
    /// <summary>A private anonymous page (its content is <see cref="Pte.Tag"/>).</summary>
    Anon,
}

/// <summary>One PTE of one mapping in one process. The uffd-wp bit lives here, never on the file page
/// (reference §3.2 "Alias and other writers", invariant I1).</summary>
public struct Pte
{
    public PteKind Kind;
    public MappedPage Mapped;
    /// <summary>First word of a private anonymous page.</summary>
    public ulong Tag;
    public bool Wp;
    /// <summary>PageAnonExclusive of an anonymous page: cleared when fork shares it, set again when a
    /// write fault reuses or copies it. UFFDIO_MOVE refuses a non-exclusive page with EBUSY (§1.4).</summary>
    public bool Exclusive;
    /// <summary>The page is long-term pinned (a <see cref="PinOp"/> of this process): fork copies it for the
    /// child at once (§3.5 early CoW), UFFDIO_MOVE refuses it (EBUSY). A new page in this PTE is not pinned.</summary>
    public bool Pinned;

    public static Pte Marker => new() { Kind = PteKind.WpMarker };
    public static Pte PoisonMarker => new() { Kind = PteKind.Poison };
    public static Pte ZeroPage(bool wp) => new() { Kind = PteKind.Present, Mapped = MappedPage.Zero, Wp = wp };
    public static Pte FilePage(bool wp) => new() { Kind = PteKind.Present, Mapped = MappedPage.File, Wp = wp };
    public static Pte AnonPage(ulong tag, bool wp) => new() { Kind = PteKind.Present, Mapped = MappedPage.Anon, Tag = tag, Wp = wp, Exclusive = true };

    public readonly bool IsNone => Kind == PteKind.None;
    public readonly bool IsPresent => Kind == PteKind.Present;

    /// <summary>pte_none_mostly(): none or any PTE marker — what UFFDIO_COPY/CONTINUE may overwrite (§1.4 COPY EEXIST row).</summary>
    public readonly bool IsNoneMostly => Kind is PteKind.None or PteKind.WpMarker or PteKind.Poison;

    /// <summary>The canonical pagemap character (file bit = page-cache page; the zero page has none).</summary>
    public readonly char PageChar => Kind switch
    {
        PteKind.None => PageChars.None,
        PteKind.WpMarker => PageChars.WpMarker,
        PteKind.Poison => PageChars.Swap,
        _ => Mapped == MappedPage.File ? (Wp ? PageChars.FileWp : PageChars.File) : (Wp ? PageChars.AnonWp : PageChars.Anon),
    };

    public override readonly string ToString() => Kind switch
    {
        PteKind.None => "none",
        PteKind.WpMarker => "wp-marker",
        PteKind.Poison => "poison",
        _ => $"{Mapped.ToString().ToLowerInvariant()}{(Mapped == MappedPage.Anon ? $"(0x{Tag:x}{(Exclusive ? "" : ",shared")})" : "")}{(Wp ? "+wp" : "")}{(Pinned ? "+pin" : "")}",
    };
}

/// <summary>A userfaultfd context: its enabled features, the mm it serves, and its state.</summary>
public sealed class Ctx(string name, UffdFeatures features, bool userModeOnly, Mm mm)
{
    public string Name { get; } = name;
    public UffdFeatures Features { get; } = features;
    public bool UserModeOnly { get; } = userModeOnly;
    public Mm Mm { get; } = mm;
    /// <summary>UFFDIO_API succeeded (every other ioctl is EINVAL before, §1.2 rule 7).</summary>
    public bool Initialized { get; set; }
    public bool Released { get; set; }
    /// <summary>Unread non-cooperative events: while positive, fill/WP/MOVE ioctls see mmap_changing (§1.6).</summary>
    public int MmapChanging { get; set; }

    public bool HasFeature(UffdFeatures f) => (Features & f) == f;
    public override string ToString() => Name;
}

/// <summary>One VMA: a page range of a mapping with its uffd registration and anon_vma.</summary>
public sealed class Vma
{
    public int Start;
    public int End;
    public Ctx? Ctx;
    public RegisterMode Modes;
    /// <summary>Identity of the anon_vma (0: none). Decides whether fork copies the PTEs (§3.5,
    /// vma_needs_copy) and whether neighbours merge.</summary>
    public int AnonVma;

    public bool Has(RegisterMode m) => Ctx is not null && (Modes & m) == m;
    public bool Wp => Has(RegisterMode.WriteProtect);
    public Vma Clone() => (Vma)MemberwiseClone();
    public override string ToString() => $"[{Start},{End}){(Ctx is null ? "" : $" {Ctx.Name}:{RegisterOp.ModeText(Modes)}")}{(AnonVma != 0 ? $" av{AnonVma}" : "")}";
}

/// <summary>Whether the PTE table under a mapping exists (scenario mappings are smaller than 2 MiB and 2 MiB
/// aligned: one table each). PAGEMAP_SCAN reports a none PTE in a table and a range without one differently
/// on some kernels (scan-none-written, scan-hole-written).</summary>
public enum PageTableState : byte
{
    /// <summary>Never populated: nothing has touched the mapping yet.</summary>
    Absent,
    /// <summary>A PTE was installed (present, marker or poison): the table exists until munmap.</summary>
    Present,
    /// <summary>A fault or ioctl may have allocated one without installing an entry, or MADV_DONTNEED emptied it
    /// (the kernel may reclaim an empty table): the model cannot tell.</summary>
    Unknown,
}

/// <summary>A mapping of the scenario inside one mm: its PTEs and VMAs (which may be split by
/// registration).</summary>
public sealed class MapState
{
    public required string Name { get; init; }
    public required int Index { get; init; }
    public required MapKind Kind { get; init; }
    public required int FileOffset { get; init; }
    public required int Pages { get; init; }
    /// <summary>A mapping of a hugetlbfs memfd: each of its pages is one 2 MiB huge page (reference §3.11).</summary>
    public bool Hugetlb { get; init; }
    public required Pte[] Ptes { get; init; }
    public required List<Vma> Vmas { get; init; }
    public PageTableState PageTable { get; set; }

    /// <summary>vma_is_anonymous(): a private anonymous mapping. shmem MAP_PRIVATE is *not* anonymous.</summary>
    public bool IsAnonymous => Kind == MapKind.Anon;
    public bool IsShared => Kind == MapKind.Shared;
    public bool IsFile => Kind != MapKind.Anon;

    public Vma VmaAt(int page) => Vmas.First(v => v.Start <= page && page < v.End);

    public IEnumerable<Vma> VmasIn(int first, int count) => Vmas.Where(v => v.End > first && v.Start < first + count);

    public string PageMap => new(Ptes.Select(p => p.PageChar).ToArray());

    public MapState Clone(Func<Vma, Vma> vmaMap) => new()
    {
        Name = Name,
        Index = Index,
        Kind = Kind,
        FileOffset = FileOffset,
        Pages = Pages,
        Hugetlb = Hugetlb,
        Ptes = (Pte[])Ptes.Clone(),
        Vmas = Vmas.Select(vmaMap).ToList(),
        PageTable = PageTable,
    };
}

/// <summary>An address space: the parent process or a forked child.</summary>
public sealed class Mm(string name)
{
    public string Name { get; } = name;
    public List<MapState> Maps { get; } = [];
    public bool Alive { get; set; } = true;
    public MapState Map(string name) => Maps.First(m => m.Name == name);
}

/// <summary>The memfd (shmem file): its size and, per page, whether the page cache holds it and the tag.</summary>
public sealed class FileState(int capacity, int size)
{
    public int Size { get; set; } = size;
    public bool[] Present { get; } = new bool[capacity];
    public ulong[] Tag { get; } = new ulong[capacity];
    public int Capacity => Present.Length;

    public string Describe() => $"size {Size}: " + new string(Enumerable.Range(0, Math.Min(Capacity, Math.Max(Size, 1))).Select(i => i >= Size ? '~' : Present[i] ? (Tag[i] == 0 ? '0' : 'd') : '.').ToArray());
}
