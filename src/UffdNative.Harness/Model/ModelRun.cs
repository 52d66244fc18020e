using System.Globalization;
using System.Text;
using UffdNative.Harness.Scenarios;

namespace UffdNative.Harness.Model;

/// <summary>An ioctl's answer: 0 or an errno, and the result field (copy/zeropage/mapped/updated/move)
/// where the ioctl has one. <see cref="FieldUntouched"/> is the value the executor pre-sets (the
/// selftests' "field pre-set to 1"), so "the kernel did not write the field" is observable.</summary>
internal readonly record struct IoResult(int Errno, long? Field = null, bool FieldUnspecified = false, int AltErrno = 0)
{
    public const long FieldUntouched = 1;
    public bool Ok => Errno == 0;

    public static IoResult Success(long? field = null) => new(0, field);
    public static IoResult Fail(int errno, long? field = null) => new(errno, field);

    public string Text
    {
        get
        {
            var head = Errno == 0 ? "ok" : UffdNative.Errno.Name(Errno);
            if (AltErrno != 0)
                head += "|" + UffdNative.Errno.Name(AltErrno);
            if (FieldUnspecified)
                return $"{head} field=?";
            return Field is { } f ? $"{head} field={f.ToString(CultureInfo.InvariantCulture)}" : head;
        }
    }
}

internal enum OutcomeKind { Ok, Sigbus, Efault, Blocked, Held }

internal readonly record struct Outcome(OutcomeKind Kind, ulong Value = 0)
{
    public static readonly Outcome Blocked = new(OutcomeKind.Blocked);
    /// <summary>The fault became a message the handler holds (HoldOp): the thread sleeps in it.</summary>
    public static readonly Outcome Held = new(OutcomeKind.Held);
}

/// <summary>A madvise whose REMOVE event is left unread (MadviseOp.Hold): the pieces still to do.</summary>
internal sealed class HeldMadvise
{
    public required MapState Map { get; init; }
    public required MadviseAdvice Advice { get; init; }
    public required Queue<(int Start, int End)> Pieces { get; init; }
    public required Ctx EventCtx { get; init; }
    public required (int Start, int End) PendingPiece { get; init; }
}

/// <summary>One execution of a scenario by the model. The rules live in the partial files
/// Rules.*.cs; this file holds state, dispatch and observation.</summary>
internal sealed partial class ModelRun
{
    public const int MaxFaultsPerOp = KernelModel.MaxFaultsPerOp;
    private int faultsThisOp;
    private readonly KernelProfile profile;
    private readonly ModelOptions opt;
    private readonly Scenario sc;
    private readonly Mm parent = new("parent");
    private readonly FileState file;
    private readonly Dictionary<string, Ctx> ctxs = [];
    private readonly List<HeldMadvise> held = [];
    private HashSet<string> consulted = [];
    private List<string> msgs = [];
    private int nextAnonVma = 1;
    private int nextSlot;
    private readonly Dictionary<MapState, int> slot = [];
    private bool blocked;
    private string? outOfScope;

    public ModelRun(KernelProfile profile, ModelOptions opt, Scenario sc)
    {
        this.profile = profile;
        this.opt = opt;
        this.sc = sc;
        int capacity = Math.Max(sc.FilePages, 1);
        foreach (var m in sc.Mappings.Where(m => m.Kind != MapKind.Anon))
            capacity = Math.Max(capacity, m.FileOffset + m.Pages);
        foreach (var op in sc.Ops)
            capacity = Math.Max(capacity, op switch
            {
                TruncateOp t => t.Pages,
                PwriteOp w => w.Page + 1,
                PreadOp r => r.Page + 1,
                PunchHoleOp p => p.First + p.Count,
                _ => 0,
            });
        file = new FileState(capacity, sc.FilePages);
    }

    /// <summary>Reads a profile switch and records that this observation depended on it.</summary>
    private bool Sw(string name)
    {
        consulted.Add(name);
        return profile[name];
    }

    /// <summary>The profile's environment facts; <see cref="ConsultFact"/> records that an observation depended on one.</summary>
    private EnvironmentFacts Facts => profile.Facts;

    private void ConsultFact(string name) => consulted.Add(name);

    private bool Bug(ModelBug b) => (opt.Bugs & b) != 0;

    private MapState M(string name) => parent.Map(name);

    /// <summary>Bytes of one scenario page, what the ioctls' result fields count: 4 KiB, or a 2 MiB huge page in a
    /// hugetlb scenario (§3.11).</summary>
    private long PageBytes => (long)MemoryTypes.PageBytes(sc.Memory);

    private Ctx C(string name) => ctxs.TryGetValue(name, out var c) ? c : throw new ArgumentException($"no uffd '{name}'");

    public ModelResult Run()
    {
        var observations = new List<OpObservation>();
        var consultedList = new List<IReadOnlySet<string>>();
        var before = new List<string>();

        for (int i = 0; i < sc.Mappings.Count; i++)
        {
            var spec = sc.Mappings[i];
            var map = new MapState
            {
                Name = spec.Name,
                Index = i,
                Kind = spec.Kind,
                FileOffset = spec.FileOffset,
                Pages = spec.Pages,
                Hugetlb = spec.Kind != MapKind.Anon && MemoryTypes.IsHugetlb(sc.Memory),
                Ptes = new Pte[spec.Pages],
                Vmas = [new Vma { Start = 0, End = spec.Pages }],
            };
            parent.Maps.Add(map);
            slot[map] = nextSlot++;
        }

        // Setup: UFFDIO_API on every uffd (§1.2).
        before.Add(Dump());
        var setup = new List<string>();
        foreach (var u in sc.Uffds)
        {
            var features = u.Features;
            // §1.2 rule 3: WP_ASYNC implies WP_UNPOPULATED (6.7+).
            if ((features & UffdFeatures.WpAsync) != 0)
                features |= UffdFeatures.WpUnpopulated;
            var ctx = new Ctx(u.Name, features, u.UserModeOnly, parent);
            int e = ApiCall(0xAA, (ulong)u.Features, initialized: false);
            ctx.Initialized = e == 0;
            ctxs[u.Name] = ctx;
            setup.Add($"{u.Name}={(e == 0 ? "ok" : UffdNative.Errno.Name(e))}");
        }
        observations.Add(new OpObservation { Index = -1, Op = "setup", Result = setup.Count == 0 ? "ok" : string.Join(" ", setup), PageMap = PageMaps() });
        consultedList.Add(consulted);

        for (int i = 0; i < sc.Ops.Count; i++)
        {
            var op = sc.Ops[i];
            before.Add(Dump());
            consulted = [];
            msgs = [];
            faultsThisOp = 0;
            var child = new List<string>();
            string result;
            try
            {
                // After a hold, each op reports what the held access does (Rules.Hold.cs).
                var wakes = heldAccess is { } h && op is not HoldOp ? HeldWake(op, h) : null;
                bool reportHeld = heldAccess is not null && op is not HoldOp;
                result = Exec(op, child);
                if (reportHeld && heldAccess is not null)
                    result += $" [held: {SettleHeld(op, wakes?.Invoke(result) ?? false)}]";
            }
            catch (OutOfScopeException e)
            {
                outOfScope = $"op {i} ({op.Describe()}): {e.Message}";
                before.RemoveAt(before.Count - 1);
                break;
            }
            if (blocked)
            {
                // A fork child that stays blocked is killed: what it reported is not kept (the executor cannot
                // collect it either).
                observations.Add(new OpObservation { Index = i, Op = op.Describe(), Result = "blocked", Messages = msgs });
                consultedList.Add(consulted);
                break;
            }
            TrackPageTables(op);
            observations.Add(new OpObservation { Index = i, Op = op.Describe(), Result = result, Messages = msgs, Child = child, PageMap = PageMaps() });
            consultedList.Add(consulted);
        }
        return new ModelResult
        {
            Trace = new ScenarioTrace { Observations = observations },
            Consulted = consultedList,
            StateBefore = before,
            OutOfScope = outOfScope,
            Blocked = blocked,
        };
    }

    private Dictionary<string, string> PageMaps() => parent.Maps.ToDictionary(m => m.Name, PageMapOf);

    /// <summary>The pagemap string of a mapping. In a MADV_HUGEPAGE mapping the kernel is free to back an
    /// untouched page with a THP on a neighbour's fault, and a read with the huge zero page (whose pagemap
    /// entry carries the file bit), so none and zero-page PTEs there are unspecified (§3.8). Before 5.13
    /// pagemap has no uffd-wp bit (pagemap-wp-anon): the model keeps tracking wp, but shows what pagemap can.</summary>
    internal string PageMapOf(MapState m)
    {
        var chars = m.PageMap.ToCharArray();
        if (m.Hugetlb)
            // pagemap_hugetlb_range (fs/proc/task_mmu.c, §3.11): a non-present hugetlb entry shows only PM_UFFD_WP,
            // never PM_SWAP: a uffd-wp marker is "wp only", a poison marker shows nothing.
            for (int i = 0; i < chars.Length; i++)
                chars[i] = m.Ptes[i].Kind switch
                {
                    PteKind.WpMarker => PageChars.WpOnly,
                    PteKind.Poison => PageChars.None,
                    _ => chars[i],
                };
        if (sc.Mappings[m.Index].HugePage)
            for (int i = 0; i < chars.Length; i++)
                if (m.Ptes[i].IsNone || (m.Ptes[i].IsPresent && m.Ptes[i].Mapped == MappedPage.Zero))
                    chars[i] = PageChars.Unspecified;
        if (chars.Any(c => c is PageChars.AnonWp or PageChars.FileWp or PageChars.WpMarker) && !Sw(KernelProfile.PagemapWpAnon))
            for (int i = 0; i < chars.Length; i++)
                chars[i] = chars[i] switch
                {
                    PageChars.AnonWp => PageChars.Anon,
                    PageChars.FileWp => PageChars.File,
                    PageChars.WpMarker => PageChars.Swap,
                    var c => c,
                };
        return new string(chars);
    }

    /// <summary>After an op: a mapping with any PTE has its table; one the op touched may have got a table
    /// without an entry (a fault that became a uffd message, a fill that failed after allocating it); MADV_DONTNEED
    /// that empties a table may free it (PT reclaim, 6.14+ with CONFIG_PT_RECLAIM).</summary>
    private void TrackPageTables(ScenarioOp op)
    {
        foreach (var m in parent.Maps)
        {
            bool any = m.Ptes.Any(p => !p.IsNone);
            bool touched = op switch
            {
                RegisterOp or UnregisterOp or WriteProtectOp or ScanOp or MremapOp or MprotectOp or ForkOp or CloseOp or DrainOp or WakeOp => false,
                PwriteOp or PreadOp or TruncateOp or PunchHoleOp or ApiOp => false,
                MoveOp mv => mv.M == m.Name || mv.Src == m.Name,
                ReadOp r => r.M == m.Name,
                HoldOp h => h.M == m.Name,
                WriteOp w => w.M == m.Name,
                CopyOp c => c.M == m.Name,
                ZeroPageOp z => z.M == m.Name,
                ContinueOp c => c.M == m.Name,
                PoisonOp p => p.M == m.Name,
                PinOp pn => pn.M == m.Name,
                _ => false,
            };
            bool zapped = op is DrainOp or CollapseOp || op is MadviseOp { Advice: MadviseAdvice.DontNeed } md && md.M == m.Name;
            if (any)
                m.PageTable = PageTableState.Present;
            else if (zapped && m.PageTable == PageTableState.Present)
                m.PageTable = PageTableState.Unknown;
            else if (touched && m.PageTable == PageTableState.Absent)
                m.PageTable = PageTableState.Unknown;
        }
    }

    private string Exec(ScenarioOp op, List<string> child) => op switch
    {
        ReadOp r => AccessResultText(Access(parent, M(r.M), r.Page, write: false, 0, kernel: false), kernel: false),
        WriteOp w => AccessResultText(Access(parent, M(w.M), w.Page, write: true, w.Tag, kernel: w.Mode == AccessMode.Kernel), kernel: w.Mode == AccessMode.Kernel),
        RegisterOp r => Register(C(r.U), M(r.M), r.First, r.Count, r.Modes, r.ObserveIoctls),
        UnregisterOp u => Unregister(C(u.U), M(u.M), u.First, u.Count).Text,
        WriteProtectOp w => WriteProtect(C(w.U), M(w.M), w.First, w.Count, w.Protect, w.DontWake).Text,
        CopyOp c => Fill(C(c.U), FillKind.Copy, M(c.M), c.First, c.Count, c.Tag, c.Wp).Text,
        ZeroPageOp z => Fill(C(z.U), FillKind.ZeroPage, M(z.M), z.First, z.Count, 0, false).Text,
        ContinueOp c => Fill(C(c.U), FillKind.Continue, M(c.M), c.First, c.Count, 0, c.Wp).Text,
        PoisonOp p => Fill(C(p.U), FillKind.Poison, M(p.M), p.First, p.Count, 0, false).Text,
        MoveOp mv => Move(C(mv.U), M(mv.M), mv.First, M(mv.Src), mv.SrcFirst, mv.Count, mv.AllowSrcHoles).Text,
        WakeOp w => Wake(C(w.U)).Text,
        MadviseOp m => Madvise(m),
        DrainOp => Drain(),
        PunchHoleOp p => PunchHole(p.First, p.Count),
        TruncateOp t => Truncate(t.Pages),
        PwriteOp w => Pwrite(w.Page, w.Tag),
        PreadOp r => $"ok value=0x{(r.Page < file.Size && file.Present[r.Page] ? file.Tag[r.Page] : 0):x}",
        MprotectOp m => Mprotect(M(m.M), m.First, m.Count),
        MremapOp m => Mremap(M(m.M)),
        ForkOp f => Fork(f, child),
        CloseOp c => Close(C(c.U)),
        ApiOp a => Api(a),
        ScanOp s => Scan(M(s.M), s.WpMatching),
        PinOp p => Pin(parent, M(p.M), p.First, p.Count),
        UnpinOp u => Unpin(M(u.M), u.First, u.Count),
        HoldOp h => Hold(h),
        SignalOp => heldAccess is null ? SignalOp.NothingHeld : "ok",
        CollapseOp c => Collapse(M(c.M)),
        _ => throw new OutOfScopeException($"op {op.GetType().Name} is not modelled"),
    };

    private static string AccessResultText(Outcome o, bool kernel) => o.Kind switch
    {
        OutcomeKind.Ok => kernel ? "ok bytes=8" : $"ok value=0x{o.Value:x}",
        OutcomeKind.Sigbus => $"sigbus code={o.Value}",
        OutcomeKind.Efault => "EFAULT",
        _ => "blocked",
    };

    /// <summary>The model's state, for divergence reports.</summary>
    public string Dump()
    {
        var sb = new StringBuilder();
        sb.Append($"file {file.Describe()}");
        foreach (var m in parent.Maps)
        {
            sb.Append($"\n  {m.Name} ({m.Kind}) vmas {string.Join(" ", m.Vmas)}");
            sb.Append($"\n    ptes {string.Join(" ", m.Ptes.Select((p, i) => $"{i}:{p}"))}");
        }
        foreach (var c in ctxs.Values)
            sb.Append($"\n  uffd {c.Name}: {(c.Released ? "closed" : c.Initialized ? "ok" : "uninitialised")}{(c.MmapChanging > 0 ? $", {c.MmapChanging} event(s) unread" : "")}");
        return sb.ToString();
    }

    private void Block() => blocked = true;
}

/// <summary>The scenario needs a behaviour the model does not define; the run stops without a verdict
/// for the rest (never used to hide a disagreement: only where the model has no rule at all).</summary>
internal sealed class OutOfScopeException(string message) : Exception(message);
