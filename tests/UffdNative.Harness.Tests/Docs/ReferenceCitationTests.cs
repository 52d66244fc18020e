using Xunit.Abstractions;

namespace UffdNative.Harness.Tests.Docs;

/// <summary>Every `§` citation in the repository's code and docs resolves to a heading or anchor of the
/// project's own references: docs/kernel-reference.md, or docs/userspace-anchors.md when the citation
/// names it ("userspace-anchors §A.3"). A citation that names any other document must name one in docs/
/// that has the section. No kernel is needed.</summary>
public partial class ReferenceCitationTests(ITestOutputHelper output)
{
    private const string KernelReference = "docs/kernel-reference.md";
    private const string UserspaceAnchors = "docs/userspace-anchors.md";
    // The external file the project used to cite, spelt in two parts so that this test does not name it.
    private const string OldReference = "uffd-" + "semantics.md";

    private static readonly string[] CitingExtensions = [".cs", ".c", ".h", ".sh", ".md"];
    private static readonly HashSet<string> SkippedDirectories = new(StringComparer.Ordinal) { ".git", "bin", "obj", "artifacts", "TestResults" };

    // A citation: the section sign with an optional space, the section (letters, digits, dots) and, for a numbered
    // catalogue such as §2.1, an optional " #N" item.
    [GeneratedRegex(@"§ ?(?<sec>[0-9A-Za-z.]+)(?: #(?<item>[0-9]+))?")]
    private static partial Regex CitationRegex();

    // What a section must look like once a sentence's final dot is dropped: 1.4, 0a, 0.4, 3, A.3.
    [GeneratedRegex(@"^(?:[0-9]+[a-z]?(?:\.[0-9]+)*|[A-Z](?:\.[0-9]+)*)$")]
    private static partial Regex SectionRegex();

    // The word right before a citation, when it names a document: "userspace-anchors", "anchors",
    // "kernel-reference.md", "`kernel-matrix-notes.md`".
    [GeneratedRegex(@"(?<doc>[A-Za-z0-9_-]+(?:\.md)?)`?\s*$")]
    private static partial Regex DocumentBeforeRegex();

    // Between two citations of one list ("§1.4, §1.5 and §1.7"): the later ones cite the same document.
    [GeneratedRegex(@"^[\s,;/`]*(?:and|or)?[\s`]*$")]
    private static partial Regex ListSeparatorRegex();

    // Headings "## 0a.", "### 1.4 ioctl table", "### A.3 …" and explicit anchors <a id="2.1-14"></a>.
    [GeneratedRegex(@"^#{2,4} (?<id>[0-9]+[a-z]?(?:\.[0-9]+)*|[A-Z](?:\.[0-9]+)*)\.?(?:\s|$)")]
    private static partial Regex HeadingRegex();

    [GeneratedRegex(@"<a id=""(?<id>[^""]+)""></a>")]
    private static partial Regex AnchorRegex();

    [Fact]
    public void EveryCitationResolvesToTheProjectsReference()
    {
        var root = RepoRoot();
        var anchorsByDoc = new Dictionary<string, HashSet<string>?>(StringComparer.Ordinal);
        HashSet<string>? Anchors(string relPath)
        {
            if (!anchorsByDoc.TryGetValue(relPath, out var ids))
                anchorsByDoc[relPath] = ids = ReadAnchors(Path.Combine(root, relPath));
            return ids;
        }
        Assert.NotNull(Anchors(KernelReference));
        Assert.NotNull(Anchors(UserspaceAnchors));

        var failures = new List<string>();
        int checkedCount = 0;
        foreach (var file in CitingFiles(root))
        {
            var rel = Path.GetRelativePath(root, file).Replace('\\', '/');
            // Unqualified citations inside a reference cite that reference; everywhere else the kernel one.
            var ownDoc = rel is KernelReference or UserspaceAnchors ? rel : KernelReference;
            var lines = File.ReadAllLines(file);
            for (int n = 0; n < lines.Length; n++)
            {
                var line = lines[n];
                string? previousDoc = null;
                int previousEnd = 0;
                foreach (Match m in CitationRegex().Matches(line))
                {
                    checkedCount++;
                    var raw = m.Value;
                    var where = $"{rel}:{n + 1}: \"{raw}\"";
                    var gap = line[previousEnd..m.Index];
                    var doc = previousDoc is not null && ListSeparatorRegex().IsMatch(gap)
                        ? previousDoc
                        : DocumentNamedBefore(gap) ?? ownDoc;
                    previousDoc = doc;
                    previousEnd = m.Index + m.Length;

                    var section = m.Groups["sec"].Value;
                    if (section.EndsWith('.'))
                        section = section[..^1]; // the sentence's full stop
                    if (!SectionRegex().IsMatch(section))
                    {
                        failures.Add($"{where}: malformed section \"{section}\" (expected a form such as §1.4, §0a, §0.4, §2.1 #14, userspace-anchors §A.3)");
                        continue;
                    }
                    var ids = Anchors(doc);
                    if (ids is null)
                    {
                        failures.Add($"{where}: cites {doc}, which is not in the repository (cite {KernelReference} or {UserspaceAnchors})");
                        continue;
                    }
                    if (!ids.Contains(section))
                    {
                        failures.Add($"{where}: {doc} has no heading or anchor §{section}");
                        continue;
                    }
                    if (m.Groups["item"].Success && !ids.Contains($"{section}-{m.Groups["item"].Value}"))
                        failures.Add($"{where}: {doc} §{section} has no item #{m.Groups["item"].Value} (anchor \"{section}-{m.Groups["item"].Value}\")");
                }
            }
        }
        output.WriteLine($"{checkedCount} citations checked");
        Assert.True(checkedCount > 100, $"only {checkedCount} citations found: is the scan looking at the repository?");
        Assert.True(failures.Count == 0, $"{failures.Count} unresolved citation(s):\n" + string.Join('\n', failures));
    }

    [Fact]
    public void NoFileNamesTheOldExternalReference()
    {
        var root = RepoRoot();
        string[] extensions = [.. CitingExtensions, ".txt", ".json", ".yml", ".yaml", ".props", ".targets", ".csproj", ".xml", ""];
        var hits = new List<string>();
        foreach (var file in Files(root, extensions))
        {
            var lines = File.ReadAllLines(file);
            for (int n = 0; n < lines.Length; n++)
                if (lines[n].Contains(OldReference, StringComparison.Ordinal))
                    hits.Add($"{Path.GetRelativePath(root, file)}:{n + 1}: {lines[n].Trim()}");
        }
        Assert.True(hits.Count == 0, $"the kernel reference is {KernelReference} now; these lines still name the external file:\n" + string.Join('\n', hits));
    }

    /// <summary>The ids a reference offers: section numbers of its headings and explicit anchors. Null
    /// when the file does not exist.</summary>
    private static HashSet<string>? ReadAnchors(string path)
    {
        if (!File.Exists(path))
            return null;
        var ids = new HashSet<string>(StringComparer.Ordinal);
        bool inFence = false;
        foreach (var line in File.ReadLines(path))
        {
            if (line.StartsWith("```", StringComparison.Ordinal))
                inFence = !inFence;
            if (inFence)
                continue;
            var h = HeadingRegex().Match(line);
            if (h.Success)
                ids.Add(h.Groups["id"].Value);
            foreach (Match a in AnchorRegex().Matches(line))
                ids.Add(a.Groups["id"].Value);
        }
        return ids;
    }

    /// <summary>The document a citation names just before it, as a repository path; null if none.</summary>
    private static string? DocumentNamedBefore(string gap)
    {
        var m = DocumentBeforeRegex().Match(gap);
        if (!m.Success)
            return null;
        var name = m.Groups["doc"].Value;
        if (name.EndsWith(".md", StringComparison.Ordinal))
            return name == "README.md" ? name : $"docs/{name}";
        return name switch
        {
            "userspace-anchors" or "anchors" => UserspaceAnchors,
            "kernel-reference" => KernelReference,
            // The project's research notes outside the repository, named without their extension.
            "kernel-matrix-notes" or "uffd-after-6.18" or "uffd-semantics" => $"docs/{name}.md",
            // Any other word ("reference", "fault-around") is prose: the citation cites the default document.
            _ => null,
        };
    }

    private static IEnumerable<string> CitingFiles(string root) => Files(root, CitingExtensions);

    private static IEnumerable<string> Files(string root, string[] extensions)
    {
        var pending = new Stack<string>();
        pending.Push(root);
        while (pending.Count > 0)
        {
            var dir = pending.Pop();
            foreach (var sub in Directory.EnumerateDirectories(dir))
                if (!SkippedDirectories.Contains(Path.GetFileName(sub)))
                    pending.Push(sub);
            foreach (var file in Directory.EnumerateFiles(dir))
                if (extensions.Contains(Path.GetExtension(file), StringComparer.Ordinal))
                    yield return file;
        }
    }

    /// <summary>The repository root: the nearest directory upwards holding UffdNative.sln.</summary>
    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "UffdNative.sln")))
                return dir.FullName;
        throw new InvalidOperationException($"no UffdNative.sln above {AppContext.BaseDirectory}");
    }
}
