using System.Text.Json;
using UffdNative.Harness.Conformance;
using UffdNative.Harness.Probing;

namespace UffdNative.Harness.Matrix;

/// <summary>
/// What a bisect asks each build: a probe row's answer (from <c>uffdnative probe --json</c>) or a
/// check scenario's observation (from <c>uffdnative check --json --scenario S --profile P</c>, with
/// the profile pinned so that the model stays the same and only the kernel changes). <see
/// cref="StepFile"/>/<see cref="StepCommand"/> are the kernel-matrix step of a shard; <see
/// cref="ShardKind"/> names the shard directory (probe shards serve every row).
/// </summary>
public sealed record BisectTarget(string Id, bool IsScenario, string Title, string? Profile = null)
{
    public string StepFile => IsScenario ? "check.json" : "probe.json";

    public string StepCommand => IsScenario
        ? $"uffdnative check --json --scenario {Id} --profile {Profile}"
        : "uffdnative probe --json";

    public string ShardKind => IsScenario ? $"check-{Id}-profile-{Profile}" : "probe";

    /// <summary>The CVEs the row's title or the scenario's description cite (ranked first in the changelog).</summary>
    public IReadOnlyList<string> Cves => DebianChangelog.CvesIn(Title);

    /// <summary>Words of the id that narrow the changelog ranking (mremap, close, eagain).</summary>
    public IReadOnlyList<string> Hints =>
        [.. Id.Split('-').Where(w => w.Length >= 4 && !StopWords.Contains(w))];

    private static readonly HashSet<string> StopWords = ["clears", "keeps", "field", "result", "event", "with", "unregister", "register"];

    /// <summary>A probe row by id, else a named check scenario (<paramref name="scenario"/> forces the
    /// latter: close-clears-wp is both); null when neither exists.</summary>
    public static BisectTarget? Find(string id, bool scenario, string profile)
    {
        if (!scenario && BehaviourRows.All.FirstOrDefault(r => r.Id == id) is { } row)
            return new BisectTarget(row.Id, false, row.Title);
        if (NamedScenarios.All.FirstOrDefault(s => s.Name == id) is { } named)
            return new BisectTarget(named.Name, true, $"{named.Section} {named.Description}", profile);
        return null;
    }

    /// <summary>The answer in a shard's step output. Throws <see cref="FormatException"/> when the
    /// report is malformed or lacks the row/scenario.</summary>
    public BisectAnswer AnswerFrom(string json, string source) => IsScenario ? ScenarioAnswer(json, source) : RowAnswer(json, source);

    private BisectAnswer RowAnswer(string json, string source)
    {
        var report = ProbeReport.FromJson(json, source);
        var b = report.Behaviours.FirstOrDefault(x => x.Id == Id)
            ?? throw new FormatException($"{source}: the report has no row {Id} (a CLI older than the row?)");
        if (b.Kind == "observed" && b.Value is bool v)
            return new BisectAnswer($"observed:{v}", $"{(v ? "new" : "old")}: {b.Observed}");
        return new BisectAnswer(b.Kind, $"{b.Kind}: {b.Observed}");
    }

    private BisectAnswer ScenarioAnswer(string json, string source)
    {
        using var doc = JsonDocument.Parse(json);
        if (!doc.RootElement.TryGetProperty("results", out var results) || results.ValueKind != JsonValueKind.Array)
            throw new FormatException($"{source}: not a check report (no results)");
        var keys = new List<string>();
        var texts = new List<string>();
        foreach (var r in results.EnumerateArray())
        {
            if (Str(r, "scenario") != Id) continue;
            var memory = Str(r, "memory") ?? "?";
            var status = Str(r, "status") ?? "?";
            var actual = Str(r, "actual");
            var aspect = Str(r, "aspect");
            keys.Add(status == "diverged" ? $"{memory}:{status}:{aspect}={actual}" : $"{memory}:{status}");
            texts.Add(status == "diverged" ? $"{memory} diverged ({aspect}: kernel {actual}, model {Str(r, "expected")})" : $"{memory} {status}");
        }
        if (keys.Count == 0)
            throw new FormatException($"{source}: the check report has no scenario {Id}");
        return new BisectAnswer(string.Join(" ", keys), string.Join("; ", texts));
    }

    private static string? Str(JsonElement e, string name) =>
        e.TryGetProperty(name, out var p) && p.ValueKind == JsonValueKind.String ? p.GetString() : null;
}
