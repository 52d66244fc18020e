using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using UffdNative.Harness.Conformance;
using UffdNative.Harness.Probing;

namespace UffdNative.Harness.Matrix;

/// <summary>One kernel's reports (a column): what probe (as root and as another uid) and check wrote.</summary>
public sealed record MatrixKernel(string Label, string? Directory)
{
    public ProbeReport? Probe { get; set; }
    public ProbeReport? ProbeUnprivileged { get; set; }
    public CheckReport? Check { get; set; }
    /// <summary>Where check.json was read (a reproducer is looked for next to it).</summary>
    public string? CheckPath { get; set; }
}

/// <summary>
/// The kernel matrix as one self-contained HTML page (<c>matrix --html</c>, <c>compare --html</c>): no
/// external asset, script or font; kernels are columns, probe rows and check cells (scenario × memory)
/// are rows; a row whose cells differ between kernels is highlighted (and can be shown alone); verdicts
/// and check outcomes are coloured; a check divergence links its C reproducer when one is present at
/// <c>repro/SCENARIO-MEMORY/repro.c</c> next to its <c>check.json</c> (the layout
/// <see cref="Reproducer.Write"/> writes into a directory), by a link relative to the page.
/// </summary>
public static class MatrixHtml
{
    /// <summary>The reproducer of a check cell, relative to the directory of its check.json.</summary>
    public static string ReproducerPath(string scenario, string memory) => Path.Combine("repro", $"{scenario}-{memory}", "repro.c");

    /// <summary>The kernels of a matrix output directory (scripts/kernel-matrix.sh --out): every
    /// subdirectory holding probe.json, probe-nobody.json or check.json, in name order (host first).</summary>
    public static List<MatrixKernel> FromDirectory(string dir)
    {
        if (!System.IO.Directory.Exists(dir))
            throw new FormatException($"{dir}: no such directory (a matrix output: KERNEL/probe.json, probe-nobody.json, check.json)");
        var files = System.IO.Directory.GetDirectories(dir)
            .OrderBy(d => Path.GetFileName(d) == "host" ? 0 : 1).ThenBy(d => Path.GetFileName(d), StringComparer.Ordinal)
            .SelectMany(d => new[] { "probe.json", "probe-nobody.json", "check.json" }.Select(f => Path.Combine(d, f)))
            .Where(f => File.Exists(f) && new FileInfo(f).Length > 0).ToList();
        if (files.Count == 0)
            throw new FormatException($"{dir}: no KERNEL/probe.json, probe-nobody.json or check.json in it: not a matrix output");
        return FromFiles(files);
    }

    /// <summary>Kernels from report files (probe or check JSON, told apart by their content), grouped by
    /// the directory holding them; each column is named by its kernel release, or by its directory when
    /// two directories hold the same release.</summary>
    public static List<MatrixKernel> FromFiles(IEnumerable<string> files)
    {
        var byDir = new Dictionary<string, MatrixKernel>(StringComparer.Ordinal);
        var order = new List<string>();
        foreach (var file in files)
        {
            var full = Path.GetFullPath(file);
            string text;
            try
            {
                text = File.ReadAllText(full);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new FormatException($"{full}: cannot read ({(e is FileNotFoundException or DirectoryNotFoundException ? "no such file" : e.Message)})");
            }
            if (string.IsNullOrWhiteSpace(text))
                throw new FormatException($"{full}: empty (the step that writes it produced nothing: see its .stderr)");
            var dir = Path.GetDirectoryName(full)!;
            if (!byDir.TryGetValue(dir, out var k))
            {
                byDir[dir] = k = new MatrixKernel(Path.GetFileName(dir), dir);
                order.Add(dir);
            }
            if (IsCheckReport(text))
            {
                if (k.Check is not null)
                    throw new FormatException($"{full}: a second check report in {dir} (one per kernel directory)");
                k.Check = ReadCheck(text, full);
                k.CheckPath = full;
            }
            else
            {
                var p = ProbeReport.FromJson(text, full);
                if (p.Environment.Uid == 0 ? k.Probe is not null : k.ProbeUnprivileged is not null)
                    throw new FormatException($"{full}: a second probe report as uid {p.Environment.Uid} in {dir} (one per kernel directory)");
                if (p.Environment.Uid == 0)
                    k.Probe = p;
                else
                    k.ProbeUnprivileged = p;
            }
        }
        var kernels = order.Select(d => byDir[d]).ToList();
        var releases = kernels.Select(Release).ToList();
        for (int i = 0; i < kernels.Count; i++)
            if (releases[i] is { } rel && releases.Count(r => r == rel) == 1)
                kernels[i] = kernels[i] with { Label = rel };
        // `with` copies the settable reports too.
        return kernels;
    }

    private static string? Release(MatrixKernel k) => k.Probe?.KernelRelease ?? k.ProbeUnprivileged?.KernelRelease ?? NullIfEmpty(k.Check?.KernelRelease);

    private static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;

    private static bool IsCheckReport(string json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("results", out _) && doc.RootElement.TryGetProperty("cells", out _);
        }
        catch (JsonException)
        {
            return false; // the probe reader names the malformation
        }
    }

    /// <summary>The part of a check report the page shows (release, counts, cells), read leniently: the
    /// reports of older CLIs differ in fields the page does not use (e.g. a switch status of "").</summary>
    private static CheckReport ReadCheck(string json, string source)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            var root = doc.RootElement;
            string? Str(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
            int Int(string name) => root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt32() : 0;
            var cells = new List<CheckCell>();
            foreach (var c in root.GetProperty("results").EnumerateArray())
            {
                var scenario = Str(c, "scenario") ?? throw new FormatException($"{source}: a check result without a scenario");
                var memory = Str(c, "memory") ?? throw new FormatException($"{source}: check result {scenario} without a memory type");
                var status = Str(c, "status") ?? throw new FormatException($"{source}: check result {scenario}/{memory} without a status");
                var switches = c.TryGetProperty("switches", out var sw) && sw.ValueKind == JsonValueKind.Array ? sw.EnumerateArray().Select(x => x.GetString() ?? "").ToList() : null;
                double ms = c.TryGetProperty("milliseconds", out var m) && m.ValueKind == JsonValueKind.Number ? m.GetDouble() : 0;
                cells.Add(new CheckCell(scenario, memory, status, Str(c, "reason"), Str(c, "divergenceOp"), Str(c, "aspect"), Str(c, "expected"), Str(c, "actual"), switches, ms));
            }
            return new CheckReport
            {
                KernelRelease = Str(root, "kernelRelease") ?? "",
                Profile = Str(root, "profile") ?? "",
                Cells = Int("cells"),
                Passed = Int("passed"),
                Diverged = Int("diverged"),
                NotApplicable = Int("notApplicable"),
                Errors = Int("errors"),
                Results = cells,
            };
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or KeyNotFoundException)
        {
            throw new FormatException($"{source}: not a check report ({e.Message.Split('\n')[0]})");
        }
    }

    /// <summary>The page. <paramref name="pageDirectory"/> is where it will be written (reproducer links
    /// are relative to it); <paramref name="title"/> heads it.</summary>
    public static string Render(IReadOnlyList<MatrixKernel> kernels, string pageDirectory, string title = "uffdnative kernel matrix")
    {
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>").Append(E(title)).Append("</title>\n<style>\n").Append(Css).Append("</style></head>\n<body>\n");
        sb.Append("<h1>").Append(E(title)).Append("</h1>\n");
        sb.Append("<p class=\"meta\">").Append(kernels.Count).Append(" kernels; written ")
          .Append(DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture))
          .Append(" by uffdnative. Rows whose cells differ between kernels are marked <span class=\"ne\">≠</span> and shaded. ")
          .Append("<label><input type=\"checkbox\" id=\"only\" onchange=\"document.body.classList.toggle('onlydiff', this.checked)\"> show differing rows only</label></p>\n");
        Legend(sb);
        Summary(sb, kernels);

        var probes = kernels.Where(k => k.Probe is not null).ToList();
        if (probes.Count > 0)
            ProbeSection(sb, "probe (root)", "probe", probes, probes.Select(k => k.Probe!).ToList());
        var unpriv = kernels.Where(k => k.ProbeUnprivileged is not null).ToList();
        if (unpriv.Count > 0)
            ProbeSection(sb, "probe (unprivileged)", "probe-nobody", unpriv, unpriv.Select(k => k.ProbeUnprivileged!).ToList());
        var checks = kernels.Where(k => k.Check is not null).ToList();
        if (checks.Count > 0)
            CheckSection(sb, checks, pageDirectory);
        sb.Append("</body></html>\n");
        return sb.ToString();
    }

    private static void Legend(StringBuilder sb)
    {
        sb.Append("<p class=\"legend\">")
          .Append("<span class=\"c pass\">pass</span> <span class=\"c diverged\">diverged</span> <span class=\"c notapplicable\">not applicable</span> <span class=\"c error\">error</span> ")
          .Append("· probe verdicts: <span class=\"c backported\">backported</span> <span class=\"c regressed\">REGRESSED</span> <span class=\"c error\">ERROR</span> (uncoloured: as mainline of that version)</p>\n");
    }

    private static void Summary(StringBuilder sb, IReadOnlyList<MatrixKernel> kernels)
    {
        sb.Append("<h2 id=\"summary\">Summary</h2>\n<table class=\"m\"><thead><tr><th>kernel</th><th>probe (root)</th><th>probe (unprivileged)</th><th>check</th></tr></thead><tbody>\n");
        foreach (var k in kernels)
        {
            sb.Append("<tr><th class=\"k\">").Append(E(k.Label)).Append("</th>");
            foreach (var p in new[] { k.Probe, k.ProbeUnprivileged })
            {
                if (p is null)
                {
                    sb.Append("<td class=\"none\">—</td>");
                    continue;
                }
                var s = p.Summary;
                string cls = s.Regressed > 0 || s.Errors > 0 ? "regressed" : s.Backported > 0 ? "backported" : "pass";
                sb.Append("<td class=\"").Append(cls).Append("\">").Append(E($"{s.AsExpected} ok, {s.Backported} backported, {s.Regressed} regressed, {s.Undetermined} n/d, {s.Errors} errors")).Append("</td>");
            }
            if (k.Check is { } c)
            {
                string cls = c.Diverged > 0 ? "diverged" : c.Errors > 0 ? "error" : "pass";
                sb.Append("<td class=\"").Append(cls).Append("\">").Append(E($"{c.Passed} pass, {c.Diverged} diverged, {c.NotApplicable} n/a, {c.Errors} errors of {c.Cells} cells")).Append("</td>");
            }
            else
            {
                sb.Append("<td class=\"none\">—</td>");
            }
            sb.Append("</tr>\n");
        }
        sb.Append("</tbody></table>\n");
    }

    private static void Header(StringBuilder sb, IEnumerable<MatrixKernel> kernels)
    {
        sb.Append("<thead><tr><th class=\"d\"></th><th>section</th><th>row</th>");
        foreach (var k in kernels)
            sb.Append("<th class=\"k\">").Append(E(k.Label)).Append("</th>");
        sb.Append("</tr></thead>\n");
    }

    private static void ProbeSection(StringBuilder sb, string heading, string id, List<MatrixKernel> kernels, List<ProbeReport> reports)
    {
        var m = ReportComparer.Build(reports);
        sb.Append("<h2 id=\"").Append(id).Append("\">").Append(E(heading)).Append(": ").Append(m.Rows.Count).Append(" rows, ").Append(m.DifferingRows).Append(" differ</h2>\n<table class=\"m\">");
        Header(sb, kernels);
        sb.Append("<tbody>\n");
        foreach (var row in m.Rows)
        {
            sb.Append(row.Differs ? "<tr class=\"differs\"><td class=\"d\">≠</td>" : "<tr><td class=\"d\"></td>");
            sb.Append("<td class=\"s\">").Append(E(row.Section)).Append("</td><th class=\"r\">").Append(E(row.Key)).Append("</th>");
            for (int i = 0; i < row.Cells.Count; i++)
            {
                string note = row.Notes.Count > i ? row.Notes[i] : "";
                string cls = note switch
                {
                    "backported" => "backported",
                    "REGRESSED" => "regressed",
                    "ERROR" => "error",
                    _ when note.StartsWith("mainline", StringComparison.Ordinal) => "backported",
                    _ => "",
                };
                sb.Append(cls.Length > 0 ? $"<td class=\"{cls}\">" : "<td>").Append(E(row.Cells[i]));
                if (note.Length > 0)
                    sb.Append(" <small>(").Append(E(note)).Append(")</small>");
                sb.Append("</td>");
            }
            sb.Append("</tr>\n");
        }
        sb.Append("</tbody></table>\n");
        if (m.Flagged.Count > 0)
        {
            sb.Append("<p><b>Flagged</b> (regressed/unexpected or failed):</p><ul class=\"flagged\">\n");
            foreach (var f in m.Flagged)
                sb.Append("<li>").Append(E(f)).Append("</li>\n");
            sb.Append("</ul>\n");
        }
    }

    private static void CheckSection(StringBuilder sb, List<MatrixKernel> kernels, string pageDirectory)
    {
        var keys = kernels.SelectMany(k => k.Check!.Results.Select(r => (r.Scenario, r.Memory))).Distinct().ToList();
        var rows = keys.Select(key => kernels.Select(k => k.Check!.Results.FirstOrDefault(r => r.Scenario == key.Scenario && r.Memory == key.Memory)).ToList()).ToList();
        int differing = rows.Count(cells => cells.Select(c => c?.Status ?? "absent").Distinct().Count() > 1);
        sb.Append("<h2 id=\"check\">check (model against kernel): ").Append(keys.Count).Append(" cells, ").Append(differing).Append(" differ</h2>\n<table class=\"m\">");
        Header(sb, kernels);
        sb.Append("<tbody>\n");
        for (int r = 0; r < keys.Count; r++)
        {
            var cells = rows[r];
            bool differs = cells.Select(c => c?.Status ?? "absent").Distinct().Count() > 1;
            sb.Append(differs ? "<tr class=\"differs\"><td class=\"d\">≠</td>" : "<tr><td class=\"d\"></td>");
            sb.Append("<td class=\"s\">").Append(E(keys[r].Memory)).Append("</td><th class=\"r\">").Append(E(keys[r].Scenario)).Append("</th>");
            for (int i = 0; i < cells.Count; i++)
            {
                var c = cells[i];
                if (c is null)
                {
                    sb.Append("<td class=\"none\">not run</td>");
                    continue;
                }
                string detail = c.Status switch
                {
                    "diverged" => $"at op {c.DivergenceOp}: {c.Aspect} expected {c.Expected}, actual {c.Actual}" + (c.Switches is { Count: > 0 } sw ? $" (switches: {string.Join(", ", sw)})" : ""),
                    _ => c.Reason ?? "",
                };
                sb.Append("<td class=\"").Append(E(c.Status)).Append('"');
                if (detail.Length > 0)
                    sb.Append(" title=\"").Append(E(detail)).Append('"');
                sb.Append('>').Append(E(c.Status == "notapplicable" ? "n/a" : c.Status));
                if (c.Status == "diverged")
                {
                    sb.Append("<div class=\"why\">").Append(E(detail)).Append("</div>");
                    var repro = Path.Combine(Path.GetDirectoryName(kernels[i].CheckPath!)!, ReproducerPath(c.Scenario, c.Memory));
                    if (File.Exists(repro))
                        sb.Append("<a class=\"repro\" href=\"").Append(E(RelativeLink(pageDirectory, repro))).Append("\">C reproducer</a>");
                }
                sb.Append("</td>");
            }
            sb.Append("</tr>\n");
        }
        sb.Append("</tbody></table>\n");
    }

    /// <summary>A relative URL from the page's directory to a file (path segments escaped).</summary>
    public static string RelativeLink(string pageDirectory, string file) =>
        string.Join('/', Path.GetRelativePath(Path.GetFullPath(pageDirectory), Path.GetFullPath(file)).Split(Path.DirectorySeparatorChar).Select(Uri.EscapeDataString));

    private static string E(string s) => WebUtility.HtmlEncode(s);

    private const string Css = """
        body { font: 13px/1.35 system-ui, "DejaVu Sans", sans-serif; margin: 16px; color: #111; background: #fff; }
        h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 22px 0 6px; }
        .meta, .legend { color: #444; margin: 4px 0; }
        table.m { border-collapse: collapse; margin-bottom: 8px; }
        table.m th, table.m td { border: 1px solid #ccc; padding: 2px 6px; vertical-align: top; text-align: left; }
        table.m thead th { background: #e8e8e8; position: sticky; top: 0; z-index: 1; }
        th.k { font-family: "DejaVu Sans Mono", monospace; font-weight: 600; white-space: nowrap; }
        th.r { font-weight: normal; font-family: "DejaVu Sans Mono", monospace; white-space: nowrap; }
        td.s { color: #555; }
        td.d { color: #b00; font-weight: bold; text-align: center; width: 1em; }
        tr.differs th.r, tr.differs td.s { background: #fff3b0; font-weight: bold; }
        tr.differs td.d { background: #fff3b0; }
        body.onlydiff table.m tbody tr:not(.differs) { display: none; }
        .ne { color: #b00; font-weight: bold; background: #fff3b0; padding: 0 3px; }
        .c { padding: 1px 6px; border-radius: 3px; }
        .pass { background: #d9f2d9; } .diverged, .regressed { background: #f8c9c4; } .error { background: #e6c9f0; }
        .notapplicable, .none { background: #eee; color: #666; } .backported { background: #cfe3fa; }
        td.diverged { min-width: 14em; } .why { font-size: 11px; color: #444; font-family: "DejaVu Sans Mono", monospace; }
        a.repro { font-size: 11px; }
        ul.flagged { color: #900; }

        """;
}
