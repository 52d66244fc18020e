using System.Xml;
using System.Xml.Schema;

namespace UffdNative.Harness.Tests.Formats;

/// <summary>
/// <c>check --format junit</c> and <c>probe --format junit</c> on this kernel, validated against the
/// JUnit XSD committed in docs/schemas/junit.xsd (the project's own, from the format's common structure), and read back: one testcase
/// per cell or row, with failure / error / skipped where the JSON report says so.
/// </summary>
public sealed class JUnitTests
{
    private static readonly Lazy<XmlSchemaSet> Xsd = new(() =>
    {
        var set = new XmlSchemaSet();
        using var reader = XmlReader.Create(Repo.PathOf("docs/schemas/junit.xsd"));
        set.Add(null, reader);
        set.Compile();
        return set;
    });

    /// <summary>Every validation error and warning of <paramref name="xml"/> against the XSD.</summary>
    public static List<string> Problems(string xml)
    {
        var problems = new List<string>();
        var settings = new XmlReaderSettings { ValidationType = ValidationType.Schema, Schemas = Xsd.Value };
        settings.ValidationFlags |= XmlSchemaValidationFlags.ReportValidationWarnings;
        settings.ValidationEventHandler += (_, e) => problems.Add($"{e.Severity} line {e.Exception.LineNumber}: {e.Message}");
        using var reader = XmlReader.Create(new StringReader(xml), settings);
        while (reader.Read())
        {
        }
        return problems;
    }

    [Fact]
    public void TheXsdRefusesABrokenDocument()
    {
        Assert.Empty(Problems("<testsuites><testsuite name=\"s\" tests=\"1\" failures=\"0\" errors=\"0\"><testcase name=\"c\" time=\"0.001\"/></testsuite></testsuites>"));
        // A testcase without its required name, an element JUnit does not have, a time with letters.
        Assert.Contains(Problems("<testsuites><testsuite name=\"s\" tests=\"1\" failures=\"0\" errors=\"0\"><testcase classname=\"x\"/></testsuite></testsuites>"),
            p => p.Contains("'name'", StringComparison.Ordinal));
        Assert.NotEmpty(Problems("<testsuites><testsuite name=\"s\" tests=\"1\" failures=\"0\" errors=\"0\"><verdict/></testsuite></testsuites>"));
        Assert.NotEmpty(Problems("<testsuites><testsuite name=\"s\" tests=\"1\" failures=\"0\" errors=\"0\" time=\"1s\"/></testsuites>"));
        Assert.NotEmpty(Problems("<testsuites><testsuite name=\"s\" tests=\"1\" errors=\"0\"/></testsuites>"));
        // Two outcomes for one testcase.
        Assert.NotEmpty(Problems("<testsuites><testsuite name=\"s\" tests=\"1\" failures=\"1\" errors=\"0\"><testcase name=\"c\"><failure/><skipped/></testcase></testsuite></testsuites>"));
    }

    public static TheoryData<bool> Profiles => [false, true];

    [Theory]
    [MemberData(nameof(Profiles))]
    public void CheckJUnitIsValidAndHoldsEveryCell(bool flipped)
    {
        var report = FormatRuns.CheckReportOf(flipped ? FormatRuns.FlippedCheckJson : FormatRuns.CheckJson);
        var run = FormatRuns.Run(flipped ? ["check", "--format", "junit", .. FormatRuns.FlippedProfile] : ["check", "--format", "junit"]);
        Assert.Equal(FormatRuns.ExitCodeOf(report), run.ExitCode);
        Assert.Empty(Problems(run.Stdout));

        var root = XDocument.Parse(run.Stdout).Root!;
        Assert.Equal("testsuites", root.Name.LocalName);
        Assert.Equal((report.Results.Count, report.Diverged, report.Errors), (Int(root, "tests"), Int(root, "failures"), Int(root, "errors")));
        var suites = root.Elements("testsuite").ToList();
        Assert.Equal(report.Results.Select(c => "uffdnative.check." + c.Scenario).Distinct(), suites.Select(s => (string)s.Attribute("name")!));
        var cases = suites.SelectMany(s => s.Elements("testcase")).ToList();
        Assert.Equal(report.Results.Select(c => (c.Scenario, c.Memory, c.Status)),
            cases.Select(c => (((string)c.Attribute("classname")!)["uffdnative.check.".Length..], (string)c.Attribute("name")!, Outcome(c))));
        Assert.All(suites, s => Assert.Equal(report.KernelRelease, s.Element("properties")!.Elements("property").Single(p => (string)p.Attribute("name")! == "kernelRelease").Attribute("value")!.Value));
        Assert.All(suites, s => Assert.Equal(s.Elements("testcase").Count(c => c.Element("skipped") is not null), Int(s, "skipped")));
        foreach (var (cell, tc) in report.Results.Zip(cases).Where(p => p.First.Status == "diverged"))
            Assert.Contains($"expected {cell.Expected}", tc.Element("failure")!.Value, StringComparison.Ordinal);
    }

    private static string Outcome(XElement testCase) =>
        testCase.Element("failure") is not null ? "diverged" : testCase.Element("error") is not null ? "error" : testCase.Element("skipped") is not null ? "notapplicable" : "pass";

    private static int Int(XElement e, string attribute) => int.Parse((string)e.Attribute(attribute)!, System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public void ProbeJUnitIsValidAndHoldsEveryRow()
    {
        var report = FormatRuns.ProbeReport;
        var run = FormatRuns.Run("probe", "--format", "junit");
        Assert.Equal(report.HasFlagged ? 1 : 0, run.ExitCode);
        Assert.Empty(Problems(run.Stdout));
        var suites = XDocument.Parse(run.Stdout).Root!.Elements("testsuite").ToDictionary(s => (string)s.Attribute("name")!);
        Assert.Equal(["uffdnative.probe.features", "uffdnative.probe.register-masks", "uffdnative.probe.behaviours"], suites.Keys);
        Assert.Equal(report.RegisterMasks.Select(m => $"{m.Memory}-{m.Mode}"), suites["uffdnative.probe.register-masks"].Elements("testcase").Select(c => (string)c.Attribute("name")!));
        var rows = suites["uffdnative.probe.behaviours"].Elements("testcase").ToList();
        Assert.Equal(report.Behaviours.Select(b => (b.Id, Expected(b.Verdict))), rows.Select(c => ((string)c.Attribute("name")!, Outcome(c))));
        var s = report.Summary;
        var behaviours = suites["uffdnative.probe.behaviours"];
        Assert.Equal((report.Behaviours.Count, s.Regressed, s.Errors, s.Undetermined),
            (Int(behaviours, "tests"), Int(behaviours, "failures"), Int(behaviours, "errors"), Int(behaviours, "skipped")));
    }

    private static string Expected(string verdict) => VerdictText.Parse(verdict) switch
    {
        Verdict.AsExpected or Verdict.Backported or Verdict.Informational => "pass",
        Verdict.Regressed => "diverged",
        Verdict.Undetermined => "notapplicable",
        _ => "error",
    };
}
