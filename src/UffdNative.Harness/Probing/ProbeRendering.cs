using System.Text;

namespace UffdNative.Harness.Probing;

/// <summary>The probe report for people: a terminal table and Markdown.</summary>
public static class ProbeRendering
{
    private static string Hex(ulong v) => $"0x{v:x}";

    private static string RegisterCell(RegisterMaskResult r) => r.Errno == "OK" ? Hex(r.Ioctls) : r.Errno;

    private static string ExpectedRegisterCell(RegisterMaskResult r) => r.ExpectedErrno == "OK" ? Hex(r.ExpectedIoctls) : r.ExpectedErrno;

    private static string Ansi(string text, Verdict v, bool color) => !color ? text : v switch
    {
        Verdict.AsExpected => $"\u001b[32m{text}\u001b[0m",
        Verdict.Backported => $"\u001b[33m{text}\u001b[0m",
        Verdict.Regressed or Verdict.Error => $"\u001b[1;31m{text}\u001b[0m",
        _ => $"\u001b[2m{text}\u001b[0m",
    };

    public static string Table(ProbeReport r, bool color = false)
    {
        var sb = new StringBuilder();
        var e = r.Environment;
        sb.AppendLine($"uffdnative probe — kernel {r.KernelRelease} ({e.Architecture}), verdicts against mainline {r.MainlineVersion}");
        sb.AppendLine();
        sb.AppendLine("Environment");
        sb.AppendLine($"  user                 uid {e.Uid}{(e.Root ? " (root)" : "")}, CAP_SYS_PTRACE {(e.CapSysPtrace ? "yes" : "no")}, seccomp {SeccompText(e.SeccompMode)}{(e.NoNewPrivs ? ", no_new_privs" : "")}");
        sb.AppendLine($"  unprivileged_uffd    vm.unprivileged_userfaultfd={e.UnprivilegedUserfaultfd?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "(absent)"}");
        sb.AppendLine($"  /dev/userfaultfd     {(e.Device.Exists ? $"{e.Device.Mode} {e.Device.DevNumber}, {e.Device.Access}" : e.Device.Access)}");
        sb.AppendLine($"  page size            {e.PageSize}, {e.Cpus} CPUs, {e.Runtime}");
        sb.AppendLine($"  THP                  enabled={e.Thp} defrag={e.ThpDefrag} shmem={e.ShmemThp}");
        sb.AppendLine($"  huge pages           {e.HugePages.SizeKb} kB: {e.HugePages.Note}; swap {(e.Swap ? "yes" : "none")}");
        sb.AppendLine($"  virtualization       {e.Virtualization}");
        if (e.ContainerHints.Count > 0)
            sb.AppendLine($"  container hints      {string.Join("; ", e.ContainerHints)}");
        sb.AppendLine();
        sb.AppendLine("Open paths");
        foreach (var p in r.OpenPaths)
        {
            sb.AppendLine($"  {p.Path,-20} {(p.Ok ? "OK" : $"{p.Errno} — {p.Detail}")}");
            if (!p.Ok)
                sb.AppendLine($"  {"",-20} to change: {p.Remedy}");
        }
        if (r.UsablePath is not null)
            sb.AppendLine($"  experiments use      {r.UsablePath}");
        if (r.OpenAdvice.Length > 0)
            sb.AppendLine($"  {"",-20} {r.OpenAdvice.Split('\n')[^1]}");
        if (r.Features.Error is not null)
        {
            sb.AppendLine();
            sb.AppendLine($"UFFDIO_API           cannot be asked: {r.Features.Error}");
            return sb.ToString();
        }
        sb.AppendLine();
        var fv = VerdictText.Parse(r.Features.Verdict);
        sb.AppendLine($"Features             {Hex(r.Features.Supported)}  {Ansi(fv.Display(), fv, color)} (mainline {r.MainlineVersion}: {Hex(r.Features.Expected)}); API ioctls {Hex(r.Features.ApiIoctls)}");
        sb.AppendLine($"  {string.Join(" ", r.Features.Names.Select(n => n.Replace("UFFD_FEATURE_", "", StringComparison.Ordinal)))}");
        foreach (var u in r.Features.Unmodelled)
            sb.AppendLine($"  {u}");
        if (r.RegisterMasks.Count > 0)
        {
            sb.AppendLine();
            sb.AppendLine("UFFDIO_REGISTER ioctl masks (memory × mode)");
            var modes = r.RegisterMasks.Select(m => m.Mode).Distinct().ToList();
            sb.AppendLine($"  {"memory",-17}" + string.Concat(modes.Select(m => $"{m,-13}")));
            foreach (var g in r.RegisterMasks.GroupBy(m => m.Memory))
            {
                sb.Append($"  {g.Key,-17}");
                foreach (var m in g)
                {
                    var v = VerdictText.Parse(m.Verdict);
                    string cell = RegisterCell(m) + (v == Verdict.AsExpected ? "" : v == Verdict.Backported ? "(b)" : "(!)");
                    sb.Append(Ansi($"{cell,-13}", v, color && v != Verdict.AsExpected));
                }
                sb.AppendLine();
            }
            foreach (var m in r.RegisterMasks.Where(m => m.Verdict != Verdict.AsExpected.Id()))
                sb.AppendLine($"  {m.Memory} {m.Mode}: {RegisterCell(m)}, mainline {r.MainlineVersion} {ExpectedRegisterCell(m)} → {VerdictText.Parse(m.Verdict).Display()}");
            if (r.HugetlbNote.Length > 0)
                sb.AppendLine($"  {r.HugetlbNote}");
        }
        sb.AppendLine();
        sb.AppendLine($"Behaviours (reference docs/kernel-reference.md §3; mainline {r.MainlineVersion} answer, verdict)");
        int idw = Math.Max(10, r.Behaviours.Select(b => b.Id.Length).DefaultIfEmpty(10).Max());
        foreach (var b in r.Behaviours)
        {
            var v = VerdictText.Parse(b.Verdict);
            string main = b.Mainline switch { true => "new", false => "old", _ => "—" };
            sb.AppendLine($"  {b.Id.PadRight(idw)}  {Ansi(v.Display().PadRight(20), v, color)} mainline {main,-3}  {b.Observed}");
            if (b.Meaning.Length > 0)
                sb.AppendLine($"  {"".PadRight(idw)}  {"",-20}              → {b.Meaning}");
            else if (b.Evidence.Length > 0 && v is Verdict.Undetermined or Verdict.Error)
                sb.AppendLine($"  {"".PadRight(idw)}  {"",-20}              ({b.Evidence})");
        }
        if (r.Facts.Count > 0)
        {
            sb.AppendLine();
            sb.AppendLine("Environment facts (detected by experiment; the model follows them)");
            int fw = r.Facts.Max(f => f.Id.Length);
            foreach (var f in r.Facts)
            {
                string mark = f.DiffersFromMainline ? $"  (mainline: {f.Mainline}){(f.Cause is { } c ? $" — cause: {c}" : "")}" : "";
                sb.AppendLine($"  {f.Id.PadRight(fw)}  {f.Value ?? "not determined"}{mark}");
                if (f.Value is null || f.DiffersFromMainline)
                    sb.AppendLine($"  {"".PadRight(fw)}  ({f.Evidence})");
            }
        }
        sb.AppendLine();
        sb.AppendLine($"Detected profile     {(r.Profile.Description.Length > 0 ? r.Profile.Description : r.Profile.Prior)}");
        var s = r.Summary;
        sb.AppendLine($"Summary              {s.AsExpected} as expected, {s.Backported} backported, {s.Regressed} regressed/unexpected, {s.Undetermined} not determined, {s.Informational} informational, {s.Errors} errors, {s.NewerThanModel} newer than the model; {s.DurationMs} ms");
        sb.AppendLine($"Flagged              {Flagged(r)}");
        return sb.ToString();
    }

    /// <summary>The items that make probe exit 1 (<see cref="ProbeReport.FlaggedItems"/>), or "none (exit 0)".</summary>
    private static string Flagged(ProbeReport r) => r.FlaggedItems() is { Count: > 0 } f ? string.Join(", ", f) + " (exit 1)" : "none (exit 0)";

    private static string SeccompText(int mode) => mode switch { 0 => "off", 1 => "strict", 2 => "filter", _ => "unknown" };

    private static string Md(string s) => MarkdownText.Cell(s);

    private static string MdVerdict(Verdict v) => v switch
    {
        Verdict.Regressed or Verdict.Error => $"**{v.Display()}**",
        Verdict.Backported => "*backported*",
        _ => v.Display(),
    };

    public static string Markdown(ProbeReport r)
    {
        var sb = new StringBuilder();
        var e = r.Environment;
        sb.AppendLine($"# uffdnative probe: {r.KernelRelease}");
        sb.AppendLine();
        sb.AppendLine($"Verdicts compare with mainline {r.MainlineVersion}. Generated {r.GeneratedAt} in {r.Summary.DurationMs} ms.");
        sb.AppendLine();
        sb.AppendLine("## Environment");
        sb.AppendLine();
        sb.AppendLine("| Fact | Value |");
        sb.AppendLine("|---|---|");
        sb.AppendLine($"| kernel | `{Md(r.KernelRelease)}` ({Md(e.Architecture)}, page size {e.PageSize}) |");
        sb.AppendLine($"| user | uid {e.Uid}{(e.Root ? " (root)" : "")}, CAP_SYS_PTRACE {(e.CapSysPtrace ? "yes" : "no")} |");
        sb.AppendLine($"| vm.unprivileged_userfaultfd | {e.UnprivilegedUserfaultfd?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "absent"} |");
        sb.AppendLine($"| /dev/userfaultfd | {Md(e.Device.Exists ? $"{e.Device.Mode} {e.Device.DevNumber}, {e.Device.Access}" : e.Device.Access)} |");
        sb.AppendLine($"| seccomp | {SeccompText(e.SeccompMode)} |");
        sb.AppendLine($"| container hints | {Md(e.ContainerHints.Count == 0 ? "none" : string.Join("; ", e.ContainerHints))} |");
        sb.AppendLine($"| THP | {Md($"enabled={e.Thp}, defrag={e.ThpDefrag}, shmem={e.ShmemThp}")} |");
        sb.AppendLine($"| huge pages | {e.HugePages.SizeKb} kB: {Md(e.HugePages.Note)} |");
        sb.AppendLine($"| swap | {(e.Swap ? "yes" : "none")} |");
        sb.AppendLine();
        sb.AppendLine("## Open paths");
        sb.AppendLine();
        sb.AppendLine("| Path | Result | Why | To change |");
        sb.AppendLine("|---|---|---|---|");
        foreach (var p in r.OpenPaths)
            sb.AppendLine($"| {Md(p.Path)} | {Md(p.Errno)} | {Md(p.Detail)} | {Md(p.Remedy)} |");
        sb.AppendLine();
        sb.AppendLine(r.UsablePath is null ? "No path works." : $"Experiments use the **{r.UsablePath}** path.");
        if (r.Features.Error is not null)
        {
            sb.AppendLine();
            sb.AppendLine($"UFFDIO_API cannot be asked: {Md(r.Features.Error)}");
            return sb.ToString();
        }
        sb.AppendLine();
        sb.AppendLine("## Features");
        sb.AppendLine();
        sb.AppendLine($"`{Hex(r.Features.Supported)}` ({MdVerdict(VerdictText.Parse(r.Features.Verdict))}; mainline {r.MainlineVersion}: `{Hex(r.Features.Expected)}`): {string.Join(", ", r.Features.Names.Select(n => n.Replace("UFFD_FEATURE_", "", StringComparison.Ordinal)))}. UFFDIO_API ioctls `{Hex(r.Features.ApiIoctls)}`.");
        foreach (var u in r.Features.Unmodelled)
            sb.AppendLine($"- {Md(u)}");
        if (r.RegisterMasks.Count > 0)
        {
            sb.AppendLine();
            sb.AppendLine("## UFFDIO_REGISTER ioctl masks");
            sb.AppendLine();
            var modes = r.RegisterMasks.Select(m => m.Mode).Distinct().ToList();
            sb.AppendLine("| memory | " + string.Join(" | ", modes.Select(Md)) + " |");
            sb.AppendLine("|---|" + string.Concat(modes.Select(_ => "---|")));
            foreach (var g in r.RegisterMasks.GroupBy(m => m.Memory))
                sb.AppendLine($"| {Md(g.Key)} | " + string.Join(" | ", g.Select(m =>
                {
                    var v = VerdictText.Parse(m.Verdict);
                    return v == Verdict.AsExpected ? Md(RegisterCell(m)) : $"{Md(RegisterCell(m))} ({MdVerdict(v)}, mainline {Md(ExpectedRegisterCell(m))})";
                })) + " |");
            if (r.HugetlbNote.Length > 0)
                sb.AppendLine().AppendLine(Md(r.HugetlbNote));
        }
        sb.AppendLine();
        sb.AppendLine("## Behaviours");
        sb.AppendLine();
        sb.AppendLine($"| Row | Ref | Observed | Meaning | Mainline {Md(r.MainlineVersion)} | Verdict |");
        sb.AppendLine("|---|---|---|---|---|---|");
        foreach (var b in r.Behaviours)
        {
            var v = VerdictText.Parse(b.Verdict);
            string meaning = b.Meaning.Length > 0 ? b.Meaning : b.Evidence;
            sb.AppendLine($"| `{Md(b.Id)}` | {Md(b.Section)} | {Md(b.Observed)} | {Md(meaning)} | {Md(b.Mainline switch { true => "new", false => "old", _ => "—" })} | {MdVerdict(v)} |");
        }
        if (r.Facts.Count > 0)
        {
            sb.AppendLine();
            sb.AppendLine("## Environment facts");
            sb.AppendLine();
            sb.AppendLine("| Fact | Value | Mainline | Cause | Evidence |");
            sb.AppendLine("|---|---|---|---|---|");
            foreach (var f in r.Facts)
                sb.AppendLine($"| `{Md(f.Id)}` | {Md(f.Value ?? "not determined")} | {Md(f.Mainline ?? "—")} | {Md(f.Cause ?? "")} | {Md(f.Evidence)} |");
        }
        sb.AppendLine();
        sb.AppendLine($"**Detected profile:** {Md(r.Profile.Description.Length > 0 ? r.Profile.Description : r.Profile.Prior)}");
        sb.AppendLine();
        var s = r.Summary;
        sb.AppendLine($"**Summary:** {s.AsExpected} as expected, {s.Backported} backported, {s.Regressed} regressed/unexpected, {s.Undetermined} not determined, {s.Informational} informational, {s.Errors} errors, {s.NewerThanModel} newer than the model. **Flagged:** {Md(Flagged(r))}.");
        return sb.ToString();
    }
}
