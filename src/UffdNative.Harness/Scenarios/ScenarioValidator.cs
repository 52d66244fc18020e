namespace UffdNative.Harness.Scenarios;

/// <summary>
/// What the executor needs to run a scenario *safely* on the real kernel, decided from the scenario text
/// alone (never from the model, so a wrong model cannot make the executor do something dangerous):
/// every name, count, size and page index within fixed bounds (computed in 64 bits, so no crafted JSON can
/// wrap a range into one that passes: a range of int.MaxValue pages once made the executor mprotect 8 TiB);
/// every enum a declared value; no user-mode access in this .NET process that could raise SIGBUS (a
/// FEATURE_SIGBUS uffd, a poisoned page, a page beyond the memfd's end) — those belong in a fork child; no op
/// on a closed uffd; while a madvise's event is held, only ioctls and pread/pwrite (anything else would need
/// the event read first); after a held access (<see cref="HoldOp"/>), whose thread may still be blocked, no other
/// access and nothing that raises an event (its faults are read by the executor itself, not by a handler). Runs on every loaded scenario (<see cref="Scenario.Load"/>), before every run
/// (KernelExecutor) and on every candidate of the fuzzer's generator and shrinker.
/// </summary>
public static class ScenarioValidator
{
    public const int MaxMappingPages = 512;
    /// <summary>The largest memfd (in pages) a scenario may have, create by truncate, or name a page of.</summary>
    public const int MaxFilePages = 4096;
    public const int MaxMappings = 16;
    public const int MaxUffds = 8;
    public const int MaxOps = 1000;
    public const int MaxApiSteps = 16;
    public const int MaxChildAccesses = 64;
    /// <summary>Pins held at once by this process, and by one fork child (native/harness/uffd_pin.c: UFFD_PIN_CHILD_MAX).</summary>
    public const int MaxPins = 16;
    public const int MaxMremaps = 8;
    public const int MaxNameLength = 64;
    public const int MaxTextLength = 16384;

    private const RegisterMode KnownModes = RegisterMode.Missing | RegisterMode.WriteProtect | RegisterMode.Minor;

    /// <summary>Null when the scenario can run, else why not (one line).</summary>
    public static string? Validate(Scenario s)
    {
        if (s is null)
            return "no scenario (JSON null)";
        if (s.Mappings is null || s.Uffds is null || s.Ops is null || s.Policy is null)
            return "not a scenario: it lacks mappings, uffds, policy or ops ('uffdnative fuzz' writes one as repro.json)";
        if (s.Name is null || s.Name.Length > 200)
            return "the scenario's name is missing or longer than 200 characters";
        if (s.Description is not null && s.Description.Length > MaxTextLength)
            return $"the description is longer than {MaxTextLength} characters";
        if (!Enum.IsDefined(s.Memory))
            return $"memory type {(int)s.Memory} is not one of {string.Join(", ", Enum.GetNames<MemoryType>())}";
        if (s.FilePages < 0 || s.FilePages > MaxFilePages)
            return $"file of {s.FilePages} pages (0..{MaxFilePages})";
        if (s.Mappings.Count > MaxMappings)
            return $"{s.Mappings.Count} mappings (at most {MaxMappings})";
        if (s.Uffds.Count > MaxUffds)
            return $"{s.Uffds.Count} uffds (at most {MaxUffds})";
        if (s.Ops.Count > MaxOps)
            return $"{s.Ops.Count} ops (at most {MaxOps})";

        var maps = new Dictionary<string, MappingSpec>(StringComparer.Ordinal);
        foreach (var m in s.Mappings)
        {
            if (m is null)
                return "a mapping is null";
            if (NameProblem(m.Name) is { } bad)
                return $"mapping name {bad}";
            if (!maps.TryAdd(m.Name, m))
                return $"mapping '{m.Name}' declared twice";
            if (!Enum.IsDefined(m.Kind))
                return $"mapping '{m.Name}': kind {(int)m.Kind} is not one of {string.Join(", ", Enum.GetNames<MapKind>())}";
            if (m.Pages < 1 || m.Pages > MaxMappingPages)
                return $"mapping '{m.Name}': {m.Pages} pages (1..{MaxMappingPages})";
            if (m.FileOffset < 0 || (long)m.FileOffset + m.Pages > MaxFilePages)
                return $"mapping '{m.Name}': file pages {m.FileOffset}..{(long)m.FileOffset + m.Pages} outside 0..{MaxFilePages}";
        }
        var uffds = new HashSet<string>(StringComparer.Ordinal);
        foreach (var u in s.Uffds)
        {
            if (u is null)
                return "a uffd is null";
            if (NameProblem(u.Name) is { } bad)
                return $"uffd name {bad}";
            if (!uffds.Add(u.Name))
                return $"uffd '{u.Name}' declared twice";
            if (((ulong)u.Features & ~UffdFeatureInfo.AllKnownMask) != 0)
                return $"uffd '{u.Name}': unknown feature bits 0x{(ulong)u.Features & ~UffdFeatureInfo.AllKnownMask:x}";
            if ((u.Features & UffdFeatures.EventUnmap) != 0)
                return "EVENT_UNMAP is not supported: the executor's teardown would block in munmap";
        }
        bool sigbusUffd = s.Uffds.Any(u => (u.Features & UffdFeatures.Sigbus) != 0);
        if (!Enum.IsDefined(s.Policy.Missing))
            return $"MISSING policy {(int)s.Policy.Missing} is not one of {string.Join(", ", Enum.GetNames<MissingPolicy>())}";
        if (s.Policy.MoveChunk < 1 || s.Policy.MoveChunk > MaxMappingPages)
            return $"MoveChunk {s.Policy.MoveChunk} (1..{MaxMappingPages})";
        // A named source must exist whatever the policy: the reproducer and the executor look it up.
        if (s.Policy.MoveSource is { } src && !maps.ContainsKey(src))
            return $"MoveSource '{src}' is not a mapping of the scenario";
        if (s.Policy.Missing == MissingPolicy.Move && s.Policy.MoveSource is null)
            return "MISSING policy Move needs an existing MoveSource mapping";
        if (InvertAliasProblem(s, maps) is { } aliasProblem)
            return aliasProblem;
        if (s.Policy.PoisonPages is { } poisonPages)
        {
            if (s.Policy.Missing is not (MissingPolicy.Copy or MissingPolicy.CopyWp))
                return $"PoisonPages with MISSING policy {s.Policy.Missing}: only Copy and CopyWp poison";
            if (poisonPages.Count > MaxMappingPages || poisonPages.Any(p => p < 0 || p >= MaxMappingPages))
                return $"PoisonPages: at most {MaxMappingPages} page numbers, each 0..{MaxMappingPages - 1}";
        }

        long fileSize = s.FilePages;
        var closed = new HashSet<string>(StringComparer.Ordinal);
        bool heldActive = false, poisonSeen = false;
        // From a HoldOp on, the access may still be blocked (only the model or the kernel can say when it ends).
        bool holding = false;
        int mremaps = 0;
        var pins = new List<(string M, int First, int Count)>();

        string? PinProblem(PinOp p)
        {
            if (Map(p.M, p.First, p.Count) is { } e)
                return e;
            if (pins.Any(x => x.M == p.M && x.First < p.First + p.Count && p.First < x.First + x.Count))
                return "overlaps a pin still held (unpin it first)";
            return pins.Count >= MaxPins ? $"more than {MaxPins} pins held at once" : null;
        }

        string? UnpinProblem(UnpinOp u) =>
            Map(u.M, u.First, u.Count) ?? (pins.Contains((u.M, u.First, u.Count)) ? null : "no pin of exactly this range is held");

        // MADV_COLLAPSE of a whole PMD of shmem page cache, mapped MAP_SHARED at a PMD-aligned file offset.
        string? Collapsible(string name)
        {
            var m = s.Mappings.First(x => x.Name == name);
            return m.Kind != MapKind.Shared || MemoryTypes.IsHugetlb(s.Memory) || m.Pages != CollapseOp.PmdPages || m.FileOffset % CollapseOp.PmdPages != 0
                ? $"collapse of '{name}': needs a MAP_SHARED shmem mapping of {CollapseOp.PmdPages} pages at a multiple of {CollapseOp.PmdPages} in the file"
                : null;
        }

        string? Map(string? name, long first, long count)
        {
            if (name is null || !maps.TryGetValue(name, out var m))
                return name is null ? "no mapping named" : $"no mapping '{name}'";
            if (first < 0 || count < 1 || first + count > m.Pages)
                return $"range {name}+{first}..{first + count} outside the mapping ({m.Pages} pages)";
            return null;
        }

        string? Uffd(string? name) => name is null || !uffds.Contains(name) ? $"no uffd '{name}'" : closed.Contains(name) ? $"uffd '{name}' is used after close" : null;

        string? File(long first, long count, long limit, string what) =>
            first < 0 || count < 1 || first + count > limit ? $"{what} f+{first}..{first + count} outside 0..{limit}" : null;

        string? Modes(RegisterMode modes) => (modes & ~KnownModes) != 0 ? $"unknown register mode bits 0x{(ulong)(modes & ~KnownModes):x}" : null;

        string? UserAccess(string name, int page)
        {
            if (sigbusUffd)
                return "a user-mode access in this process with a FEATURE_SIGBUS uffd could raise SIGBUS: use a fork child";
            if (poisonSeen)
                return "a user-mode access in this process after UFFDIO_POISON could raise SIGBUS: use a fork child";
            if (s.Policy.PoisonPages is not null)
                return "a user-mode access in this process with a handler that POISONs (PoisonPages) could raise SIGBUS: use a fork child";
            var m = maps[name];
            if (m.Kind != MapKind.Anon && (long)m.FileOffset + page >= fileSize)
                return $"a user-mode access to {name}+{page} beyond the memfd's end raises SIGBUS: use a fork child";
            return null;
        }

        string? Child(ForkOp f)
        {
            if (f.Child is null)
                return "fork without its child's accesses (null)";
            if (f.Child.Count > MaxChildAccesses)
                return $"{f.Child.Count} child accesses (at most {MaxChildAccesses})";
            foreach (var a in f.Child)
            {
                if (a is null)
                    return "a child access is null";
                if (Map(a.M, a.Page, a.Madvise is null && !a.SigbusLoop ? 1 : a.Count) is { } e)
                    return e;
                if (a.SigbusLoop && (a.Pin || a.Mremap || a.Madvise is not null || a.Tag != 0 || a.Count < 1))
                    return $"child step {a}: a sigbus loop is nothing else, over at least one page";
                if (a.Pin && a.Write)
                    return $"child step {a}: a pin is not also a write";
                if ((a.Mremap || a.Madvise is not null) && (a.Pin || a.Write || a.Tag != 0 || (a.Mremap && a.Madvise is not null)))
                    return $"child step {a}: an mremap or madvise step is nothing else";
                if (a.Madvise is { } adv && (!Enum.IsDefined(adv) || adv == MadviseAdvice.PageOut || a.Count < 1))
                    return $"child step {a}: a child's madvise is DONTNEED or REMOVE of at least one page";
                if (a.Madvise is null && !a.SigbusLoop && a.Count != 0)
                    return $"child step {a}: only a madvise step has a page count";
                if (a.Mremap && a.Page != 0)
                    return $"child step {a}: an mremap moves the whole mapping (page 0)";
            }
            // The child's mremaps take free places of the same reservation as the parent's (the executor's slots).
            if (mremaps + f.Child.Count(a => a.Mremap) > MaxMremaps)
                return $"{f.Child.Count(a => a.Mremap)} child mremaps after {mremaps} (at most {MaxMremaps} in all)";
            if (f.Child.Count(a => a.Pin) > MaxPins)
                return $"{f.Child.Count(a => a.Pin)} child pins (at most {MaxPins})";
            return null;
        }

        string? Api(ApiOp a) =>
            a.Steps is null ? "api without steps (null)"
            : a.Steps.Count > MaxApiSteps ? $"{a.Steps.Count} UFFDIO_API steps (at most {MaxApiSteps})"
            : a.Steps.Any(x => x is null) ? "an UFFDIO_API step is null" : null;

        for (int i = 0; i < s.Ops.Count; i++)
        {
            var op = s.Ops[i];
            if (op is null)
                return $"op {i} is null";
            if (heldActive && op is not (CopyOp or ZeroPageOp or ContinueOp or PoisonOp or MoveOp or WriteProtectOp or WakeOp or PreadOp or PwriteOp or DrainOp))
                return $"op {i} ({Describe(op)}) while an event is held: drain first";
            if (holding && op is ReadOp or WriteOp or HoldOp or ForkOp or MadviseOp or DrainOp or MremapOp or TruncateOp or PunchHoleOp)
                return $"op {i} ({Describe(op)}) after a held access: only ioctls, close, signal, pread/pwrite, mprotect and scans may follow one (its thread may still be blocked)";
            string? err = op switch
            {
                HoldOp h => !Enum.IsDefined(h.Mode) ? $"access mode {(int)h.Mode}" : h.Mode == AccessMode.Kernel && !h.Write ? "a held kernel-mode access must be a write (read(2) into the page)"
                    : Map(h.M, h.Page, 1) ?? (h.Mode == AccessMode.User ? UserAccess(h.M, h.Page) : null),
                SignalOp => holding ? null : "signal without a held access (hold one first)",
                ReadOp r => Map(r.M, r.Page, 1) ?? UserAccess(r.M, r.Page),
                WriteOp w => !Enum.IsDefined(w.Mode) ? $"access mode {(int)w.Mode}" : Map(w.M, w.Page, 1) ?? (w.Mode == AccessMode.User ? UserAccess(w.M, w.Page) : null),
                RegisterOp r => Uffd(r.U) ?? Map(r.M, r.First, r.Count) ?? Modes(r.Modes),
                UnregisterOp u => Uffd(u.U) ?? Map(u.M, u.First, u.Count),
                WriteProtectOp w => Uffd(w.U) ?? Map(w.M, w.First, w.Count),
                CopyOp c => Uffd(c.U) ?? Map(c.M, c.First, c.Count),
                ZeroPageOp z => Uffd(z.U) ?? Map(z.M, z.First, z.Count),
                ContinueOp c => Uffd(c.U) ?? Map(c.M, c.First, c.Count),
                PoisonOp p => Uffd(p.U) ?? Map(p.M, p.First, p.Count),
                MoveOp mv => Uffd(mv.U) ?? Map(mv.M, mv.First, mv.Count) ?? Map(mv.Src, mv.SrcFirst, mv.Count),
                WakeOp w => Uffd(w.U) ?? Map(w.M, w.First, w.Count),
                MadviseOp m => !Enum.IsDefined(m.Advice) ? $"madvise advice {(int)m.Advice}" : m.Hold && m.Advice == MadviseAdvice.PageOut ? "a held MADV_PAGEOUT (it raises no event)" : Map(m.M, m.First, m.Count) ?? (m.Hold && heldActive ? "a second held madvise" : null),
                PunchHoleOp p => File(p.First, p.Count, MaxFilePages, "punch range"),
                TruncateOp t => t.Pages < 0 || t.Pages > MaxFilePages ? $"truncate to {t.Pages} pages (0..{MaxFilePages})" : null,
                PwriteOp w => w.Page < 0 || w.Page >= fileSize ? "pwrite beyond the memfd's end" : null,
                PreadOp r => r.Page < 0 || r.Page >= fileSize ? "pread beyond the memfd's end" : null,
                MprotectOp m => Map(m.M, m.First, m.Count),
                MremapOp m => Map(m.M, 0, 1) ?? (++mremaps > MaxMremaps ? $"more than {MaxMremaps} mremaps" : null),
                ForkOp f => Child(f),
                CloseOp c => Uffd(c.U),
                ApiOp a => Api(a),
                ScanOp sc => Map(sc.M, 0, 1),
                PinOp p => PinProblem(p),
                UnpinOp u => UnpinProblem(u),
                CollapseOp c => Map(c.M, 0, 1) ?? Collapsible(c.M),
                DrainOp => null,
                _ => $"unknown op {op.GetType().Name}",
            };
            if (err is not null)
                return $"op {i} ({Describe(op)}): {err}";
            switch (op)
            {
                case MadviseOp { Hold: true }:
                    heldActive = true;
                    break;
                case HoldOp:
                    holding = true;
                    break;
                case DrainOp:
                    heldActive = false;
                    break;
                case PoisonOp:
                    poisonSeen = true;
                    break;
                case TruncateOp t:
                    fileSize = t.Pages;
                    break;
                case CloseOp c:
                    closed.Add(c.U);
                    break;
                case PinOp p:
                    pins.Add((p.M, p.First, p.Count));
                    break;
                case UnpinOp u:
                    pins.Remove((u.M, u.First, u.Count));
                    break;
            }
        }
        return null;
    }

    /// <summary>The handler's loop thread writes through <see cref="HandlerPolicy.MinorInvertThrough"/> natively, so
    /// it must be a MAP_SHARED mapping of the file from page 0 that covers every page the file ever has, that is never
    /// registered (the write would fault on the loop thread itself), mremapped (the policy keeps its address) or
    /// mprotected (a read-only alias would fault the host).</summary>
    private static string? InvertAliasProblem(Scenario s, Dictionary<string, MappingSpec> maps)
    {
        if (s.Policy.MinorInvertThrough is not { } alias)
            return null;
        if (!maps.TryGetValue(alias, out var a))
            return $"MinorInvertThrough '{alias}' is not a mapping of the scenario";
        if (a.Kind != MapKind.Shared || a.FileOffset != 0)
            return $"MinorInvertThrough '{alias}' must be a MAP_SHARED mapping of the file from page 0";
        long largest = Math.Max(s.FilePages, s.Ops.OfType<TruncateOp>().Select(t => (long)t.Pages).DefaultIfEmpty(0).Max());
        if (a.Pages < largest)
            return $"MinorInvertThrough '{alias}' covers {a.Pages} pages of a file of up to {largest}";
        foreach (var op in s.Ops)
            if (op is RegisterOp r && r.M == alias || op is MremapOp mr && mr.M == alias || op is MprotectOp mp && mp.M == alias)
                return $"MinorInvertThrough '{alias}' is {op.Describe()}: the handler writes through it, so it stays unregistered, in place and writable";
        return null;
    }

    private static string? NameProblem(string? name) =>
        name is null ? "missing (null)"
        : name.Length == 0 ? "empty"
        : name.Length > MaxNameLength ? $"longer than {MaxNameLength} characters"
        : name.Any(char.IsControl) ? "with a control character"
        : null;

    /// <summary>An op's text for a message; never throws on the odd values this validator refuses.</summary>
    private static string Describe(ScenarioOp op)
    {
        try
        {
            return op.Describe();
        }
        catch (Exception e) when (e is NullReferenceException or ArgumentException or FormatException)
        {
            return op.GetType().Name;
        }
    }
}
