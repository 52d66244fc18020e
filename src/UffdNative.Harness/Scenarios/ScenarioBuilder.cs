using F = UffdNative.UffdFeatures;
using R = UffdNative.RegisterMode;

namespace UffdNative.Harness.Scenarios;

/// <summary>Builds scenarios and their ops with the defaults most scenarios share: the primary mapping
/// "m0", the uffd "u0", ranges from page 0. Meant for <c>using static</c>, so a scenario reads as its ops:
/// <c>NewScenario("marker-read", m, features).Then(Register(R.WriteProtect), WriteProtect(0, 4), Read(0))</c>.</summary>
public static class ScenarioBuilder
{
    /// <summary>m0 of the memory type (pages), the memfd (when file-backed) of the same size, one uffd u0,
    /// and optionally an unregistered MAP_SHARED alias "al" of the same file.</summary>
    public static Scenario NewScenario(string name, MemoryType memory, F features = F.None, int pages = 4, bool alias = false, bool userModeOnly = false)
    {
        bool fileBacked = MemoryTypes.IsFileBacked(memory);
        var maps = new List<MappingSpec> { new("m0", MemoryTypes.PrimaryKind(memory), pages) };
        if (alias && fileBacked)
            maps.Add(new MappingSpec("al", MapKind.Shared, pages));
        return new Scenario
        {
            Name = name,
            Memory = memory,
            FilePages = fileBacked ? pages : 0,
            Mappings = maps,
            Uffds = [new UffdSpec("u0", features, userModeOnly)],
        };
    }

    /// <summary>The scenario with these ops appended.</summary>
    public static Scenario Then(this Scenario s, params ScenarioOp[] ops) => s with { Ops = [.. s.Ops, .. ops] };
    public static Scenario WithPolicy(this Scenario s, MissingPolicy missing, bool continueWp = false) => s with { Policy = s.Policy with { Missing = missing, ContinueWp = continueWp } };
    public static Scenario AddMapping(this Scenario s, MappingSpec mapping) => s with { Mappings = [.. s.Mappings, mapping] };
    public static Scenario AddUffd(this Scenario s, UffdSpec uffd) => s with { Uffds = [.. s.Uffds, uffd] };

    public static RegisterOp Register(R modes, int first = 0, int count = 4, string mapping = "m0", string uffd = "u0", bool observeIoctls = false) => new(uffd, mapping, first, count, modes, observeIoctls);
    public static UnregisterOp Unregister(int first = 0, int count = 4, string mapping = "m0", string uffd = "u0") => new(uffd, mapping, first, count);
    public static ReadOp Read(int page, string mapping = "m0") => new(mapping, page);
    public static WriteOp Write(int page, ulong tag, string mapping = "m0") => new(mapping, page, tag);
    /// <summary>A kernel-mode store: read(2) from a pipe into the page.</summary>
    public static WriteOp KernelWrite(int page, ulong tag, string mapping = "m0") => new(mapping, page, tag, AccessMode.Kernel);
    public static WriteProtectOp WriteProtect(int first, int count = 1, string mapping = "m0", string uffd = "u0") => new(uffd, mapping, first, count, true);
    public static WriteProtectOp Unprotect(int first, int count = 1, string mapping = "m0", string uffd = "u0") => new(uffd, mapping, first, count, false);
    public static CopyOp Copy(int first, ulong tag, int count = 1, bool wp = false, string mapping = "m0", string uffd = "u0", bool dontWake = false) => new(uffd, mapping, first, count, tag, wp, dontWake);
    public static ZeroPageOp ZeroPage(int first, int count = 1, string mapping = "m0", string uffd = "u0") => new(uffd, mapping, first, count);
    public static ContinueOp Continue(int first, int count = 1, bool wp = false, string mapping = "m0", string uffd = "u0") => new(uffd, mapping, first, count, wp);
    public static PoisonOp Poison(int first, int count = 1, string mapping = "m0", string uffd = "u0") => new(uffd, mapping, first, count);
    public static MadviseOp DontNeed(int first, int count = 1, string mapping = "m0", bool hold = false) => new(mapping, first, count, MadviseAdvice.DontNeed, hold);
    public static MadviseOp Remove(int first, int count = 1, string mapping = "m0", bool hold = false) => new(mapping, first, count, MadviseAdvice.Remove, hold);
    /// <summary>"Release the pages" the way the selftests do (uffd-common.c shmem/hugetlb_release_pages): MADV_DONTNEED
    /// for private memory, MADV_REMOVE for shared.</summary>
    public static MadviseOp Release(MemoryType memory, int first, int count, string mapping = "m0") => memory is MemoryType.Shmem or MemoryType.Hugetlb ? Remove(first, count, mapping) : DontNeed(first, count, mapping);
    /// <summary>A read whose fault is held, not resolved (<see cref="HoldOp"/>).</summary>
    public static HoldOp HoldRead(int page, string mapping = "m0") => new(mapping, page);
    public static HoldOp HoldWrite(int page, ulong tag, string mapping = "m0") => new(mapping, page, true, tag);
    /// <summary>A kernel-mode store (read(2) from a pipe into the page) whose fault is held.</summary>
    public static HoldOp HoldKernelWrite(int page, ulong tag, string mapping = "m0") => new(mapping, page, true, tag, AccessMode.Kernel);
    public static SignalOp SignalHeld() => new();
    public static WakeOp Wake(int first, int count = 1, string mapping = "m0", string uffd = "u0") => new(uffd, mapping, first, count);
    public static ForkOp Fork(params ChildAccess[] child) => new(child);
    public static ChildAccess ChildRead(int page, string mapping = "m0") => new(mapping, page);
    public static ChildAccess ChildWrite(int page, ulong tag, string mapping = "m0") => new(mapping, page, true, tag);
    public static ChildAccess ChildPin(int page, string mapping = "m0") => new(mapping, page) { Pin = true };
    public static ChildAccess ChildMremap(string mapping = "m0") => new(mapping, 0) { Mremap = true };
    /// <summary>Upstream's sigbus loop over [first, first+count) in the child, on its own uffd (MISSING, |WP with <paramref name="wp"/>).</summary>
    public static ChildAccess ChildSigbusLoop(int first, int count, bool wp, string mapping = "m0") => new(mapping, first, wp) { SigbusLoop = true, Count = count };
    /// <summary>The child releases pages the way the selftests do (<see cref="Release"/>: MADV_REMOVE on shared file memory, else MADV_DONTNEED).</summary>
    public static ChildAccess ChildRelease(MemoryType memory, int first, int count, string mapping = "m0") =>
        new(mapping, first) { Madvise = Release(memory, first, count, mapping).Advice, Count = count };
    public static PinOp Pin(int first, int count = 1, string mapping = "m0") => new(mapping, first, count);
    public static UnpinOp Unpin(int first, int count = 1, string mapping = "m0") => new(mapping, first, count);
}
