using System.Globalization;
using System.Text;
using System.Xml;
using System.Xml.Linq;
using UffdNative.Harness.Conformance;
using UffdNative.Harness.Probing;

namespace UffdNative.Harness.Reporting;

/// <summary>
/// The check and probe reports as JUnit XML, the shape CI dashboards read (Jenkins, GitLab, Azure
/// DevOps): testsuites → testsuite → testcase with failure / error / skipped, as the format's common
/// structure has it (docs/schemas/junit.xsd, this project's own; the tests validate against it).
/// A divergence or a regressed row is a failure, a cell or experiment that could not run is an error,
/// not applicable / not determined is skipped.
/// </summary>
public static class JUnitWriter
{
    /// <summary><c>check --format junit</c>: a testsuite per scenario, a testcase per memory type.</summary>
    public static string Check(CheckReport r)
    {
        var properties = Properties(
            ("kernelRelease", r.KernelRelease), ("profile", r.Profile), ("profileSource", r.ProfileSource),
            ("divergentSwitches", string.Join(", ", r.DivergentSwitches)));
        var suites = new List<XElement>();
        foreach (var scenario in r.Results.GroupBy(c => c.Scenario))
        {
            var cases = new List<XElement>();
            foreach (var c in scenario)
            {
                var tc = TestCase($"uffdnative.check.{c.Scenario}", c.Memory, c.Milliseconds / 1000);
                switch (c.Status)
                {
                    case "pass":
                        break;
                    case "diverged":
                        tc.Add(Outcome("failure", "divergence", $"diverged at op {c.DivergenceOp} ({c.Aspect}): expected {c.Expected}, actual {c.Actual}",
                            $"op {c.DivergenceOp}\naspect {c.Aspect}\nexpected {c.Expected}\nactual   {c.Actual}" +
                            (c.Switches is { Count: > 0 } sw ? $"\nswitches {string.Join(", ", sw)}" : "")));
                        break;
                    case "notapplicable":
                        tc.Add(Outcome("skipped", null, c.Reason ?? "not applicable", null));
                        break;
                    default:
                        tc.Add(Outcome("error", c.Status, c.Reason ?? c.Status, null));
                        break;
                }
                cases.Add(tc);
            }
            suites.Add(Suite($"uffdnative.check.{scenario.Key}", properties, cases));
        }
        return Document("uffdnative check", suites);
    }

    /// <summary><c>probe --format junit</c>: three testsuites: UFFDIO_API's features (one testcase), the
    /// UFFDIO_REGISTER masks (memory type × mode), the behaviour rows. Backported and informational rows
    /// pass, with what was seen in system-out.</summary>
    public static string Probe(ProbeReport r)
    {
        var properties = Properties(
            ("kernelRelease", r.KernelRelease), ("mainlineVersion", r.MainlineVersion), ("architecture", r.Environment.Architecture),
            ("usablePath", r.UsablePath ?? ""), ("detectedProfile", r.Profile.Description.Length > 0 ? r.Profile.Description : r.Profile.Prior));

        var features = TestCase("uffdnative.probe.features", "uffdio-api", 0);
        if (r.Features.Error is not null)
            features.Add(Outcome("error", "no-userfaultfd", $"UFFDIO_API cannot be asked: {r.Features.Error}", null));
        else
            AddVerdict(features, VerdictText.Parse(r.Features.Verdict),
                $"features 0x{r.Features.Supported:x}, mainline {r.MainlineVersion} 0x{r.Features.Expected:x}", string.Join(" ", r.Features.Names));

        var masks = r.RegisterMasks.Select(m =>
        {
            var tc = TestCase("uffdnative.probe.register-masks", $"{m.Memory}-{m.Mode}", 0);
            AddVerdict(tc, VerdictText.Parse(m.Verdict),
                $"{Cell(m.Errno, m.Ioctls)}, mainline {r.MainlineVersion} {Cell(m.ExpectedErrno, m.ExpectedIoctls)}", m.Explanation);
            return tc;
        }).ToList();

        var rows = r.Behaviours.Select(b =>
        {
            var tc = TestCase("uffdnative.probe.behaviours", b.Id, b.DurationMs / 1000.0);
            string mainline = b.Mainline switch { true => "new", false => "old", _ => "no expectation" };
            AddVerdict(tc, VerdictText.Parse(b.Verdict), $"{b.Observed} (mainline {r.MainlineVersion}: {mainline})",
                string.Join("\n", new[] { b.Section + " " + b.Title, b.Meaning, b.Evidence }.Where(s => s.Trim().Length > 0)));
            return tc;
        }).ToList();

        return Document("uffdnative probe",
        [
            Suite("uffdnative.probe.features", properties, [features]),
            Suite("uffdnative.probe.register-masks", properties, masks),
            Suite("uffdnative.probe.behaviours", properties, rows),
        ]);
    }

    private static string Cell(string errno, ulong ioctls) => errno == "OK" ? $"0x{ioctls:x}" : errno;

    private static void AddVerdict(XElement testCase, Verdict v, string summary, string details)
    {
        switch (v)
        {
            case Verdict.AsExpected:
                break;
            case Verdict.Backported or Verdict.Informational:
                testCase.Add(new XElement("system-out", Clean($"{v.Display()}: {summary}\n{details}".TrimEnd())));
                break;
            case Verdict.Regressed:
                testCase.Add(Outcome("failure", "regressed", $"regressed/unexpected: {summary}", details));
                break;
            case Verdict.Undetermined:
                testCase.Add(Outcome("skipped", null, $"not determined: {summary}", details));
                break;
            default:
                testCase.Add(Outcome("error", "experiment-failed", summary, details));
                break;
        }
    }

    private static XElement Properties(params (string Name, string Value)[] values) =>
        new("properties", values.Select(p => new XElement("property", new XAttribute("name", p.Name), new XAttribute("value", Clean(p.Value)))));

    private static XElement TestCase(string className, string name, double seconds) =>
        new("testcase", new XAttribute("name", Clean(name)), new XAttribute("classname", className), new XAttribute("time", Seconds(seconds)));

    private static XElement Outcome(string kind, string? type, string message, string? text)
    {
        var e = new XElement(kind, new XAttribute("message", Clean(message)));
        if (type is not null)
            e.Add(new XAttribute("type", type));
        if (text is { Length: > 0 })
            e.Add(new XText(Clean(text)));
        return e;
    }

    private static XElement Suite(string name, XElement properties, List<XElement> cases) =>
        new("testsuite",
            new XAttribute("name", name),
            new XAttribute("tests", Count(cases.Count)),
            new XAttribute("failures", Count(cases.Count(c => c.Element("failure") is not null))),
            new XAttribute("errors", Count(cases.Count(c => c.Element("error") is not null))),
            new XAttribute("skipped", Count(cases.Count(c => c.Element("skipped") is not null))),
            new XAttribute("time", Seconds(cases.Sum(c => double.Parse((string)c.Attribute("time")!, CultureInfo.InvariantCulture)))),
            new XElement(properties),
            cases);

    private static string Document(string name, List<XElement> suites)
    {
        int Sum(string attribute) => suites.Sum(s => int.Parse((string)s.Attribute(attribute)!, CultureInfo.InvariantCulture));
        var root = new XElement("testsuites",
            new XAttribute("name", name),
            new XAttribute("tests", Count(Sum("tests"))),
            new XAttribute("failures", Count(Sum("failures"))),
            new XAttribute("errors", Count(Sum("errors"))),
            new XAttribute("time", Seconds(suites.Sum(s => double.Parse((string)s.Attribute("time")!, CultureInfo.InvariantCulture)))),
            suites);
        var sb = new StringBuilder();
        using (var w = XmlWriter.Create(new StringWriter(sb, CultureInfo.InvariantCulture), new XmlWriterSettings { Indent = true, NewLineChars = "\n", Encoding = new UTF8Encoding(false) }))
            new XDocument(new XDeclaration("1.0", "UTF-8", null), root).Save(w);
        return sb.Replace("encoding=\"utf-16\"", "encoding=\"UTF-8\"").Append('\n').ToString();
    }

    private static string Count(int n) => n.ToString(CultureInfo.InvariantCulture);

    /// <summary>Seconds with three decimals and no thousands separator (docs/schemas/junit.xsd: seconds).</summary>
    private static string Seconds(double s) => Math.Max(0, s).ToString("0.000", CultureInfo.InvariantCulture);

    /// <summary>Drops the characters XML 1.0 cannot carry (control characters from an errno text or
    /// a path would otherwise make the writer throw).</summary>
    private static string Clean(string s)
    {
        if (s.All(XmlConvert.IsXmlChar))
            return s;
        var sb = new StringBuilder(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (XmlConvert.IsXmlChar(s[i]))
                sb.Append(s[i]);
            else if (i + 1 < s.Length && XmlConvert.IsXmlSurrogatePair(s[i + 1], s[i]))
                sb.Append(s, i++, 2);
        }
        return sb.ToString();
    }
}
