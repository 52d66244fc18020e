using System.Globalization;
using System.Text;
using UffdNative.Harness.Conformance;
using UffdNative.Harness.Probing;

namespace UffdNative.Harness.Reporting;

/// <summary>
/// The check and probe reports as KTAP version 1 (the kernel's Documentation/dev-tools/ktap.rst), the
/// format kselftest emits: a version line, a plan "1..N", one "ok N name" / "not ok N name" line per
/// test, "# SKIP reason" for what could not run here, "# ERROR reason" for a test that failed to run,
/// diagnostic lines "# ..." just before the result they explain, and subtests as an indented (two spaces
/// per level) block with its own version line and plan before the parent's result line. Ends with
/// kselftest's "# Totals:" line over the leaf tests.
/// </summary>
public static class KtapWriter
{
    public const string VersionLine = "KTAP version 1";

    /// <summary><c>check --format ktap</c>: one test per scenario, each with one subtest per memory type it
    /// ran on (pass = ok; diverged = not ok with the divergence as diagnostics; not applicable = ok # SKIP;
    /// error = not ok # ERROR). A scenario fails when one of its cells does, and is skipped when all are.</summary>
    public static string Check(CheckReport r)
    {
        var k = new Builder();
        k.Version(0);
        k.Diagnostic(0, $"uffdnative check: kernel {r.KernelRelease}, profile {r.Profile} ({r.ProfileSource})");
        var scenarios = r.Results.GroupBy(c => c.Scenario).ToList();
        k.Plan(0, scenarios.Count);
        int n = 0;
        foreach (var scenario in scenarios)
        {
            var cells = scenario.ToList();
            k.Version(1);
            k.Plan(1, cells.Count);
            int m = 0;
            foreach (var c in cells)
            {
                m++;
                switch (c.Status)
                {
                    case "pass":
                        k.Result(1, true, m, c.Memory);
                        break;
                    case "diverged":
                        k.Diagnostic(1, $"{c.Scenario} × {c.Memory}: diverged at op {c.DivergenceOp} ({c.Aspect})");
                        k.Diagnostic(1, $"expected {c.Expected}");
                        k.Diagnostic(1, $"actual   {c.Actual}");
                        if (c.Switches is { Count: > 0 } sw)
                            k.Diagnostic(1, $"switches {string.Join(", ", sw)}");
                        k.Result(1, false, m, c.Memory);
                        break;
                    case "notapplicable":
                        k.Result(1, true, m, c.Memory, "SKIP", c.Reason ?? "not applicable");
                        break;
                    default:
                        k.Result(1, false, m, c.Memory, "ERROR", c.Reason ?? c.Status);
                        break;
                }
            }
            n++;
            bool failed = cells.Any(c => c.Status is not ("pass" or "notapplicable"));
            if (!failed && cells.All(c => c.Status == "notapplicable"))
                k.Result(0, true, n, scenario.Key, "SKIP", "not applicable to any memory type here");
            else
                k.Result(0, !failed, n, scenario.Key);
        }
        if (r.DivergentSwitches.Count > 0)
            k.Diagnostic(0, $"divergences attributed to switches: {string.Join(", ", r.DivergentSwitches)}");
        k.Totals(r.Passed, r.Diverged, r.NotApplicable, r.Errors);
        return k.ToString();
    }

    /// <summary><c>probe --format ktap</c>: UFFDIO_API's features, the UFFDIO_REGISTER masks (a subtest per
    /// memory type × mode), then one test per behaviour row. As expected and informational = ok;
    /// backported = ok with a diagnostic saying so; regressed/unexpected = not ok; not determined =
    /// ok # SKIP with the reason; a failed experiment = not ok # ERROR.</summary>
    public static string Probe(ProbeReport r)
    {
        var k = new Builder();
        k.Version(0);
        k.Diagnostic(0, $"uffdnative probe: kernel {r.KernelRelease} ({r.Environment.Architecture}), verdicts against mainline {r.MainlineVersion}");
        k.Plan(0, 2 + r.Behaviours.Count);
        int pass = 0, fail = 0, skip = 0, error = 0;
        void Tally(Verdict v)
        {
            switch (v)
            {
                case Verdict.AsExpected or Verdict.Backported or Verdict.Informational: pass++; break;
                case Verdict.Regressed: fail++; break;
                case Verdict.Undetermined: skip++; break;
                default: error++; break;
            }
        }

        var f = r.Features;
        if (f.Error is not null)
        {
            error++;
            k.Result(0, false, 1, "uffdio-api", "ERROR", $"cannot be asked: {f.Error}");
        }
        else
        {
            var v = VerdictText.Parse(f.Verdict);
            k.Diagnostic(0, $"features 0x{f.Supported:x}, mainline {r.MainlineVersion} 0x{f.Expected:x}: {v.Display()}");
            Tally(v);
            VerdictResult(k, 0, 1, "uffdio-api", v, "");
        }

        if (r.RegisterMasks.Count == 0)
            k.Result(0, true, 2, "register-masks", "SKIP", r.Features.Error is null ? "no memory type registered" : "no userfaultfd");
        else
        {
            k.Version(1);
            k.Plan(1, r.RegisterMasks.Count);
            int m = 0;
            foreach (var mask in r.RegisterMasks)
            {
                var v = VerdictText.Parse(mask.Verdict);
                if (v != Verdict.AsExpected)
                    k.Diagnostic(1, $"{mask.Memory} {mask.Mode}: {Cell(mask.Errno, mask.Ioctls)}, mainline {r.MainlineVersion} {Cell(mask.ExpectedErrno, mask.ExpectedIoctls)}{(mask.Explanation.Length > 0 ? $" — {mask.Explanation}" : "")}");
                Tally(v);
                VerdictResult(k, 1, ++m, $"{mask.Memory}-{mask.Mode}", v, mask.Explanation);
            }
            bool failed = r.RegisterMasks.Any(x => VerdictText.Parse(x.Verdict).IsFlagged());
            k.Result(0, !failed, 2, "register-masks");
        }

        int t = 2;
        foreach (var b in r.Behaviours)
        {
            var v = VerdictText.Parse(b.Verdict);
            string mainline = b.Mainline switch { true => "new", false => "old", _ => "no expectation" };
            Tally(v);
            switch (v)
            {
                case Verdict.Backported:
                    k.Diagnostic(0, $"{b.Id}: backported: {b.Observed} (mainline {r.MainlineVersion}: {mainline}{(b.Since is { } s ? $", new since {s}" : "")})");
                    break;
                case Verdict.Informational:
                    k.Diagnostic(0, $"{b.Id}: informational: {b.Observed}");
                    break;
                case Verdict.Regressed:
                    k.Diagnostic(0, $"{b.Id}: regressed/unexpected: {b.Observed} (mainline {r.MainlineVersion}: {mainline}{(b.Since is { } s2 ? $", new since {s2}" : "")})");
                    if (b.Evidence.Length > 0)
                        k.Diagnostic(0, $"evidence: {b.Evidence}");
                    break;
            }
            VerdictResult(k, 0, ++t, b.Id, v, b.Evidence.Length > 0 ? $"{b.Observed}: {b.Evidence}" : b.Observed);
        }
        k.Diagnostic(0, $"detected profile: {(r.Profile.Description.Length > 0 ? r.Profile.Description : r.Profile.Prior)}");
        k.Totals(pass, fail, skip, error);
        return k.ToString();
    }

    private static string Cell(string errno, ulong ioctls) => errno == "OK" ? $"0x{ioctls:x}" : errno;

    private static void VerdictResult(Builder k, int level, int number, string name, Verdict v, string why)
    {
        switch (v)
        {
            case Verdict.AsExpected or Verdict.Backported or Verdict.Informational:
                k.Result(level, true, number, name);
                break;
            case Verdict.Regressed:
                k.Result(level, false, number, name);
                break;
            case Verdict.Undetermined:
                k.Result(level, true, number, name, "SKIP", why.Length > 0 ? $"not determined: {why}" : "not determined");
                break;
            default:
                k.Result(level, false, number, name, "ERROR", why.Length > 0 ? why : "the experiment failed");
                break;
        }
    }

    /// <summary>Line by line, with the indentation of the nesting level.</summary>
    private sealed class Builder
    {
        private readonly StringBuilder sb = new();

        private StringBuilder Line(int level) => sb.Append(' ', 2 * level);

        public void Version(int level) => Line(level).Append(VersionLine).Append('\n');

        public void Plan(int level, int count) => Line(level).Append("1..").Append(count.ToString(CultureInfo.InvariantCulture)).Append('\n');

        /// <summary>"# text", one line per line of <paramref name="text"/>.</summary>
        public void Diagnostic(int level, string text)
        {
            foreach (var line in text.Split('\n'))
                Line(level).Append("# ").Append(line.TrimEnd('\r')).Append('\n');
        }

        /// <summary>"ok N name" or "not ok N name", with " # DIRECTIVE data" when given. The name may not
        /// contain '#' (the spec), nor a line break: both become spaces.</summary>
        public void Result(int level, bool ok, int number, string name, string? directive = null, string? data = null)
        {
            Line(level).Append(ok ? "ok " : "not ok ").Append(number.ToString(CultureInfo.InvariantCulture)).Append(' ').Append(Description(name));
            if (directive is not null)
                sb.Append(" # ").Append(directive).Append(data is { Length: > 0 } ? " " + OneLine(data) : "");
            sb.Append('\n');
        }

        /// <summary>kselftest's closing line (ksft_print_cnts) over the leaf tests.</summary>
        public void Totals(int pass, int fail, int skip, int error) =>
            Diagnostic(0, string.Create(CultureInfo.InvariantCulture, $"Totals: pass:{pass} fail:{fail} xfail:0 xpass:0 skip:{skip} error:{error}"));

        private static string Description(string name) => OneLine(name.Replace('#', ' ')).Trim();

        private static string OneLine(string s) => s.Replace("\r", "", StringComparison.Ordinal).Replace('\n', ' ');

        public override string ToString() => sb.ToString();
    }
}
