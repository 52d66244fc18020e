using static UffdNative.Harness.Scenarios.ScenarioBuilder;
using F = UffdNative.UffdFeatures;
using R = UffdNative.RegisterMode;

namespace UffdNative.Harness.Tests.Model;

/// <summary>
/// The model's rules, one at a time, without a kernel: each test states what the reference section it cites says and checks
/// the model's observation. A rule that reads a profile switch is checked on both sides of it.
/// </summary>
public class ModelRuleTests
{
    private static readonly KernelProfile Mainline618 = KernelProfile.Mainline("6.18");
    private static readonly KernelProfile Mainline61 = KernelProfile.Mainline("6.1");

    private static Scenario ScenarioOf(MemoryType mem, F features = F.None, int pages = 4, bool alias = false, MissingPolicy missing = MissingPolicy.Copy, params ScenarioOp[] ops) =>
        NewScenario("scenario", mem, features, pages, alias).WithPolicy(missing).Then(ops);

    private static ModelResult Run(Scenario s, KernelProfile? p = null, ModelBug bugs = ModelBug.None) =>
        new KernelModel(p ?? Mainline618, new ModelOptions { Bugs = bugs }).Run(s);

    /// <summary>The observation of op i (setup is -1).</summary>
    private static OpObservation ObservationOf(ModelResult r, int op) => r.Trace.Observations[op + 1];

    private static string PageMapAfter(ModelResult r, int op, string mapping = "m0") => ObservationOf(r, op).PageMap[mapping];

    [Fact]
    public void WpOnShmemInstallsMarkersOnNonePtesAndWpBitsOnPresentOnes()
    {
        // §1.4 WRITEPROTECT "Unpopulated pages": shmem none PTEs get a marker (5.19+); present PTEs get the bit.
        var r = Run(ScenarioOf(MemoryType.Shmem, ops: [Register(R.WriteProtect), Write(0, 0x11), WriteProtect(0, 2)]));
        Assert.Equal("FM..", PageMapAfter(r, 2));
    }

    [Fact]
    public void AnonWpSkipsNonePtesUnlessWpUnpopulated()
    {
        // §3.3: without WP_UNPOPULATED anon WP skips none PTEs; with it (6.4+) they get markers.
        Assert.Equal("....", PageMapAfter(Run(ScenarioOf(MemoryType.Anon, F.PageFaultFlagWp, ops: [Register(R.WriteProtect), WriteProtect(0, 2)])), 1));
        Assert.Equal("MM..", PageMapAfter(Run(ScenarioOf(MemoryType.Anon, F.PageFaultFlagWp | F.WpUnpopulated, ops: [Register(R.WriteProtect), WriteProtect(0, 2)])), 1));
        Assert.Equal("....", PageMapAfter(Run(ScenarioOf(MemoryType.Anon, F.PageFaultFlagWp | F.WpUnpopulated, ops: [Register(R.WriteProtect), WriteProtect(0, 2)]), Mainline61), 1));
    }

    [Theory]
    [InlineData("dontneed")]
    [InlineData("punch")]
    [InlineData("remove")]
    [InlineData("truncate")]
    public void ShmemMarkersSurviveZaps(string zap)
    {
        // §3.2 table: DONTNEED, PUNCH_HOLE, MADV_REMOVE and truncate keep the wp state as markers; the next
        // write faults WRITE|WP (0x3).
        ScenarioOp[] z = zap switch
        {
            "dontneed" => [new MadviseOp("m0", 0, 2, MadviseAdvice.DontNeed)],
            "punch" => [new PunchHoleOp(0, 2)],
            "remove" => [new MadviseOp("m0", 0, 2, MadviseAdvice.Remove)],
            _ => [new TruncateOp(0), new TruncateOp(4)],
        };
        var s = ScenarioOf(MemoryType.Shmem, ops: [Register(R.WriteProtect), Write(0, 0x21), WriteProtect(0, 2), .. z, Write(0, 0x22)]);
        var r = Run(s);
        Assert.Equal("MM..", PageMapAfter(r, 2 + z.Length));
        var write = ObservationOf(r, 3 + z.Length);
        Assert.Equal(["u0 PF 0x3 m0+0 => unprotect"], write.Messages);
        Assert.Equal("fM..", write.PageMap["m0"]);
    }

    [Fact]
    public void AnonZapDropsWpAndMarkers()
    {
        // §3.2 "Anonymous zaps always drop", §3.3 "MADV_DONTNEED drops the wp (anon zap)".
        var r = Run(ScenarioOf(MemoryType.Anon, F.PageFaultFlagWp | F.WpUnpopulated, ops: [Register(R.WriteProtect), Write(0, 0x31), WriteProtect(0, 2), new MadviseOp("m0", 0, 2, MadviseAdvice.DontNeed)]));
        Assert.Equal("AM..", PageMapAfter(r, 2));
        Assert.Equal("....", PageMapAfter(r, 3));
    }

    [Fact]
    public void ReadingAMarkerMapsReadOnlyWithWpAndSendsNoMessage()
    {
        // §3.2 "Read of a marker": no message, RO + wp; §0.2 then a write faults 0x3.
        var r = Run(ScenarioOf(MemoryType.Shmem, ops: [Register(R.WriteProtect), WriteProtect(0), Read(0), Write(0, 0x41)]));
        Assert.Empty(ObservationOf(r, 2).Messages);
        Assert.Equal("F...", PageMapAfter(r, 2));
        Assert.Equal(["u0 PF 0x3 m0+0 => unprotect"], ObservationOf(r, 3).Messages);
    }

    [Fact]
    public void MarkerReadBugIsVisibleToTheModel()
    {
        var r = Run(ScenarioOf(MemoryType.Shmem, ops: [Register(R.WriteProtect), WriteProtect(0), Read(0)]), bugs: ModelBug.MarkerReadFaults);
        Assert.Single(ObservationOf(r, 2).Messages);
    }

    [Fact]
    public void FaultAroundMapsTheAlignedWindowExceptInWpAndMinorVmas()
    {
        // §3.1: none/MISSING fault around (16 pages = the 64 KiB window), WP/MINOR map one page.
        ScenarioOp[] fill = Enumerable.Range(0, 32).Select(p => (ScenarioOp)new PwriteOp(p, 0x100 + (ulong)p)).ToArray();
        foreach (var (modes, expect) in new[] { (R.None, 16), (R.Missing, 16), (R.WriteProtect, 1), (R.Missing | R.WriteProtect, 1) })
        {
            ScenarioOp[] reg = modes == R.None ? [] : [Register(modes, 0, 32)];
            var r = Run(ScenarioOf(MemoryType.Shmem, F.MinorShmem, pages: 32, ops: [.. fill, .. reg, Read(0)]));
            Assert.Equal(expect, PageMapAfter(r, fill.Length + reg.Length).Count(c => c == 'f' || c == 'F'));
        }
        // A read in the second window maps that window only.
        var r2 = Run(ScenarioOf(MemoryType.Shmem, pages: 32, ops: [.. fill, Read(21)]));
        Assert.Equal(new string('.', 16) + new string('f', 16), PageMapAfter(r2, fill.Length));
        // With the rule of 5.14/5.19 switched off, WP registrations fault around too.
        var old = Mainline618.With(KernelProfile.FaultAroundOffWp, false);
        Assert.Equal(16, PageMapAfter(Run(ScenarioOf(MemoryType.Shmem, pages: 32, ops: [.. fill, Register(R.WriteProtect, 0, 32), Read(0)]), old), fill.Length + 1).Count(c => c == 'f'));
    }

    [Fact]
    public void AliasWritesAndPwriteAreNeverIntercepted()
    {
        // §3.2 "Alias and other writers": wp belongs to the (mapping, page) PTE, not to the file page.
        var r = Run(ScenarioOf(MemoryType.Shmem, alias: true, ops: [Register(R.WriteProtect), Write(0, 0x51), WriteProtect(0), Write(0, 0x52, "al"), new PwriteOp(0, 0x53), Read(0)]));
        Assert.Empty(ObservationOf(r, 3).Messages);
        Assert.Equal("F...", PageMapAfter(r, 4));
        Assert.Equal("ok value=0x53", ObservationOf(r, 5).Result);
    }

    [Fact]
    public void KernelModeWriteIsInterceptedUnlessUserModeOnly()
    {
        // §1.5: a kernel write faults like a user write; on a USER_MODE_ONLY uffd it is EFAULT, no message.
        var s = ScenarioOf(MemoryType.Anon, ops: [Register(R.Missing), new WriteOp("m0", 0, 0x61, AccessMode.Kernel)]);
        var r = Run(s);
        Assert.Equal("ok bytes=8", ObservationOf(r, 1).Result);
        Assert.Equal(["u0 PF 0x1 m0+0 => copy"], ObservationOf(r, 1).Messages);
        var umo = Run(s with { Uffds = [new UffdSpec("u0", F.None, UserModeOnly: true)] });
        Assert.Equal("EFAULT", ObservationOf(umo, 1).Result);
        Assert.Empty(ObservationOf(umo, 1).Messages);
    }

    [Fact]
    public void MissingWpOnAMarkerFaultsMissingThenWp()
    {
        // §3.2 MISSING|WP table: no page cache → 0x1 then, after COPY(MODE_WP), 0x3.
        var r = Run(ScenarioOf(MemoryType.Shmem, missing: MissingPolicy.CopyWp, ops: [Register(R.Missing | R.WriteProtect), WriteProtect(0), Write(0, 0x71)]));
        Assert.Equal(["u0 PF 0x1 m0+0 => copy-wp", "u0 PF 0x3 m0+0 => unprotect"], ObservationOf(r, 2).Messages);
        // With page cache: one WP fault.
        var r2 = Run(ScenarioOf(MemoryType.Shmem, missing: MissingPolicy.CopyWp, ops: [new PwriteOp(0, 1), Register(R.Missing | R.WriteProtect), WriteProtect(0), Write(0, 0x72)]));
        Assert.Equal(["u0 PF 0x3 m0+0 => unprotect"], ObservationOf(r2, 3).Messages);
    }

    [Fact]
    public void ReRegisteringReplacesTheModesUnlessTheyAreASubset()
    {
        // §0.9: MISSING then WP gives WP only (a hole then reads without a MISSING fault); a subset is a no-op.
        var r = Run(ScenarioOf(MemoryType.Anon, ops: [Register(R.Missing), Register(R.WriteProtect), Read(0), Register(R.Missing | R.WriteProtect), Register(R.WriteProtect), Read(1)]));
        Assert.Empty(ObservationOf(r, 2).Messages);
        Assert.Equal(["u0 PF 0x0 m0+1 => copy"], ObservationOf(r, 5).Messages);
    }

    [Fact]
    public void FillIoctlsCheckRegistrationNotMode()
    {
        // §0.8: COPY into a WP-only VMA works; MODE_WP needs WP (EINVAL, -22); unregistered is ENOENT.
        var r = Run(ScenarioOf(MemoryType.Anon, ops: [Register(R.WriteProtect, 0, 2), new CopyOp("u0", "m0", 0, 1, 0x81), new CopyOp("u0", "m0", 2, 1, 0x82), Register(R.Missing, 2, 2), new CopyOp("u0", "m0", 2, 1, 0x83, Wp: true)]));
        Assert.Equal("ok field=4096", ObservationOf(r, 1).Result);
        Assert.Equal("ENOENT field=-2", ObservationOf(r, 2).Result);
        Assert.Equal("EINVAL field=-22", ObservationOf(r, 4).Result);
    }

    [Fact]
    public void CopyAcrossTwoVmasIsEnoent()
    {
        // find_dst_vma: the range must lie in one VMA, even when both are registered.
        var r = Run(ScenarioOf(MemoryType.Anon, ops: [Register(R.Missing, 0, 2), Register(R.WriteProtect, 2, 2), new CopyOp("u0", "m0", 1, 2, 0x91)]));
        Assert.Equal("ENOENT field=-2", ObservationOf(r, 2).Result);
    }

    [Fact]
    public void UnregisterClearsWpSince60()
    {
        var s = ScenarioOf(MemoryType.Shmem, ops: [Register(R.WriteProtect), Write(0, 1), WriteProtect(0, 2), new UnregisterOp("u0", "m0", 0, 4)]);
        Assert.Equal("f...", PageMapAfter(Run(s), 3));
        var r = Run(s, Mainline618.With(KernelProfile.UnregisterClearsWp, false));
        Assert.Equal("FM..", PageMapAfter(r, 3));
        Assert.Contains(KernelProfile.UnregisterClearsWp, r.Consulted[4]);
    }

    [Fact]
    public void CloseClearsWpSince69()
    {
        var s = ScenarioOf(MemoryType.Shmem, ops: [Register(R.WriteProtect), Write(0, 1), WriteProtect(0, 2), new CloseOp("u0"), Write(0, 2)]);
        Assert.Equal("f...", PageMapAfter(Run(s), 3));
        var old = Run(s, Mainline61);
        Assert.Equal("FM..", PageMapAfter(old, 3));
        // The stale bit no longer faults: the VMA is unregistered.
        Assert.Empty(ObservationOf(old, 4).Messages);
    }

    [Fact]
    public void MremapWithoutEventRemapUnregistersAndClearsWpSince613()
    {
        var s = ScenarioOf(MemoryType.Shmem, ops: [Register(R.WriteProtect), Write(0, 1), WriteProtect(0, 2), new MremapOp("m0"), Write(0, 2)]);
        var r = Run(s);
        Assert.Equal("f...", PageMapAfter(r, 3));
        Assert.Empty(ObservationOf(r, 4).Messages);
        Assert.Equal("FM..", PageMapAfter(Run(s, KernelProfile.Mainline("6.12")), 3));
        // With EVENT_REMAP: a REMAP event, registration and wp move along.
        var ev = Run(s with { Uffds = [new UffdSpec("u0", F.EventRemap)] });
        Assert.Equal(["u0 REMAP m0"], ObservationOf(ev, 3).Messages);
        Assert.Equal("FM..", PageMapAfter(ev, 3));
        Assert.Equal(["u0 PF 0x3 m0+0 => unprotect"], ObservationOf(ev, 4).Messages);
    }

    [Fact]
    public void ForkWithoutEventForkDropsWpAndSkipsSharedPtes()
    {
        // §3.5 table, row "no EVENT_FORK".
        var shmem = Run(ScenarioOf(MemoryType.Shmem, ops: [Register(R.WriteProtect), Write(0, 1), WriteProtect(0, 2), new ForkOp()]));
        Assert.Equal(["pagemap m0=...."], ObservationOf(shmem, 3).Child);
        var anon = Run(ScenarioOf(MemoryType.Anon, F.WpUnpopulated, ops: [Register(R.WriteProtect), Write(0, 1), WriteProtect(0, 2), new ForkOp()]));
        Assert.Equal(["pagemap m0=a..."], ObservationOf(anon, 3).Child);
        Assert.Empty(ObservationOf(anon, 3).Messages);
    }

    [Fact]
    public void ForkWithEventForkKeepsWpAndMarkersAndServesTheChild()
    {
        // §3.5 row "EVENT_FORK": the child's VMA is registered to a new uffd and keeps wp bits and markers;
        // its write faults arrive on the child's uffd.
        var r = Run(ScenarioOf(MemoryType.Shmem, F.EventFork, ops: [Register(R.WriteProtect), Write(0, 1), WriteProtect(0, 2), new ForkOp([new ChildAccess("m0", 1, true, 0xa1)])]));
        var fork = ObservationOf(r, 3);
        Assert.Equal(["u0 FORK", "u0c PF 0x3 m0+1 => unprotect"], fork.Messages);
        Assert.Equal("pagemap m0=FM..", fork.Child[0]);
        Assert.Equal("pagemap m0=Ff..", fork.Child[^1]);
        Assert.Equal("FM..", fork.PageMap["m0"]);
    }

    [Fact]
    public void FeatureSigbusTurnsChildFaultsIntoSigbus()
    {
        // §4.5: with SIGBUS|EVENT_FORK every fault of the child is a SIGBUS, no message.
        var r = Run(ScenarioOf(MemoryType.Anon, F.Sigbus | F.EventFork, ops: [Register(R.Missing), new ForkOp([new ChildAccess("m0", 0)])]));
        Assert.Equal(["u0 FORK"], ObservationOf(r, 1).Messages);
        Assert.Equal("r m0+0 sigbus code=2", ObservationOf(r, 1).Child[1]);
    }

    [Fact]
    public void MmapChangingMakesFillsEagainAndTheFieldIsMinusEagainSince615()
    {
        var s = ScenarioOf(MemoryType.Shmem, F.EventRemove, ops: [Register(R.Missing), new MadviseOp("m0", 0, 1, MadviseAdvice.Remove, Hold: true), new CopyOp("u0", "m0", 2, 1, 5), new WakeOp("u0", "m0", 0, 4), new DrainOp(), new CopyOp("u0", "m0", 2, 1, 6)]);
        var r = Run(s);
        Assert.Equal("held", ObservationOf(r, 1).Result);
        Assert.Equal("EAGAIN field=-11", ObservationOf(r, 2).Result);
        Assert.Equal("ok", ObservationOf(r, 3).Result);
        Assert.Equal(["u0 REMOVE m0+0..1"], ObservationOf(r, 4).Messages);
        Assert.Equal("ok field=4096", ObservationOf(r, 5).Result);
        Assert.Equal("EAGAIN field=1", ObservationOf(Run(s, Mainline61), 2).Result);
    }

    [Fact]
    public void UnregisterThroughAnotherUffdIsEinvalSince617()
    {
        var s = ScenarioOf(MemoryType.Anon, ops: [Register(R.Missing), new UnregisterOp("u1", "m0", 0, 4), new RegisterOp("u1", "m0", 0, 4, R.Missing)]) with
        {
            Uffds = [new UffdSpec("u0", F.None), new UffdSpec("u1", F.None)],
        };
        var r = Run(s);
        Assert.Equal("EINVAL", ObservationOf(r, 1).Result);
        Assert.Equal("EBUSY", ObservationOf(r, 2).Result);
        var old = Run(s, KernelProfile.Mainline("6.12"));
        Assert.Equal("ok", ObservationOf(old, 1).Result);
        Assert.Equal("ok", ObservationOf(old, 2).Result);
    }

    [Fact]
    public void RegisterIoctlMaskFollowsTheMeasuredValues()
    {
        // §1.4 "Returned ioctls": MISSING 0x13c, WP 0x17c, MINOR 0x1bc; before 6.8 0x1c/0x5c/0x9c (§0a).
        foreach (var (modes, now, then) in new[] { (R.Missing, "0x13c", "0x1c"), (R.WriteProtect, "0x17c", "0x5c"), (R.Minor, "0x1bc", "0x9c"), (R.WriteProtect | R.Minor, "0x1fc", "0xdc") })
        {
            var s = ScenarioOf(MemoryType.Shmem, ops: [new RegisterOp("u0", "m0", 0, 1, modes, ObserveIoctls: true)]);
            Assert.Equal($"ok ioctls={now}", ObservationOf(Run(s), 0).Result);
            Assert.Equal($"ok ioctls={then}", ObservationOf(Run(s, Mainline61), 0).Result);
        }
        Assert.Equal("EINVAL", ObservationOf(Run(ScenarioOf(MemoryType.Anon, ops: [Register(R.Minor)])), 0).Result);
    }

    [Fact]
    public void ApiRejectsWrongApiAndUnknownFeaturesOutsideThe914eedcbWindow()
    {
        var s = ScenarioOf(MemoryType.Anon, ops: [new ApiOp(false, [new(0xAB, 0), new(0xAA, 1UL << 63), new(0xAA, 0), new(0xAA, 1)])]) with { Uffds = [] };
        Assert.Equal("open=ok api0=EINVAL api1=EINVAL api2=ok api3=EINVAL", ObservationOf(Run(s), 0).Result);
        Assert.Equal("open=ok api0=ok api1=EINVAL api2=EINVAL api3=EINVAL", ObservationOf(Run(s, KernelProfile.Mainline("6.2")), 0).Result);
    }

    [Fact]
    public void MoveNeedsAnExclusiveAnonPage()
    {
        // §1.4 MOVE: a page shared with a fork child is EBUSY; a write after the child is gone makes it
        // exclusive again; src afterwards is none and dst a fresh page without wp.
        var s = ScenarioOf(MemoryType.Anon, F.Move, ops:
        [
            Write(0, 0xb1, "src"), new ForkOp(), Register(R.Missing),
            new MoveOp("u0", "m0", 0, "src", 0, 1), Write(0, 0xb2, "src"), new MoveOp("u0", "m0", 0, "src", 0, 1), Read(0),
        ]).AddMapping(new MappingSpec("src", MapKind.Anon, 4));
        var r = Run(s);
        Assert.Equal("EBUSY field=-16", ObservationOf(r, 3).Result);
        Assert.Equal("ok field=4096", ObservationOf(r, 5).Result);
        Assert.Equal("a...", PageMapAfter(r, 5));
        Assert.Equal("....", PageMapAfter(r, 5, "src"));
        Assert.Equal("ok value=0xb2", ObservationOf(r, 6).Result);
    }

    private static readonly KernelProfile NoZeroPage = Mainline618.WithFacts(Mainline618.Facts with { AnonReadZeroPage = false });

    [Fact]
    public void AReadFaultFollowsTheZeroPageFact()
    {
        // §0b: with the zero page a read maps it (PAGE_IS_PFNZERO, no anon_vma: a fork child has nothing);
        // without it, a private exclusive zeroed page (anon_vma prepared: the child inherits it).
        // The scan also shows none PTEs as written: scan-none-written (7.2; backported to this project's 6.18.44
        // host and Debian 6.12.117), set here so that the scan shows every page.
        ScenarioOp[] ops = [Read(2), new ScanOp("m0"), new ForkOp()];
        var on = Run(ScenarioOf(MemoryType.Anon, ops: ops), Mainline618.With(KernelProfile.ScanNoneWritten, true));
        var off = Run(ScenarioOf(MemoryType.Anon, ops: ops), NoZeroPage.With(KernelProfile.ScanNoneWritten, true));
        Assert.Equal("ok regions=1 [2,3):0x2a", ObservationOf(Run(ScenarioOf(MemoryType.Anon, ops: ops)), 1).Result);
        Assert.Equal("ok value=0x0", ObservationOf(on, 0).Result);
        Assert.Equal("ok value=0x0", ObservationOf(off, 0).Result);
        Assert.Equal("..a.", PageMapAfter(on, 0));
        Assert.Equal("..a.", PageMapAfter(off, 0));
        Assert.Equal("ok regions=3 [0,2):0x2 [2,3):0x2a [3,4):0x2", ObservationOf(on, 1).Result);
        Assert.Equal("ok regions=3 [0,2):0x2 [2,3):0xa [3,4):0x2", ObservationOf(off, 1).Result);
        Assert.Equal(["pagemap m0=...."], ObservationOf(on, 2).Child);
        Assert.Equal(["pagemap m0=..a."], ObservationOf(off, 2).Child);
    }

    [Fact]
    public void MoveOfAReadPageAfterForkFollowsTheZeroPageFact()
    {
        // §1.4 MOVE: a zero-page source moves (the zero page is mapped at dst); a private page a fork shares
        // is EBUSY (the divergence found on a pvm_no_zero_page=1 host).
        var s = ScenarioOf(MemoryType.Anon, F.Move, ops:
        [
            Read(0, "src"), new ForkOp(), Register(R.Missing), new MoveOp("u0", "m0", 0, "src", 0, 1),
        ]).AddMapping(new MappingSpec("src", MapKind.Anon, 4));
        Assert.Equal("ok field=4096", ObservationOf(Run(s), 3).Result);
        Assert.Equal("EBUSY field=-16", ObservationOf(Run(s, NoZeroPage), 3).Result);
    }

    [Fact]
    public void AReadOfAnAnonMarkerKeepsWpOnWhicheverPageItMaps()
    {
        // §3.3: a read of a WP_UNPOPULATED marker sends no message and maps read-only with wp — the zero
        // page, or (zero page off) a private page; the next write is a WP fault either way.
        ScenarioOp[] ops = [Register(R.WriteProtect), WriteProtect(0), Read(0), Write(0, 0x31)];
        foreach (var p in new[] { Mainline618, NoZeroPage })
        {
            var r = Run(ScenarioOf(MemoryType.Anon, F.PageFaultFlagWp | F.WpUnpopulated, ops: ops), p);
            Assert.Empty(ObservationOf(r, 2).Messages);
            Assert.Equal("A...", PageMapAfter(r, 2));
            Assert.Equal(["u0 PF 0x3 m0+0 => unprotect"], ObservationOf(r, 3).Messages);
            Assert.Equal("a...", PageMapAfter(r, 3));
        }
    }

    [Fact]
    public void FaultAroundFollowsTheDetectedWindow()
    {
        // §3.1: the window is fault_around_bytes / PAGE_SIZE; one page means no fault-around at all.
        var s = ScenarioOf(MemoryType.Shmem, pages: 16, ops: [new PwriteOp(0, 1), new PwriteOp(1, 2), new PwriteOp(5, 3), Read(0)]);
        Assert.Equal("ff...f..........", PageMapAfter(Run(s), 3));
        Assert.Equal("ff..............", PageMapAfter(Run(s, Mainline618.WithFacts(Mainline618.Facts with { FaultAroundPages = 4 })), 3));
        Assert.Equal("f...............", PageMapAfter(Run(s, Mainline618.WithFacts(Mainline618.Facts with { FaultAroundPages = 1 })), 3));
    }

    [Fact]
    public void PwriteCachesItsWholeExtentWhenShmemThpIsAlways()
    {
        // mm/shmem.c shmem_allowable_huge_orders: write(2) has no VMA, so no MADV_NOHUGEPAGE pin; with shmem_enabled=always
        // it caches the 2 MiB extent in one folio. Seen in a 6.12 guest (missing-wp-ordering × shmem: WP fault only).
        var s = ScenarioOf(MemoryType.Shmem, missing: MissingPolicy.CopyWp, ops: [new PwriteOp(1, 1), Register(R.Missing | R.WriteProtect), WriteProtect(0), Write(0, 0x73)]);
        KernelProfile With(string thp) => Mainline618.WithFacts(Mainline618.Facts with { ThpShmem = thp });
        var always = Run(s, With("always"));
        Assert.Contains("size 4: 0d00", always.StateBefore[2]);  // after the pwrite (observation 1 is op 0)
        Assert.Equal(["u0 PF 0x3 m0+0 => unprotect"], ObservationOf(always, 3).Messages);
        Assert.Contains(EnvironmentFacts.ThpShmemName, always.Consulted[1]);
        // force: the same for write(2) (huge on for every mount; seen in a 6.12 guest: the shmem cells pass with it).
        Assert.Equal(["u0 PF 0x3 m0+0 => unprotect"], ObservationOf(Run(s, With("force")), 3).Messages);
        // never/advise: order 0; within_size: a 4-page file never covers the extent.
        foreach (var thp in new[] { "never", "advise", "within_size" })
            Assert.Equal(["u0 PF 0x1 m0+0 => copy-wp", "u0 PF 0x3 m0+0 => unprotect"], ObservationOf(Run(s, With(thp)), 3).Messages);
        // A page of the extent cached already (a COPY: order 0) makes the write order 0 too (the xa_find conflict).
        var cachedFirst = Run(s with { Ops = [Register(R.Missing | R.WriteProtect), Copy(2, 2), new PwriteOp(1, 1), WriteProtect(0), Write(0, 0x73)] }, With("always"));
        Assert.Equal(["u0 PF 0x1 m0+0 => copy-wp", "u0 PF 0x3 m0+0 => unprotect"], ObservationOf(cachedFirst, 4).Messages);
    }

    [Fact]
    public void PoisonRefusesMarkersAndCopyOverwritesPoison()
    {
        // §3.10: POISON is EEXIST on a WP marker; COPY may overwrite a poison marker.
        var r = Run(ScenarioOf(MemoryType.Shmem, ops: [Register(R.Missing | R.WriteProtect), WriteProtect(0), new PoisonOp("u0", "m0", 0, 1), new PoisonOp("u0", "m0", 1, 1), new CopyOp("u0", "m0", 1, 1, 0xc1)]));
        Assert.Equal("EEXIST field=-17", ObservationOf(r, 2).Result);
        Assert.Equal("Mx..", PageMapAfter(r, 3));
        Assert.Equal("ok field=4096", ObservationOf(r, 4).Result);
        Assert.Equal("Mf..", PageMapAfter(r, 4));
    }

    [Fact]
    public void MultiVmaWriteProtectIsPartialOnEnoentAndWholeBefore64()
    {
        var s = ScenarioOf(MemoryType.Anon, pages: 6, ops: [Write(0, 1), Write(2, 2), Write(4, 3), Register(R.WriteProtect, 0, 2), Register(R.Missing | R.WriteProtect, 2, 2), Register(R.Missing, 4, 2), WriteProtect(0, 6)]);
        var r = Run(s);
        Assert.Equal("ENOENT", ObservationOf(r, 6).Result);
        Assert.Equal("A.A.a.", PageMapAfter(r, 6));
        var old = Run(s, Mainline61);
        Assert.Equal("ENOENT", ObservationOf(old, 6).Result);
        Assert.Equal("a.a.a.", PageMapAfter(old, 6));
    }

    [Fact]
    public void AttributionNamesOnlyTheSwitchesARuleRead()
    {
        var r = Run(ScenarioOf(MemoryType.Shmem, ops: [Register(R.WriteProtect), Write(0, 1), new CloseOp("u0")]));
        Assert.Contains(KernelProfile.CloseClearsWp, r.Consulted[3]);
        Assert.DoesNotContain(KernelProfile.CloseClearsWp, r.Consulted[2]);
    }

    [Fact]
    public void AHandlerThatCannotResolveBlocksTheScenario()
    {
        // ZEROPAGE refuses an anon marker (pte_none only): the thread re-faults until the livelock bound.
        var r = Run(ScenarioOf(MemoryType.Anon, F.WpUnpopulated, missing: MissingPolicy.ZeroPage, ops: [Register(R.Missing | R.WriteProtect), WriteProtect(0), Write(0, 1), Read(1)]));
        Assert.True(r.Blocked);
        Assert.Equal("blocked", r.Trace.Observations[^1].Result);
        Assert.Equal(KernelModel.MaxFaultsPerOp, r.Trace.Observations[^1].Messages.Count);
    }

    [Fact]
    public void AWriteFaultOnAPrivateMappingPreparesTheAnonVmaEvenWhenItBecomesAUffdFault()
    {
        // do_cow_fault / do_anonymous_page call vmf_anon_prepare before the registration is consulted; with
        // an anon_vma, fork copies the VMA's PTEs (vma_needs_copy, §3.5), so the child sees the read page.
        var s = NewScenario("scenario", MemoryType.ShmemPrivate, alias: true, userModeOnly: true)
            .Then(Register(R.Minor), Write(2, 1, "al"), Read(3), new WriteOp("m0", 2, 2, AccessMode.Kernel), new ForkOp());
        var r = Run(s);
        Assert.Equal("EFAULT", ObservationOf(r, 3).Result);
        Assert.Equal("pagemap m0=...f al=....", ObservationOf(r, 4).Child[0]);
        // Without the failed write there is no anon_vma and the private file PTE is not copied.
        var r2 = Run(s with { Ops = [Register(R.Minor), Write(2, 1, "al"), Read(3), new ForkOp()] });
        Assert.Equal("pagemap m0=.... al=....", ObservationOf(r2, 3).Child[0]);
    }

    // ---- switches added for 5.10 and for kernels after 6.18 (both sides of each) -------------------------

    [Fact]
    public void AForkChildKeepsTheWpBitOfPrivateHugetlbPagesBefore64AndItsWriteNeverCompletes()
    {
        // §3.11 fork, hugetlb-fork-drops-wp ("mm/hugetlb: fix uffd-wp during fork()", 6.4; not in Debian's 6.1.192):
        // without EVENT_FORK the child's private huge pages keep the uffd-wp bit, and a write to one retries forever.
        var wpFork = NamedScenarios.All.Single(n => n.Name == "wp-fork").Build(MemoryType.HugetlbPrivate);
        Assert.StartsWith("pagemap m0=a", ObservationOf(Run(wpFork), 3).Child[0]);
        Assert.StartsWith("pagemap m0=A", ObservationOf(Run(wpFork, Mainline618.With(KernelProfile.HugetlbForkDropsWp, false)), 3).Child[0]);

        var noEvent = NamedScenarios.All.Single(n => n.Name == "fork-no-event").Build(MemoryType.HugetlbPrivate);
        var newer = Run(noEvent);
        Assert.Equal("ok", ObservationOf(newer, 4).Result);
        Assert.Contains(ObservationOf(newer, 4).Child, c => c.StartsWith("w m0+1", StringComparison.Ordinal) && c.EndsWith(" ok value=0x0", StringComparison.Ordinal));
        var older = Run(noEvent, Mainline61);
        Assert.Equal("blocked", ObservationOf(older, 4).Result);
        Assert.Equal(6, older.Trace.Observations.Count);
        // wp-fork-pin: the first fork copies the pinned page for the child at once (hugetlb_install_folio: no wp in
        // a child VMA without WP, before and after the fix); the second, unpinned, shares it, and before 6.4 the child
        // keeps its wp bit, so the child's pin (a GUP write: hugetlb_wp does not CoW a uffd-wp page) never completes.
        var pin = NamedScenarios.All.Single(n => n.Name == "wp-fork-pin").Build(MemoryType.HugetlbPrivate);
        var pinNew = Run(pin);
        Assert.Equal(["pagemap m0=a..."], ObservationOf(pinNew, 4).Child);
        Assert.Equal(["pagemap m0=a...", "pin m0+0 ok", "pagemap m0=a..."], ObservationOf(pinNew, 6).Child);
        Assert.Equal(["u0 PF 0x3 m0+0 => unprotect"], ObservationOf(pinNew, 8).Messages);
        Assert.All(pinNew.Trace.Observations.Skip(1), o => Assert.StartsWith("ok", o.Result, StringComparison.Ordinal));
        var pinOld = Run(pin, Mainline61);
        Assert.Equal(["pagemap m0=a..."], ObservationOf(pinOld, 4).Child);
        Assert.Equal("blocked", ObservationOf(pinOld, 6).Result);
        Assert.Equal(8, pinOld.Trace.Observations.Count);
        Assert.Equal("blocked", ObservationOf(Run(pin, Mainline618.With(KernelProfile.HugetlbForkDropsWp, false)), 6).Result);

        // Shared hugetlb and shmem-private are not affected: the switch is read only for private huge pages.
        var shared = NamedScenarios.All.Single(n => n.Name == "fork-no-event").Build(MemoryType.Hugetlb);
        Assert.Equal(Run(shared).Trace.Observations.Select(o => o.Result), Run(shared, Mainline618.With(KernelProfile.HugetlbForkDropsWp, false)).Trace.Observations.Select(o => o.Result));
    }

    [Fact]
    public void ReRegistrationMergesAVmaWithAnAnonVmaIntoItsNeighbourOnlyFrom616()
    {
        // mm/vma.c is_mergeable_anon_vma ("mm/vma: fix incorrectly disallowed anonymous VMA merges", 6.16). The read
        // of page 3 gives [2,4) an anon_vma (a private file page is CoW'ed); re-registering [0,4) modifies [0,2) first,
        // then [2,4) with [0,2) as the candidate: merged from 6.16, two VMAs before. A COPY must lie in one VMA
        // (mfill_atomic: ENOENT otherwise). Found on Debian 6.12.118 in a guest; the 6.18 host merges.
        var s = ScenarioOf(MemoryType.ShmemPrivate, ops: [Register(R.Missing, 2, 2), Read(3), Register(R.Missing | R.Minor, 0, 4), Copy(0, 0x41, 4)]);
        Assert.StartsWith("EAGAIN", ObservationOf(Run(s), 3).Result);
        Assert.StartsWith("ENOENT", ObservationOf(Run(s, KernelProfile.Mainline("6.12")), 3).Result);
        Assert.StartsWith("ENOENT", ObservationOf(Run(s, Mainline618.With(KernelProfile.VmaMergeAnonVma, false)), 3).Result);
    }

    [Fact]
    public void PagemapShowsNoAnonWpBitBefore513()
    {
        // "mm/pagemap: export uffd-wp protection information" (5.13): before it bit 57 is never set; the model keeps
        // the wp state (the write still faults) but shows what pagemap can.
        var s = ScenarioOf(MemoryType.Anon, F.PageFaultFlagWp, ops: [Register(R.WriteProtect), Write(0, 1), WriteProtect(0)]);
        Assert.Equal("A...", PageMapAfter(Run(s), 2));
        var old = Mainline618.With(KernelProfile.PagemapWpAnon, false);
        Assert.Equal("a...", PageMapAfter(Run(s), 1));
        Assert.Equal("a...", PageMapAfter(Run(s, old), 2));
        var write = ObservationOf(Run(s.Then(Write(0, 2)), old), 3);
        Assert.Equal(["u0 PF 0x3 m0+0 => unprotect"], write.Messages);
    }

    [Fact]
    public void ContinueIsAnUnknownIoctlBefore513()
    {
        // Before UFFDIO_CONTINUE (5.13) the command is unknown: EINVAL before 'mapped' is written. After, CONTINUE on
        // a range without MINOR registration is EINVAL with the errno in the field.
        var s = ScenarioOf(MemoryType.Anon, ops: [Register(R.Missing), Continue(0)]);
        Assert.Equal("EINVAL field=-22", ObservationOf(Run(s), 1).Result);
        Assert.Equal("EINVAL field=1", ObservationOf(Run(s, KernelProfile.Mainline("5.10")), 1).Result);
    }

    [Fact]
    public void ReRegistrationThatDropsWpIsEbusyFrom73()
    {
        // RWP series patch 09 (7.3): re-registering a WP VMA of the same uffd without WP is EBUSY; before, the modes
        // were replaced and the wp bit stayed behind on a VMA without VM_UFFD_WP.
        var s = ScenarioOf(MemoryType.Anon, F.PageFaultFlagWp, ops: [Register(R.WriteProtect), Write(0, 1), WriteProtect(0), Register(R.Missing)]);
        Assert.Equal("ok", ObservationOf(Run(s), 3).Result);
        Assert.Equal("A...", PageMapAfter(Run(s), 3));
        Assert.Equal("EBUSY", ObservationOf(Run(s, KernelProfile.Mainline("7.3")), 3).Result);
        // Adding a mode to WP is still allowed.
        var add = ScenarioOf(MemoryType.Anon, F.PageFaultFlagWp, ops: [Register(R.WriteProtect), Register(R.WriteProtect | R.Missing)]);
        Assert.Equal("ok", ObservationOf(Run(add, KernelProfile.Mainline("7.3")), 1).Result);
    }

    [Fact]
    public void ShmemFillsBeyondEofChangeErrnoIn71()
    {
        // vm_uffd_ops rework (7.1): COPY into MAP_SHARED shmem beyond i_size EFAULT -> ENOMEM; CONTINUE EINVAL -> EFAULT.
        var copy = ScenarioOf(MemoryType.Shmem, ops: [new TruncateOp(2), Register(R.Missing), Copy(3, 1)]);
        Assert.StartsWith("EFAULT", ObservationOf(Run(copy), 2).Result);
        Assert.StartsWith("ENOMEM", ObservationOf(Run(copy, KernelProfile.Mainline("7.1")), 2).Result);
        var cont = ScenarioOf(MemoryType.Shmem, ops: [new TruncateOp(2), Register(R.Minor), Continue(3)]);
        Assert.StartsWith("EINVAL", ObservationOf(Run(cont), 2).Result);
        Assert.StartsWith("EFAULT", ObservationOf(Run(cont, KernelProfile.Mainline("7.1")), 2).Result);
    }

    [Fact]
    public void PagemapScanReportsWrittenOnlyInWpVmasFrom73()
    {
        // "mm/pagemap: add PAGE_IS_ACCESSED for RWP tracking" (7.3): PAGE_IS_WRITTEN only on VM_UFFD_WP VMAs.
        var s = ScenarioOf(MemoryType.Anon, F.PageFaultFlagWp, ops: [Write(0, 1), new ScanOp("m0")]);
        Assert.StartsWith("ok regions=1 [0,1):0xa", ObservationOf(Run(s), 1).Result);
        Assert.Equal("ok regions=0", ObservationOf(Run(s, KernelProfile.Mainline("7.3")), 1).Result);
    }
}
