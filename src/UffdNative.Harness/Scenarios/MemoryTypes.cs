using UffdNative.Memory;
namespace UffdNative.Harness.Scenarios;

/// <summary>The memory types of the kernel's uffd-unit-tests (reference §2.1 "Framework").</summary>
public enum MemoryType { Anon, Shmem, ShmemPrivate, Hugetlb, HugetlbPrivate }

/// <summary>How a mapping of the scenario is made: private anonymous, or MAP_SHARED / MAP_PRIVATE of the
/// scenario's memfd.</summary>
public enum MapKind { Anon, Shared, Private }

/// <summary>Names, parsing and the usual sets of <see cref="MemoryType"/>.</summary>
public static class MemoryTypes
{
    public static string Name(MemoryType t) => t switch
    {
        MemoryType.Anon => "anon",
        MemoryType.Shmem => "shmem",
        MemoryType.ShmemPrivate => "shmem-private",
        MemoryType.Hugetlb => "hugetlb",
        MemoryType.HugetlbPrivate => "hugetlb-private",
        _ => t.ToString(),
    };

    public static MemoryType Parse(string s) => s switch
    {
        "anon" => MemoryType.Anon,
        "shmem" => MemoryType.Shmem,
        "shmem-private" => MemoryType.ShmemPrivate,
        "hugetlb" => MemoryType.Hugetlb,
        "hugetlb-private" => MemoryType.HugetlbPrivate,
        _ => throw new FormatException($"unknown memory type '{s}' (anon, shmem, shmem-private, hugetlb, hugetlb-private)"),
    };

    /// <summary>The kind of the primary mapping for a memory type.</summary>
    public static MapKind PrimaryKind(MemoryType t) => t switch
    {
        MemoryType.Anon => MapKind.Anon,
        MemoryType.Shmem or MemoryType.Hugetlb => MapKind.Shared,
        _ => MapKind.Private,
    };

    public static readonly MemoryType[] All = [MemoryType.Anon, MemoryType.Shmem, MemoryType.ShmemPrivate, MemoryType.Hugetlb, MemoryType.HugetlbPrivate];

    /// <summary>The memory types of 4 KiB pages (the fuzzer's, and the scenarios whose rules hugetlb does not
    /// share or the model does not define for it: PAGEMAP_SCAN, WP_ASYNC, pwrite).</summary>
    public static readonly MemoryType[] Modelled = [MemoryType.Anon, MemoryType.Shmem, MemoryType.ShmemPrivate];

    /// <summary><see cref="Modelled"/> and both hugetlb types (2 MiB pages: a scenario page is one huge page).</summary>
    public static readonly MemoryType[] ModelledWithHugetlb = [.. Modelled, MemoryType.Hugetlb, MemoryType.HugetlbPrivate];

    /// <summary><see cref="AllShmem"/> and shared hugetlb: the file operations (hole punch, truncate) whose effect on a
    /// private hugetlb mapping changed in 6.17 (hugetlb_vmdelete_list skips VMAs without a shareable lock, dd83609b8898)
    /// and is not modelled.</summary>
    public static readonly MemoryType[] SharedHugetlbToo = [MemoryType.Shmem, MemoryType.ShmemPrivate, MemoryType.Hugetlb];

    public static bool IsHugetlb(MemoryType t) => t is MemoryType.Hugetlb or MemoryType.HugetlbPrivate;

    /// <summary>log2 of the model's huge page (2 MiB). Hugetlb memfds ask for it by size (MFD_HUGE_2MB), so a kernel
    /// booted with another default huge page size (default_hugepagesz=1G) still gives the model its pages, from the
    /// 2 MiB pool the hugetlb-pool fact reads.</summary>
    public const int HugePageShift = 21;

    /// <summary>The size of one scenario page: 4 KiB, or one 2 MiB huge page for hugetlb (reference §3.11).</summary>
    public static ulong PageBytes(MemoryType t) => IsHugetlb(t) ? 1UL << HugePageShift : 4096;

    /// <summary>A memfd for a scenario or a probe: shmem, or hugetlbfs of the model's 2 MiB pages.</summary>
    public static MemfdFile CreateMemfd(string name, long size, bool hugetlb) =>
        hugetlb ? MemfdFile.CreateHugetlb(name, size, HugePageShift) : MemfdFile.Create(name, size);

    /// <summary>Shared and private mappings of a memfd (shmem).</summary>
    public static readonly MemoryType[] AllShmem = [MemoryType.Shmem, MemoryType.ShmemPrivate];

    /// <summary>Whether the scenario's mappings of this type map a memfd (so the scenario has a file).</summary>
    public static bool IsFileBacked(MemoryType t) => t != MemoryType.Anon;
}
