using System.Collections.Concurrent;
using Json.Schema;

namespace UffdNative.Harness.Tests.Formats;

/// <summary>
/// Every JSON document the CLI writes, produced by the real verbs on this kernel, validated against its
/// JSON Schema in docs/schemas/ (draft 2020-12; JsonSchema.Net). The schemas are strict — every
/// property required, no unknown property, enums for statuses and verdicts — so a field added to a
/// report fails here, naming the property and the schema file to extend.
/// </summary>
public sealed class JsonSchemaTests
{
    /// <summary>The verbs whose --json (or --format json) documents these tests produce and validate.</summary>
    public static readonly IReadOnlyList<string> ValidatedVerbs = ["probe", "check", "bench", "soak", "fuzz", "replay", "compare", "bisect"]; // bisect: in BisectTests (its runs boot kernels)

    private static readonly ConcurrentDictionary<string, JsonSchema> Schemas = new();

    public static string SchemaPath(string verb) => Repo.PathOf($"docs/schemas/{verb}.schema.json");

    private static JsonSchema SchemaOf(string verb) => Schemas.GetOrAdd(verb, v => JsonSchema.FromFile(SchemaPath(v)));

    /// <summary>The problems of <paramref name="json"/> against the verb's schema: "instance path: error".</summary>
    public static List<string> Problems(string verb, string json)
    {
        using var doc = JsonDocument.Parse(json);
        var result = SchemaOf(verb).Evaluate(doc.RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List });
        if (result.IsValid)
            return [];
        // The failed branches of an anyOf that another branch satisfied are listed too: only what failed.
        var problems = (result.Details ?? []).Prepend(result)
            .Where(d => !d.IsValid && d.Errors is { Count: > 0 })
            .SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Key}: {e.Value}"))
            .Distinct().ToList();
        Assert.True(problems.Count > 0, "invalid, but no error listed");
        return problems;
    }

    private static void AssertValid(string verb, CliResult run)
    {
        var problems = Problems(verb, run.Stdout);
        Assert.True(problems.Count == 0,
            $"`{run.CommandLine}` wrote a document docs/schemas/{verb}.schema.json refuses (a new or changed field: extend the schema):\n  " + string.Join("\n  ", problems));
    }

    [Fact]
    public void EverySchemaIsValidDraft202012()
    {
        foreach (var file in Directory.GetFiles(Repo.PathOf("docs/schemas"), "*.schema.json"))
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(file));
            var r = MetaSchemas.Draft202012.Evaluate(doc.RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List });
            Assert.True(r.IsValid, $"{file} is not a valid draft 2020-12 schema");
            Assert.Equal("https://json-schema.org/draft/2020-12/schema", doc.RootElement.GetProperty("$schema").GetString());
        }
    }

    /// <summary>A verb that gains --json must get a schema and a place in these tests; a schema must
    /// belong to a verb that writes JSON.</summary>
    [Fact]
    public void EveryVerbThatWritesJsonHasASchemaAndIsValidatedHere()
    {
        var writesJson = CliApp.BuildRoot().Subcommands.Where(c => c.Options.Any(o => o.Name == "--json")).Select(c => c.Name).Order().ToList();
        Assert.Equal(ValidatedVerbs.Order(), writesJson);
        var schemas = Directory.GetFiles(Repo.PathOf("docs/schemas"), "*.schema.json").Select(f => Path.GetFileName(f).Replace(".schema.json", "", StringComparison.Ordinal)).Order();
        Assert.Equal(ValidatedVerbs.Order(), schemas);
    }

    [Fact]
    public void ProbeJsonMatchesItsSchema() => AssertValid("probe", FormatRuns.ProbeJson);

    [Fact]
    public void CheckJsonMatchesItsSchemaWithAndWithoutDivergences()
    {
        AssertValid("check", FormatRuns.CheckJson);
        AssertValid("check", FormatRuns.FlippedCheckJson);
        Assert.True(FormatRuns.CheckReportOf(FormatRuns.FlippedCheckJson).Diverged > 0);
    }

    [Fact]
    public void BenchJsonMatchesItsSchema() =>
        AssertValid("bench", FormatRuns.Run("bench", "--json", "--pages", "256", "--repeat", "1", "--scenario", "missing-copy/anon", "--scenario", "async"));

    [Fact]
    public void SoakJsonMatchesItsSchema() =>
        AssertValid("soak", FormatRuns.Run("soak", "--json", "--seconds", "1", "--threads", "1", "--pages", "1024"));

    [Fact]
    public void CompareJsonMatchesItsSchema()
    {
        var file = Path.Combine(Path.GetTempPath(), $"uffd-probe-{Guid.NewGuid():N}.json");
        try
        {
            File.WriteAllText(file, FormatRuns.ProbeJson.Stdout);
            var run = FormatRuns.Run("compare", "--json", file, file);
            AssertValid("compare", run);
            using var doc = JsonDocument.Parse(run.Stdout);
            Assert.Equal(2, doc.RootElement.GetProperty("columns").GetArrayLength());
            Assert.Equal(0, doc.RootElement.GetProperty("differingRows").GetInt32());
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>fuzz without and with a finding (an injected model bug), and replay of its reproducer,
    /// with the detected profile and with a flipped switch.</summary>
    [Fact]
    public void FuzzAndReplayJsonMatchTheirSchemas()
    {
        var clean = FormatRuns.Run("fuzz", "--json", "--seed", "9", "--count", "20");
        AssertValid("fuzz", clean);
        Assert.Contains("scenarios/s", clean.Stderr, StringComparison.Ordinal); // progress on stderr, JSON alone on stdout

        var dir = Path.Combine(Path.GetTempPath(), $"uffd-formats-repro-{Guid.NewGuid():N}");
        try
        {
            var found = CliRunner.Exec([CliRunner.DotnetHost, CliRunner.CliDll(), "fuzz", "--json", "--seed", "5", "--seconds", "60", "--inject-bug", "WpSkipsNoneShmem", "--output", dir]);
            Assert.True(found.ExitCode == 1, found.ToString());
            AssertValid("fuzz", found);
            using (var doc = JsonDocument.Parse(found.Stdout))
            {
                var finding = doc.RootElement.GetProperty("finding");
                Assert.Equal("WpSkipsNoneShmem", doc.RootElement.GetProperty("injectedBug").GetString());
                Assert.Equal(Path.Combine(dir, "repro.json"), finding.GetProperty("reproducerJson").GetString());
            }
            var replay = FormatRuns.Run("replay", "--json", Path.Combine(dir, "repro.json"));
            AssertValid("replay", replay);
            AssertValid("replay", FormatRuns.Run(["replay", "--json", Path.Combine(dir, "repro.json"), .. FormatRuns.FlippedProfile]));
        }
        finally
        {
            if (Directory.Exists(dir))
                Directory.Delete(dir, recursive: true);
        }
    }

    // ---- the schemas refuse what is wrong

    public static TheoryData<string> DocumentVerbs => ["probe", "check", "compare"];

    /// <summary>Each top-level property of a real document removed, or given a value of another JSON
    /// type, and an unknown property added: every such document is refused, naming the property.</summary>
    [Theory]
    [MemberData(nameof(DocumentVerbs))]
    public void ABrokenDocumentFailsValidation(string verb)
    {
        string json = verb switch
        {
            "probe" => FormatRuns.ProbeJson.Stdout,
            "check" => FormatRuns.FlippedCheckJson.Stdout,
            _ => CompareDocument(),
        };
        Assert.Empty(Problems(verb, json));
        var original = JsonNode.Parse(json)!.AsObject();
        foreach (var name in original.Select(p => p.Key).ToList())
        {
            var missing = original.DeepClone().AsObject();
            missing.Remove(name);
            Assert.Contains(Problems(verb, missing.ToJsonString()), p => p.Contains(name, StringComparison.Ordinal));

            var retyped = original.DeepClone().AsObject();
            retyped[name] = OtherType(original[name]);
            Assert.True(Problems(verb, retyped.ToJsonString()).Count > 0, $"{verb}: '{name}' as {retyped[name]?.ToJsonString() ?? "null"} was accepted");
        }
        var extra = original.DeepClone().AsObject();
        extra["surprise"] = 1;
        Assert.Contains(Problems(verb, extra.ToJsonString()), p => p.Contains("surprise", StringComparison.Ordinal) || p.Contains("additionalProperties", StringComparison.Ordinal));
    }

    [Fact]
    public void AWrongStatusOrCountInACheckCellIsRefused()
    {
        var doc = JsonNode.Parse(FormatRuns.FlippedCheckJson.Stdout)!.AsObject();
        var cell = doc["results"]![0]!.AsObject();
        cell["status"] = "passed";
        Assert.Contains(Problems("check", doc.ToJsonString()), p => p.StartsWith("/results/0/status", StringComparison.Ordinal));
        cell["status"] = "pass";
        cell["milliseconds"] = "12";
        Assert.Contains(Problems("check", doc.ToJsonString()), p => p.StartsWith("/results/0/milliseconds", StringComparison.Ordinal));
        cell["milliseconds"] = 12.5;
        doc["passed"] = -1;
        Assert.Contains(Problems("check", doc.ToJsonString()), p => p.StartsWith("/passed", StringComparison.Ordinal));
        doc["passed"] = 1;
        Assert.Empty(Problems("check", doc.ToJsonString()));
    }

    private static string CompareDocument()
    {
        var file = Path.Combine(Path.GetTempPath(), $"uffd-probe-{Guid.NewGuid():N}.json");
        try
        {
            File.WriteAllText(file, FormatRuns.ProbeJson.Stdout);
            return FormatRuns.Run("compare", "--json", file).Stdout;
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>A value of a different JSON type than <paramref name="v"/>.</summary>
    private static JsonNode OtherType(JsonNode? v) => v?.GetValueKind() switch
    {
        JsonValueKind.String => JsonValue.Create(12),
        JsonValueKind.Number => JsonValue.Create("12"),
        JsonValueKind.True or JsonValueKind.False => JsonValue.Create("true"),
        JsonValueKind.Array => new JsonObject(),
        JsonValueKind.Object => new JsonArray(),
        _ => new JsonArray(), // null
    };
}
