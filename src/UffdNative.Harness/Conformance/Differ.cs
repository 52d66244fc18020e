using UffdNative.Harness.Model;
using UffdNative.Harness.Scenarios;

namespace UffdNative.Harness.Conformance;

/// <summary>The first place where the kernel disagreed with the model, with the state before it.</summary>
public sealed record Divergence
{
    /// <summary>-1 for the setup, else the op index.</summary>
    public required int Index { get; init; }
    public required string Op { get; init; }
    /// <summary>"result", "messages", "child", "pagemap m0", "observation count".</summary>
    public required string Aspect { get; init; }
    public required string Expected { get; init; }
    public required string Actual { get; init; }
    /// <summary>The model's state before the op (VMAs, PTEs, file) and the kernel's last pagemap.</summary>
    public string StateBefore { get; init; } = "";
    /// <summary>Profile switches and environment facts whose rules produced the diverging observation and
    /// whose value differs from the reference profile (the kernel's detected one): what explains it.</summary>
    public IReadOnlyList<string> SwitchNames { get; init; } = [];

    /// <summary>True when no rule of the diverging op itself differs and <see cref="SwitchNames"/> are rules
    /// that ran earlier (they made the state that then showed).</summary>
    public bool SwitchesEarlier { get; init; }

    /// <summary><see cref="SwitchNames"/> for people: "name (earlier)" when <see cref="SwitchesEarlier"/>.</summary>
    public IReadOnlyList<string> Switches => SwitchesEarlier ? SwitchNames.Select(s => s + " (earlier)").ToList() : SwitchNames;

    public string Describe() =>
        $"op {(Index < 0 ? "setup" : Index.ToString(System.Globalization.CultureInfo.InvariantCulture))} ({Op}) {Aspect}:\n  expected {Expected}\n  actual   {Actual}" +
        (Switches.Count > 0 ? $"\n  switches {string.Join(", ", Switches)}" : "");
}

/// <summary>Compares a model trace with a kernel trace, observation by observation, and reports the first
/// divergence. Where the model says "unspecified" ('*' in a pagemap string, "?" for a value, "A|B" for
/// alternatives) anything (or any alternative) the kernel shows is accepted.</summary>
public static class Differ
{
    public static Divergence? FirstDivergence(ModelResult model, ScenarioTrace actual, KernelProfile? reference = null, KernelProfile? used = null)
    {
        var expected = model.Trace;
        int n = Math.Min(expected.Observations.Count, actual.Observations.Count);
        for (int i = 0; i < n; i++)
        {
            var e = expected.Observations[i];
            var a = actual.Observations[i];
            var d = Compare(e, a);
            if (d is null)
                continue;
            var (aspect, exp, act) = d.Value;
            return new Divergence
            {
                Index = e.Index,
                Op = e.Op,
                Aspect = aspect,
                Expected = exp,
                Actual = act,
                StateBefore = $"model: {(i < model.StateBefore.Count ? model.StateBefore[i] : "")}" +
                              (i > 0 ? $"\n  kernel pagemap: {string.Join(" ", actual.Observations[i - 1].PageMap.Select(kv => $"{kv.Key}={kv.Value}"))}" : ""),
                SwitchNames = Attribute(model, i, reference, used, out bool earlier),
                SwitchesEarlier = earlier,
            };
        }
        if (expected.Observations.Count != actual.Observations.Count)
        {
            var longer = expected.Observations.Count > n ? expected.Observations[n] : actual.Observations[n];
            return new Divergence
            {
                Index = longer.Index,
                Op = longer.Op,
                Aspect = "observation count",
                Expected = $"{expected.Observations.Count} observations{(model.OutOfScope is { } o ? $" (model: out of scope at {o})" : "")}",
                Actual = $"{actual.Observations.Count} observations{(actual.Error is { } err ? $" ({err})" : "")}",
                StateBefore = n < model.StateBefore.Count ? $"model: {model.StateBefore[n]}" : "",
                SwitchNames = Attribute(model, Math.Min(n, model.Consulted.Count - 1), reference, used, out bool earlierAtEnd),
                SwitchesEarlier = earlierAtEnd,
            };
        }
        return null;
    }

    private static IReadOnlyList<string> Attribute(ModelResult model, int i, KernelProfile? reference, KernelProfile? used, out bool earlier)
    {
        earlier = false;
        if (reference is null || used is null || i < 0 || model.Consulted.Count == 0)
            return [];
        var differing = used.DifferingNames(reference).ToHashSet();
        var here = model.Consulted[Math.Min(i, model.Consulted.Count - 1)].Where(differing.Contains).Order().ToList();
        if (here.Count > 0)
            return here;
        // The rule that made the state differ may have run earlier without showing in that op's output.
        var before = model.Consulted.Take(i + 1).SelectMany(s => s).Where(differing.Contains).Distinct().Order().ToList();
        earlier = before.Count > 0;
        return before;
    }

    private static (string Aspect, string Expected, string Actual)? Compare(OpObservation e, OpObservation a)
    {
        if (!Matches(e.Result, a.Result))
            return ("result", e.Result, a.Result);
        if (e.Messages.Count != a.Messages.Count || e.Messages.Zip(a.Messages).Any(p => !Matches(p.First, p.Second)))
            return ("messages", Show(e.Messages), Show(a.Messages));
        if (e.Child.Count != a.Child.Count || e.Child.Zip(a.Child).Any(p => !Matches(p.First, p.Second)))
            return ("child", Show(e.Child), Show(a.Child));
        foreach (var (name, exp) in e.PageMap)
        {
            if (!a.PageMap.TryGetValue(name, out var act))
                return ($"pagemap {name}", exp, "(none)");
            if (!PageMapMatches(exp, act))
                return ($"pagemap {name}", exp, act);
        }
        return null;
    }

    /// <summary>"name:A|B" → "name:A", "name:B" (the prefix up to the last ':' before the first '|').</summary>
    private static IEnumerable<string> Alternatives(string token)
    {
        var parts = token.Split('|');
        int colon = parts[0].LastIndexOf(':');
        string prefix = colon >= 0 ? parts[0][..(colon + 1)] : "";
        yield return parts[0];
        foreach (var p in parts.Skip(1))
            yield return prefix + p;
    }

    private static string Show(IReadOnlyList<string> l) => l.Count == 0 ? "(none)" : string.Join(" | ", l);

    public static bool PageMapMatches(string expected, string actual) =>
        expected.Length == actual.Length && expected.Zip(actual).All(p => p.First == PageChars.Unspecified || p.First == p.Second);

    /// <summary>Token-wise match: "key=?" accepts any value, "A|B" either alternative, a pagemap string in
    /// "m0=..*." accepts anything at '*'.</summary>
    public static bool Matches(string expected, string actual)
    {
        if (expected == actual)
            return true;
        var et = expected.Split(' ');
        var at = actual.Split(' ');
        if (et.Length != at.Length)
            return false;
        for (int i = 0; i < et.Length; i++)
        {
            string x = et[i], y = at[i];
            if (x == y)
                continue;
            if (x.EndsWith("=?", StringComparison.Ordinal) && y.StartsWith(x[..^1], StringComparison.Ordinal))
                continue;
            if (x.Contains('|') && !x.Contains('=') && Alternatives(x).Contains(y))
                continue;
            int eq = x.IndexOf('=');
            if (eq > 0 && y.Length == x.Length && y[..eq] == x[..eq] && x.Contains(PageChars.Unspecified) && PageMapMatches(x[(eq + 1)..], y[(eq + 1)..]))
                continue;
            return false;
        }
        return true;
    }
}
