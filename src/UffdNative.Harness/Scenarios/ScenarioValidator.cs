namespace UffdNative.Harness.Scenarios;

/// <summary>
/// What the executor needs to run a scenario *safely* on the real kernel, decided from the scenario text
/// alone (never from the model, so a wrong model cannot make the executor do something dangerous):
/// no user-mode access in this .NET process that could raise SIGBUS (a FEATURE_SIGBUS uffd, a poisoned
/// page, a page beyond the memfd's end) — those belong in a fork child; no op on a closed uffd; while a
/// madvise's event is held, only ioctls and pread/pwrite (anything else would need the event read first).
/// </summary>
public static class ScenarioValidator
{
    public const int MaxMappingPages = 512;

    /// <summary>Null when the scenario can run, else why not.</summary>
    public static string? Validate(Scenario s)
    {
        var maps = new Dictionary<string, MappingSpec>();
        foreach (var m in s.Mappings)
        {
            if (!maps.TryAdd(m.Name, m))
                return $"mapping '{m.Name}' declared twice";
            if (m.Pages < 1 || m.Pages > MaxMappingPages)
                return $"mapping '{m.Name}': {m.Pages} pages (1..{MaxMappingPages})";
            if (m.Kind != MapKind.Anon && m.FileOffset < 0)
                return $"mapping '{m.Name}': negative file offset";
        }
        var uffds = new HashSet<string>();
        foreach (var u in s.Uffds)
        {
            if (!uffds.Add(u.Name))
                return $"uffd '{u.Name}' declared twice";
            if ((u.Features & UffdFeatures.EventUnmap) != 0)
                return "EVENT_UNMAP is not supported: the executor's teardown would block in munmap";
        }
        bool sigbusUffd = s.Uffds.Any(u => (u.Features & UffdFeatures.Sigbus) != 0);
        if (s.Policy.Missing == MissingPolicy.Move && (s.Policy.MoveSource is null || !maps.ContainsKey(s.Policy.MoveSource)))
            return "MISSING policy Move needs an existing MoveSource mapping";

        int fileSize = s.FilePages;
        var closed = new HashSet<string>();
        bool heldActive = false, poisonSeen = false;
        int mremaps = 0;

        string? Map(string name, int first, int count)
        {
            if (!maps.TryGetValue(name, out var m))
                return $"no mapping '{name}'";
            if (first < 0 || count < 1 || first + count > m.Pages)
                return $"range {name}+{first}..{first + count} outside the mapping ({m.Pages} pages)";
            return null;
        }

        string? Uffd(string name) => !uffds.Contains(name) ? $"no uffd '{name}'" : closed.Contains(name) ? $"uffd '{name}' is used after close" : null;

        string? UserAccess(string name, int page)
        {
            if (sigbusUffd)
                return "a user-mode access in this process with a FEATURE_SIGBUS uffd could raise SIGBUS: use a fork child";
            if (poisonSeen)
                return "a user-mode access in this process after UFFDIO_POISON could raise SIGBUS: use a fork child";
            var m = maps[name];
            if (m.Kind != MapKind.Anon && m.FileOffset + page >= fileSize)
                return $"a user-mode access to {name}+{page} beyond the memfd's end raises SIGBUS: use a fork child";
            return null;
        }

        for (int i = 0; i < s.Ops.Count; i++)
        {
            var op = s.Ops[i];
            if (heldActive && op is not (CopyOp or ZeroPageOp or ContinueOp or PoisonOp or MoveOp or WriteProtectOp or WakeOp or PreadOp or PwriteOp or DrainOp))
                return $"op {i} ({op.Describe()}) while an event is held: drain first";
            string? err = op switch
            {
                ReadOp r => Map(r.M, r.Page, 1) ?? UserAccess(r.M, r.Page),
                WriteOp w => Map(w.M, w.Page, 1) ?? (w.Mode == AccessMode.User ? UserAccess(w.M, w.Page) : null),
                RegisterOp r => Uffd(r.U) ?? Map(r.M, r.First, r.Count),
                UnregisterOp u => Uffd(u.U) ?? Map(u.M, u.First, u.Count),
                WriteProtectOp w => Uffd(w.U) ?? Map(w.M, w.First, w.Count),
                CopyOp c => Uffd(c.U) ?? Map(c.M, c.First, c.Count),
                ZeroPageOp z => Uffd(z.U) ?? Map(z.M, z.First, z.Count),
                ContinueOp c => Uffd(c.U) ?? Map(c.M, c.First, c.Count),
                PoisonOp p => Uffd(p.U) ?? Map(p.M, p.First, p.Count),
                MoveOp mv => Uffd(mv.U) ?? Map(mv.M, mv.First, mv.Count) ?? Map(mv.Src, mv.SrcFirst, mv.Count),
                WakeOp w => Uffd(w.U) ?? Map(w.M, w.First, w.Count),
                MadviseOp m => Map(m.M, m.First, m.Count) ?? (m.Hold && heldActive ? "a second held madvise" : null),
                PunchHoleOp p => p.First < 0 || p.Count < 1 || p.First + p.Count > 4096 ? "punch range" : null,
                TruncateOp t => t.Pages < 0 || t.Pages > 4096 ? "truncate size" : null,
                PwriteOp w => w.Page < 0 || w.Page >= fileSize ? "pwrite beyond the memfd's end" : null,
                PreadOp r => r.Page < 0 || r.Page >= fileSize ? "pread beyond the memfd's end" : null,
                MprotectOp m => Map(m.M, m.First, m.Count),
                MremapOp m => Map(m.M, 0, 1) ?? (++mremaps > 8 ? "more than 8 mremaps" : null),
                ForkOp f => f.Child.Select(a => Map(a.M, a.Page, 1)).FirstOrDefault(e => e is not null),
                CloseOp c => Uffd(c.U),
                ApiOp => null,
                ScanOp sc => Map(sc.M, 0, 1),
                DrainOp => null,
                _ => $"unknown op {op.GetType().Name}",
            };
            if (err is not null)
                return $"op {i} ({op.Describe()}): {err}";
            switch (op)
            {
                case MadviseOp { Hold: true }:
                    heldActive = true;
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
            }
        }
        return null;
    }
}
