using System.Globalization;
using System.Text;
using System.Text.Json;

namespace UffdNative.Harness.Matrix;

/// <summary>One build the bisect looked at: its answer, whether its shard was booted in this run
/// or reused from an earlier one, and the shard's wall time (boot included).</summary>
public sealed record BisectBuildResult(KernelBuild Build, BisectAnswer Answer, bool Booted, int? Seconds, string ShardDirectory);

/// <summary>The result of <c>uffdnative bisect</c>: the builds in range, what each looked-at build
/// answered, the flip (two adjacent builds) or its absence, and the changelog lines between them.</summary>
public sealed record BisectReport
{
    public required BisectTarget Target { get; init; }
    public string? Series { get; init; }
    public required IReadOnlyList<KernelBuild> Builds { get; init; }
    /// <summary>In the order the search looked at them.</summary>
    public required IReadOnlyList<BisectBuildResult> Steps { get; init; }
    public BisectBuildResult? LastOld { get; init; }
    public BisectBuildResult? FirstNew { get; init; }
    public IReadOnlyList<RankedChange> Changes { get; init; } = [];
    /// <summary>Why there are no changelog lines (not packaged, no flip, extraction failed), else null.</summary>
    public string? ChangelogNote { get; init; }
    public double WallSeconds { get; init; }

    public bool Flipped => FirstNew is not null;

    /// <summary>Changelog lines the text form shows (the JSON has all).</summary>
    public const int TextLines = 12;
    public int Booted => Steps.Count(s => s.Booted);
    public int Reused => Steps.Count(s => !s.Booted);

    public string Summary()
    {
        var first = Steps[0];
        var last = Steps.FirstOrDefault(s => s.Build == Builds[^1]) ?? Steps[^1];
        var cost = $"{Steps.Count} of {Builds.Count} builds looked at ({Booted} booted, {Reused} reused), {WallSeconds.ToString("F0", CultureInfo.InvariantCulture)} s";
        return Flipped
            ? $"{Target.Id}: first build with the new answer is {FirstNew!.Build.Spec}{Rel(FirstNew.Build)} (after {LastOld!.Build.Spec}{Rel(LastOld.Build)}); {cost}"
            : $"{Target.Id}: no flip from {first.Build.Spec} to {last.Build.Spec}: both answer \"{first.Answer.Text}\" (a change, if any, is outside this range); {cost}";
    }

    private static string Rel(KernelBuild b) => b.Release is { } r && r != b.Spec ? $" ({r})" : "";

    public string ToText()
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"bisect {(Target.IsScenario ? "scenario" : "row")} {Target.Id}: {Target.Title}\n");
        sb.Append(CultureInfo.InvariantCulture, $"builds{(Series is null ? "" : $" of {Series}")}: {string.Join(" ", Builds.Select(b => b.Spec))}\n");
        foreach (var s in Steps)
            sb.Append(CultureInfo.InvariantCulture, $"  {s.Build.Spec,-22} {(s.Booted ? "booted" : "reused"),-6} {(s.Seconds is { } t ? $"{t,4} s" : "   - ")}  {s.Answer.Text}\n");
        sb.Append(Summary()).Append('\n');
        if (Flipped)
        {
            sb.Append(CultureInfo.InvariantCulture, $"  {LastOld!.Build.Spec}: {LastOld.Answer.Text}\n");
            sb.Append(CultureInfo.InvariantCulture, $"  {FirstNew!.Build.Spec}: {FirstNew.Answer.Text}\n");
            if (ChangelogNote is not null)
                sb.Append(CultureInfo.InvariantCulture, $"changelog: {ChangelogNote}\n");
            else
            {
                sb.Append(CultureInfo.InvariantCulture, $"changelog {LastOld.Build.Spec} .. {FirstNew.Build.Spec}: {Changes.Count} line(s) mention userfaultfd, uffd, mm/{(Target.Cves.Count > 0 ? " or " + string.Join(", ", Target.Cves) : "")}\n");
                foreach (var c in Changes.Take(TextLines))
                    sb.Append(CultureInfo.InvariantCulture, $"  {c.Score,4}  {c.Item.Version} ({(c.Item.Upstream is { } u ? "stable " + u : "Debian patch")}): {c.Item.Text}  [{string.Join(", ", c.Matched)}]\n");
                if (Changes.Count > TextLines)
                    sb.Append(CultureInfo.InvariantCulture, $"  … and {Changes.Count - TextLines} more, ranked lower (--json lists all)\n");
            }
        }
        return sb.ToString();
    }

    /// <summary>KTAP: one test per looked-at build ("ok" while it answers like the oldest, "not ok"
    /// once it answers otherwise), the flip and changelog lines as diagnostics.</summary>
    public string ToKtap()
    {
        var sb = new StringBuilder("KTAP version 1\n");
        sb.Append(CultureInfo.InvariantCulture, $"# bisect {Target.Id}\n1..{Steps.Count}\n");
        var oldKey = Steps[0].Answer.Key;
        int n = 0;
        foreach (var s in Steps.OrderBy(s => Builds.ToList().IndexOf(s.Build)))
            sb.Append(CultureInfo.InvariantCulture, $"{(s.Answer.Key == oldKey ? "ok" : "not ok")} {++n} {s.Build.Spec} # {s.Answer.Text.Replace('\n', ' ')}\n");
        sb.Append("# ").Append(Summary()).Append('\n');
        foreach (var c in Changes)
            sb.Append(CultureInfo.InvariantCulture, $"# {c.Score} {c.Item.Version} {c.Item.Upstream ?? "debian"}: {c.Item.Text}\n");
        return sb.ToString();
    }

    public string ToJson()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("schemaVersion", 1);
            w.WriteString("tool", "uffdnative");
            w.WriteString("target", Target.Id);
            w.WriteString("kind", Target.IsScenario ? "scenario" : "row");
            w.WriteString("title", Target.Title);
            if (Target.Profile is not null) w.WriteString("profile", Target.Profile);
            if (Series is not null) w.WriteString("series", Series); else w.WriteNull("series");
            w.WriteStartArray("builds");
            foreach (var b in Builds) w.WriteStringValue(b.Spec);
            w.WriteEndArray();
            w.WriteBoolean("flipped", Flipped);
            WriteBuild(w, "lastOld", LastOld);
            WriteBuild(w, "firstNew", FirstNew);
            w.WriteNumber("booted", Booted);
            w.WriteNumber("reused", Reused);
            w.WriteNumber("wallSeconds", Math.Round(WallSeconds, 1));
            w.WriteStartArray("steps");
            foreach (var s in Steps) WriteBuildObject(w, s);
            w.WriteEndArray();
            if (ChangelogNote is not null) w.WriteString("changelogNote", ChangelogNote); else w.WriteNull("changelogNote");
            w.WriteStartArray("changelog");
            foreach (var c in Changes)
            {
                w.WriteStartObject();
                w.WriteNumber("score", c.Score);
                w.WriteString("version", c.Item.Version);
                if (c.Item.Upstream is { } u) w.WriteString("upstream", u); else w.WriteNull("upstream");
                w.WriteString("text", c.Item.Text);
                w.WriteStartArray("matched");
                foreach (var m in c.Matched) w.WriteStringValue(m);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteString("summary", Summary());
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }

    private static void WriteBuild(Utf8JsonWriter w, string name, BisectBuildResult? b)
    {
        if (b is null) { w.WriteNull(name); return; }
        w.WritePropertyName(name);
        WriteBuildObject(w, b);
    }

    private static void WriteBuildObject(Utf8JsonWriter w, BisectBuildResult b)
    {
        w.WriteStartObject();
        w.WriteString("build", b.Build.Spec);
        if (b.Build.Package is { } p) w.WriteString("package", p); else w.WriteNull("package");
        if (b.Build.Release is { } r) w.WriteString("release", r); else w.WriteNull("release");
        w.WriteString("answer", b.Answer.Key);
        w.WriteString("text", b.Answer.Text);
        w.WriteBoolean("booted", b.Booted);
        if (b.Seconds is { } s) w.WriteNumber("seconds", s); else w.WriteNull("seconds");
        w.WriteString("shard", b.ShardDirectory);
        w.WriteEndObject();
    }
}
