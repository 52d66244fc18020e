namespace UffdNative.Harness.Matrix;

/// <summary>One kernel build a bisect may boot: what kernel-matrix.sh is given (<see cref="Spec"/>: a
/// Debian package version, or any KERNEL it takes), its package and release when known.</summary>
public sealed partial record KernelBuild(string Spec, string? Package = null, string? Release = null)
{
    /// <summary>True for a build from the archive (listed with its package, or given as a Debian
    /// package version such as 6.1.192-1 or 6.12.100-1~deb12u1), which has a changelog.</summary>
    public bool IsPackaged => Package is not null || PackageVersion().IsMatch(Spec);

    // kernel-matrix's "package version" form (km_kernel_spec): X.Y[.Z][~rcN]-REVISION, no "+debN" release part.
    [System.Text.RegularExpressions.GeneratedRegex(@"^[0-9]+\.[0-9]+(\.[0-9]+)?(~rc[0-9]+)?-[0-9]+([~+.][0-9A-Za-z.~+]*)?$")]
    private static partial System.Text.RegularExpressions.Regex PackageVersion();

    /// <summary>Parses `scripts/kernel-builds.sh list` output (VERSION TAB PACKAGE TAB RELEASE) into
    /// builds in dpkg order, each version once.</summary>
    public static IReadOnlyList<KernelBuild> ParseListing(string text) =>
        [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(l => l.Split('\t'))
            .Where(f => f.Length >= 2 && f[0].Length > 0)
            .Select(f => new KernelBuild(f[0], f[1], f.Length > 2 ? f[2] : null))
            .DistinctBy(b => b.Spec)
            .Order(Comparer<KernelBuild>.Create((a, b) => DebianVersion.Compare(a.Spec, b.Spec)))];

    /// <summary>The builds from <paramref name="from"/> to <paramref name="to"/> (inclusive; null: the
    /// first or last). Throws <see cref="ArgumentException"/> naming the available versions when a
    /// bound is not one of them or the range holds fewer than two builds.</summary>
    public static IReadOnlyList<KernelBuild> Range(IReadOnlyList<KernelBuild> builds, string? from, string? to)
    {
        int Find(string v, string what)
        {
            for (int i = 0; i < builds.Count; i++)
                if (builds[i].Spec == v)
                    return i;
            throw new ArgumentException($"{what} {v} is not a build of this series; the archive has {string.Join(" ", builds.Select(b => b.Spec))}");
        }
        int lo = from is null ? 0 : Find(from, "--from");
        int hi = to is null ? builds.Count - 1 : Find(to, "--to");
        if (hi - lo < 1)
            throw new ArgumentException($"a bisect needs at least two builds, oldest first; the range {from ?? builds.FirstOrDefault()?.Spec} .. {to ?? builds.LastOrDefault()?.Spec} holds {Math.Max(0, hi - lo + 1)}");
        return [.. builds.Skip(lo).Take(hi - lo + 1)];
    }
}

/// <summary>What one build answered: <see cref="Key"/> is compared (the row's kind and value, or a
/// scenario's statuses and observations), <see cref="Text"/> is shown.</summary>
public sealed record BisectAnswer(string Key, string Text);

/// <summary>One build the search looked at, in the order it did.</summary>
public sealed record BisectStep(int Index, BisectAnswer Answer);

/// <summary>The result of <see cref="BisectSearch.Run"/>. When the endpoints agree, <see
/// cref="LastOld"/> and <see cref="FirstNew"/> are null and only the two endpoints were looked at.</summary>
public sealed record BisectOutcome(IReadOnlyList<BisectStep> Steps, int? LastOld, int? FirstNew)
{
    public bool Flipped => FirstNew is not null;
    public BisectAnswer Answer(int index) => Steps.First(s => s.Index == index).Answer;
}

/// <summary>
/// Binary search for the first build whose answer differs from the oldest build's, assuming the
/// behaviour changed once in the range (a backport does not come and go). Looks at the two ends
/// first: when they agree it stops there (a row that never flips costs two boots); otherwise
/// ⌈log2(n-1)⌉ more. A build in the middle that answers something third (an error, "undetermined")
/// counts as changed, so the result names where the oldest answer last held.
/// </summary>
public static class BisectSearch
{
    public static BisectOutcome Run(int count, Func<int, BisectAnswer> answerOf)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 2);
        var steps = new List<BisectStep>();
        BisectAnswer Ask(int i)
        {
            var a = answerOf(i);
            steps.Add(new BisectStep(i, a));
            return a;
        }
        int lo = 0, hi = count - 1;
        var old = Ask(lo);
        if (Ask(hi).Key == old.Key)
            return new BisectOutcome(steps, null, null);
        while (hi - lo > 1)
        {
            int mid = lo + (hi - lo) / 2;
            if (Ask(mid).Key == old.Key) lo = mid;
            else hi = mid;
        }
        return new BisectOutcome(steps, lo, hi);
    }
}
