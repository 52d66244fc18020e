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
    public int MappingIndex(string name)
    {
        for (int i = 0; i < Mappings.Count; i++)
            if (Mappings[i].Name == name)
                return i;
        throw new ArgumentException($"scenario '{Name}' has no mapping '{name}'", nameof(name));
    }
    public UffdSpec Uffd(string name) => Uffds.FirstOrDefault(u => u.Name == name) ?? throw new ArgumentException($"scenario '{Name}' has no uffd '{name}'");

    /// <summary>All features the scenario asks the kernel for (what makes a cell applicable).</summary>
    public UffdFeatures RequiredFeatures => Uffds.Aggregate(UffdFeatures.None, (a, u) => a | u.Features);

    public string ToJson() => JsonSerializer.Serialize(this, ScenarioJsonContext.Default.Scenario);

    public static Scenario FromJson(string json) =>
        JsonSerializer.Deserialize(json, ScenarioJsonContext.Default.Scenario) ?? throw new FormatException("empty scenario JSON");

    /// <summary>Reads a scenario from its JSON and validates it (<see cref="ScenarioValidator"/>): the way every
    /// scenario from outside (a file, a reproducer) comes in. Throws <see cref="FormatException"/> with one line
    /// saying what is wrong (malformed JSON with its line, an unknown op, a field out of range).</summary>
    public static Scenario Load(string json)
    {
        Scenario? s;
        try
        {
            s = JsonSerializer.Deserialize(json, ScenarioJsonContext.Default.Scenario);
        }
        catch (JsonException e)
        {
            var where = e.LineNumber is { } l ? $" at line {l + 1}, byte {e.BytePositionInLine + 1}" : "";
            throw new FormatException($"not valid scenario JSON{where}: {FirstSentence(e.Message)}", e);
        }
        catch (Exception e) when (e is NotSupportedException or InvalidOperationException or ArgumentException)
        {
            // The serializer's refusals of shapes it cannot bind (an abstract op without "op", a wrong type).
            throw new FormatException($"not a scenario: {FirstSentence(e.Message)}", e);
        }
        if (s is null)
            throw new FormatException("not a scenario: the JSON is null");
        if (ScenarioValidator.Validate(s) is { } why)
            throw new FormatException(why.StartsWith("not a scenario", StringComparison.Ordinal) ? why : $"not a runnable scenario: {why}");
        return s;
    }

    private static string FirstSentence(string message)
    {
        var line = message.Split('\n')[0].Trim();
        int i = line.IndexOf(". ", StringComparison.Ordinal);
        return (i > 0 ? line[..i] : line).TrimEnd('.');
    }

    public string Describe()
    {
        var sb = new System.Text.StringBuilder();
        sb.AppendLine($"scenario {Name} ({MemoryTypes.Name(Memory)}), file {FilePages} pages");
        foreach (var m in Mappings)
            sb.AppendLine($"  mapping {m.Name}: {m.Kind} {m.Pages} pages{(m.Kind != MapKind.Anon ? $" from file page {m.FileOffset}" : "")}{(m.HugePage ? " THP" : "")}");
        foreach (var u in Uffds)
            sb.AppendLine($"  uffd {u.Name}: features {UffdFeatureInfo.Describe(u.Features)}{(u.UserModeOnly ? ", USER_MODE_ONLY" : "")}");
        sb.AppendLine($"  handler: MISSING -> {Policy.Missing}{(Policy.Missing == MissingPolicy.Move ? $"({Policy.MoveSource}, {Policy.MoveChunk} pages)" : "")}, WP -> unprotect, MINOR -> {(Policy.MinorInvertThrough is { } inv ? $"invert through {inv}, " : "")}continue{(Policy.ContinueWp ? "(MODE_WP)" : "")}{(Policy.PoisonPages is { } pp ? $", POISON pages {string.Join(",", pp)}" : "")}");
        for (int i = 0; i < Ops.Count; i++)
            sb.AppendLine($"  {i,2}: {Ops[i].Describe()}");
        return sb.ToString();
    }
}
