namespace UffdNative.Harness.Tests.Probing;

/// <summary>
/// Every detector is tested where its answer differs, and its evidence — not only its verdict — is asserted.
/// <para>
/// <see cref="Expectations"/> says, per switch, what the evidence of each answer must show (the observation that
/// decides it). The detectors' answers on other kernels are recorded in <c>DetectorEvidence/RELEASE.json</c>
/// (the switch rows of a probe report, cut by <c>scripts/detector-evidence.sh</c> from a kernel-matrix run):
/// together with this host they must show every switch giving both answers, or say why no kernel reachable here
/// can. A fresh report of one of those kernels (CI boots Debian 6.1 in a guest and points
/// <c>UFFDNATIVE_DETECTOR_REPORTS</c> at it) must give the recorded answers: a detector that skips its experiment
/// and returns the mainline answer of the version fails there, because 6.1.192 carries backports
/// (close-clears-wp, mremap-clears-wp, min-addr-not-validated) that mainline 6.1 lacks.
/// </para>
/// </summary>
public class DetectorEvidenceTests
{
    /// <summary>Per switch: a regex the evidence of the new answer must match, one for the old answer (an observed
    /// old answer; "not supported" is checked separately: the UFFDIO_API refusal), and where no kernel reachable
    /// here shows one of the answers, why.</summary>
    public sealed record Expectation(string Switch, string New, string Old, string? OnlyOneAnswerBecause = null);

    private const string Unsupported = @"^UFFDIO_API requesting \S+ returned E[A-Z]+; reported features 0x[0-9a-f]+$";
    private const string NoOldWpKernel = "no kernel reachable here shows the old answer with a visible wp bit: 5.10's pagemap has no uffd-wp bit (pagemap-wp-anon old: undetermined, said so) and Debian 6.1.192 carries the fix";

    public static readonly Expectation[] Expectations =
    [
        new(KernelProfile.WpShmem, @"after WRITEPROTECT: present=0 wp=1 swap=1; after MADV_DONTNEED: present=0 wp=1 swap=1", @"(after WRITEPROTECT: present=0 wp=0|after MADV_DONTNEED: present=0 wp=0)"),
        new(KernelProfile.FaultAroundOffMinor, @"unregistered (1[0-9]|[2-9])\d*/16 present, MINOR-registered 1/16", @"MINOR-registered ([2-9]|1[0-9])/16"),
        new(KernelProfile.FaultAroundOffWp, @"unregistered (1[0-9]|[2-9])\d*/16 present, WP-registered 1/16", @"WP-registered ([2-9]|1[0-9])/16"),
        new(KernelProfile.WpUnpopulated, @"^present=0 wp=1 swap=1$", @"left the none PTE alone"),
        new(KernelProfile.UnregisterClearsWp, @"before UNREGISTER present=1 wp=1 swap=0, after present=1 wp=0", @"before UNREGISTER present=1 wp=1 swap=0, after present=1 wp=1", NoOldWpKernel),
        new(KernelProfile.CloseClearsWp, @"before close present=1 wp=1 swap=0, after present=1 wp=0", @"before close present=1 wp=1 swap=0, after present=1 wp=1", NoOldWpKernel),
        new(KernelProfile.MremapClearsWp, @"before mremap present=1 wp=1 swap=0, after present=1 wp=0 swap=0; VMA at the new address registered: False", @"before mremap present=1 wp=1 swap=0, after present=1 wp=1", NoOldWpKernel),
        new(KernelProfile.EagainResultField, @"field pre-set to 1: COPY EAGAIN field=-11, ZEROPAGE EAGAIN field=-11", @"field pre-set to 1: COPY EAGAIN field=1, ZEROPAGE EAGAIN field=1"),
        new(KernelProfile.UnregisterOtherUffdEinval, @"UNREGISTER through uffd B: EINVAL; VmFlags afterwards: still Missing", @"UNREGISTER through uffd B: OK"),
        new(KernelProfile.UnknownFeatureAccepted, @"(api=0xAB: OK|features=1<<63: OK)", @"^UFFDIO_API api=0xAB: EINVAL; features=1<<63: EINVAL$",
            "the 914eedcb window (6.0-6.2) is in no Debian kernel reachable here (6.1.192 has the revert)"),
        new(KernelProfile.ContinueModeWp, @"CONTINUE\(mode=WP\) on a cached, unmapped page: OK mapped=4096; then present=1 wp=1", @"CONTINUE\(mode=WP\) on a cached, unmapped page: EINVAL mapped=0; then present=0"),
        new(KernelProfile.MultiVmaWriteProtect, @"WRITEPROTECT over 2 WP-registered VMAs: OK; page 0 present=1 wp=1 swap=0, page 1 present=1 wp=1", @"WRITEPROTECT over 2 WP-registered VMAs: ENOENT"),
        new(KernelProfile.Poison, @"POISON one hole: OK updated=4096; then present=0 wp=0 swap=1", @"POISON one hole: E"),
        new(KernelProfile.WpAsync, @"WP'd page present=1 wp=1 swap=0; write from a worker: completed, no message; then present=1 wp=0", @"write from a worker: (blocked|completed, fault)"),
        new(KernelProfile.PagemapScan, @"\(1 present\): 1 region\(s\)$", @"\(1 present\): (ENOTTY|EINVAL)$"),
        new(KernelProfile.Move, @"MOVE one filled anon page into a registered hole: OK move=4096; dst present=1 wp=0 swap=0, src present=0 wp=0 swap=0, content intact", @"MOVE one filled anon page into a registered hole: E"),
        new(KernelProfile.RegisterMaskMovePoison, @"ioctls=0x13c: MOVE yes, POISON yes", @"ioctls=0x1c: MOVE no, POISON no"),
        new(KernelProfile.ExactAddress, @"read at \+0x123 of a MISSING-registered hole: message address \+0x123$", @"message address \+0x0$"),
        new(KernelProfile.MinorShmem, @"REGISTER\(MINOR, memfd MAP_SHARED\): OK ioctls=0x[0-9a-f]+$", @"REGISTER\(MINOR, memfd MAP_SHARED\): EINVAL"),
        new(KernelProfile.DevUserfaultfd, @"open /dev/userfaultfd \+ USERFAULTFD_IOC_NEW: (OK|EACCES at open|EPERM at open); /sys/class/misc/userfaultfd present", @"ENOENT at open; /sys/class/misc/userfaultfd absent"),
        new(KernelProfile.UserModeOnly, @"userfaultfd\(UFFD_USER_MODE_ONLY\|O_CLOEXEC\|O_NONBLOCK\): OK$", @"userfaultfd\(UFFD_USER_MODE_ONLY\|O_CLOEXEC\|O_NONBLOCK\): EINVAL$"),
        new(KernelProfile.PagemapWpAnon, @"before WP present=1 wp=0 swap=0, after present=1 wp=1 swap=0$", @"after present=1 wp=0 swap=0; a write from a worker: fault flags 0x3$"),
        new(KernelProfile.ContinueIoctl, @"mapped preset to 1: EINVAL mapped=-22; MINOR_HUGETLBFS reported", @"mapped preset to 1: EINVAL mapped=1; MINOR_HUGETLBFS not reported"),
        new(KernelProfile.VmaMergeAnonVma, @": 2 VMAs; after UNREGISTER of both: 1$", @": 2 VMAs; after UNREGISTER of both: 2$"),
        new(KernelProfile.CopyOverGuardEexist, @"guard installed \(bit 58 = 1\); COPY onto it, copy preset to 1: EEXIST copy=-17; then bit 58 = 1, present = 0", @"guard installed \(bit 58 = 1\); COPY onto it, copy preset to 1: OK copy=4096; then bit 58 = 0, present = 1"),
        new(KernelProfile.MinAddrNotValidated, @"vm.mmap_min_addr = \d+; COPY into a registered page from src=0x[0-9a-f]+, copy preset to 1: EFAULT copy=-14", @"copy preset to 1: EINVAL copy=1$",
            "every Debian kernel reachable here carries 161ce69c2c89 (5.10.262, 6.1.192, 6.12.117+, this 6.18.44); pristine 6.18.15 would not"),
        new(KernelProfile.ShmemFillBeyondEof, @"COPY into page 1 \(beyond i_size\): ENOMEM copy=-12$", @"COPY into page 1 \(beyond i_size\): EFAULT copy=-14$"),
        new(KernelProfile.SpecialVmaWpAsyncEinval, @"REGISTER\(WP\) of \[vvar\] .*: EINVAL$", @"REGISTER\(WP\) of \[vvar\] .*: EPERM$",
            "the experiment's old answer (EPERM) needs WP_ASYNC without the fix: every kernel reachable here with WP_ASYNC carries it (6.12.118, this 6.18.44, 7.2, 7.3); 5.10 and 6.1 lack WP_ASYNC (not supported)"),
        new(KernelProfile.ScanNoneWritten, @"WP-registered, page 0 written: PAGEMAP_SCAN anyof PRESENT\|WRITTEN → \[0,1\):0xa \[1,4\):0x2$", @"WP-registered, page 0 written: PAGEMAP_SCAN anyof PRESENT\|WRITTEN → \[0,1\):0xa$",
            "every kernel reachable here with PAGEMAP_SCAN carries the fix (6.12.118, this 6.18.44, 7.2, 7.3); 6.7-7.1.12 would not"),
        new(KernelProfile.ScanHoleWritten, @"PAGEMAP_SCAN WRITTEN → 1 region\(s\), 512 pages$", @"PAGEMAP_SCAN WRITTEN → 0 region\(s\), 0 pages$",
            "the experiment's old answer needs WP_ASYNC without the fix: every kernel reachable here with WP_ASYNC carries it (6.12.118, this 6.18.44, 7.2, 7.3); 5.10 and 6.1 lack WP_ASYNC (not supported)"),
        new(KernelProfile.ReregisterKeepsWp, @"REGISTER\(MISSING\) over it on the same uffd: EBUSY; VMA WriteProtect", @"REGISTER\(MISSING\) over it on the same uffd: OK; VMA Missing"),
        new(KernelProfile.ScanWrittenWpOnly, @"no uffd, page 0 written: PAGEMAP_SCAN anyof PRESENT\|WRITTEN → \[0,1\):0x8$", @"no uffd, page 0 written: PAGEMAP_SCAN anyof PRESENT\|WRITTEN → \[0,1\):0xa"),
        new(KernelProfile.MadvCollapse, @"one page written, shmem_enabled = \w+: MADV_COLLAPSE OK; ShmemPmdMapped 2048 kB$", @"MADV_COLLAPSE EINVAL; ShmemPmdMapped 0 kB$"),
        new(KernelProfile.PinFaultWaits, @"pinned \(IORING_REGISTER_BUFFERS\) on another thread: MISSING message flags 0x1, resolved by ZEROPAGE; pin ok$", @"pinned \(IORING_REGISTER_BUFFERS\) on another thread: no message; pin register EFAULT$"),
        new(KernelProfile.HugetlbForkDropsWp, @"parent present=1 wp=1 swap=0; fork child \(no EVENT_FORK, pagemap only\) present=1 wp=0 swap=0$", @"parent present=1 wp=1 swap=0; fork child \(no EVENT_FORK, pagemap only\) present=1 wp=1 swap=0$"),
    ];

    private static readonly string Recorded = UffdNative.Harness.Tests.Cli.Repo.PathOf(Path.Combine("tests", "UffdNative.Harness.Tests", "Probing", "DetectorEvidence"));

    private static IEnumerable<ProbeReport> RecordedReports() =>
        Directory.GetFiles(Recorded, "*.json").Order(StringComparer.Ordinal).Select(f => ProbeReport.FromJson(File.ReadAllText(f), f));

    /// <summary>The switch rows of this host, as the detectors answer here.</summary>
    private static IEnumerable<BehaviourResult> HostRows() => HostReport.Lazy.Value.Behaviours.Where(b => b.Switch is not null);

    [Fact]
    public void EverySwitchHasAnExpectation()
    {
        Assert.Equal(KernelProfile.Switches.Select(s => s.Name).Order(StringComparer.Ordinal), Expectations.Select(e => e.Switch).Order(StringComparer.Ordinal));
        foreach (var e in Expectations)
            Assert.True(SwitchDetectors.All.ContainsKey(e.Switch), $"{e.Switch} has no detector");
    }

    /// <summary>The evidence of every answer shows the observation that decides it: a detector that returns an
    /// answer without running its experiment (or with another experiment's evidence) fails here.</summary>
    [Fact]
    public void TheDetectorsHereShowTheEvidenceOfTheirAnswers()
    {
        foreach (var b in HostRows())
            AssertEvidence(b, "this host");
    }

    [Fact]
    public void TheRecordedKernelsShowTheEvidenceOfTheirAnswers()
    {
        var reports = RecordedReports().ToList();
        Assert.NotEmpty(reports);
        foreach (var r in reports)
        {
            Assert.Equal(KernelProfile.Switches.Select(s => s.Name), r.Behaviours.Select(b => b.Switch));
            foreach (var b in r.Behaviours)
                AssertEvidence(b, r.KernelRelease);
        }
    }

    /// <summary>Across this host and the recorded kernels every detector gives both answers (an observed one, or
    /// "not supported" for the old), or the table says why no reachable kernel can. A reason is kept only while the
    /// experiment itself has not been seen giving the other answer.</summary>
    [Fact]
    public void EveryDetectorIsSeenGivingBothAnswers()
    {
        var rows = RecordedReports().SelectMany(r => r.Behaviours).Concat(HostRows()).ToList();
        var missing = new List<string>();
        foreach (var e in Expectations)
        {
            var answers = rows.Where(b => b.Switch == e.Switch).Select(b => b.Effective).OfType<bool>().ToHashSet();
            bool both = answers.Contains(true) && answers.Contains(false);
            // Both answers from the experiment itself (not the old one implied by a missing feature bit).
            var observed = rows.Where(b => b.Switch == e.Switch && b.Kind == "observed").Select(b => b.Value).OfType<bool>().ToHashSet();
            if (!both && e.OnlyOneAnswerBecause is null)
                missing.Add($"{e.Switch}: only {(answers.Count == 0 ? "undetermined" : answers.Single() ? "new" : "old")} seen");
            if (observed.Count == 2 && e.OnlyOneAnswerBecause is not null)
                missing.Add($"{e.Switch}: both answers are seen now; drop its reason ({e.OnlyOneAnswerBecause})");
        }
        Assert.True(missing.Count == 0, string.Join("\n", missing));
    }

    /// <summary>Fresh reports (UFFDNATIVE_DETECTOR_REPORTS: a directory of probe.json files, e.g. a kernel-matrix
    /// output) show the evidence of their answers, and those of a recorded kernel give the recorded answers, switch by
    /// switch. (A Debian update changes the release; its report is then checked for evidence only, until recorded.)
    /// Without the variable there is nothing to check; CI sets it (.ci/extra.sh, after the kernel matrix).</summary>
    [Fact]
    public void FreshReportsOfARecordedKernelGiveTheRecordedAnswers()
    {
        var dir = Environment.GetEnvironmentVariable("UFFDNATIVE_DETECTOR_REPORTS");
        if (string.IsNullOrEmpty(dir))
            return;
        var recorded = RecordedReports().ToDictionary(r => r.KernelRelease);
        var fresh = Directory.GetFiles(dir, "probe.json", SearchOption.AllDirectories).Select(f => ProbeReport.FromJson(File.ReadAllText(f), f)).ToList();
        Assert.NotEmpty(fresh);
        foreach (var r in fresh)
        {
            recorded.TryGetValue(r.KernelRelease, out var rec);
            foreach (var b in r.Behaviours.Where(b => b.Switch is not null))
            {
                AssertEvidence(b, r.KernelRelease);
                if (rec?.Behaviours.Single(x => x.Switch == b.Switch) is { } want)
                    Assert.True(want.Kind == b.Kind && want.Value == b.Value,
                        $"{r.KernelRelease} {b.Switch}: recorded {want.Kind} {want.Value} ({want.Observed}), now {b.Kind} {b.Value} ({b.Observed}; {b.Evidence})");
            }
        }
    }

    private static void AssertEvidence(BehaviourResult b, string where)
    {
        var e = Expectations.Single(x => x.Switch == b.Switch);
        string what = $"{where}: {b.Switch} {b.Kind} {b.Value} — observed '{b.Observed}', evidence '{b.Evidence}'";
        switch (b.Kind)
        {
            case "observed":
                Assert.True(Regex.IsMatch(b.Evidence, b.Value == true ? e.New : e.Old), what);
                Assert.False(Regex.IsMatch(b.Evidence, b.Value == true ? e.Old : e.New), "evidence of both answers: " + what);
                break;
            case "not-supported":
                Assert.Matches(Unsupported, b.Evidence);
                Assert.False(b.Effective, what);
                break;
            default:
                // Undetermined says why (the observation that could not decide, or what the kernel lacks).
                Assert.False(string.IsNullOrWhiteSpace(b.Observed), what);
                Assert.Null(b.Effective);
                break;
        }
    }
}
