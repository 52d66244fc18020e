using UffdNative.Harness.Conformance;
using UffdNative.Harness.Model;

namespace UffdNative.Harness.Probing;

/// <summary>The profile a conformance run (check, fuzz, replay) uses, the one divergences are
/// attributed against, and how each switch and fact was decided.</summary>
public sealed record ResolvedProfile(KernelProfile Used, KernelProfile Reference, string Source, IReadOnlyList<SwitchRow> Switches, IReadOnlyList<FactRow> Facts);

/// <summary>
/// Chooses the model's profile. By default: the detected one (every switch detector and every fact
/// detector). With <c>--profile V</c> the switches are mainline V's, with <c>--profile-set</c> single
/// switches or facts are overridden — but the environment facts are always this machine's unless
/// overridden by name, because they are not a property of a version (reference §0b).
/// </summary>
public static class ProfileResolver
{
    public static ResolvedProfile Resolve(string? version, string? overrides)
    {
        bool forced = version is not null || !string.IsNullOrWhiteSpace(overrides);
        KernelProfile detected, prior;
        IReadOnlyList<DetectorResult> evidence;
        IReadOnlyList<FactFinding> factFindings;
        if (forced)
        {
            var (facts, findings) = ProfileDetector.DetectFacts();
            prior = KernelProfile.Mainline(KernelVersion.Running());
            detected = prior.WithFacts(facts);
            evidence = [];
            factFindings = findings;
        }
        else
        {
            var d = ProfileDetector.Detect();
            (detected, prior, evidence, factFindings) = (d.Profile, d.Prior, d.Evidence, d.Facts);
        }
        var basis = version is null ? detected : KernelProfile.Mainline(version).WithFacts(detected.Facts);
        var used = basis.WithOverrides(overrides);
        string source = version is not null ? $"forced: mainline {KernelVersion.Parse(version)}" : forced ? $"forced: {prior.Origin}" : $"detected: {DetectedProfile.Describe(detected, prior, factFindings)}";
        var factText = used.Facts.DifferenceText();
        if (version is not null && factText.Length > 0)
            source += $" + {factText} (this machine)";
        if (!string.IsNullOrWhiteSpace(overrides))
            source += $", overrides {overrides}";

        var switches = KernelProfile.Switches.Select(sw =>
        {
            bool p = prior[sw.Name], d = detected[sw.Name];
            var ev = evidence.FirstOrDefault(e => e.Switch == sw.Name);
            var status = forced ? SwitchStatus.Forced
                : ev is null || ev.Value is null ? SwitchStatus.NotDetected
                : p == d ? SwitchStatus.AsPrior
                : d ? SwitchStatus.Backported : SwitchStatus.Regressed;
            return new SwitchRow(sw.Name, sw.Section, p, forced ? null : d, used[sw.Name], status, ev?.Evidence ?? "");
        }).ToList();
        var factRows = EnvironmentFacts.Specs.Select(spec =>
        {
            var f = factFindings.FirstOrDefault(x => x.Name == spec.Name);
            return new FactRow(spec.Name, spec.Mainline, f?.Value, used.Facts.Value(spec.Name), f?.Evidence ?? "", f?.Cause);
        }).ToList();
        return new ResolvedProfile(used, detected, source, switches, factRows);
    }
}
