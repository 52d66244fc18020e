namespace UffdNative.Harness.Tests.Matrix;

/// <summary>
/// `uffdnative bisect` without booting: dpkg version order, the build listing, the binary search,
/// the changelog reading and ranking (on real changelog text: excerpts of the changelog.Debian of
/// linux-image-6.1.0-57-amd64 and linux-image-6.12.118+deb12-amd64, cut out line for line), a row's
/// answer from a real probe of this kernel, and the verb's usage errors. The bisects that boot
/// kernels are in BisectKernelTests (compiled only then), behind UFFDNATIVE_BISECT_TESTS=1.
/// </summary>
public class BisectTests
{
    private static string Fixture(string name) =>
        File.ReadAllText(Path.Combine(Repo.Root, "tests/UffdNative.Harness.Tests/Matrix/Fixtures", name));

    // What `scripts/kernel-builds.sh list 6.1` and `list 6.12` printed (December 2026), shuffled.
    private const string Listing61 =
        "6.1.192-3\tlinux-image-6.1.0-57-amd64\t6.1.0-57-amd64\n6.1.170-3\tlinux-image-6.1.0-47-amd64\t6.1.0-47-amd64\n" +
        "6.1.180-1\tlinux-image-6.1.0-52-amd64\t6.1.0-52-amd64\n6.1.172-1\tlinux-image-6.1.0-48-amd64\t6.1.0-48-amd64\n" +
        "6.1.174-1\tlinux-image-6.1.0-49-amd64\t6.1.0-49-amd64\n6.1.176-1\tlinux-image-6.1.0-50-amd64\t6.1.0-50-amd64\n" +
        "6.1.177-1\tlinux-image-6.1.0-51-amd64\t6.1.0-51-amd64\n6.1.187-1\tlinux-image-6.1.0-53-amd64\t6.1.0-53-amd64\n" +
        "6.1.190-1\tlinux-image-6.1.0-54-amd64\t6.1.0-54-amd64\n6.1.192-1\tlinux-image-6.1.0-55-amd64\t6.1.0-55-amd64\n" +
        "6.1.192-2\tlinux-image-6.1.0-56-amd64\t6.1.0-56-amd64\n6.1.176-1\tlinux-image-6.1.0-50-amd64\t6.1.0-50-amd64\n";

    [Theory]
    [InlineData("6.1.190-1", "6.1.192-1")]
    [InlineData("6.1.192-2", "6.1.192-3")]
    [InlineData("6.12.115-2~deb12u1", "6.12.117-1~deb12u1")]
    [InlineData("6.12.118-1~deb12u1", "6.12.118-1")]        // a bookworm rebuild comes before the upload it rebuilds
    [InlineData("6.12.95-1~bpo12+1", "6.12.95-1")]
    [InlineData("7.3~rc7-1~exp1", "7.3-1")]                 // ~ sorts before everything, the end included
    [InlineData("6.1.9-1", "6.1.10-1")]                     // numerically, not as text
    [InlineData("6.12.90-1", "6.12.90-2")]
    [InlineData("6.12.118-1", "1:5.10.0-1")]                // an epoch wins
    public void DebianVersionsSortAsDpkgDoes(string older, string newer)
    {
        Assert.True(DebianVersion.Compare(older, newer) < 0, $"{older} < {newer}");
        Assert.True(DebianVersion.Compare(newer, older) > 0, $"{newer} > {older}");
        Assert.Equal(0, DebianVersion.Compare(newer, newer));
    }

    [Fact]
    public void TheListingIsOrderedByVersionEachOnceAndRangesCut()
    {
        var builds = KernelBuild.ParseListing(Listing61);
        Assert.Equal(["6.1.170-3", "6.1.172-1", "6.1.174-1", "6.1.176-1", "6.1.177-1", "6.1.180-1", "6.1.187-1", "6.1.190-1", "6.1.192-1", "6.1.192-2", "6.1.192-3"],
            builds.Select(b => b.Spec));
        Assert.Equal("linux-image-6.1.0-55-amd64", builds[8].Package);
        Assert.Equal("6.1.0-55-amd64", builds[8].Release);
        Assert.True(builds[0].IsPackaged);
        Assert.True(new KernelBuild("6.12.100-1~deb12u1").IsPackaged);     // --kernels with package versions
        Assert.True(new KernelBuild("7.3~rc7-1~exp1").IsPackaged);
        Assert.False(new KernelBuild("6.12.100+deb12-amd64").IsPackaged);   // a release: which upload is not said
        Assert.False(new KernelBuild("/var/tmp/k1/bzImage").IsPackaged);

        Assert.Equal(["6.1.180-1", "6.1.187-1", "6.1.190-1"], KernelBuild.Range(builds, "6.1.180-1", "6.1.190-1").Select(b => b.Spec));
        Assert.Equal(11, KernelBuild.Range(builds, null, null).Count);
        Assert.Equal(["6.1.192-2", "6.1.192-3"], KernelBuild.Range(builds, "6.1.192-2", null).Select(b => b.Spec));
        var unknown = Assert.Throws<ArgumentException>(() => KernelBuild.Range(builds, "6.1.171-1", null));
        Assert.Contains("--from 6.1.171-1 is not a build of this series", unknown.Message);
        Assert.Contains("6.1.170-3 6.1.172-1", unknown.Message);
        Assert.Throws<ArgumentException>(() => KernelBuild.Range(builds, "6.1.190-1", "6.1.190-1"));
        Assert.Throws<ArgumentException>(() => KernelBuild.Range(builds, "6.1.192-1", "6.1.190-1"));
    }

    /// <summary>Every flip position of every length up to 24: the search finds exactly it, looks at
    /// each build at most once, at most 2 + ⌈log2(n-1)⌉ builds; 11 builds cost at most 6 boots.</summary>
    [Fact]
    public void TheSearchFindsEveryFlipInLogarithmicallyManySteps()
    {
        for (int n = 2; n <= 24; n++)
        {
            int bound = 2 + (int)Math.Ceiling(Math.Log2(n - 1));
            for (int flip = 1; flip < n; flip++)
            {
                var asked = new List<int>();
                var outcome = BisectSearch.Run(n, i =>
                {
                    asked.Add(i);
                    return i < flip ? new BisectAnswer("observed:False", "old") : new BisectAnswer("observed:True", "new");
                });
                Assert.True(outcome.Flipped);
                Assert.Equal(flip - 1, outcome.LastOld);
                Assert.Equal(flip, outcome.FirstNew);
                Assert.Equal(asked.Count, asked.Distinct().Count());
                Assert.True(asked.Count <= bound, $"n={n} flip={flip}: {asked.Count} > {bound}");
                Assert.Equal([0, n - 1], asked.Take(2));
                Assert.Equal(asked, outcome.Steps.Select(s => s.Index));
            }
        }
        Assert.Equal(6, 2 + (int)Math.Ceiling(Math.Log2(10)));
    }

    [Fact]
    public void ARowThatNeverFlipsCostsTheTwoEndpoints()
    {
        var asked = new List<int>();
        var outcome = BisectSearch.Run(11, i => { asked.Add(i); return new BisectAnswer("observed:True", "new"); });
        Assert.False(outcome.Flipped);
        Assert.Null(outcome.LastOld);
        Assert.Null(outcome.FirstNew);
        Assert.Equal([0, 10], asked);
    }

    [Fact]
    public void AThirdAnswerInTheMiddleCountsAsChanged()
    {
        // 0..3 old, 4 an error, 5..7 new: the oldest answer last held at 3.
        var outcome = BisectSearch.Run(8, i => i < 4 ? new BisectAnswer("observed:False", "old") : i == 4 ? new BisectAnswer("error", "error") : new BisectAnswer("observed:True", "new"));
        Assert.Equal(3, outcome.LastOld);
        Assert.Equal(4, outcome.FirstNew);
        Assert.Equal("error", outcome.Answer(4).Key);
    }

    [Fact]
    public void TheChangelogIsReadIntoLinesWithTheirUploadAndStableRelease()
    {
        var items = DebianChangelog.Parse(Fixture("changelog-6.1.0-57-excerpt.txt"));
        // linux-signed-amd64 (6.1.192+3) stands for linux 6.1.192-3.
        Assert.Equal(new ChangelogItem("6.1.192-3", null, "Sign kernel from linux 6.1.192-3"), items[0]);
        Assert.Equal(new ChangelogItem("6.1.192-3", null, "nfsd: preflight SEQUENCE replies before accepting a slot (CVE-2026-99362)"), items[1]);
        Assert.Equal(new ChangelogItem("6.1.192-2", null, "ext4: fix NULL folio dereference in mballoc (Closes: #1154101)"), items[2]);
        // A continuation line is joined; the item belongs to the ChangeLog-6.1.191 list.
        Assert.Contains(new ChangelogItem("6.1.192-1", "6.1.191", "mm/userfaultfd: reset ptes when close() for wr-protected ones (CVE-2024-36881)"), items);
        Assert.Contains(new ChangelogItem("6.1.192-1", "6.1.192", "xen-netback: Fix UAF when reading statistics data (CVE-2026-100080)"), items);
        // After "[ Salvatore Bonaccorso ]": Debian's own patches.
        Assert.Contains(new ChangelogItem("6.1.192-1", null, "xen-netback: Fix XenBus connection failure cleanup (CVE-2026-99286)"), items);
        Assert.Contains(new ChangelogItem("6.1.190-1", "6.1.188", "ALSA: aloop: Fix peer runtime UAF during format-change stop (CVE-2026-46090)"), items);
        Assert.Contains(new ChangelogItem("6.1.190-1", null, "exec: Cleanup POSIX timers right after de_thread() (CVE-2026-98260)"), items);
        Assert.DoesNotContain(items, i => i.Text.StartsWith("https:", StringComparison.Ordinal) || i.Text.StartsWith("New upstream", StringComparison.Ordinal) && i.Upstream is not null);
    }

    [Fact]
    public void BetweenTwoBuildsAreTheUploadsAfterTheOlderUpToTheNewer()
    {
        var items = DebianChangelog.Parse(Fixture("changelog-6.1.0-57-excerpt.txt"));
        Assert.Equal(["6.1.192-1"], DebianChangelog.Between(items, "6.1.190-1", "6.1.192-1").Select(i => i.Version).Distinct());
        Assert.Equal(["6.1.192-3", "6.1.192-2"], DebianChangelog.Between(items, "6.1.192-1", "6.1.192-3").Select(i => i.Version).Distinct());
        Assert.Empty(DebianChangelog.Between(items, "6.1.192-3", "6.1.192-3"));
    }

    [Fact]
    public void ABookwormRebuildStandsForTheTrixieUploadItRebuilds()
    {
        var items = DebianChangelog.Parse(Fixture("changelog-6.12.118+deb12-excerpt.txt"));
        Assert.Equal("6.12.118-1~deb12u1", items[0].Version);   // linux-signed-6.12-amd64 (6.12.118+1~deb12u1)
        var between = DebianChangelog.Between(items, "6.12.117-1~deb12u1", "6.12.118-1~deb12u1");
        Assert.Equal(["6.12.118-1~deb12u1", "6.12.118-1"], between.Select(i => i.Version).Distinct());
        Assert.Contains(between, i => i.Text == "userfaultfd: fix UFFDIO_MOVE livelock on large folio with extra references" && i.Upstream == "6.12.118");
        Assert.DoesNotContain(between, i => i.Version.StartsWith("6.12.117", StringComparison.Ordinal));
        Assert.Equal("6.12.118-1", DebianChangelog.Rebuilt("6.12.118-1~deb12u1"));
        Assert.Equal("6.12.95-1", DebianChangelog.Rebuilt("6.12.95-1~bpo12+1"));
        Assert.Equal("7.3~rc7-1~exp1", DebianChangelog.Rebuilt("7.3~rc7-1~exp1"));
    }

    [Fact]
    public void TheRowsCveRanksFirstThenUserfaultfdThenUffdThenMm()
    {
        var items = DebianChangelog.Between(DebianChangelog.Parse(Fixture("changelog-6.1.0-57-excerpt.txt")), "6.1.190-1", "6.1.192-1");
        var close = new BisectTarget("close-clears-wp", false, "close(uffd) clears wp bits and markers (CVE-2024-36881)");
        Assert.Equal(["CVE-2024-36881"], close.Cves);
        Assert.Equal(["close"], close.Hints);
        var ranked = DebianChangelog.Rank(items, close.Cves, close.Hints);
        Assert.Equal(
            [
                (155, "mm/userfaultfd: reset ptes when close() for wr-protected ones (CVE-2024-36881)", "6.1.191"),
                (40, "userfaultfd: fix checks for huge PMDs (CVE-2024-46787)", "6.1.191"),
                (35, "mm: clear uffd-wp PTE/PMD state on mremap() (CVE-2025-21696)", "6.1.191"),
                (5, "mm/mremap: reset unfaulted VMA page offset for MREMAP_DONTUNMAP", "6.1.191"),
            ],
            ranked.Select(r => (r.Score, r.Item.Text, r.Item.Upstream!)));
        Assert.Equal(["CVE-2024-36881", "userfaultfd", "mm/", "close"], ranked[0].Matched);

        var mremap = new BisectTarget("mremap-clears-wp", false, "mremap without EVENT_REMAP clears wp bits (CVE-2025-21696)");
        var byMremap = DebianChangelog.Rank(items, mremap.Cves, mremap.Hints);
        Assert.Equal("mm: clear uffd-wp PTE/PMD state on mremap() (CVE-2025-21696)", byMremap[0].Item.Text);
        Assert.Equal(145, byMremap[0].Score);
        Assert.Equal("mm/mremap: reset unfaulted VMA page offset for MREMAP_DONTUNMAP", byMremap[3].Item.Text);
        Assert.Equal(15, byMremap[3].Score);
    }

    [Fact]
    public void ArchitectureMmAndOtherSubsystemsAreNotMmMentions()
    {
        var items = DebianChangelog.Parse(Fixture("changelog-6.12.118+deb12-excerpt.txt"));
        var ranked = DebianChangelog.Rank(items, [], []);
        Assert.DoesNotContain(ranked, r => r.Item.Text.Contains("x86/mm/pat", StringComparison.Ordinal));
        Assert.DoesNotContain(ranked, r => r.Item.Text.StartsWith("smb:", StringComparison.Ordinal));
        // UFFDIO_MOVE is a uffd mention as well as userfaultfd.
        Assert.Equal(
            [
                (70, "userfaultfd: fix UFFDIO_MOVE livelock on large folio with extra references"),
                (45, "mm/userfaultfd: only allocate anon_vma in CoW mappings"),
                (35, "mm/vma: avoid broken uffd merge on mremap"),
                (5, "mm/hugetlb: unmap the page where the other VMA maps it"),
                (5, "mm/damon/core: error damos_commit_quota_goal() for zero target_value"),
            ],
            ranked.Select(r => (r.Score, r.Item.Text)));
    }

    /// <summary>A row's answer comes from a real probe of this kernel, round-tripped through its JSON
    /// as a shard would hold it: the key is the kind and value the report gives.</summary>
    [Fact]
    public void ARowsAnswerIsItsObservedValueInTheProbeReport()
    {
        var report = Hard.Within(Hard.Probe, () => ProbeRunner.Run(new ProbeOptions { Rows = ["close-clears-wp"] }));
        var row = Assert.Single(report.Behaviours, b => b.Id == "close-clears-wp");
        var target = BisectTarget.Find("close-clears-wp", false, "6.1")!;
        Assert.False(target.IsScenario);
        Assert.Equal("probe.json", target.StepFile);
        Assert.Equal("probe", target.ShardKind);
        var answer = target.AnswerFrom(report.ToJson(), "host");
        Assert.Equal(row.Kind == "observed" && row.Value is bool v ? $"observed:{v}" : row.Kind, answer.Key);
        Assert.EndsWith(row.Observed, answer.Text);
        var missing = Assert.Throws<FormatException>(() => BisectTarget.Find("mremap-clears-wp", false, "6.1")!.AnswerFrom(report.ToJson(), "host"));
        Assert.Contains("no row mremap-clears-wp", missing.Message);
    }

    [Fact]
    public void ScenariosAreCheckedAgainstAPinnedProfile()
    {
        var scenario = BisectTarget.Find("close-clears-wp", true, "6.1")!;
        Assert.True(scenario.IsScenario);
        Assert.Equal("uffdnative check --json --scenario close-clears-wp --profile 6.1", scenario.StepCommand);
        Assert.Equal("check-close-clears-wp-profile-6.1", scenario.ShardKind);
        Assert.Contains("CVE-2024-36881", scenario.Cves);
        const string check = """{"results":[{"scenario":"close-clears-wp","memory":"anon","status":"pass"},{"scenario":"other","memory":"anon","status":"diverged"},{"scenario":"close-clears-wp","memory":"shmem","status":"diverged","aspect":"pagemap","expected":"W","actual":"w"}]}""";
        var a = scenario.AnswerFrom(check, "check.json");
        Assert.Equal("anon:pass shmem:diverged:pagemap=w", a.Key);
        Assert.Equal("anon pass; shmem diverged (pagemap: kernel w, model W)", a.Text);
        Assert.Null(BisectTarget.Find("no-such-row", false, "6.1"));
    }

    [Fact]
    public void TheReportNamesTheFlipBothAnswersTheCostAndTheChangelogInEveryFormat()
    {
        var builds = KernelBuild.ParseListing(Listing61);
        var target = new BisectTarget("close-clears-wp", false, "close(uffd) clears wp bits and markers (CVE-2024-36881)");
        BisectBuildResult At(string v, bool isNew, bool booted) =>
            new(builds.Single(b => b.Spec == v), isNew ? new("observed:True", "new: wp=0 after close") : new("observed:False", "old: wp=1 stays after close"), booted, 60, $"/w/shards/{v}/probe/x");
        var steps = new[] { At("6.1.170-3", false, true), At("6.1.192-3", true, true), At("6.1.180-1", false, false), At("6.1.190-1", false, true), At("6.1.192-1", true, true) };
        var changes = DebianChangelog.Rank(DebianChangelog.Between(DebianChangelog.Parse(Fixture("changelog-6.1.0-57-excerpt.txt")), "6.1.190-1", "6.1.192-1"), target.Cves, target.Hints);
        var report = new BisectReport { Target = target, Series = "6.1", Builds = builds, Steps = steps, LastOld = steps[3], FirstNew = steps[4], Changes = changes, WallSeconds = 612.3 };
        Assert.Equal((4, 1), (report.Booted, report.Reused));
        Assert.Equal("close-clears-wp: first build with the new answer is 6.1.192-1 (6.1.0-55-amd64) (after 6.1.190-1 (6.1.0-54-amd64)); 5 of 11 builds looked at (4 booted, 1 reused), 612 s", report.Summary());

        Assert.Empty(UffdNative.Harness.Tests.Formats.JsonSchemaTests.Problems("bisect", report.ToJson()));
        using var doc = System.Text.Json.JsonDocument.Parse(report.ToJson());
        var j = doc.RootElement;
        Assert.True(j.GetProperty("flipped").GetBoolean());
        Assert.Equal("6.1.192-1", j.GetProperty("firstNew").GetProperty("build").GetString());
        Assert.Equal("linux-image-6.1.0-54-amd64", j.GetProperty("lastOld").GetProperty("package").GetString());
        Assert.Equal("observed:False", j.GetProperty("lastOld").GetProperty("answer").GetString());
        Assert.Equal(4, j.GetProperty("booted").GetInt32());
        Assert.Equal(11, j.GetProperty("builds").GetArrayLength());
        Assert.Equal(["6.1.170-3", "6.1.192-3", "6.1.180-1", "6.1.190-1", "6.1.192-1"], j.GetProperty("steps").EnumerateArray().Select(e => e.GetProperty("build").GetString()));
        var first = j.GetProperty("changelog")[0];
        Assert.Equal((155, "6.1.191"), (first.GetProperty("score").GetInt32(), first.GetProperty("upstream").GetString()));

        var text = report.ToText();
        Assert.Contains("  155  6.1.192-1 (stable 6.1.191): mm/userfaultfd: reset ptes when close() for wr-protected ones (CVE-2024-36881)  [CVE-2024-36881, userfaultfd, mm/, close]\n", text);
        Assert.Contains("  6.1.190-1: old: wp=1 stays after close\n  6.1.192-1: new: wp=0 after close\n", text);

        var ktap = report.ToKtap().Split('\n');
        Assert.Equal(["KTAP version 1", "# bisect close-clears-wp", "1..5", "ok 1 6.1.170-3 # old: wp=1 stays after close"], ktap[..4]);
        Assert.Equal("not ok 4 6.1.192-1 # new: wp=0 after close", ktap[6]);   // in build order

        var none = report with { Steps = [At("6.1.170-3", true, true), At("6.1.192-3", true, true)], LastOld = null, FirstNew = null, Changes = [] };
        Assert.False(none.Flipped);
        Assert.StartsWith("close-clears-wp: no flip from 6.1.170-3 to 6.1.192-3: both answer \"new: wp=0 after close\" (a change, if any, is outside this range); 2 of 11 builds looked at (2 booted, 0 reused)", none.Summary());
    }

    /// <summary>The verb end to end without booting: two shards an earlier run left (each holding a
    /// real probe of this kernel, as the host column of a matrix would) are reused, the answers
    /// agree, and the report says so.</summary>
    [Fact]
    public void SharedShardsOfAnEarlierRunAreReusedWithoutBooting()
    {
        using var work = new TempDirectory("uffdnative-bisect-");
        foreach (var build in new[] { "6.1.170-3", "6.1.192-3" })
        {
            var shard = Path.Combine(work.Path, "shards", build, "probe");
            Directory.CreateDirectory(Path.Combine(shard, "host"));
            File.WriteAllText(Path.Combine(shard, ".kernel-matrix-out"), "");
            File.WriteAllText(Path.Combine(shard, "host", "seconds"), "7\n");
            var probe = CliRunner.Run("probe", "--rows", "close-clears-wp", "--json", "-o", Path.Combine(shard, "host", "probe.json"));
            Assert.True(probe.ExitCode is 0 or 1, probe.ToString());
        }
        var r = CliRunner.RunIn(null, [], ["bisect", "close-clears-wp", "--kernels", "6.1.170-3,6.1.192-3", "--work", work.Path, "--json"], Repo.Root);
        Assert.True(r.ExitCode == 0, r.ToString());
        using var doc = System.Text.Json.JsonDocument.Parse(r.Stdout);
        var j = doc.RootElement;
        Assert.False(j.GetProperty("flipped").GetBoolean());
        Assert.Equal((0, 2), (j.GetProperty("booted").GetInt32(), j.GetProperty("reused").GetInt32()));
        Assert.Equal(System.Text.Json.JsonValueKind.Null, j.GetProperty("series").ValueKind);
        Assert.All(j.GetProperty("steps").EnumerateArray(), s => Assert.Equal(7, s.GetProperty("seconds").GetInt32()));
        Assert.Contains("(reused " + Path.Combine(work.Path, "shards", "6.1.170-3", "probe", "host") + ")", r.Stderr);
        Assert.Contains("no flip from 6.1.170-3 to 6.1.192-3", j.GetProperty("summary").GetString());
    }

    /// <summary>kernel-builds.sh refuses what it cannot list or read before touching the cache or apt.</summary>
    [Theory]
    [InlineData(new string[0], "usage: kernel-builds.sh list SERIES | deb KERNEL | changelog KERNEL")]
    [InlineData(new[] { "list" }, "usage: kernel-builds.sh list SERIES (see --help)")]
    [InlineData(new[] { "list", "6.2" }, "unknown series '6.2': use 5.10, 6.1, 6.12, 6.12-trixie, 7.2, 7.3")]
    [InlineData(new[] { "changelog", "/var/tmp/k1/bzImage" }, "'/var/tmp/k1/bzImage' is not a Debian package: only packaged kernels have a changelog")]
    [InlineData(new[] { "deb", "host" }, "'host' is not a Debian package")]
    public void TheBuildsScriptRefusesBadInputWithExitTwo(string[] args, string message)
    {
        var cache = Path.Combine(Path.GetTempPath(), "kernel-builds-test-cache-never-created");
        var r = CliRunner.Exec(["bash", Path.Combine(Repo.Root, "scripts/kernel-builds.sh"), .. args], environment: new Dictionary<string, string> { ["KERNEL_MATRIX_CACHE"] = cache });
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Contains(message, r.Stderr);
        Assert.Empty(r.Stdout);
        Assert.False(Directory.Exists(cache));
    }

    [Theory]
    [InlineData("6.1.170-3", "6.1")]
    [InlineData("6.1.0-47-amd64", "6.1")]
    [InlineData("6.12.100-1~deb12u1", "6.12")]
    [InlineData("6.12.100+deb12-amd64", "6.12")]
    [InlineData("6.12.100-1", "6.12-trixie")]
    [InlineData("7.3~rc7-1~exp1", "7.3")]
    [InlineData("/home/me/linux/arch/x86/boot/bzImage", null)]
    public void TheSeriesOfAVersion(string version, string? series) => Assert.Equal(series, BisectCommand.SeriesOf(version));

    [Fact]
    public void ShardDirectoriesAreTheVersionOrANamedHashOfThePath()
    {
        Assert.Equal("6.12.100-1~deb12u1", BisectCommand.ShardKey("6.12.100-1~deb12u1"));
        var a = BisectCommand.ShardKey("/var/tmp/k1/arch/x86/boot/bzImage");
        var b = BisectCommand.ShardKey("/var/tmp/k2/arch/x86/boot/bzImage");
        var c = BisectCommand.ShardKey("/var/tmp/k2/arch/x86/boot/bzImage:/var/tmp/k2/mods");
        Assert.StartsWith("local-bzImage-", a);
        Assert.Equal(3, new[] { a, b, c }.Distinct().Count());
        Assert.DoesNotContain('/', c);
    }

    [Theory]
    [InlineData(new[] { "bisect", "close-clears-wp", "--kernels", "6.1.170-3" }, "--kernels needs at least two kernels")]
    [InlineData(new[] { "bisect", "close-clears-wp", "--kernels", "6.1.170-3,6.1.192-3", "--series", "6.1" }, "--kernels names the builds itself")]
    [InlineData(new[] { "bisect", "close-clears-wp", "--series", "6.1", "--json", "--format", "ktap" }, "--json and --format ktap disagree")]
    [InlineData(new[] { "bisect", "close-clears-wp", "--series", "6.1", "--format", "yaml" }, "yaml")]
    // More in the bad-input table (Cli/BadInputTests.cs).
    public void UsageErrorsAreOneLineAndExitTwoBeforeAnythingBoots(string[] args, string message)
    {
        var r = CliRunner.RunIn(null, [], args, Repo.Root);
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Single(r.StderrLines);
        Assert.Contains(message, r.Stderr);
        Assert.Empty(r.Stdout);
    }
}
