namespace UffdNative.Harness.Tests.Matrix;

/// <summary>A test that boots Debian kernels under qemu (minutes each under TCG) or downloads their
/// packages: compiled only with UFFDNATIVE_BISECT_TESTS=1 (the test project leaves this file out
/// otherwise, so an ordinary run neither runs nor skips it). docs/bisect.md gives the figures of a run.</summary>
public sealed class BisectKernelFactAttribute : FactAttribute
{
    public const string Variable = "UFFDNATIVE_BISECT_TESTS";

    public BisectKernelFactAttribute()
    {
        if (Environment.GetEnvironmentVariable(Variable) != "1")
            Skip = $"boots Debian kernels under qemu for minutes: set {Variable}=1 (docs/bisect.md)";
    }
}

/// <summary>
/// What issue 16 must show, on the archive as it is: bookworm's 6.1 builds got the close() and the
/// mremap() wp-clearing fixes in one upload, 6.1.192-1 (stable 6.1.191), found by booting; a second
/// bisect over the same builds boots nothing; eagain-result-field never flips across bookworm's
/// 6.12 builds (the fix came with 6.12.29, before the oldest the archive keeps), found by booting
/// the two ends only.
/// </summary>
public class BisectKernelTests
{
    private static string MatrixScript => Path.Combine(Repo.Root, "scripts/kernel-matrix.sh");

    // The whole probe took up to 115 s a guest under TCG at load 38 on 2 cores (the matrix's
    // defaults are 150 s a step, 270 s a kernel): room for a busier machine.
    private static BisectCommand.Request Ask(string target, string series, string work) =>
        new() { Target = target, Series = series, Work = work, Guest = new() { StepTimeout = 400, Timeout = 600 } };

    [BisectKernelFact]
    public void TheChangelogOfTheFlippingBuildNamesTheFixAndItsStableRelease()
    {
        var r = CliRunner.Exec(["bash", Path.Combine(Repo.Root, "scripts/kernel-builds.sh"), "changelog", "6.1.192-1"], timeoutMs: 900_000);
        Assert.True(r.ExitCode == 0, r.ToString());
        var between = DebianChangelog.Between(DebianChangelog.Parse(r.Stdout), "6.1.190-1", "6.1.192-1");
        var close = BisectTarget.Find("close-clears-wp", false, "6.1")!;
        var ranked = DebianChangelog.Rank(between, close.Cves, close.Hints);
        Assert.Equal(new ChangelogItem("6.1.192-1", "6.1.191", "mm/userfaultfd: reset ptes when close() for wr-protected ones (CVE-2024-36881)"), ranked[0].Item);
        var mremap = BisectTarget.Find("mremap-clears-wp", false, "6.1")!;
        Assert.Equal(new ChangelogItem("6.1.192-1", "6.1.191", "mm: clear uffd-wp PTE/PMD state on mremap() (CVE-2025-21696)"),
            DebianChangelog.Rank(between, mremap.Cves, mremap.Hints)[0].Item);
    }

    [BisectKernelFact]
    public void BookwormsCloseAndMremapFixesArriveInOneUploadAndEagainNeverFlipsOn612()
    {
        // Not under /tmp: the guests write their shards through a share of this path, and /var/tmp
        // is what the matrix's own examples use.
        var work = Path.Combine("/var/tmp", $"uffdnative-bisect-test-{Environment.ProcessId}");
        try
        {
            var log = new StringWriter();
            var sw = Stopwatch.StartNew();
            var close = BisectCommand.Run(Ask("close-clears-wp", "6.1", work), MatrixScript, log);
            Assert.True(close.Flipped, log.ToString());
            Assert.Equal("6.1.190-1", close.LastOld!.Build.Spec);
            Assert.Equal("6.1.192-1", close.FirstNew!.Build.Spec);
            Assert.Equal("observed:False", close.LastOld.Answer.Key);
            Assert.Equal("observed:True", close.FirstNew.Answer.Key);
            Assert.InRange(close.Booted, 2, 6);
            Assert.Equal(0, close.Reused);
            Assert.Equal("mm/userfaultfd: reset ptes when close() for wr-protected ones (CVE-2024-36881)", close.Changes[0].Item.Text);

            var mremap = BisectCommand.Run(Ask("mremap-clears-wp", "6.1", work), MatrixScript, log);
            Assert.Equal(("6.1.190-1", "6.1.192-1"), (mremap.LastOld!.Build.Spec, mremap.FirstNew!.Build.Spec));
            Assert.Equal(0, mremap.Booted);   // the same builds' probe shards answer every row
            Assert.Equal("mm: clear uffd-wp PTE/PMD state on mremap() (CVE-2025-21696)", mremap.Changes[0].Item.Text);

            var eagain = BisectCommand.Run(Ask("eagain-result-field", "6.12", work), MatrixScript, log);
            Assert.False(eagain.Flipped);
            Assert.Equal(2, eagain.Steps.Count);
            Assert.Equal(2, eagain.Booted);
            Assert.Equal([eagain.Builds[0], eagain.Builds[^1]], eagain.Steps.Select(s => s.Build));
            Assert.All(eagain.Steps, s => Assert.Equal("observed:True", s.Answer.Key));
            Assert.Contains("no flip", eagain.Summary());
            Console.WriteLine($"bisect test: {sw.Elapsed.TotalSeconds:F0} s\n{close.Summary()}\n{mremap.Summary()}\n{eagain.Summary()}");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}
