namespace UffdNative.Harness.Tests.Cli;

/// <summary>
/// JSON fuzzing of the verbs that read JSON, <c>replay</c> and <c>compare</c>: random JSON and mutations of a
/// scenario, a probe report and a check report (values replaced by nulls, huge and negative numbers, strings,
/// empty or deep containers; properties dropped or renamed; op discriminators changed; bytes truncated, flipped
/// or inserted), from a fixed seed, for a bounded time. Run in this process through the CLI's own entry point
/// (<see cref="CliApp.Run"/>), so thousands of inputs take seconds — and a crash (a segfault of the executor
/// on a crafted range) would take the test host down with it. Every input must end with exit 0–3; an exit 2 or
/// 3 with exactly one line on stderr; never "internal error" (an exception nobody classified).
/// </summary>
public sealed class JsonFuzzTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("uffdnative-jsonfuzz-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static Scenario BaseScenario() => new()
    {
        Name = "base",
        Memory = MemoryType.Shmem,
        FilePages = 4,
        Mappings = [new MappingSpec("m0", MapKind.Shared, 4), new MappingSpec("al", MapKind.Shared, 4)],
        Uffds = [new UffdSpec("u0", UffdFeatures.None)],
        Ops =
        [
            new RegisterOp("u0", "m0", 0, 4, RegisterMode.Missing | RegisterMode.WriteProtect),
            new ReadOp("m0", 1),
            new WriteOp("m0", 2, 0x20),
            new WriteProtectOp("u0", "m0", 0, 2, true),
            new CopyOp("u0", "m0", 3, 1, 0x30, false),
            new MadviseOp("m0", 0, 1, MadviseAdvice.Remove),
            new PwriteOp(1, 0x40),
            new TruncateOp(3),
            new ForkOp([new ChildAccess("m0", 0, true, 0x50)]),
            new UnregisterOp("u0", "m0", 0, 4),
        ],
    };

    private static string CheckReportJson() => JsonSerializer.Serialize(new CheckReport
    {
        KernelRelease = "6.18.0",
        Profile = "mainline 6.18",
        Switches = [new SwitchRow("wp-shmem-markers", "§3.2", true, true, true, SwitchStatus.AsPrior, "")],
        Facts = [new FactRow("zero-page", "on", "on", "on", "", null)],
        Results = [new CheckCell("marker-read", "shmem", "pass", null, null, null, null, null, null, 1.5)],
    }, CheckJsonContext.Default.CheckReport);

    [Fact]
    public void ReplayAndCompareNeverCrashOnRandomOrMutatedJson()
    {
        var probe = CliRunner.Run("probe", "--rows", "wp-shmem-markers", "--json");
        Assert.True(probe.ExitCode == 0, probe.ToString());
        string[] bases = [BaseScenario().ToJson(), probe.Stdout, CheckReportJson()];
        var random = new Random(13_2026);
        var budget = Stopwatch.StartNew();
        var outcomes = new Dictionary<(string Verb, int Exit), int>();
        int iterations = 0;
        var stdout = Console.Out;
        var stderr = Console.Error;
        try
        {
            // Bounded: at least 300 inputs, then as many as 40 s allow (the run stops at 3000).
            while (iterations < 3000 && (iterations < 300 || budget.Elapsed < TimeSpan.FromSeconds(40)))
            {
                iterations++;
                int kind = random.Next(10);
                string text = kind == 0 ? RandomJson(random, 0).ToJsonString() : Mutate(random, bases[random.Next(bases.Length)]);
                var file = Path.Combine(dir, $"input-{iterations}.json");
                File.WriteAllText(file, text);
                string verb = random.Next(2) == 0 ? "replay" : "compare";
                // A valid scenario runs on this kernel: the mainline profile of the running version spares the
                // detectors (a second per run) without changing what is exercised.
                string[] args = verb == "replay" ? ["replay", file, "--profile", "6.18"] : ["compare", file];
                var err = new StringWriter();
                var output = new StringWriter();
                Console.SetOut(output);
                Console.SetError(err);
                CliConsole.Redirect(output, err);
                int exit;
                try
                {
                    exit = CliApp.Run(args, output, err);
                }
                finally
                {
                    Console.SetOut(stdout);
                    Console.SetError(stderr);
                    CliConsole.Redirect(null, null);
                }
                var lines = err.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
                var context = $"input {iterations} ({verb}, exit {exit}):\n{Truncate(text)}\n--- stderr\n{err}";
                Assert.True(exit is >= 0 and <= 3, context);
                Assert.False(err.ToString().Contains("internal error", StringComparison.Ordinal), context);
                Assert.False(err.ToString().Contains("   at ", StringComparison.Ordinal), context);
                if (exit is 2 or 3)
                {
                    Assert.True(lines.Length == 1, context);
                    Assert.StartsWith("uffdnative: ", lines[0], StringComparison.Ordinal);
                }
                outcomes[(verb, exit)] = outcomes.GetValueOrDefault((verb, exit)) + 1;
                File.Delete(file);
            }
        }
        finally
        {
            Console.SetOut(stdout);
            Console.SetError(stderr);
        }
        var summary = string.Join(", ", outcomes.OrderBy(o => o.Key).Select(o => $"{o.Key.Verb} exit {o.Key.Exit}: {o.Value}"));
        Console.WriteLine($"JSON fuzz: {iterations} inputs in {budget.Elapsed.TotalSeconds:F1} s; {summary}");
        // The fuzzer must reach past the parser: some inputs run (replay exit 0/1, compare exit 0/1).
        Assert.True(iterations >= 300, summary);
        Assert.True(outcomes.Keys.Any(k => k.Verb == "replay" && k.Exit is 0 or 1), summary);
        Assert.True(outcomes.Keys.Any(k => k.Verb == "compare" && k.Exit is 0 or 1), summary);
        Assert.True(outcomes.GetValueOrDefault(("replay", 2)) > 0 && outcomes.GetValueOrDefault(("compare", 2)) > 0, summary);
    }

    private static string Truncate(string s) => s.Length <= 2000 ? s : s[..2000] + "…";

    private static readonly string[] Strings = ["", "m0", "u0", "src", "al", "read", "write", "register", "copy", "move", "fork", "truncate", "punch", "NaN", "-1", "\u0000", "../../etc/passwd", new string('x', 5000), "Missing, WriteProtect", "None", "Shmem", "Anon", "Move", "syscall", "uffdnative"];

    private static JsonNode? RandomValue(Random r) => r.Next(14) switch
    {
        0 => null,
        1 => JsonValue.Create(r.Next(-3, 6)),
        2 => JsonValue.Create(int.MaxValue),
        3 => JsonValue.Create(int.MinValue),
        4 => JsonValue.Create(long.MaxValue),
        5 => JsonValue.Create(1e300),
        6 => JsonValue.Create(-0.5),
        7 => JsonValue.Create(r.Next(2) == 0),
        8 => JsonValue.Create(Strings[r.Next(Strings.Length)]),
        9 => new JsonArray(),
        10 => new JsonObject(),
        11 => Deep(r.Next(1, 200)),
        12 => JsonValue.Create(ulong.MaxValue),
        _ => JsonValue.Create(r.Next(0, 600)),
    };

    private static JsonNode Deep(int depth)
    {
        JsonNode n = new JsonArray();
        for (int i = 0; i < depth; i++)
            n = new JsonArray(n);
        return n;
    }

    private static JsonNode RandomJson(Random r, int depth)
    {
        if (depth > 4 || r.Next(3) == 0)
            return RandomValue(r) ?? JsonValue.Create(0);
        if (r.Next(2) == 0)
        {
            var a = new JsonArray();
            for (int i = r.Next(5); i > 0; i--)
                a.Add(RandomJson(r, depth + 1));
            return a;
        }
        var o = new JsonObject();
        for (int i = r.Next(6); i > 0; i--)
            o[Strings[r.Next(Strings.Length)] + (r.Next(3) == 0 ? i.ToString(System.Globalization.CultureInfo.InvariantCulture) : "")] = RandomJson(r, depth + 1);
        return o;
    }

    private const string Noise = "{}[]\",:0-9eE.n \\";

    /// <summary>1–4 mutations of a JSON text: structural (on the parsed tree) or on its bytes.</summary>
    private static string Mutate(Random r, string json)
    {
        if (r.Next(5) == 0)
        {
            var b = new StringBuilder(json);
            switch (r.Next(3))
            {
                case 0:
                    return json[..r.Next(json.Length)];
                case 1:
                    int at = r.Next(b.Length);
                    b[at] = Noise[r.Next(Noise.Length)];
                    return b.ToString();
                default:
                    b.Insert(r.Next(b.Length), Noise[r.Next(Noise.Length)]);
                    return b.ToString();
            }
        }
        var root = JsonNode.Parse(json)!;
        for (int k = 1 + r.Next(4); k > 0; k--)
        {
            var nodes = new List<JsonNode>();
            Collect(root, nodes);
            var target = nodes[r.Next(nodes.Count)];
            switch (target)
            {
                case JsonObject o when o.Count > 0 && r.Next(3) == 0:
                    o.Remove(o.ElementAt(r.Next(o.Count)).Key);
                    break;
                case JsonObject o when o.Count > 0 && r.Next(2) == 0:
                    var key = o.ElementAt(r.Next(o.Count)).Key;
                    if (key == "op")
                        o[key] = Strings[r.Next(Strings.Length)];
                    else
                        o[key] = RandomValue(r);
                    break;
                case JsonArray a when a.Count > 0 && r.Next(2) == 0:
                    int i = r.Next(a.Count);
                    if (r.Next(2) == 0)
                        a.Add(a[i]?.DeepClone());
                    else
                        a[i] = RandomValue(r);
                    break;
                case JsonArray a when r.Next(2) == 0:
                    a.Clear();
                    break;
                default:
                    if (target.Parent is JsonObject po)
                        po[target.GetPropertyName()] = RandomValue(r);
                    else if (target.Parent is JsonArray pa)
                        pa[target.GetElementIndex()] = RandomValue(r);
                    break;
            }
        }
        return root.ToJsonString();
    }

    private static void Collect(JsonNode? n, List<JsonNode> into)
    {
        if (n is null)
            return;
        into.Add(n);
        if (n is JsonObject o)
            foreach (var (_, v) in o)
                Collect(v, into);
        else if (n is JsonArray a)
            foreach (var v in a)
                Collect(v, into);
    }
}
