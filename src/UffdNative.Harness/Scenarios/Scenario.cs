using System.Text.Json;

namespace UffdNative.Harness.Scenarios;

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
