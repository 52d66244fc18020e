namespace UffdNative.Cli.Infrastructure;

/// <summary>One open path and the kernel's answer, as a probe reports it.</summary>
public sealed record OpenPathOutcome(string Path, bool Ok, string Errno, string Detail, string Remedy);

/// <summary>
/// What the open paths' answers mean together: which path this process will use (the order
/// <c>UffdOpenPath.Auto</c> tries: Device, Syscall, then UFFD_USER_MODE_ONLY), whether that narrows
/// what can be observed, and for every refusal its cause and fix. Used by <c>probe</c> (text) and by
/// any verb that stops because no path works (exit code 3).
/// </summary>
public sealed record EnvironmentDiagnosis(string? UsablePath, IReadOnlyList<OpenPathOutcome> Refusals)
{
    public const string UserModeOnlyPath = "SyscallUserModeOnly";

    public const string UserModeOnlyCaveat =
        "UFFD_USER_MODE_ONLY: faults raised in kernel mode (read(2)/write(2)/io_uring into a registered range) fail with EFAULT " +
        "instead of arriving as messages; user-mode faults, WP, MINOR and events work as usual";

    /// <summary>Some path works.</summary>
    public bool Usable => UsablePath is not null;

    /// <summary>Only the user-mode-only syscall works: the fallback is in use.</summary>
    public bool UserModeOnlyFallback => UsablePath == UserModeOnlyPath;

    /// <summary>Diagnoses the outcomes of the Syscall, SyscallUserModeOnly and Device paths.</summary>
    public static EnvironmentDiagnosis From(IEnumerable<OpenPathOutcome> outcomes)
    {
        var list = outcomes.ToList();
        string? usable = null;
        foreach (var preferred in new[] { "Device", "Syscall", UserModeOnlyPath })
            if (list.FirstOrDefault(o => o.Path == preferred) is { Ok: true })
            {
                usable = preferred;
                break;
            }
        return new EnvironmentDiagnosis(usable, list.Where(o => !o.Ok).ToList());
    }

    /// <summary>One line: the verdict.</summary>
    public string Verdict => UsablePath switch
    {
        null => "NOT usable here: every open path was refused (exit code 3)",
        UserModeOnlyPath => "usable only through the fallback " + UserModeOnlyCaveat,
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

    public void Write(TextWriter w)
    {
        foreach (var l in Lines())
            w.WriteLine(l);
    }
}
