using F = UffdNative.UffdFeatures;
using R = UffdNative.RegisterMode;

namespace UffdNative.Harness.Scenarios;

/// <summary>Terse builders for the named scenarios.</summary>
internal static class S
{
    public static readonly MemoryType[] All = [MemoryType.Anon, MemoryType.Shmem, MemoryType.ShmemPrivate, MemoryType.Hugetlb, MemoryType.HugetlbPrivate];
    public static readonly MemoryType[] Files = [MemoryType.Shmem, MemoryType.ShmemPrivate];
    public static readonly MemoryType[] Shmem = [MemoryType.Shmem];
    public static readonly MemoryType[] Anon = [MemoryType.Anon];
    public static readonly MemoryType[] Modelled = [MemoryType.Anon, MemoryType.Shmem, MemoryType.ShmemPrivate];

    public static bool IsFile(MemoryType m) => m != MemoryType.Anon;

    /// <summary>m0 of the memory type (pages), the memfd (when file-backed) of the same size, one uffd u0,
    /// and optionally an unregistered MAP_SHARED alias "al" of the same file.</summary>
    public static Scenario New(string name, MemoryType mem, F features = F.None, int pages = 4, bool alias = false, bool umo = false)
    {
        var maps = new List<MappingSpec> { new("m0", MemoryTypes.PrimaryKind(mem), pages) };
        if (alias && IsFile(mem))
            maps.Add(new MappingSpec("al", MapKind.Shared, pages));
        return new Scenario
        {
            Name = name,
            Memory = mem,
            FilePages = IsFile(mem) ? pages : 0,
            Mappings = maps,
            Uffds = [new UffdSpec("u0", features, umo)],
        };
    }

    public static Scenario With(this Scenario s, params ScenarioOp[] ops) => s with { Ops = [.. s.Ops, .. ops] };
    public static Scenario Policy(this Scenario s, MissingPolicy missing, bool continueWp = false) => s with { Policy = s.Policy with { Missing = missing, ContinueWp = continueWp } };
    public static Scenario Map(this Scenario s, MappingSpec m) => s with { Mappings = [.. s.Mappings, m] };
    public static Scenario Uffd(this Scenario s, UffdSpec u) => s with { Uffds = [.. s.Uffds, u] };

    public static RegisterOp Reg(R modes, int first = 0, int count = 4, string m = "m0", string u = "u0", bool ioctls = false) => new(u, m, first, count, modes, ioctls);
    public static UnregisterOp Unreg(int first = 0, int count = 4, string m = "m0", string u = "u0") => new(u, m, first, count);
    public static ReadOp Rd(int p, string m = "m0") => new(m, p);
    public static WriteOp Wr(int p, ulong tag, string m = "m0") => new(m, p, tag);
    public static WriteOp KWr(int p, ulong tag, string m = "m0") => new(m, p, tag, AccessMode.Kernel);
    public static WriteProtectOp Wp(int first, int count = 1, string m = "m0", string u = "u0") => new(u, m, first, count, true);
    public static WriteProtectOp Unwp(int first, int count = 1, string m = "m0", string u = "u0") => new(u, m, first, count, false);
    public static CopyOp Copy(int first, ulong tag, int count = 1, bool wp = false, string m = "m0", string u = "u0") => new(u, m, first, count, tag, wp);
    public static ZeroPageOp Zero(int first, int count = 1, string m = "m0", string u = "u0") => new(u, m, first, count);
    public static ContinueOp Cont(int first, int count = 1, bool wp = false, string m = "m0", string u = "u0") => new(u, m, first, count, wp);
    public static PoisonOp Poison(int first, int count = 1, string m = "m0", string u = "u0") => new(u, m, first, count);
    public static MadviseOp DontNeed(int first, int count = 1, string m = "m0", bool hold = false) => new(m, first, count, MadviseAdvice.DontNeed, hold);
    public static MadviseOp Remove(int first, int count = 1, string m = "m0", bool hold = false) => new(m, first, count, MadviseAdvice.Remove, hold);
    /// <summary>"Release the pages" the way the selftests do: MADV_DONTNEED for private memory, MADV_REMOVE for shared.</summary>
    public static MadviseOp Release(MemoryType mem, int first, int count, string m = "m0") => mem == MemoryType.Shmem ? Remove(first, count, m) : DontNeed(first, count, m);
    public static ForkOp Fork(params ChildAccess[] child) => new(child);
    public static ChildAccess CR(int p, string m = "m0") => new(m, p);
    public static ChildAccess CW(int p, ulong tag, string m = "m0") => new(m, p, true, tag);
}
