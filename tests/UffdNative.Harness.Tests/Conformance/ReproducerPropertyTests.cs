namespace UffdNative.Harness.Tests.Conformance;

/// <summary>
/// A reproducer is always a runnable scenario: whatever the shrinker keeps validates, and its C program is made
/// without an exception, compiles with <c>gcc -Wall -Werror</c> and, for a real divergence, exits 1.
/// </summary>
public class ReproducerPropertyTests
{
    /// <summary>Random walks through the shrinker's candidates (the steps it may take in any order, whatever
    /// the divergence): every candidate the validator accepts gives a C program; a candidate it refuses is one
    /// the shrinker never keeps. 300 scenarios × up to 12 steps from a fixed seed.</summary>
    [Fact]
    public void EveryScenarioTheShrinkerCanKeepValidatesAndGivesACProgram()
    {
        var model = Detected.Runner().Model;
        var random = new Random(20261204);
        int kept = 0, refused = 0;
        var sample = new List<Scenario>();
        for (int index = 0; index < 300; index++)
        {
            var s = Fuzzer.Generate(11, index);
            Assert.True(ScenarioValidator.Validate(s) is null, $"the generator made an invalid scenario: {ScenarioValidator.Validate(s)}\n{s.Describe()}");
            for (int step = 0; step < 12; step++)
            {
                var candidates = Fuzzer.Candidates(s).ToList();
                if (candidates.Count == 0)
                    break;
                var next = candidates[random.Next(candidates.Count)];
                if (ScenarioValidator.Validate(next) is not null)
                {
                    refused++;
                    continue;
                }
                s = next;
                kept++;
                var c = Reproducer.CProgram(s, model.Run(s).Trace, model.Profile, null);
                Assert.Contains("static const struct op OPS[]", c, StringComparison.Ordinal);
            }
            if (index % 50 == 0)
                sample.Add(s);
        }
        Assert.True(kept > 1000 && refused > 0, $"{kept} kept, {refused} refused");
        foreach (var s in sample)
            AssertCompiles(Reproducer.CProgram(s, model.Run(s).Trace, model.Profile, null), s);
    }

    /// <summary>The crash of issue 13: the shrinker simplified a Move policy to Copy (keeping MoveSource "src")
    /// and then removed the "src" mapping; the C program looked the name up and threw. Now the policy
    /// candidate drops MoveSource with Move, a mapping the policy still names cannot be removed, and a
    /// scenario naming a missing mapping is refused by the validator with one line.</summary>
    [Fact]
    public void TheShrinkerNeverLeavesAPolicyNamingARemovedMapping()
    {
        var s = new Scenario
        {
            Name = "move",
            Memory = MemoryType.Anon,
            Mappings = [new MappingSpec("m0", MapKind.Anon, 3), new MappingSpec("src", MapKind.Anon, 3)],
            Uffds = [new UffdSpec("u0", UffdFeatures.Move)],
            Policy = new HandlerPolicy { Missing = MissingPolicy.Move, MoveSource = "src", MoveChunk = 1 },
            Ops = [new RegisterOp("u0", "m0", 0, 3, RegisterMode.Missing), new ReadOp("m0", 1)],
        };
        Assert.Null(ScenarioValidator.Validate(s));
        var stale = s with { Policy = s.Policy with { Missing = MissingPolicy.Copy }, Mappings = [s.Mappings[0]] };
        Assert.Equal("MoveSource 'src' is not a mapping of the scenario", ScenarioValidator.Validate(stale));
        var ex = Assert.Throws<ArgumentException>(() => Reproducer.CProgram(stale, new ScenarioTrace(), Detected.Profile, null));
        Assert.Contains("MoveSource 'src'", ex.Message, StringComparison.Ordinal);

        // Walk every path of two steps: whatever validates has a C program.
        var model = Detected.Runner().Model;
        foreach (var a in Fuzzer.Candidates(s).Where(x => ScenarioValidator.Validate(x) is null))
            foreach (var b in Fuzzer.Candidates(a).Where(x => ScenarioValidator.Validate(x) is null).Prepend(a))
                Reproducer.CProgram(b, model.Run(b).Trace, model.Profile, null);
        // The two steps of the crash are both available now, and lead to a valid scenario without "src".
        var copy = Assert.Single(Fuzzer.Candidates(s), x => x.Policy.Missing == MissingPolicy.Copy);
        Assert.Null(copy.Policy.MoveSource);
        var noSrc = Assert.Single(Fuzzer.Candidates(copy), x => x.Mappings.Count == 1);
        Assert.Null(ScenarioValidator.Validate(noSrc));
        AssertCompiles(Reproducer.CProgram(noSrc, model.Run(noSrc).Trace, model.Profile, null), noSrc);
    }

    /// <summary>Every injected model bug is found, shrunk through the shrinker's checks, written by the same
    /// path as <c>uffdnative fuzz</c> (<see cref="Reproducer.WriteNew"/>), and its C program compiles with
    /// -Wall -Werror and exits 1 at the divergence.</summary>
    [Theory]
    [InlineData(ModelBug.ZapDropsFileMarker)]
    [InlineData(ModelBug.WpSkipsNoneShmem)]
    [InlineData(ModelBug.FaultAroundInWpVma)]
    [InlineData(ModelBug.UnregisterKeepsWp)]
    [InlineData(ModelBug.MarkerReadFaults)]
    public void EveryInjectedBugGivesAReproducerThatCompilesAndExitsOne(ModelBug bug)
    {
        var runner = Detected.Runner(bug);
        var report = Hard.Within(150_000, () => new Fuzzer(runner).Run(seed: 1, count: null, duration: TimeSpan.FromSeconds(60)));
        var f = report.Finding;
        Assert.True(f is not null, $"{bug} not found in {report.Scenarios} scenarios");
        Assert.Null(ScenarioValidator.Validate(f.Shrunk));
        var dir = Path.Combine(Path.GetTempPath(), $"uffd-repro-{bug}-{Guid.NewGuid():N}");
        try
        {
            var files = Reproducer.WriteNew(f.Shrunk, runner, dir, force: false);
            Assert.Equal(dir, files.Directory);
            Assert.Equal(f.Shrunk.ToJson(), Scenario.Load(File.ReadAllText(files.Json)).ToJson());
            var (rc, output) = ReproBuild.CompileAndRun(files.C);
            Assert.True(rc == 1, $"exit {rc}\n{output}");
            Assert.Contains("DIVERGENCE", output, StringComparison.Ordinal);

            // A second reproducer goes beside the first, never over it.
            var again = Reproducer.WriteNew(f.Shrunk, runner, dir, force: false);
            Assert.Equal(dir + "-2", again.Directory);
            Directory.Delete(again.Directory, recursive: true);
        }
        finally
        {
            if (Directory.Exists(dir))
                Directory.Delete(dir, recursive: true);
        }
    }

    private static void AssertCompiles(string program, Scenario s) => ReproBuild.AssertCompiles(program, s.Describe());
}
