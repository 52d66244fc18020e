using System.Text;

namespace UffdNative.Harness.Probing;

/// <summary>One row of the probes × kernels matrix: a key, one cell per report, and whether the
/// cells differ (the behaviour itself, not the verdict annotation).</summary>
public sealed record MatrixRow(string Section, string Key, IReadOnlyList<string> Cells, bool Differs)
{
    /// <summary>Verdict annotations per cell ("" when as expected).</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];
}

public sealed record ReportMatrix(IReadOnlyList<string> Columns, IReadOnlyList<MatrixRow> Rows, IReadOnlyList<string> Flagged)
{
    public int DifferingRows => Rows.Count(r => r.Differs);
}

/// <summary>
/// <c>uffdnative compare</c>: several probe reports (one per kernel) as a matrix of every probe row ×
/// kernel, differing rows highlighted; also the verdict annotations (backported, regressed) per cell.
/// </summary>
public static class ReportComparer
{
    public static ReportMatrix Build(IReadOnlyList<ProbeReport> reports)
    {
        var columns = ColumnNames(reports);
        var rows = new List<MatrixRow>();

        void Add(string section, string key, Func<ProbeReport, string> cell, Func<ProbeReport, string>? note = null)
        {
            var cells = reports.Select(cell).ToList();
            var notes = reports.Select(r => note?.Invoke(r) ?? "").ToList();
            rows.Add(new MatrixRow(section, key, cells, cells.Distinct(StringComparer.Ordinal).Count() > 1) { Notes = notes });
        }

        Add("environment", "kernel release", r => r.KernelRelease);
        Add("environment", "uid", r => r.Environment.Uid.ToString(System.Globalization.CultureInfo.InvariantCulture) + (r.Environment.CapSysPtrace ? " +ptrace" : ""));
        Add("environment", "vm.unprivileged_userfaultfd", r => r.Environment.UnprivilegedUserfaultfd?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "absent");
        Add("environment", "/dev/userfaultfd", r => r.Environment.Device.Exists ? $"{r.Environment.Device.Mode} {r.Environment.Device.DevNumber}" : "absent");
        Add("environment", "THP / shmem THP", r => $"{r.Environment.Thp} / {r.Environment.ShmemThp}");
        Add("environment", "huge pages", r => $"{r.Environment.HugePages.Total} × {r.Environment.HugePages.SizeKb} kB");

        foreach (var path in reports.SelectMany(r => r.OpenPaths.Select(p => p.Path)).Distinct())
            Add("open", path, r => r.OpenPaths.FirstOrDefault(p => p.Path == path)?.Errno ?? "—");
        Add("open", "experiments use", r => r.UsablePath ?? "none");

        Add("features", "UFFDIO_API features", r => r.Features.Error is not null ? "cannot open" : $"0x{r.Features.Supported:x}", r => Note(r.Features.Verdict));
        Add("features", "UFFDIO_API ioctls", r => r.Features.Error is not null ? "—" : $"0x{r.Features.ApiIoctls:x}");
        foreach (var f in UffdFeatureInfo.All)
            Add("features", f.CName.Replace("UFFD_FEATURE_", "", StringComparison.Ordinal), r => r.Features.Error is not null ? "—" : (r.Features.Supported & (ulong)f.Feature) != 0 ? "yes" : "no");

        var masks = reports.SelectMany(r => r.RegisterMasks.Select(m => (m.Memory, m.Mode))).Distinct().ToList();
        foreach (var (memory, mode) in masks)
            Add("register", $"{memory} {mode}", r => r.RegisterMasks.FirstOrDefault(m => m.Memory == memory && m.Mode == mode) is { } m ? (m.Errno == "OK" ? $"0x{m.Ioctls:x}" : m.Errno) : "skipped",
                r => r.RegisterMasks.FirstOrDefault(m => m.Memory == memory && m.Mode == mode) is { } m ? Note(m.Verdict) : "");

        foreach (var id in reports.SelectMany(r => r.Behaviours.Select(b => b.Id)).Distinct())
            Add("behaviour", id, r => r.Behaviours.FirstOrDefault(b => b.Id == id) is { } b ? Cell(b) : "not run",
                r => r.Behaviours.FirstOrDefault(b => b.Id == id) is { } b ? Note(b.Verdict) : "");

        foreach (var id in reports.SelectMany(r => r.Facts.Select(f => f.Id)).Distinct())
            Add("fact", id, r => r.Facts.FirstOrDefault(f => f.Id == id) is { } f ? f.Value ?? "n/d" : "not run",
                r => r.Facts.FirstOrDefault(f => f.Id == id) is { DiffersFromMainline: true } f ? $"mainline {f.Mainline}" : "");
        Add("profile", "detected", r => r.Profile.Description);

        Add("summary", "verdicts", r => $"{r.Summary.AsExpected} ok, {r.Summary.Backported} backported, {r.Summary.Regressed} regressed, {r.Summary.Undetermined} n/d, {r.Summary.Errors} errors" + (r.Summary.NewerThanModel > 0 ? $", {r.Summary.NewerThanModel} newer than the model" : ""));

        var flagged = new List<string>();
        for (int i = 0; i < reports.Count; i++)
        {
            var r = reports[i];
            foreach (var b in r.Behaviours.Where(b => VerdictText.Parse(b.Verdict).IsFlagged()))
                flagged.Add($"{columns[i]}: {b.Id} {VerdictText.Parse(b.Verdict).Display()} ({b.Observed})");
            foreach (var m in r.RegisterMasks.Where(m => VerdictText.Parse(m.Verdict).IsFlagged()))
                flagged.Add($"{columns[i]}: register {m.Memory} {m.Mode} {VerdictText.Parse(m.Verdict).Display()}");
            if (r.Features.Error is null && VerdictText.Parse(r.Features.Verdict).IsFlagged())
                flagged.Add($"{columns[i]}: features 0x{r.Features.Supported:x} {VerdictText.Parse(r.Features.Verdict).Display()}");
        }
        return new ReportMatrix(columns, rows, flagged);
    }

    /// <summary>The short answer of a behaviour row in a matrix cell: new / old / not supported / n/d / error.</summary>
    public static string Cell(BehaviourResult b) => b.Kind switch
    {
        "observed" => b.Value == true ? "new" : "old",
        "not-supported" => "not supported",
        "undetermined" => "n/d",
        _ => "error",
    };

    private static string Note(string verdict) => VerdictText.Parse(verdict) switch
    {
        Verdict.Backported => "backported",
        Verdict.Regressed => "REGRESSED",
        Verdict.Error => "ERROR",
        Verdict.NewerThanModel => "newer than the model",
        _ => "",
    };

    /// <summary>Column headers: the kernel release, made unique with the uid when one kernel was
    /// probed as several users.</summary>
    public static List<string> ColumnNames(IReadOnlyList<ProbeReport> reports)
    {
        var releases = reports.Select(r => r.KernelRelease).ToList();
        var names = releases.Select((rel, i) => releases.Count(n => n == rel) > 1 ? $"{rel} (uid {reports[i].Environment.Uid})" : rel).ToList();
        for (int i = 0; i < names.Count; i++)
        {
            int dup = names.Take(i).Count(n => n == names[i]);
            if (dup > 0)
                names[i] += $" #{dup + 1}";
        }
        return names;
    }

    private static string WithNote(MatrixRow row, int i) => row.Notes.Count > i && row.Notes[i].Length > 0 ? $"{row.Cells[i]} ({row.Notes[i]})" : row.Cells[i];

    public static string Markdown(ReportMatrix m)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"Probe rows × kernels: {m.Rows.Count} rows, {m.DifferingRows} differ (marked **≠**, in bold). A cell's verdict against mainline of that kernel's version is shown when it is not \"as expected\".");
        sb.AppendLine();
        sb.AppendLine("| | Section | Row | " + string.Join(" | ", m.Columns.Select(c => $"`{Esc(c)}`")) + " |");
        sb.AppendLine("|---|---|---|" + string.Concat(m.Columns.Select(_ => "---|")));
        foreach (var row in m.Rows)
        {
            var cells = Enumerable.Range(0, m.Columns.Count).Select(i => Esc(WithNote(row, i)));
            if (row.Differs)
                sb.AppendLine($"| **≠** | {Esc(row.Section)} | **{Esc(row.Key)}** | " + string.Join(" | ", cells.Select(c => $"**{c}**")) + " |");
            else
                sb.AppendLine($"| | {Esc(row.Section)} | {Esc(row.Key)} | " + string.Join(" | ", cells) + " |");
        }
        if (m.Flagged.Count > 0)
        {
            sb.AppendLine();
            sb.AppendLine("**Flagged (regressed/unexpected or failed):**");
            sb.AppendLine();
            foreach (var f in m.Flagged)
                sb.AppendLine($"- {Esc(f)}");
        }
        return sb.ToString();
    }

    private static string Esc(string s) => MarkdownText.Cell(s);

    public static string Table(ReportMatrix m, bool color = false)
    {
        var sb = new StringBuilder();
        int keyw = Math.Max(12, m.Rows.Select(r => r.Section.Length + 1 + r.Key.Length).DefaultIfEmpty(12).Max());
        var widths = m.Columns.Select((c, i) => Math.Max(c.Length, m.Rows.Select(r => WithNote(r, i).Length).DefaultIfEmpty(0).Max())).ToList();
        sb.AppendLine("  " + "row".PadRight(keyw) + "  " + string.Join("  ", m.Columns.Select((c, i) => c.PadRight(widths[i]))));
        sb.AppendLine("  " + new string('-', keyw) + "  " + string.Join("  ", widths.Select(w => new string('-', w))));
        string? section = null;
        foreach (var row in m.Rows)
        {
            if (row.Section != section && section is not null)
                sb.AppendLine();
            section = row.Section;
            string line = $"{row.Section} {row.Key}".PadRight(keyw) + "  " + string.Join("  ", Enumerable.Range(0, m.Columns.Count).Select(i => WithNote(row, i).PadRight(widths[i])));
            if (row.Differs)
                sb.AppendLine(color ? $"\u001b[1;33m* {line}\u001b[0m" : $"* {line}");
            else
                sb.AppendLine("  " + line);
        }
        sb.AppendLine();
        sb.AppendLine($"{m.Rows.Count} rows, {m.DifferingRows} differ (marked *).");
        foreach (var f in m.Flagged)
            sb.AppendLine(color ? $"\u001b[1;31mflagged: {f}\u001b[0m" : $"flagged: {f}");
        return sb.ToString();
    }
}
