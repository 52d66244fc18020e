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

    /// <summary>The memory types the model covers (4 KiB pages: no hugetlb).</summary>
    public static readonly MemoryType[] Modelled = [MemoryType.Anon, MemoryType.Shmem, MemoryType.ShmemPrivate];

    /// <summary>Shared and private mappings of a memfd (shmem).</summary>
    public static readonly MemoryType[] AllShmem = [MemoryType.Shmem, MemoryType.ShmemPrivate];

    /// <summary>Whether the scenario's mappings of this type map a memfd (so the scenario has a file).</summary>
    public static bool IsFileBacked(MemoryType t) => t != MemoryType.Anon;
}
