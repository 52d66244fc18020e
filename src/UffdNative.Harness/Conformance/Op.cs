using System.Text.Json.Serialization;

namespace UffdNative.Harness.Conformance;

/// <summary>
/// One step of a conformance scenario. The model and the real kernel both execute it; each produces an
/// <see cref="OpObservation"/>. Pages are indices into a mapping of the scenario (never addresses), so a
/// scenario means the same thing in the model, the executor, the JSON and the C reproducer.
/// "U" names a uffd of the scenario, "M" a mapping, "First"/"Count" a page range in it.
/// </summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "op")]
[JsonDerivedType(typeof(ReadOp), "read")]
[JsonDerivedType(typeof(WriteOp), "write")]
[JsonDerivedType(typeof(RegisterOp), "register")]
[JsonDerivedType(typeof(UnregisterOp), "unregister")]
[JsonDerivedType(typeof(WriteProtectOp), "writeprotect")]
[JsonDerivedType(typeof(CopyOp), "copy")]
[JsonDerivedType(typeof(ZeroPageOp), "zeropage")]
[JsonDerivedType(typeof(ContinueOp), "continue")]
[JsonDerivedType(typeof(PoisonOp), "poison")]
[JsonDerivedType(typeof(MoveOp), "move")]
[JsonDerivedType(typeof(WakeOp), "wake")]
[JsonDerivedType(typeof(MadviseOp), "madvise")]
[JsonDerivedType(typeof(DrainOp), "drain")]
[JsonDerivedType(typeof(PunchHoleOp), "punch")]
[JsonDerivedType(typeof(TruncateOp), "truncate")]
[JsonDerivedType(typeof(PwriteOp), "pwrite")]
[JsonDerivedType(typeof(PreadOp), "pread")]
[JsonDerivedType(typeof(MprotectOp), "mprotect")]
[JsonDerivedType(typeof(MremapOp), "mremap")]
[JsonDerivedType(typeof(ForkOp), "fork")]
[JsonDerivedType(typeof(CloseOp), "close")]
[JsonDerivedType(typeof(ApiOp), "api")]
[JsonDerivedType(typeof(ScanOp), "scan")]
public abstract record ScenarioOp
{
    /// <summary>A short, stable text form: "write m0+1 0x2a", "copy u0 m0+0..2 wp". Used in reports.</summary>
    public abstract string Describe();

    public override string ToString() => Describe();

    protected static string Range(string m, int first, int count) => count == 1 ? $"{m}+{first}" : $"{m}+{first}..{first + count}";
}

/// <summary>How an access reaches the page: a user-mode load/store by a native thread, or a
/// kernel-mode store (read(2) from a pipe into the page, reference §1.5 "USER_MODE_ONLY").</summary>
public enum AccessMode { User, Kernel }

/// <summary>A load of the page's first word by a native worker thread (never managed code).</summary>
public sealed record ReadOp(string M, int Page) : ScenarioOp
{
    public override string Describe() => $"read {M}+{Page}";
}

/// <summary>A store of <see cref="Tag"/> to the page's first word (user mode by a native worker, or
/// kernel mode through read(2)). Through an unregistered alias mapping this is the "alias write".</summary>
public sealed record WriteOp(string M, int Page, ulong Tag, AccessMode Mode = AccessMode.User) : ScenarioOp
{
    public override string Describe() => $"write{(Mode == AccessMode.Kernel ? "(kernel)" : "")} {M}+{Page} 0x{Tag:x}";
}

public sealed record RegisterOp(string U, string M, int First, int Count, RegisterMode Modes, bool ObserveIoctls = false) : ScenarioOp
{
    public override string Describe() => $"register {U} {Range(M, First, Count)} {ModeText(Modes)}{(ObserveIoctls ? " (ioctls)" : "")}";

    public static string ModeText(RegisterMode m) =>
        m == RegisterMode.None ? "none" : string.Join("|", new[] { (RegisterMode.Missing, "MISSING"), (RegisterMode.WriteProtect, "WP"), (RegisterMode.Minor, "MINOR") }.Where(x => (m & x.Item1) != 0).Select(x => x.Item2));
}

public sealed record UnregisterOp(string U, string M, int First, int Count) : ScenarioOp
{
    public override string Describe() => $"unregister {U} {Range(M, First, Count)}";
}

public sealed record WriteProtectOp(string U, string M, int First, int Count, bool Protect, bool DontWake = false) : ScenarioOp
{
    public override string Describe() => $"{(Protect ? "wp" : "unwp")} {U} {Range(M, First, Count)}{(DontWake ? " dontwake" : "")}";
}

public sealed record CopyOp(string U, string M, int First, int Count, ulong Tag, bool Wp = false) : ScenarioOp
{
    public override string Describe() => $"copy {U} {Range(M, First, Count)} 0x{Tag:x}{(Wp ? " MODE_WP" : "")}";
}

public sealed record ZeroPageOp(string U, string M, int First, int Count) : ScenarioOp
{
    public override string Describe() => $"zeropage {U} {Range(M, First, Count)}";
}

public sealed record ContinueOp(string U, string M, int First, int Count, bool Wp = false) : ScenarioOp
{
    public override string Describe() => $"continue {U} {Range(M, First, Count)}{(Wp ? " MODE_WP" : "")}";
}

public sealed record PoisonOp(string U, string M, int First, int Count) : ScenarioOp
{
    public override string Describe() => $"poison {U} {Range(M, First, Count)}";
}

public sealed record MoveOp(string U, string M, int First, string Src, int SrcFirst, int Count, bool AllowSrcHoles = false) : ScenarioOp
{
    public override string Describe() => $"move {U} {Range(M, First, Count)} <- {Range(Src, SrcFirst, Count)}{(AllowSrcHoles ? " ALLOW_SRC_HOLES" : "")}";
}

public sealed record WakeOp(string U, string M, int First, int Count) : ScenarioOp
{
    public override string Describe() => $"wake {U} {Range(M, First, Count)}";
}

public enum MadviseAdvice { DontNeed, Remove }

/// <summary>madvise over a page range. With <see cref="Hold"/> the REMOVE event it raises is left unread
/// (the caller stays blocked in D state, and every fill/WP ioctl of that uffd sees mmap_changing, §1.6)
/// until a <see cref="DrainOp"/>.</summary>
public sealed record MadviseOp(string M, int First, int Count, MadviseAdvice Advice, bool Hold = false) : ScenarioOp
{
    public override string Describe() => $"madvise {Range(M, First, Count)} {(Advice == MadviseAdvice.DontNeed ? "DONTNEED" : "REMOVE")}{(Hold ? " (event held)" : "")}";
}

/// <summary>Reads every pending event and lets held callers finish.</summary>
public sealed record DrainOp : ScenarioOp
{
    public override string Describe() => "drain";
}

/// <summary>fallocate(PUNCH_HOLE|KEEP_SIZE) on the memfd, in file pages.</summary>
public sealed record PunchHoleOp(int First, int Count) : ScenarioOp
{
    public override string Describe() => $"punch f+{First}..{First + Count}";
}

/// <summary>ftruncate of the memfd to <see cref="Pages"/> pages (shrink or regrow).</summary>
public sealed record TruncateOp(int Pages) : ScenarioOp
{
    public override string Describe() => $"truncate {Pages}p";
}

/// <summary>pwrite(2) of the tag into the memfd at file page <see cref="Page"/>.</summary>
public sealed record PwriteOp(int Page, ulong Tag) : ScenarioOp
{
    public override string Describe() => $"pwrite f+{Page} 0x{Tag:x}";
}

public sealed record PreadOp(int Page) : ScenarioOp
{
    public override string Describe() => $"pread f+{Page}";
}

/// <summary>mprotect(PROT_READ) then mprotect(PROT_READ|PROT_WRITE) over the range.</summary>
public sealed record MprotectOp(string M, int First, int Count) : ScenarioOp
{
    public override string Describe() => $"mprotect-roundtrip {Range(M, First, Count)}";
}

/// <summary>mremap(MAYMOVE|FIXED) of the whole mapping to a free place; the mapping keeps its name.</summary>
public sealed record MremapOp(string M) : ScenarioOp
{
    public override string Describe() => $"mremap {M}";
}

/// <summary>What a forked child does: a load or a store (native code only; SIGBUS is caught and counted).</summary>
public sealed record ChildAccess(string M, int Page, bool Write = false, ulong Tag = 0)
{
    public override string ToString() => Write ? $"w {M}+{Page} 0x{Tag:x}" : $"r {M}+{Page}";
}

/// <summary>fork(); the child reports its own pagemap, runs the accesses, reports its pagemap again and
/// exits. With EVENT_FORK the parent blocks until the FORK event is read and the child's faults arrive
/// on the new uffd, which the executor serves with the scenario's policy.</summary>
public sealed record ForkOp(IReadOnlyList<ChildAccess> Child) : ScenarioOp
{
    public ForkOp() : this(Array.Empty<ChildAccess>()) { }

    public override string Describe() => Child.Count == 0 ? "fork" : $"fork [{string.Join(", ", Child)}]";

    public bool Equals(ForkOp? other) => other is not null && Child.SequenceEqual(other.Child);
    public override int GetHashCode() => Child.Count;
}

public sealed record CloseOp(string U) : ScenarioOp
{
    public override string Describe() => $"close {U}";
}

/// <summary>One UFFDIO_API call.</summary>
public sealed record ApiStep(ulong Api, ulong Features)
{
    public override string ToString() => $"api=0x{Api:x} features=0x{Features:x}";
}

/// <summary>Opens a fresh uffd (syscall or /dev/userfaultfd) and runs the UFFDIO_API steps on it.</summary>
public sealed record ApiOp(bool Device, IReadOnlyList<ApiStep> Steps) : ScenarioOp
{
    public override string Describe() => $"api-{(Device ? "device" : "syscall")} [{string.Join("; ", Steps)}]";

    public bool Equals(ApiOp? other) => other is not null && Device == other.Device && Steps.SequenceEqual(other.Steps);
    public override int GetHashCode() => Steps.Count;
}

/// <summary>PAGEMAP_SCAN over the mapping for written pages (category_mask = PAGE_IS_WRITTEN), optionally
/// write-protecting them atomically (WP_MATCHING|CHECK_WPASYNC).</summary>
public sealed record ScanOp(string M, bool WpMatching = false) : ScenarioOp
{
    public override string Describe() => $"pagemap-scan {M}{(WpMatching ? " WP_MATCHING|CHECK_WPASYNC" : "")}";
}
