using System.Text.RegularExpressions;

namespace UffdNative.Harness.Matrix;

/// <summary>One change line of a Debian kernel changelog: the upload (<see cref="Version"/>) that
/// brought it, the upstream stable release it came with (the <c>ChangeLog-X.Y.Z</c> it is listed
/// under; null for Debian's own patches), and its text with continuation lines joined.</summary>
public sealed record ChangelogItem(string Version, string? Upstream, string Text);

/// <summary>A change that concerns the bisected behaviour: its score and which terms matched.</summary>
public sealed record RankedChange(ChangelogItem Item, int Score, IReadOnlyList<string> Matched);

/// <summary>
/// Reads the <c>changelog.Debian</c> of a kernel package (linux-image-*: the source's changelog, led
/// by linux-signed-amd64's own entries) and finds the change lines between two builds that mention
/// userfaultfd, uffd, mm/ or a CVE the bisected row cites, ranked by relevance.
/// </summary>
public static partial class DebianChangelog
{
    [GeneratedRegex(@"^(\S+) \(([^)\s]+)\) [^;]*;")]
    private static partial Regex Header();

    [GeneratedRegex(@"/ChangeLog-(\d+\.\d+(?:\.\d+)?)\s*$")]
    private static partial Regex StableUrl();

    [GeneratedRegex(@"CVE-\d{4}-\d{4,}")]
    private static partial Regex Cve();

    [GeneratedRegex(@"(?<![A-Za-z0-9_/])mm(/|: )")]   // mm/x, "mm: x"; not x86/mm/
    private static partial Regex MmPath();

    /// <summary>Every change line, newest upload first, as the file lists them.</summary>
    public static IReadOnlyList<ChangelogItem> Parse(string text)
    {
        var items = new List<ChangelogItem>();
        string? version = null, upstream = null;
        string? current = null;
        string? currentUpstream = null;
        void Flush()
        {
            if (current is not null && version is not null)
                items.Add(new ChangelogItem(version, currentUpstream, current));
            current = null;
        }
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r', ' ', '\t');
            var h = Header().Match(line);
            if (h.Success)
            {
                Flush();
                version = UploadVersion(h.Groups[1].Value, h.Groups[2].Value);
                upstream = null;
                continue;
            }
            if (version is null) continue;
            if (line.StartsWith(" -- ", StringComparison.Ordinal) || line.Length == 0)
            {
                Flush();
                if (line.Length != 0) version = null;
                continue;
            }
            var trimmed = line.TrimStart();
            int indent = line.Length - trimmed.Length;
            var url = StableUrl().Match(trimmed);
            if (url.Success && trimmed.StartsWith("http", StringComparison.Ordinal))
            {
                Flush();
                upstream = url.Groups[1].Value;
                continue;
            }
            if (trimmed.StartsWith("[ ", StringComparison.Ordinal) && trimmed.EndsWith(" ]", StringComparison.Ordinal) && indent <= 2)
            {
                Flush();
                upstream = null;   // "[ Maintainer ]": Debian's own changes follow
                continue;
            }
            if (trimmed.StartsWith("* ", StringComparison.Ordinal) && indent <= 2)
            {
                Flush();
                upstream = null;   // a top-level item is Debian's until a ChangeLog URL says otherwise
                current = trimmed[2..];
                currentUpstream = null;
                continue;
            }
            if (trimmed.StartsWith("- ", StringComparison.Ordinal) || trimmed.StartsWith("* ", StringComparison.Ordinal))
            {
                Flush();
                current = trimmed[2..];
                currentUpstream = upstream;
                continue;
            }
            if (current is not null)
                current += " " + trimmed;   // a continuation line
        }
        Flush();
        return items;
    }

    /// <summary>The version an entry stands for: linux-signed-ARCH's "6.1.192+3" signs linux
    /// "6.1.192-3" (and "6.12.118+1~deb12u1" signs "6.12.118-1~deb12u1").</summary>
    public static string UploadVersion(string source, string version)
    {
        if (!source.StartsWith("linux-signed", StringComparison.Ordinal) || version.Contains('-', StringComparison.Ordinal))
            return version;
        int plus = version.IndexOf('+', StringComparison.Ordinal);
        return plus > 0 ? version[..plus] + "-" + version[(plus + 1)..] : version;
    }

    /// <summary>The change lines of the uploads after <paramref name="older"/> up to and including
    /// <paramref name="newer"/>, in dpkg order of versions. A rebuild for an older release
    /// (6.12.118-1~deb12u1, 6.12.95-1~bpo12+1) stands for the upload it rebuilds: bookworm's 6.12
    /// changelog lists trixie's "linux (6.12.118-1)" under "linux-6.12 (6.12.118-1~deb12u1)", and
    /// its changes are what 6.12.118-1~deb12u1 brought (in dpkg order 6.12.118-1 comes after it).</summary>
    public static IReadOnlyList<ChangelogItem> Between(IReadOnlyList<ChangelogItem> items, string older, string newer)
    {
        string o = Rebuilt(older), n = Rebuilt(newer);
        return [.. items.Where(i => DebianVersion.Compare(o, Rebuilt(i.Version)) < 0 && DebianVersion.Compare(Rebuilt(i.Version), n) <= 0)];
    }

    /// <summary>The upload a rebuild stands for: "~debNuM" and "~bpoN+M" suffixes dropped.</summary>
    public static string Rebuilt(string version) => RebuildSuffix().Replace(version, "");

    [GeneratedRegex(@"~(deb\d+u\d+|bpo\d+\+\d+)$")]
    private static partial Regex RebuildSuffix();

    /// <summary>
    /// The lines that mention userfaultfd, uffd, mm/ (or an "mm:" subject) or one of <paramref
    /// name="cves"/>, best first. Score: a cited CVE 100, userfaultfd 40, uffd 30, each of <paramref
    /// name="hints"/> (words of the row, e.g. mremap, close) 10, mm 5; ties keep the file's order.
    /// </summary>
    public static IReadOnlyList<RankedChange> Rank(IEnumerable<ChangelogItem> items, IReadOnlyCollection<string> cves, IReadOnlyCollection<string> hints)
    {
        var ranked = new List<RankedChange>();
        foreach (var item in items)
        {
            var text = item.Text;
            var matched = new List<string>();
            int score = 0;
            foreach (var cve in Cve().Matches(text).Select(m => m.Value).Distinct())
                if (cves.Contains(cve))
                {
                    score += 100;
                    matched.Add(cve);
                }
            bool userfaultfd = text.Contains("userfaultfd", StringComparison.OrdinalIgnoreCase);
            if (userfaultfd)
            {
                score += 40;
                matched.Add("userfaultfd");
            }
            if (text.Replace("userfaultfd", "", StringComparison.OrdinalIgnoreCase).Contains("uffd", StringComparison.OrdinalIgnoreCase))
            {
                score += 30;
                matched.Add("uffd");
            }
            bool mm = MmPath().IsMatch(text);
            if (score == 0 && !mm)
                continue;   // only the four kinds of mention qualify; hints only order them
            if (mm)
            {
                score += 5;
                matched.Add("mm/");
            }
            foreach (var hint in hints)
                if (text.Contains(hint, StringComparison.OrdinalIgnoreCase))
                {
                    score += 10;
                    matched.Add(hint);
                }
            ranked.Add(new RankedChange(item, score, matched));
        }
        return [.. ranked.Select((r, i) => (r, i)).OrderByDescending(t => t.r.Score).ThenBy(t => t.i).Select(t => t.r)];
    }

    /// <summary>The CVE identifiers in a text (a row's title, a scenario's description).</summary>
    public static IReadOnlyList<string> CvesIn(string text) => [.. Cve().Matches(text).Select(m => m.Value).Distinct()];
}
