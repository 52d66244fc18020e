using System.Globalization;
using System.Text;
using UffdNative.Harness.Io;
using UffdNative.Harness.Model;
using UffdNative.Harness.Scenarios;

namespace UffdNative.Harness.Conformance;

/// <summary>
/// Writes a (shrunk) scenario as a reproducer: the scenario JSON for <c>uffdnative replay</c>, and a
/// standalone C program (<c>gcc -O2 repro.c</c>) that runs the same scenario the same way as
/// <see cref="KernelExecutor"/>, prints the model's expected observation and the kernel's actual one op by
/// op, and exits 1 while the divergence holds (0 once the kernel — or the model — is fixed).
/// </summary>
public static class Reproducer
{
    /// <summary>Writes repro.json and repro.c into <paramref name="directory"/> itself (created if missing),
    /// replacing earlier ones atomically.</summary>
    public static (string Json, string C) Write(Scenario s, ConformanceRunner runner, string directory)
    {
        var files = WriteNew(s, runner, directory, force: true);
        return (files.Json, files.C);
    }

    /// <summary>The files of one reproducer.</summary>
    public sealed record Files(string Directory, string Json, string C);

    /// <summary>
    /// Writes the reproducer into a new directory: <paramref name="directory"/> when it is missing or empty,
    /// else the first free DIRECTORY-2, -3, … (an earlier reproducer is never overwritten) — or, with
    /// <paramref name="force"/>, <paramref name="directory"/> itself. Each file is written atomically
    /// (temporary file, fsync, rename); when a write fails, a directory this call created is removed again.
    /// The scenario is validated first: a reproducer is always a runnable scenario.
    /// </summary>
    public static Files WriteNew(Scenario s, ConformanceRunner runner, string directory, bool force)
    {
        if (ScenarioValidator.Validate(s) is { } why)
            throw new ArgumentException($"not a runnable scenario: {why}", nameof(s));
        // The program first: a failure then leaves nothing half-made (a directory this call created is removed).
        var model = runner.Model.Run(s);
        var kernel = runner.Executor.Run(s);
        var d = Differ.FirstDivergence(model, kernel, runner.Reference, runner.Profile);
        var program = CProgram(s, model.Trace, runner.Profile, d);
        var dir = AtomicFile.NewDirectory(directory, force, out bool created);
        var json = Path.Combine(dir, "repro.json");
        var c = Path.Combine(dir, "repro.c");
        try
        {
            AtomicFile.WriteAllText(json, s.ToJson());
            AtomicFile.WriteAllText(c, program);
        }
        catch when (created)
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The write's own exception says what went wrong.
            }
            throw;
        }
        return new Files(dir, json, c);
    }

    /// <summary>repro_runtime.c with native/uffd_inline.h written in place of its #include line: the code the shim
    /// and libuffdharness run themselves, so the reproducer stays one file that needs no header of ours.</summary>
    private static string Runtime()
    {
        const string Include = "#include \"uffd_inline.h\"\n";
        string runtime = Resource("repro_runtime.c");
        if (!runtime.Contains(Include, StringComparison.Ordinal))
            throw new InvalidOperationException("the C runtime resource does not include uffd_inline.h");
        return runtime.Replace(Include, "/* ---- native/uffd_inline.h ---- */\n" + Resource("uffd_inline.h") + "/* ---- end of native/uffd_inline.h ---- */\n", StringComparison.Ordinal);
    }

    private static string Resource(string name)
    {
        using var stream = typeof(Reproducer).Assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"the C resource {name} is missing from the harness assembly");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    private static string Str(string s)
    {
        var sb = new StringBuilder("\"");
        foreach (char ch in s)
            sb.Append(ch switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\t' => "\\t",
                _ when ch < 0x20 || ch > 0x7e => "?",
                _ => ch.ToString(),
            });
        return sb.Append('"').ToString();
    }

    private static string Hex(ulong v) => "0x" + v.ToString("x", CultureInfo.InvariantCulture) + "ULL";

    /// <summary>The C source for a scenario and the model's expected trace.</summary>
    /// <exception cref="ArgumentException">The scenario is not valid (<see cref="ScenarioValidator"/>): a C program
    /// is made only of a scenario whose every name resolves and every range is bounded.</exception>
    public static string CProgram(Scenario s, ScenarioTrace expected, KernelProfile profile, Divergence? divergence)
    {
        if (ScenarioValidator.Validate(s) is { } why)
            throw new ArgumentException($"not a runnable scenario: {why}", nameof(s));
        int Map(string name) => s.MappingIndex(name);
        int Uffd(string name) => s.Uffds.Select((u, i) => (u, i)).First(x => x.u.Name == name).i;
        var child = new List<ChildAccess>();
        var api = new List<ApiStep>();
        var ops = new List<string>();
        foreach (var op in s.Ops)
        {
            // kind, u, m, first, count, modes, flag1, flag2, m2, first2, tag, child_first, child_count
            string E(string kind, int u = -1, int m = 0, int first = 0, int count = 1, int modes = 0, int f1 = 0, int f2 = 0, int m2 = 0, int first2 = 0, ulong tag = 0, int cf = 0, int cc = 0) =>
                $"\t{{ {kind}, {u}, {m}, {first}, {count}, {modes}, {f1}, {f2}, {m2}, {first2}, {Hex(tag)}, {cf}, {cc} }},";
            ops.Add(op switch
            {
                ReadOp r => E("OP_READ", m: Map(r.M), first: r.Page),
                WriteOp w => E(w.Mode == AccessMode.Kernel ? "OP_KWRITE" : "OP_WRITE", m: Map(w.M), first: w.Page, tag: w.Tag),
                RegisterOp r => E("OP_REGISTER", Uffd(r.U), Map(r.M), r.First, r.Count, (int)r.Modes, r.ObserveIoctls ? 1 : 0),
                UnregisterOp u => E("OP_UNREGISTER", Uffd(u.U), Map(u.M), u.First, u.Count),
                WakeOp w => E("OP_WAKE", Uffd(w.U), Map(w.M), w.First, w.Count),
                WriteProtectOp w => E("OP_WP", Uffd(w.U), Map(w.M), w.First, w.Count, f1: w.Protect ? 1 : 0, f2: w.DontWake ? 1 : 0),
                CopyOp c => E("OP_COPY", Uffd(c.U), Map(c.M), c.First, c.Count, f1: c.Wp ? 1 : 0, f2: c.DontWake ? 1 : 0, tag: c.Tag),
                ZeroPageOp z => E("OP_ZEROPAGE", Uffd(z.U), Map(z.M), z.First, z.Count),
                ContinueOp c => E("OP_CONTINUE", Uffd(c.U), Map(c.M), c.First, c.Count, f1: c.Wp ? 1 : 0),
                PoisonOp p => E("OP_POISON", Uffd(p.U), Map(p.M), p.First, p.Count),
                MoveOp mv => E("OP_MOVE", Uffd(mv.U), Map(mv.M), mv.First, mv.Count, f2: mv.AllowSrcHoles ? 1 : 0, m2: Map(mv.Src), first2: mv.SrcFirst),
                MadviseOp m => E("OP_MADVISE", m: Map(m.M), first: m.First, count: m.Count, f1: m.Hold ? 1 : 0, f2: (int)m.Advice),
                DrainOp => E("OP_DRAIN"),
                PunchHoleOp p => E("OP_PUNCH", first: p.First, count: p.Count),
                TruncateOp t => E("OP_TRUNCATE", count: t.Pages),
                PwriteOp w => E("OP_PWRITE", first: w.Page, tag: w.Tag),
                PreadOp r => E("OP_PREAD", first: r.Page),
                MprotectOp m => E("OP_MPROTECT", m: Map(m.M), first: m.First, count: m.Count),
                MremapOp m => E("OP_MREMAP", m: Map(m.M)),
                ForkOp f => E("OP_FORK", cf: child.Count, cc: f.Child.Count) is var line && Add(child, f.Child) ? line : line,
                CloseOp c => E("OP_CLOSE", Uffd(c.U)),
                ApiOp a => E("OP_API", first: api.Count, count: a.Steps.Count, f1: a.Device ? 1 : 0) is var l2 && Add(api, a.Steps) ? l2 : l2,
                ScanOp sc => E("OP_SCAN", m: Map(sc.M), f1: sc.WpMatching ? 1 : 0),
                PinOp p => E("OP_PIN", m: Map(p.M), first: p.First, count: p.Count),
                UnpinOp u => E("OP_UNPIN", m: Map(u.M), first: u.First, count: u.Count),
                HoldOp h => E("OP_HOLD", m: Map(h.M), first: h.Page, f1: h.Write ? 1 : 0, f2: h.Mode == AccessMode.Kernel ? 1 : 0, tag: h.Tag),
                SignalOp => E("OP_SIGNAL"),
                CollapseOp c => E("OP_COLLAPSE", m: Map(c.M)),
                _ => throw new NotSupportedException(op.GetType().Name),
            });
        }

        var header = new StringBuilder();
        header.AppendLine("/*");
        header.AppendLine(" * uffdnative reproducer: a userfaultfd scenario where the kernel and the model disagree.");
        header.AppendLine(" * Build and run (as root, or with vm.unprivileged_userfaultfd=1 / CAP_SYS_PTRACE):");
        header.AppendLine(" *     gcc -O2 repro.c -o repro -pthread && ./repro");
        header.AppendLine(" * It prints, op by op, what the model expects and what this kernel does, and exits 1 at the");
        header.AppendLine(" * first difference (0 when there is none). Observation format: result || uffd messages (with the");
        header.AppendLine(" * handler's ioctls) || fork child || pagemap per mapping ('.' none, a/A anon page/+wp, f/F file");
        header.AppendLine(" * page/+wp, M uffd-wp marker, m hugetlb uffd-wp marker, x poison/swap; '*' and '?' are unspecified by the model).");
        header.AppendLine($" * Model profile: {profile.Origin}");
        header.AppendLine(" *");
        foreach (var line in s.Describe().Split('\n', StringSplitOptions.RemoveEmptyEntries))
            header.AppendLine(" * " + line.Replace("*/", "* /", StringComparison.Ordinal));
        if (divergence is not null)
        {
            header.AppendLine(" *");
            foreach (var line in divergence.Describe().Split('\n'))
                header.AppendLine(" * " + line.Replace("*/", "* /", StringComparison.Ordinal));
        }
        header.AppendLine(" */");

        var data = new StringBuilder();
        data.AppendLine($"#define NMAPS {s.Mappings.Count}");
        data.AppendLine($"#define NUFFDS {s.Uffds.Count}");
        data.AppendLine($"#define NOPS {s.Ops.Count}");
        data.AppendLine($"#define NEXPECTED {expected.Observations.Count}");
        data.AppendLine($"#define FILE_PAGES {s.FilePages}");
        // The executor's page and slot: hugetlb scenarios count 2 MiB pages.
        data.AppendLine($"#define HUGETLB {(MemoryTypes.IsHugetlb(s.Memory) ? 1 : 0)}");
        data.AppendLine($"#define SLOT_BYTES {KernelExecutor.SlotBytes(s)}UL");
        bool needFile = s.FilePages > 0 || s.Mappings.Any(m => m.Kind != MapKind.Anon) || s.Ops.Any(o => o is PunchHoleOp or TruncateOp or PwriteOp or PreadOp);
        data.AppendLine($"#define NEED_FILE {(needFile ? 1 : 0)}");
        data.AppendLine($"#define RETRY_MESSAGES {HoldOp.RetryMessages}");
        data.AppendLine("static const struct map_spec MAPS[] = {");
        foreach (var m in s.Mappings)
            data.AppendLine($"\t{{ {Str(m.Name)}, {(m.Kind == MapKind.Anon ? "K_ANON" : m.Kind == MapKind.Shared ? "K_SHARED" : "K_PRIVATE")}, {m.Pages}, {m.FileOffset}, {(m.HugePage ? 1 : 0)} }},");
        data.AppendLine("\t{ 0, 0, 0, 0, 0 } };");
        data.AppendLine("static const struct uffd_spec UFFDS[] = {");
        foreach (var u in s.Uffds)
            data.AppendLine($"\t{{ {Str(u.Name)}, {Hex((ulong)u.Features)}, {(u.UserModeOnly ? 1 : 0)} }},");
        data.AppendLine("\t{ 0, 0, 0 } };");
        int moveSrc = s.Policy.MoveSource is { } ms ? Map(ms) : 0;
        string missing = s.Policy.Missing switch { MissingPolicy.CopyWp => "P_COPYWP", MissingPolicy.ZeroPage => "P_ZERO", MissingPolicy.Move => "P_MOVE", _ => "P_COPY" };
        int minorAlias = s.Policy.MinorInvertThrough is { } inv ? Map(inv) : -1;
        var poison = s.Policy.PoisonPages ?? [];
        data.AppendLine($"static const int POISON_PAGES[] = {{ {string.Join(", ", poison.Append(-1))} }};");
        data.AppendLine($"static const struct policy POLICY = {{ {missing}, {(s.Policy.ContinueWp ? 1 : 0)}, {moveSrc}, {s.Policy.MoveChunk}, {minorAlias}, {poison.Count}, POISON_PAGES, {(s.Policy.UnregisterOnRemove ? 1 : 0)} }};");
        data.AppendLine("static const struct child_acc CHILD[] = {");
        foreach (var a in child)
            data.AppendLine($"\t{{ {Map(a.M)}, {a.Page}, {(a.Write ? 1 : 0)}, {Hex(a.Tag)}, {(a.Pin ? 1 : 0)}, {(a.Mremap ? 1 : 0)}, {(a.Madvise switch { MadviseAdvice.DontNeed => 1, MadviseAdvice.Remove => 2, _ => 0 })}, {a.Count}, {(a.SigbusLoop ? 1 : 0)} }},");
        data.AppendLine("\t{ 0, 0, 0, 0, 0, 0, 0, 0, 0 } };");
        data.AppendLine("static const struct api_step API[] = {");
        foreach (var a in api)
            data.AppendLine($"\t{{ {Hex(a.Api)}, {Hex(a.Features)} }},");
        data.AppendLine("\t{ 0, 0 } };");
        data.AppendLine("static const struct op OPS[] = {");
        foreach (var o in ops)
            data.AppendLine(o);
        data.AppendLine("\t{ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 } };");
        data.AppendLine("static const char *const OP_TEXT[] = {");
        foreach (var op in s.Ops)
            data.AppendLine($"\t{Str(op.Describe())},");
        data.AppendLine("\t0 };");
        data.AppendLine("/* The model's observations (setup first). */");
        data.AppendLine("static const char *const EXPECTED[] = {");
        foreach (var o in expected.Observations)
            data.AppendLine($"\t{Str(o.Canonical)},");
        data.AppendLine("\t0 };");
        data.AppendLine($"static const char DESCRIPTION[] = {Str(s.Describe() + (divergence is null ? "" : "model vs kernel: " + divergence.Describe()))};");

        return header + Runtime().Replace("/*@@SCENARIO@@*/", data.ToString(), StringComparison.Ordinal);
    }

    private static bool Add<T>(List<T> list, IEnumerable<T> items)
    {
        list.AddRange(items);
        return true;
    }
}
