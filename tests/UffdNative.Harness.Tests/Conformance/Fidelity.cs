namespace UffdNative.Harness.Tests.Conformance;

/// <summary>What the selftest-fidelity tests of one case share: the runner on the detected profile (optionally with a
/// model rule flipped), the cells a flipped rule makes diverge, and the C reproducer run against a flipped rule.</summary>
internal static class Fidelity
{
    public static readonly MemoryType[] Small = [MemoryType.Anon, MemoryType.Shmem, MemoryType.ShmemPrivate];

    /// <summary>Each small memory type, without and with the case's variant (e.g. events and events-wp).</summary>
    public static TheoryData<MemoryType, bool> SmallTimesVariant()
    {
        var d = new TheoryData<MemoryType, bool>();
        foreach (var m in Small)
            foreach (bool v in new[] { false, true })
                d.Add(m, v);
        return d;
    }

    /// <summary>The model's traces of a case and its variant on both hugetlb memory types (those cells run where huge
    /// pages are reserved, e.g. the matrix's guests), each checked to have no error.</summary>
    public static IEnumerable<(MemoryType Memory, bool Variant, ScenarioTrace Trace)> HugetlbModelTraces(string name, string variant)
    {
        var runner = Detected.Runner();
        foreach (var m in new[] { MemoryType.Hugetlb, MemoryType.HugetlbPrivate })
            foreach (bool v in new[] { false, true })
            {
                var t = runner.Model.Run(NamedScenarios.Find(v ? variant : name)!.Build(m)).Trace;
                Assert.Null(t.Error);
                yield return (m, v, t);
            }
    }

    /// <summary>Runs the named scenarios on the small memory types with <paramref name="bug"/> in the model: every cell that
    /// does not diverge must pass; returns the diverged cells (by memory type, then name) and the first one's divergence.</summary>
    public static (List<(string Scenario, MemoryType Memory)> Diverged, string First) Flipped(ModelBug bug, params string[] names)
    {
        var scenarios = NamedScenarios.All.Where(s => names.Contains(s.Name)).ToList();
        Assert.Equal(names.Length, scenarios.Count);
        var cells = Hard.Within(300_000, () => Detected.Runner(bug).RunAll(scenarios, Small).ToList());
        Assert.All(cells.Where(c => c.Status != CellStatus.Diverged), c => Assert.Equal(CellStatus.Pass, c.Status));
        var diverged = cells.Where(c => c.Status == CellStatus.Diverged).ToList();
        Assert.NotEmpty(diverged);
        return ([.. diverged.Select(c => (c.Scenario, c.Memory)).OrderBy(c => c.Memory).ThenBy(c => c.Scenario, StringComparer.Ordinal)], diverged[0].Divergence!.Describe());
    }

    /// <summary>Writes the C reproducer of <paramref name="s"/> against the model with <paramref name="bug"/>, builds and runs it:
    /// exit 0 without a bug, 1 with one that the kernel contradicts; returns its output.</summary>
    public static string Repro(Scenario s, ModelBug bug)
    {
        using var dir = new TempDirectory("uffd-repro-fidelity-");
        var files = Reproducer.Write(s, Detected.Runner(bug), dir.Path);
        var (rc, output) = ReproBuild.CompileAndRun(files.C);
        Assert.True(rc == (bug == ModelBug.None ? 0 : 1), $"{bug}: exit {rc}\n{output}");
        return output;
    }

    /// <summary>The C reproducer of the named scenario on <paramref name="memory"/>, against the model as it is and with
    /// <paramref name="bug"/> (exit 0, then 1): both runs print every one of <paramref name="shown"/>.</summary>
    public static void ReproShows(string name, MemoryType memory, ModelBug bug, params string[] shown)
    {
        var s = NamedScenarios.Find(name)!.Build(memory);
        foreach (var b in new[] { ModelBug.None, bug })
        {
            var output = Repro(s, b);
            foreach (var text in shown)
                Assert.True(output.Contains(text, StringComparison.Ordinal), $"{b}: no \"{text}\" in\n{output}");
        }
    }
}
