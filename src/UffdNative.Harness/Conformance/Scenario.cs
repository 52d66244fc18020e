using System.Text.Json;
using System.Text.Json.Serialization;

namespace UffdNative.Harness.Conformance;

/// <summary>The memory types of the kernel's uffd-unit-tests (reference §2.1 "Framework").</summary>
public enum MemoryType { Anon, Shmem, ShmemPrivate, Hugetlb, HugetlbPrivate }

/// <summary>How a mapping of the scenario is made: private anonymous, or MAP_SHARED / MAP_PRIVATE of the
/// scenario's memfd.</summary>
public enum MapKind { Anon, Shared, Private }

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
}

/// <summary>A mapping of the scenario. File mappings map <see cref="Pages"/> pages of the memfd from file
/// page <see cref="FileOffset"/>. <see cref="HugePage"/> asks for MADV_HUGEPAGE (THP) instead of the default
/// MADV_NOHUGEPAGE, and a 2 MiB aligned placement.</summary>
public sealed record MappingSpec(string Name, MapKind Kind, int Pages, int FileOffset = 0)
{
    public bool HugePage { get; init; }
}

/// <summary>A uffd of the scenario: the features enabled by UFFDIO_API, and whether it is opened
/// UFFD_USER_MODE_ONLY.</summary>
public sealed record UffdSpec(string Name, UffdFeatures Features, bool UserModeOnly = false);

/// <summary>How a MISSING fault is resolved by the scenario's handler (reference §2.1 "Generic handler").</summary>
public enum MissingPolicy
{
    /// <summary>UFFDIO_COPY of a page whose first word is <see cref="HandlerPolicy.CopyTag"/>.</summary>
    Copy,
    /// <summary>UFFDIO_COPY with MODE_WP (falls back to a plain COPY when the ioctl says EINVAL).</summary>
    CopyWp,
    ZeroPage,
    /// <summary>UFFDIO_MOVE from the same offset of <see cref="HandlerPolicy.MoveSource"/> (ALLOW_SRC_HOLES),
    /// <see cref="HandlerPolicy.MoveChunk"/> pages at a time, aligned.</summary>
    Move,
}

/// <summary>The handler's declared policy. WP faults are always resolved by un-protecting the page; MINOR
/// faults by UFFDIO_CONTINUE (with MODE_WP when <see cref="ContinueWp"/>, falling back on EINVAL). An
/// EEXIST answer is followed by UFFDIO_WAKE. Any other failure leaves the faulting thread blocked: the
/// scenario then ends with "blocked".</summary>
public sealed record HandlerPolicy
{
    public MissingPolicy Missing { get; init; } = MissingPolicy.Copy;
    public bool ContinueWp { get; init; }
    public string? MoveSource { get; init; }
    public int MoveChunk { get; init; } = 1;

    /// <summary>The first word of the page COPY installs for a MISSING fault on page p of mapping number m.</summary>
    public static ulong CopyTag(int mapping, int page) => 0xC0000UL + ((ulong)mapping << 8) + (ulong)page;
}

/// <summary>A differential scenario: a setup (memfd size, mappings, uffds with features, a handler policy)
/// and a list of ops. JSON round-trips (<see cref="ToJson"/>, <see cref="FromJson"/>) for replay.</summary>
public sealed record Scenario
{
    public string Name { get; init; } = "scenario";
    public MemoryType Memory { get; init; } = MemoryType.Shmem;
    /// <summary>Initial size of the memfd in pages (0: no memfd).</summary>
    public int FilePages { get; init; }
    public IReadOnlyList<MappingSpec> Mappings { get; init; } = [];
    public IReadOnlyList<UffdSpec> Uffds { get; init; } = [];
    public HandlerPolicy Policy { get; init; } = new();
    public IReadOnlyList<ScenarioOp> Ops { get; init; } = [];
    /// <summary>What the scenario shows, with the reference section.</summary>
    public string Description { get; init; } = "";

    public MappingSpec Mapping(string name) => Mappings.FirstOrDefault(m => m.Name == name) ?? throw new ArgumentException($"scenario '{Name}' has no mapping '{name}'");
    public int MappingIndex(string name) => Mappings.Select((m, i) => (m, i)).First(x => x.m.Name == name).i;
    public UffdSpec Uffd(string name) => Uffds.FirstOrDefault(u => u.Name == name) ?? throw new ArgumentException($"scenario '{Name}' has no uffd '{name}'");

    /// <summary>All features the scenario asks the kernel for (what makes a cell applicable).</summary>
    public UffdFeatures RequiredFeatures => Uffds.Aggregate(UffdFeatures.None, (a, u) => a | u.Features);

    public string ToJson() => JsonSerializer.Serialize(this, ScenarioJsonContext.Default.Scenario);

    public static Scenario FromJson(string json) =>
        JsonSerializer.Deserialize(json, ScenarioJsonContext.Default.Scenario) ?? throw new FormatException("empty scenario JSON");

    public string Describe()
    {
        var sb = new System.Text.StringBuilder();
        sb.AppendLine($"scenario {Name} ({MemoryTypes.Name(Memory)}), file {FilePages} pages");
        foreach (var m in Mappings)
            sb.AppendLine($"  mapping {m.Name}: {m.Kind} {m.Pages} pages{(m.Kind != MapKind.Anon ? $" from file page {m.FileOffset}" : "")}{(m.HugePage ? " THP" : "")}");
        foreach (var u in Uffds)
            sb.AppendLine($"  uffd {u.Name}: features {UffdFeatureInfo.Describe(u.Features)}{(u.UserModeOnly ? ", USER_MODE_ONLY" : "")}");
        sb.AppendLine($"  handler: MISSING -> {Policy.Missing}{(Policy.Missing == MissingPolicy.Move ? $"({Policy.MoveSource}, {Policy.MoveChunk} pages)" : "")}, WP -> unprotect, MINOR -> continue{(Policy.ContinueWp ? "(MODE_WP)" : "")}");
        for (int i = 0; i < Ops.Count; i++)
            sb.AppendLine($"  {i,2}: {Ops[i].Describe()}");
        return sb.ToString();
    }
}

[JsonSourceGenerationOptions(WriteIndented = true, UseStringEnumConverter = true, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(Scenario))]
[JsonSerializable(typeof(List<Scenario>))]
public sealed partial class ScenarioJsonContext : JsonSerializerContext;
