using System.Text.Json.Serialization;

namespace UffdNative.Harness.Scenarios;

/// <summary>The JSON form of scenarios (replay files, reproducers): format v1, pinned by tests. Type names
/// never appear in it (ops carry an "op" discriminator), so the namespace of these types is not part of it.</summary>
[JsonSourceGenerationOptions(WriteIndented = true, UseStringEnumConverter = true, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(Scenario))]
[JsonSerializable(typeof(List<Scenario>))]
public sealed partial class ScenarioJsonContext : JsonSerializerContext;

/// <summary>The JSON form of a run's observations.</summary>
[JsonSourceGenerationOptions(WriteIndented = true)]
[JsonSerializable(typeof(ScenarioTrace))]
public sealed partial class TraceJsonContext : JsonSerializerContext;
