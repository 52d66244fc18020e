using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;

namespace UffdNative.Harness.Tests;

/// <summary>
/// The harness's arrows point one way: <c>Scenarios</c> (the scenario language) uses only the binding;
/// <c>Model</c> uses <c>Scenarios</c>; <c>Conformance</c>, <c>Probing</c> and the CLI use both. Checked two
/// ways: by reflection over every type of a layer (its base types, interfaces, fields, properties, events,
/// method and constructor signatures, attributes, generic arguments), and — strictly — by scanning the
/// layer's source files, comments left out, for a namespace of a later layer or the name of any type
/// declared there.
/// </summary>
public partial class LayeringTests
{
    private const string Harness = "UffdNative.Harness";
    private static readonly Assembly HarnessAssembly = typeof(KernelModel).Assembly;

    /// <summary>The harness namespaces that come after the model, and the CLI.</summary>
    private static readonly string[] AfterModel = [$"{Harness}.Conformance", $"{Harness}.Probing", $"{Harness}.Benchmarks", $"{Harness}.Soak", $"{Harness}.Reporting", "UffdNative.Cli"];
    private static readonly string[] AfterScenarios = [$"{Harness}.Model", .. AfterModel];

    public static TheoryData<string, string> Layers => new()
    {
        { $"{Harness}.Model", "src/UffdNative.Harness/Model" },
        { $"{Harness}.Scenarios", "src/UffdNative.Harness/Scenarios" },
    };

    private static string[] Forbidden(string layer) => layer == $"{Harness}.Model" ? AfterModel : AfterScenarios;

    private static bool IsIn(string? ns, string root) => ns is not null && (ns == root || ns.StartsWith(root + ".", StringComparison.Ordinal));

    [Theory]
    [MemberData(nameof(Layers))]
    public void NoTypeOfTheLayerReferencesALaterLayerInItsSignatures(string layer, string folder)
    {
        _ = folder;
        var types = HarnessAssembly.GetTypes().Where(t => IsIn(t.Namespace, layer)).ToList();
        Assert.NotEmpty(types);
        var forbidden = Forbidden(layer);
        var bad = (from t in types
                   from r in References(t)
                   from u in Expand(r.Used)
                   where forbidden.Any(f => IsIn(u.Namespace, f)) || u.Assembly.GetName().Name == "UffdNative.Cli"
                   select $"{t.FullName} {r.Where}: {u.FullName}").Distinct().ToList();
        Assert.True(bad.Count == 0, $"{layer} references a later layer:\n  " + string.Join("\n  ", bad));
    }

    [Theory]
    [MemberData(nameof(Layers))]
    public void NoSourceFileOfTheLayerNamesALaterLayerOrAnyOfItsTypes(string layer, string folder)
    {
        var files = Directory.GetFiles(Repo.PathOf(folder), "*.cs", SearchOption.AllDirectories);
        Assert.NotEmpty(files);
        var names = LaterTypeNames(layer);
        var bad = files.SelectMany(f => Violations(File.ReadAllText(f), Forbidden(layer), names).Select(v => $"{Path.GetFileName(f)}: {v}")).ToList();
        Assert.True(bad.Count == 0, $"{folder} names a later layer:\n  " + string.Join("\n  ", bad));
    }

    [Fact]
    public void TheSourceScanCatchesAUsingAQualifiedNameAndABareTypeName()
    {
        var names = LaterTypeNames($"{Harness}.Model");
        Assert.Contains("KernelExecutor", names);
        Assert.Contains("ProbeRunner", names);
        const string bad = "using UffdNative.Harness.Conformance;\n" +
                           "namespace UffdNative.Harness.Model;\n" +
                           "// a comment may say Differ or Conformance\n" +
                           "class X { object a = new Differ(); object b = Probing.Lab.Open(); string c = \"KernelExecutor\"; }\n";
        var v = Violations(bad, AfterModel, names);
        Assert.Contains(v, x => x.Contains("using UffdNative.Harness.Conformance"));
        Assert.Contains(v, x => x.Contains("Differ") && x.Contains("line 4"));
        Assert.Contains(v, x => x.Contains("Probing.") && x.Contains("line 4"));
        Assert.DoesNotContain(v, x => x.Contains("line 3"));
    }

    /// <summary>The string literals of an assembly's IL (the #US heap: every ldstr operand).</summary>
    private static List<string> StringLiterals(Assembly assembly)
    {
        using var pe = new PEReader(File.OpenRead(assembly.Location));
        var md = pe.GetMetadataReader();
        var all = new List<string>();
        for (var h = MetadataTokens.UserStringHandle(1); !h.IsNil; h = md.GetNextHandle(h))
            all.Add(md.GetUserString(h));
        return all;
    }

    /// <summary>What in a set of string literals would start the CLI: its assembly name, the variable
    /// naming it, or the verb `serve` as an argument. ("uffdnative" alone is also the tool's name in
    /// reports and state paths.)</summary>
    private static List<string> CliLaunchLiterals(IEnumerable<string> literals) =>
        [.. literals.Where(s => s is "serve" or "UFFDNATIVE_CLI" || s.Contains("UffdNative.Cli", StringComparison.Ordinal) || s.EndsWith("/uffdnative", StringComparison.Ordinal))];

    /// <summary>
    /// The harness never starts the CLI (issue 10): it starts the library's handler host
    /// (HandlerHostProgram.StartInfo). Checked three ways: the harness assembly does not reference the CLI
    /// assembly (metadata); no string literal of its IL names the CLI (UffdNative.Cli, a path ending in
    /// /uffdnative, UFFDNATIVE_CLI) or is the verb "serve" — the scan finds exactly those in the CLI assembly itself, so
    /// it can fail; and no source file of the harness has such a literal either. The host executable
    /// references the binding and nothing else of this repository.
    /// </summary>
    [Fact]
    public void TheHarnessNeverStartsTheCli()
    {
        Assert.DoesNotContain(HarnessAssembly.GetReferencedAssemblies(), a => a.Name == "UffdNative.Cli");
        var bad = CliLaunchLiterals(StringLiterals(HarnessAssembly));
        Assert.True(bad.Count == 0, "the harness's IL names the CLI: " + string.Join(", ", bad));
        // The control: the CLI's own IL has the verb.
        Assert.Contains("serve", CliLaunchLiterals(StringLiterals(typeof(UffdNative.Cli.ExitCodes).Assembly)));

        var sources = Directory.GetFiles(Repo.PathOf("src/UffdNative.Harness"), "*.cs", SearchOption.AllDirectories);
        var inSource = (from f in sources
                        from Match m in Literal().Matches(StripComments(File.ReadAllText(f)))
                        let text = m.Groups[1].Value
                        where CliLaunchLiterals([text]).Count > 0
                        select $"{Path.GetFileName(f)}: \"{text}\"").ToList();
        Assert.True(inSource.Count == 0, "a harness source names the CLI: " + string.Join(", ", inSource));

        var host = Assembly.LoadFrom(Path.Combine(AppContext.BaseDirectory, UffdNative.Serving.External.HandlerHostProgram.HostAssemblyName + ".dll"));
        var ours = host.GetReferencedAssemblies().Select(a => a.Name!).Where(n => n.StartsWith("UffdNative", StringComparison.Ordinal)).ToList();
        Assert.Equal(["UffdNative"], ours);
    }

    /// <summary>Names of the types declared in the layers that <paramref name="layer"/> must not use, less
    /// names also declared in the layers it may use (so a shared name is not a false alarm).</summary>
    private static HashSet<string> LaterTypeNames(string layer)
    {
        static string Simple(Type t) => t.Name.Split('`')[0];
        var forbidden = Forbidden(layer);
        var all = HarnessAssembly.GetTypes().Concat(typeof(UffdNative.Cli.ExitCodes).Assembly.GetTypes())
            .Where(t => !t.Name.Contains('<') && t.GetCustomAttribute<System.Runtime.CompilerServices.CompilerGeneratedAttribute>() is null).ToList();
        var later = all.Where(t => forbidden.Any(f => IsIn(t.Namespace, f))).Select(Simple).ToHashSet();
        later.ExceptWith(all.Where(t => !forbidden.Any(f => IsIn(t.Namespace, f))).Select(Simple));
        later.ExceptWith(typeof(UffdFeatures).Assembly.GetTypes().Select(Simple));
        return later;
    }

    /// <summary>What a source text names of the later layers: a <c>using</c> or qualified name of one of
    /// their namespaces, or one of their type names as an identifier. Comments do not count.</summary>
    private static List<string> Violations(string source, string[] forbidden, HashSet<string> typeNames)
    {
        var found = new List<string>();
        var lines = StripComments(source).Split('\n');
        var lastSegments = forbidden.Select(f => f.Split('.')[^1]).Distinct().ToList();
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i];
            foreach (var f in forbidden.Where(f => line.Contains(f, StringComparison.Ordinal)))
                found.Add($"line {i + 1}: {f}: {line.Trim()}");
            foreach (Match m in Identifier().Matches(line))
            {
                string id = m.Value;
                bool qualified = m.Index + id.Length < line.Length && line[m.Index + id.Length] == '.';
                if (typeNames.Contains(id) || (qualified && lastSegments.Contains(id)))
                    found.Add($"line {i + 1}: {id}{(qualified ? "." : "")}: {line.Trim()}");
            }
        }
        return found;
    }

    /// <summary>The text without // and /* */ comments (string literals are kept: a type named in a
    /// string is still a dependency worth a look).</summary>
    private static string StripComments(string s) => Comments().Replace(s, m => m.Value.StartsWith("//", StringComparison.Ordinal) ? "" : new string('\n', m.Value.Count(c => c == '\n')));

    private static IEnumerable<(string Where, Type Used)> References(Type t)
    {
        const BindingFlags All = BindingFlags.DeclaredOnly | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static;
        if (t.BaseType is { } b)
            yield return ("base", b);
        foreach (var i in t.GetInterfaces())
            yield return ("interface", i);
        foreach (var a in t.GetCustomAttributesData())
            yield return ("attribute", a.AttributeType);
        foreach (var f in t.GetFields(All))
            yield return ($"field {f.Name}", f.FieldType);
        foreach (var p in t.GetProperties(All))
        {
            yield return ($"property {p.Name}", p.PropertyType);
            foreach (var ip in p.GetIndexParameters())
                yield return ($"indexer {p.Name}", ip.ParameterType);
        }
        foreach (var e in t.GetEvents(All))
            if (e.EventHandlerType is { } h)
                yield return ($"event {e.Name}", h);
        foreach (var c in t.GetConstructors(All))
            foreach (var p in c.GetParameters())
                yield return ($"constructor parameter {p.Name}", p.ParameterType);
        foreach (var m in t.GetMethods(All))
        {
            yield return ($"method {m.Name} return", m.ReturnType);
            foreach (var p in m.GetParameters())
                yield return ($"method {m.Name} parameter {p.Name}", p.ParameterType);
            foreach (var body in m.GetMethodBody()?.LocalVariables ?? [])
                yield return ($"method {m.Name} local", body.LocalType);
        }
    }

    /// <summary>The type and every type it is built from (array element, pointer target, generic arguments).</summary>
    private static IEnumerable<Type> Expand(Type t)
    {
        yield return t;
        if (t.HasElementType && t.GetElementType() is { } e)
            foreach (var x in Expand(e))
                yield return x;
        if (t.IsGenericType && !t.IsGenericTypeDefinition)
            foreach (var a in t.GetGenericArguments())
                foreach (var x in Expand(a))
                    yield return x;
    }

    [GeneratedRegex(@"""((?:[^""\\\n]|\\.)*)""")]
    private static partial Regex Literal();

    [GeneratedRegex(@"\b[A-Za-z_]\w*\b")]
    private static partial Regex Identifier();

    [GeneratedRegex(@"//[^\n]*|/\*.*?\*/", RegexOptions.Singleline)]
    private static partial Regex Comments();
}
