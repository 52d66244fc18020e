namespace UffdNative.Harness.Probing;

/// <summary>How an experiment ended.</summary>
public enum FindingKind
{
    /// <summary>The experiment ran and <see cref="Finding.Value"/> says which behaviour the kernel showed.</summary>
    Observed,
    /// <summary>The kernel lacks a feature the behaviour needs (UFFDIO_API refused it): the old behaviour is implied.</summary>
    NotSupported,
    /// <summary>The experiment cannot tell here (no privilege, no swap, no THP, ...): <see cref="Finding.Evidence"/> says why.</summary>
    Undetermined,
    /// <summary>The experiment itself failed unexpectedly (an errno no kernel version should give).</summary>
    Error,
}

/// <summary>
/// What one experiment observed. <see cref="Value"/> is true when the kernel shows the row's *new*
/// behaviour, false for the old one, null when not observed (see <see cref="Kind"/>).
/// <see cref="Observed"/> is the short answer shown in tables and matrices; <see cref="Evidence"/>
/// the raw facts behind it (errnos, pagemap bits, message flags).
/// </summary>
public sealed record Finding(FindingKind Kind, bool? Value, string Observed, string Evidence)
{
    public static Finding Of(bool value, string observed, string evidence = "") => new(FindingKind.Observed, value, observed, evidence);

    /// <summary>An observation whose wording follows its value: whenTrue or whenFalse says what was seen.</summary>
    public static Finding Either(bool value, string whenTrue, string whenFalse, string evidence) => Of(value, value ? whenTrue : whenFalse, evidence);

    public static Finding NotSupported(string observed, string evidence) => new(FindingKind.NotSupported, null, observed, evidence);
    public static Finding Undetermined(string observed, string evidence = "") => new(FindingKind.Undetermined, null, observed, evidence);
    public static Finding Failed(string observed, string evidence = "") => new(FindingKind.Error, null, observed, evidence);

    /// <summary>The value the check should use: the observed one, or old (false) when the feature
    /// is absent; null when nothing can be said.</summary>
    public bool? Effective => Kind switch
    {
        FindingKind.Observed => Value,
        FindingKind.NotSupported => false,
        _ => null,
    };
}

/// <summary>The verdict of a row: the observed answer against what mainline of this version gives.</summary>
public enum Verdict
{
    /// <summary>Same answer as mainline of this version.</summary>
    AsExpected,
    /// <summary>An older version number behaving like a newer mainline (stable/distribution backport).</summary>
    Backported,
    /// <summary>An answer no newer mainline gives either: a regression or an unexpected kernel (flagged).</summary>
    Regressed,
    /// <summary>The experiment could not decide here (reason in the evidence).</summary>
    Undetermined,
    /// <summary>A row with no dated mainline expectation: reported, not judged.</summary>
    Informational,
    /// <summary>The experiment failed (flagged).</summary>
    Error,
    /// <summary>The kernel shows something this model does not know: a feature bit or ioctl it has no rule for
    /// (reported by number or name), or a behaviour it detects but does not model. Not flagged: the kernel is
    /// newer than the model, not wrong.</summary>
    NewerThanModel,
}

public static class VerdictText
{
    /// <summary>The stable JSON spelling.</summary>
    public static string Id(this Verdict v) => v switch
    {
        Verdict.AsExpected => "as-expected",
        Verdict.Backported => "backported",
        Verdict.Regressed => "regressed",
        Verdict.Undetermined => "undetermined",
        Verdict.Informational => "informational",
        Verdict.NewerThanModel => "newer-than-model",
        _ => "error",
    };

    /// <summary>What a person reads.</summary>
    public static string Display(this Verdict v) => v switch
    {
        Verdict.AsExpected => "as expected",
        Verdict.Backported => "backported",
        Verdict.Regressed => "REGRESSED/UNEXPECTED",
        Verdict.Undetermined => "not determined",
        Verdict.Informational => "informational",
        Verdict.NewerThanModel => "newer than the model",
        _ => "ERROR",
    };

    public static Verdict Parse(string id) => id switch
    {
        "as-expected" => Verdict.AsExpected,
        "backported" => Verdict.Backported,
        "regressed" => Verdict.Regressed,
        "undetermined" => Verdict.Undetermined,
        "informational" => Verdict.Informational,
        "newer-than-model" => Verdict.NewerThanModel,
        _ => Verdict.Error,
    };

    public static bool IsFlagged(this Verdict v) => v is Verdict.Regressed or Verdict.Error;

    /// <summary>
    /// Judges an observed value against the mainline answer of this version. mainlineAt(v) gives
    /// the mainline value at version v; versions are the points where mainline changes (Since,
    /// Until). Equal → as expected; equal to the answer of a *newer* mainline → backported;
    /// otherwise regressed/unexpected.
    /// </summary>
    public static Verdict Judge(bool? effective, bool expected, KernelVersion running, Func<KernelVersion, bool> mainlineAt, IEnumerable<KernelVersion> changePoints)
    {
        if (effective is not { } v)
            return Verdict.Undetermined;
        if (v == expected)
            return Verdict.AsExpected;
        var now = new KernelVersion(running.Major, running.Minor);
        foreach (var p in changePoints.Append(new KernelVersion(99, 0)))
            if (p > now && mainlineAt(p) == v)
                return Verdict.Backported;
        return Verdict.Regressed;
    }
}
