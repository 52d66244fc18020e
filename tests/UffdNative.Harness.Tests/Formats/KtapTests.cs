using UffdNative.Harness.Reporting;

namespace UffdNative.Harness.Tests.Formats;

/// <summary>
/// <c>check --format ktap</c> and <c>probe --format ktap</c>, run on this kernel and read back by the
/// independent <see cref="KtapParser"/>: the parse must give the same cells, statuses and counts as the
/// JSON report of the same verb.
/// </summary>
public sealed class KtapTests
{
    // ---- the parser itself, on hand-written KTAP

    private const string Nested =
        "KTAP version 1\n" +
        "1..2\n" +
        "  KTAP version 1\n" +
        "  1..3\n" +
        "  # alpha: starting\n" +
        "  ok 1 alpha\n" +
        "  # beta: wrong answer\n" +
        "  not ok 2 beta\n" +
        "  ok 3 gamma # SKIP no device here\n" +
        "# suite one had a failure\n" +
        "not ok 1 suite_one\n" +
        "random console noise\n" +
        "ok 2 suite_two # SKIP nothing to run\n" +
        "# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:2 error:0\n";

    [Fact]
    public void TheParserReadsNestingDirectivesAndDiagnosticsAsTheSpecDefinesThem()
    {
        var doc = KtapParser.Parse(Nested);
        var root = doc.Root;
        Assert.Equal(("KTAP version 1", 2), (root.Version, root.Plan));
        Assert.Equal(["suite_one", "suite_two"], root.Tests.Select(t => t.Description));
        var one = root.Tests[0];
        Assert.False(one.Ok);
        Assert.Equal(["suite one had a failure"], one.Diagnostics);
        Assert.Equal(3, one.Subtests!.Plan);
        Assert.Equal([(1, true, "alpha", (string?)null, ""), (2, false, "beta", null, ""), (3, true, "gamma", "SKIP", "no device here")],
            one.Subtests.Tests.Select(t => (t.Number, t.Ok, t.Description, t.Directive, t.Data)));
        Assert.Equal(["beta: wrong answer"], one.Subtests.Tests[1].Diagnostics);
        Assert.Equal(("SKIP", "nothing to run", true), (root.Tests[1].Directive, root.Tests[1].Data, root.Tests[1].IsLeaf));
        Assert.Equal(["random console noise"], doc.UnknownLines);
        Assert.Equal(["Totals: pass:1 fail:1 xfail:0 xpass:0 skip:2 error:0"], root.TrailingDiagnostics);
        Assert.Equal(["alpha", "beta", "gamma", "suite_two"], root.Leaves().Select(t => t.Description));
    }

    [Theory]
    [InlineData("1..1\nok 1 a\n", "no version line")]
    [InlineData("KTAP version 1\n1..2\nok 1 a\n", "the plan says 1..2, the block has 1 tests")]
    [InlineData("KTAP version 1\n1..2\nok 1 a\nok 3 b\n", "test number 3; expected 2")]
    [InlineData("KTAP version 1\n1..1\nok 2 a\n", "test number 2; expected 1")]
    [InlineData("KTAP version 1\nok 1 a\n1..1\n", "a plan line must follow the version line")]
    [InlineData("KTAP version 1\n1..1\n  KTAP version 1\n  1..1\n  ok 1 a\n", "has no result line of its parent test")]
    [InlineData("KTAP version 1\n1..1\n  KTAP version 1\n  1..1\n   ok 1 a\nok 1 p\n", "indented 3 spaces")]
    [InlineData("KTAP version 1\n1..1\n  KTAP version 1\n  1..1\n  ok 1 a\n  KTAP version 1\n  1..1\n  ok 1 b\nok 1 p\n", "a second subtest block")]
    [InlineData("KTAP version 1\n1..1\nKTAP version 1\nok 1 a\n", "must be indented two more spaces")]
    public void TheParserRefusesWhatTheSpecForbids(string ktap, string why)
    {
        var e = Assert.Throws<KtapFormatException>(() => KtapParser.Parse(ktap));
        Assert.Contains(why, e.Message, StringComparison.Ordinal);
    }

    // ---- check

    public static TheoryData<bool> Profiles => [false, true];

    /// <summary>The KTAP of a real check, with the detected profile and with a flipped switch (which
    /// must give divergences), parsed: one test per scenario in the report's order, one subtest per cell
    /// with the cell's status, and the leaves counting exactly the report's passed / diverged / not
    /// applicable / errors.</summary>
    [Theory]
    [MemberData(nameof(Profiles))]
    public void CheckKtapParsesBackToTheReportsCellsAndCounts(bool flipped)
    {
        var json = flipped ? FormatRuns.FlippedCheckJson : FormatRuns.CheckJson;
        var report = FormatRuns.CheckReportOf(json);
        var ktap = FormatRuns.Run(flipped ? ["check", "--format", "ktap", .. FormatRuns.FlippedProfile] : ["check", "--format", "ktap"]);
        Assert.Equal("", ktap.Stderr);
        Assert.Equal(FormatRuns.ExitCodeOf(report), ktap.ExitCode);
        Assert.Equal(json.ExitCode, ktap.ExitCode);
        if (flipped)
            Assert.True(report.Diverged > 0, $"forcing {FormatRuns.FlippedSwitch} against this kernel gave no divergence");

        var doc = KtapParser.Parse(ktap.Stdout);
        Assert.Empty(doc.UnknownLines);
        Assert.Equal("KTAP version 1", doc.Root.Version);
        var scenarios = report.Results.Select(c => c.Scenario).Distinct().ToList();
        Assert.Equal(scenarios.Count, doc.Root.Plan);
        Assert.Equal(scenarios, doc.Root.Tests.Select(t => t.Description));
        foreach (var t in doc.Root.Tests)
        {
            var cells = report.Results.Where(c => c.Scenario == t.Description).ToList();
            Assert.NotNull(t.Subtests);
            Assert.Equal("KTAP version 1", t.Subtests.Version);
            Assert.Equal(cells.Count, t.Subtests.Plan);
            Assert.Equal(cells.Select(c => (c.Memory, Status: c.Status)), t.Subtests.Tests.Select(s => (s.Description, Status: StatusOf(s))));
            bool failed = cells.Any(c => c.Status is "diverged" or "error");
            Assert.Equal(!failed, t.Ok);
            Assert.Equal(!failed && cells.All(c => c.Status == "notapplicable") ? "SKIP" : null, t.Directive);
            foreach (var (cell, sub) in cells.Zip(t.Subtests.Tests))
            {
                if (cell.Status == "diverged")
                {
                    Assert.Contains($"expected {cell.Expected}", sub.Diagnostics);
                    Assert.Contains($"actual   {cell.Actual}", sub.Diagnostics);
                }
                if (cell.Status == "notapplicable")
                    Assert.Equal(cell.Reason, sub.Data);
            }
        }

        var leaves = doc.Root.Leaves().ToList();
        Assert.Equal(report.Results.Count, leaves.Count);
        var counts = (Passed: leaves.Count(l => StatusOf(l) == "pass"), Diverged: leaves.Count(l => StatusOf(l) == "diverged"),
            NotApplicable: leaves.Count(l => StatusOf(l) == "notapplicable"), Errors: leaves.Count(l => StatusOf(l) == "error"));
        Assert.Equal((report.Passed, report.Diverged, report.NotApplicable, report.Errors), counts);
        Assert.Equal(report.Cells, counts.Passed + counts.Diverged + counts.Errors);
        Assert.Equal($"Totals: pass:{report.Passed} fail:{report.Diverged} xfail:0 xpass:0 skip:{report.NotApplicable} error:{report.Errors}", doc.Root.TrailingDiagnostics[^1]);
    }

    /// <summary>A cell's status as the KTAP spec's lines say it: ok = pass, not ok = diverged,
    /// SKIP = not applicable, not ok # ERROR = error.</summary>
    private static string StatusOf(KtapTest t) => (t.Ok, t.Directive) switch
    {
        (_, "SKIP") => "notapplicable",
        (false, "ERROR") => "error",
        (true, null) => "pass",
        (false, null) => "diverged",
        _ => $"unexpected: {(t.Ok ? "ok" : "not ok")} # {t.Directive}",
    };

    // ---- probe

    [Fact]
    public void ProbeKtapHasOneTestPerBehaviourRowWithItsVerdict()
    {
        var report = FormatRuns.ProbeReport;
        var ktap = FormatRuns.Run("probe", "--format", "ktap");
        Assert.Equal(FormatRuns.ProbeJson.ExitCode, ktap.ExitCode);
        Assert.Equal(report.HasFlagged ? 1 : 0, ktap.ExitCode);
        AssertProbeKtapMatches(report, KtapParser.Parse(ktap.Stdout));
    }

    /// <summary>The verdicts this kernel may not show (backported, regressed, error): the real report with
    /// rows relabelled, through the writer, read back.</summary>
    [Fact]
    public void ProbeKtapMarksBackportedRegressedAndFailedRows()
    {
        var real = FormatRuns.ProbeReport;
        Assert.True(real.Behaviours.Count >= 3);
        var relabelled = real.Behaviours.Select((b, i) => i switch
        {
            0 => b with { Verdict = Verdict.Backported.Id() },
            1 => b with { Verdict = Verdict.Regressed.Id(), Evidence = "the evidence # with a hash" },
            2 => b with { Verdict = Verdict.Error.Id() },
            _ => b,
        }).ToList();
        var report = real with { Behaviours = relabelled }; // the summary still counts the real verdicts
        var doc = KtapParser.Parse(KtapWriter.Probe(report));
        AssertProbeKtapMatches(report, doc, withSummary: false);
        var rows = doc.Root.Tests.Skip(2).ToList();
        Assert.Contains(rows[0].Diagnostics, d => d.StartsWith($"{relabelled[0].Id}: backported: ", StringComparison.Ordinal));
        Assert.Contains("evidence: the evidence # with a hash", rows[1].Diagnostics);
        Assert.Equal((false, "ERROR"), (rows[2].Ok, rows[2].Directive));
    }

    private static void AssertProbeKtapMatches(ProbeReport report, KtapDocument doc, bool withSummary = true)
    {
        Assert.Empty(doc.UnknownLines);
        var root = doc.Root;
        Assert.Equal(2 + report.Behaviours.Count, root.Plan);
        Assert.Equal("uffdio-api", root.Tests[0].Description);
        Assert.Equal("register-masks", root.Tests[1].Description);
        Assert.Equal(report.RegisterMasks.Select(m => $"{m.Memory}-{m.Mode}"), root.Tests[1].Subtests?.Tests.Select(t => t.Description) ?? []);
        Assert.Equal(report.RegisterMasks.Select(m => Expected(m.Verdict)), root.Tests[1].Subtests?.Tests.Select(Seen) ?? []);
        var rows = root.Tests.Skip(2).ToList();
        Assert.Equal(report.Behaviours.Select(b => b.Id), rows.Select(t => t.Description));
        Assert.Equal(report.Behaviours.Select(b => Expected(b.Verdict)), rows.Select(Seen));
        Assert.All(rows, r => Assert.True(r.IsLeaf));

        if (!withSummary)
            return;
        var s = report.Summary;
        Assert.Equal(s.AsExpected + s.Backported + s.Informational, rows.Count(r => Seen(r) == "ok"));
        Assert.Equal(s.Regressed, rows.Count(r => Seen(r) == "not ok"));
        Assert.Equal(s.Undetermined, rows.Count(r => Seen(r) == "skip"));
        Assert.Equal(s.Errors, rows.Count(r => Seen(r) == "error"));
    }

    private static string Expected(string verdict) => VerdictText.Parse(verdict) switch
    {
        Verdict.AsExpected or Verdict.Backported or Verdict.Informational => "ok",
        Verdict.Regressed => "not ok",
        Verdict.Undetermined => "skip",
        _ => "error",
    };

    private static string Seen(KtapTest t) => (t.Ok, t.Directive) switch
    {
        (true, null) => "ok",
        (false, null) => "not ok",
        (true, "SKIP") => "skip",
        (false, "ERROR") => "error",
        _ => $"unexpected {t.Ok} {t.Directive}",
    };
}
