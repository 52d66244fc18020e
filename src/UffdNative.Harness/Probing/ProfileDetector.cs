using System.Collections.Immutable;
using UffdNative.Harness.Model;

namespace UffdNative.Harness.Probing;

/// <summary>One switch's detector answer. Value null: the experiment could not decide here (the
/// feature is absent, no privilege, ...); <see cref="Evidence"/> says why and which value the
/// detected profile uses instead.</summary>
public sealed record DetectorResult(string Switch, bool? Value, string Evidence);

/// <summary>The profile this kernel really has (<see cref="Profile"/>), the mainline profile of its
/// version number (<see cref="Prior"/>), and the evidence for every switch.</summary>
public sealed record DetectedProfile(KernelProfile Profile, KernelProfile Prior, IReadOnlyList<DetectorResult> Evidence);

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
        var profile = new KernelProfile { Origin = $"detected on {lab.Release}", Version = lab.Kernel, Values = values.ToImmutable() };
        return new DetectedProfile(profile, prior, evidence);
    }
}
