namespace UffdNative.Harness.Tests.Scenarios;

/// <summary>The JSON form of scenarios is a file format: reproducers written by earlier builds must load,
/// and a loaded scenario must write back the same bytes. The files under Json/ were written by the build
/// before the scenario language moved out of Conformance (format v1: the named scenarios and fuzz
/// scenarios that between them use every op, field and enum value).</summary>
public class ScenarioJsonTests
{
    private static string Fixture(string name) => Repo.Read(Path.Combine("tests", "UffdNative.Harness.Tests", "Scenarios", "Json", name));

    [Fact]
    public void AReproducerWrittenByAnEarlierBuildLoadsAndWritesBackTheSameBytes()
    {
        string json = Fixture("reproducer-v1.json");
        var s = Scenario.FromJson(json);
        Assert.NotEmpty(s.Ops);
        Assert.Equal(json, s.ToJson());
    }

    [Fact]
    public void EveryOpFieldAndEnumValueOfFormatV1LoadsAndWritesBackTheSameBytes()
    {
        string json = Fixture("scenarios-v1.json");
        var list = JsonSerializer.Deserialize(json, ScenarioJsonContext.Default.ListScenario)!;
        Assert.Equal(json.TrimEnd('\n'), JsonSerializer.Serialize(list, ScenarioJsonContext.Default.ListScenario));

        using var doc = JsonDocument.Parse(json);
        var elements = doc.RootElement.EnumerateArray().ToList();
        Assert.Equal(list.Count, elements.Count);
        for (int i = 0; i < elements.Count; i++)
        {
            var one = Scenario.FromJson(elements[i].GetRawText());
            Assert.Equal(list[i].Ops, one.Ops);
            Assert.True(JsonNode.DeepEquals(JsonNode.Parse(elements[i].GetRawText()), JsonNode.Parse(one.ToJson())), $"scenario {i} ({one.Name}) does not write back what it read");
        }
    }
}
