using System.Collections.Immutable;
using UffdNative.Harness.Model;

namespace UffdNative.Harness.Probing;

/// <summary>One switch's detector answer. Value null: the experiment could not decide here (the
/// feature is absent, no privilege, ...); <see cref="Evidence"/> says why and which value the
/// detected profile uses instead.</summary>
public sealed record DetectorResult(string Switch, bool? Value, string Evidence);

/// <summary>The profile this kernel really has (<see cref="Profile"/>: switches and environment facts), the
/// mainline profile of its version number (<see cref="Prior"/>), and the evidence for every switch and fact.</summary>
public sealed record DetectedProfile(KernelProfile Profile, KernelProfile Prior, IReadOnlyList<DetectorResult> Evidence)
{
    public IReadOnlyList<FactFinding> Facts { get; init; } = [];

    /// <summary>What a person reads: "mainline 6.18", "mainline 6.1 + close-clears-wp, mremap-clears-wp
    /// (backported)", "mainline 6.18 + zero page off (pvm_no_zero_page=1)".</summary>
    public string Summary => Describe(Profile, Prior, Facts);

    public static string Describe(KernelProfile profile, KernelProfile prior, IReadOnlyList<FactFinding> facts)
    {
        var parts = new List<string> { prior.Origin };
        var newer = profile.Differences(prior).Where(s => profile[s.Name]).Select(s => s.Name).ToList();
        var older = profile.Differences(prior).Where(s => !profile[s.Name]).Select(s => s.Name).ToList();
        if (newer.Count > 0)
            parts.Add($"{string.Join(", ", newer)} (backported)");
        if (older.Count > 0)
            parts.Add($"{string.Join(", ", older)} (old behaviour)");
        foreach (var f in profile.Facts.PredictiveDifferences(prior.Facts))
        {
            var text = new EnvironmentFacts().With(f.Name, profile.Facts.Value(f.Name)).DifferenceText();
            var cause = facts.FirstOrDefault(x => x.Name == f.Name)?.Cause;
            parts.Add(cause is null ? text : $"{text} ({cause})");
        }
        return string.Join(" + ", parts);
    }
}

/// <summary>
/// Detects every <see cref="KernelProfile"/> switch on the running kernel with the experiments of
/// <see cref="SwitchDetectors"/> — the same code <c>uffdnative probe</c> shows as rows. Version
/// numbers lie (reference §0a: Debian 6.1.192 clears wp on close and mremap like 6.9/6.13), so the
/// check runs with this profile and keeps the version's mainline profile as the prior.
/// </summary>
public static class ProfileDetector
{
    public static DetectedProfile Detect()
    {
        using var lab = new Lab();
        return FromFindings(lab, RunAll(lab));
    }

    /// <summary>Only the environment facts (no switch experiments): what a forced profile
    /// (<c>--profile 6.1</c>) still takes from the machine, since facts are not dated.</summary>
    public static (EnvironmentFacts Facts, IReadOnlyList<FactFinding> Findings) DetectFacts()
    {
        using var lab = new Lab();
        return lab.Facts;
    }

    /// <summary>Runs every switch detector once (in <see cref="KernelProfile.Switches"/> order).</summary>
    public static IReadOnlyList<(ProfileSwitch Switch, Finding Finding)> RunAll(Lab lab) =>
        KernelProfile.Switches.Select(sw => (sw, RunOne(lab, sw.Name))).ToList();

    public static Finding RunOne(Lab lab, string switchName)
    {
        if (!SwitchDetectors.All.TryGetValue(switchName, out var detector))
            return Finding.Undetermined("no detector for this switch");
        if (!lab.CanOpen && switchName is not (KernelProfile.DevUserfaultfd or KernelProfile.UserModeOnly))
            return Finding.Undetermined("no userfaultfd can be opened here", lab.OpenError ?? "");
        try
        {
            return detector(lab);
        }
        catch (Exception e) when (e is UffdException or IOException or InvalidOperationException or UnauthorizedAccessException)
        {
            return Finding.Failed($"experiment failed: {e.Message}", e.GetType().Name);
        }
    }

    public static DetectedProfile FromFindings(Lab lab, IReadOnlyList<(ProfileSwitch Switch, Finding Finding)> findings)
    {
        var prior = KernelProfile.Mainline(lab.Kernel);
        var values = ImmutableDictionary.CreateBuilder<string, bool>();
        var evidence = new List<DetectorResult>();
        foreach (var (sw, f) in findings)
        {
            bool mainline = prior[sw.Name];
            string text = string.IsNullOrEmpty(f.Evidence) ? f.Observed : $"{f.Observed} — {f.Evidence}";
            switch (f.Kind)
            {
                case FindingKind.Observed:
                    values[sw.Name] = f.Value!.Value;
                    evidence.Add(new DetectorResult(sw.Name, f.Value, text));
                    break;
                case FindingKind.NotSupported:
                    values[sw.Name] = false;
                    evidence.Add(new DetectorResult(sw.Name, null, text + "; the absence implies the old behaviour (profile: old)"));
                    break;
                default:
                    values[sw.Name] = mainline;
                    evidence.Add(new DetectorResult(sw.Name, null, text + $"; not determined here, the profile keeps the mainline {prior.Version} value ({(mainline ? "new" : "old")})"));
                    break;
            }
        }
        var (facts, factFindings) = lab.Facts;
        var profile = new KernelProfile { Origin = $"detected on {lab.Release}", Version = lab.Kernel, Values = values.ToImmutable() }.WithFacts(facts);
        return new DetectedProfile(profile, prior, evidence) { Facts = factFindings };
    }
}
