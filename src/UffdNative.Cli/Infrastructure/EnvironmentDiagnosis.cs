using UffdNative.Harness.Probing;

namespace UffdNative.Cli.Infrastructure;

/// <summary>One open path and the kernel's answer, as a probe reports it.</summary>
public sealed record OpenPathOutcome(string Path, bool Ok, string Errno, string Detail, string Remedy);

/// <summary>
/// What the open paths' answers mean together: which path this process will use (the order
/// <c>UffdOpenPath.Auto</c> tries: Device, Syscall, then UFFD_USER_MODE_ONLY), whether that narrows
/// what can be observed, and for every refusal its cause and fix. Used by <c>probe</c> (text) and by
/// any verb that stops because no path works (exit code 3): its one-line message.
/// </summary>
public sealed record EnvironmentDiagnosis(string? UsablePath, IReadOnlyList<OpenPathOutcome> Refusals)
{
    public const string UserModeOnlyCaveat =
        "UFFD_USER_MODE_ONLY: faults raised in kernel mode (read(2)/write(2)/io_uring into a registered range) fail with EFAULT " +
        "instead of arriving as messages; user-mode faults, WP, MINOR and events work as usual";

    /// <summary>Some path works.</summary>
    public bool Usable => UsablePath is not null;

    /// <summary>Only the user-mode-only syscall works: the fallback is in use.</summary>
    public bool UserModeOnlyFallback => UsablePath is { } p && KindOf(p) == PathKind.UserModeOnly;

    /// <summary>Diagnoses the attempts a failed <c>Userfaultfd.Open</c> made (its UffdException's
    /// Data["attempts"]).</summary>
    public static EnvironmentDiagnosis From(IEnumerable<UffdOpenAttempt> attempts) =>
        From(attempts.Select(a => new OpenPathOutcome(a.Path.ToString(), a.Succeeded, a.Succeeded ? "OK" : UffdNative.Errno.Name(a.Errno), a.Succeeded ? "" : a.Detail, a.Remedy)));

    /// <summary>Diagnoses a probe report's open paths (named device, syscall, user-mode-only there).</summary>
    public static EnvironmentDiagnosis From(ProbeReport report) =>
        From(report.OpenPaths.Select(p => new OpenPathOutcome(p.Path, p.Ok, p.Errno, p.Detail, p.Remedy)));

    private enum PathKind { Other, Device, Syscall, UserModeOnly }

    /// <summary>The binding's names (Device, Syscall, SyscallUserModeOnly) and the probe report's
    /// (device, syscall, user-mode-only) both.</summary>
    private static PathKind KindOf(string path) => path.ToLowerInvariant() switch
    {
        "device" => PathKind.Device,
        "syscall" => PathKind.Syscall,
        "syscallusermodeonly" or "user-mode-only" => PathKind.UserModeOnly,
        _ => PathKind.Other,
    };

    /// <summary>Diagnoses the outcomes of the Syscall, SyscallUserModeOnly and Device paths.</summary>
    public static EnvironmentDiagnosis From(IEnumerable<OpenPathOutcome> outcomes)
    {
        var list = outcomes.ToList();
        string? usable = null;
        foreach (var preferred in new[] { PathKind.Device, PathKind.Syscall, PathKind.UserModeOnly })
            if (list.FirstOrDefault(o => KindOf(o.Path) == preferred) is { Ok: true } o)
            {
                usable = o.Path;
                break;
            }
        return new EnvironmentDiagnosis(usable, list.Where(o => !o.Ok).ToList());
    }

    /// <summary>
    /// What to change, shortest first. When even UFFD_USER_MODE_ONLY was refused with EPERM only a
    /// filter can have done it (the kernel always allows it), so the seccomp advice covers the case
    /// (plus the device's own fix when the device was refused for permissions); ENOSYS means no
    /// userfaultfd at all. Otherwise every distinct fix, minus those another one already contains.
    /// </summary>
    public IReadOnlyList<string> Fixes
    {
        get
        {
            var umo = Refusals.FirstOrDefault(r => KindOf(r.Path) == PathKind.UserModeOnly);
            var device = Refusals.FirstOrDefault(r => KindOf(r.Path) == PathKind.Device);
            var fixes = new List<string>();
            if (umo is { Errno: "EPERM" or "ENOSYS" })
            {
                fixes.Add(umo.Remedy);
                if (device is { Errno: "EACCES" or "EPERM" } || (umo.Errno == "ENOSYS" && device is not null))
                    fixes.Add(device!.Remedy);
            }
            else
            {
                var all = Refusals.Select(r => r.Remedy).Where(r => r.Length > 0).Distinct().ToList();
                fixes.AddRange(all.Where(f => !all.Any(o => o != f && o.Contains(f, StringComparison.Ordinal))));
            }
            return fixes.Where(f => f.Length > 0).Distinct().ToList();
        }
    }

    /// <summary>The whole diagnosis on one line (the error message of exit code 3).</summary>
    public string OneLine() =>
        (Usable ? $"userfaultfd is {Verdict}" : "userfaultfd cannot be opened here: ") +
        (Usable ? "" : string.Join("; ", Refusals.Select(r => $"{r.Path} {r.Errno} ({r.Detail})"))) +
        (!Usable && Fixes.Count > 0 ? ". Fix: " + string.Join("; or ", Fixes) : "");

    /// <summary>One line: the verdict.</summary>
    public string Verdict => UsablePath switch
    {
        null => "NOT usable here: every open path was refused (exit code 3)",
        _ when UserModeOnlyFallback => "usable only through the fallback " + UserModeOnlyCaveat,
        var p => $"usable via {p}" + (Refusals.Count > 0 ? $" ({Refusals.Count} other path{(Refusals.Count == 1 ? "" : "s")} refused, see below)" : ""),
    };

    /// <summary>The verdict, then for each refused path its cause and fix.</summary>
    public IEnumerable<string> Lines()
    {
        yield return $"userfaultfd       {Verdict}";
        foreach (var r in Refusals)
        {
            yield return $"  {r.Path} {r.Errno}: cause: {r.Detail}";
            if (r.Remedy.Length > 0)
                yield return $"  {new string(' ', r.Path.Length + r.Errno.Length + 1)}  fix:   {r.Remedy}";
        }
    }
}
