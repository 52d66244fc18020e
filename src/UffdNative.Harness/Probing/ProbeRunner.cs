using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using UffdNative.Harness.Model;

namespace UffdNative.Harness.Probing;

public sealed record ProbeOptions
{
    /// <summary>May reserve huge pages on this machine (restored afterwards). Pass it on a host only
    /// on purpose, or inside a throwaway guest.</summary>
    public bool AllowHostChanges { get; init; }

    /// <summary>Run only these behaviour rows (ids); null: all.</summary>
    public IReadOnlyCollection<string>? Rows { get; init; }

    /// <summary>Skip the registration-mask section.</summary>
    public bool SkipRegister { get; init; }
}

/// <summary>
/// <c>uffdnative probe</c>: environment, open paths, features, registration masks and every
/// behaviour row (switch detectors first), each judged against mainline of this version.
/// </summary>
public static class ProbeRunner
{
    public static ProbeReport Run(ProbeOptions? options = null)
    {
        options ??= new ProbeOptions();
        var total = Stopwatch.StartNew();
        var env = EnvironmentProbe.Collect();
        var kernel = KernelVersion.Running();
        var now = new KernelVersion(kernel.Major, kernel.Minor);
        var report = new ProbeReport
        {
            ToolVersion = typeof(ProbeRunner).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "",
            GeneratedAt = DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            KernelRelease = env.KernelRelease,
            Kernel = kernel.ToString(),
            MainlineVersion = now.ToString(),
            Environment = env,
        };

        var paths = OpenPaths(kernel);
        using var lab = new Lab();
        string? usable = lab.FullPath switch
        {
            UffdOpenPath.Device => "device",
            UffdOpenPath.Syscall => "syscall",
            _ => paths.Any(p => p.Path == "user-mode-only" && p.Ok) ? "user-mode-only" : null,
        };
        report = report with { OpenPaths = paths, UsablePath = usable, OpenAdvice = Advice(paths, usable) };
        if (!lab.CanOpen)
        {
            return report with
            {
                Features = new FeatureReport { Error = lab.OpenError ?? "no userfaultfd can be opened" },
                Summary = new ProbeSummary { DurationMs = total.ElapsedMilliseconds },
            };
        }

        report = report with { Features = Features(lab, now) };

        if (!options.SkipRegister)
        {
            var (usableHuge, restore, note) = RegisterProbe.PrepareHugePages(options.AllowHostChanges);
            try
            {
                report = report with { RegisterMasks = RegisterProbe.Run(lab, usableHuge), HugetlbNote = note };
            }
            finally
            {
                restore?.Invoke();
            }
        }

        var rows = new List<BehaviourResult>();
        var switchFindings = new List<(ProfileSwitch, Finding)>();
        foreach (var row in BehaviourRows.All)
        {
            if (options.Rows is { } only && !only.Contains(row.Id) && row.Switch is null)
                continue;
            if (options.Rows is { } only2 && !only2.Contains(row.Id))
            {
                // Switch rows always run (the profile needs them), but only selected ones are shown.
                switchFindings.Add((KernelProfile.Describe(row.Switch!), ProfileDetector.RunOne(lab, row.Switch!)));
                continue;
            }
            var sw = Stopwatch.StartNew();
            Finding f;
            try
            {
                f = row.Run(lab);
            }
            catch (Exception e) when (e is UffdException or IOException or InvalidOperationException or UnauthorizedAccessException)
            {
                f = Finding.Failed($"experiment failed: {e.Message}", e.GetType().Name);
            }
            if (row.Switch is { } name)
                switchFindings.Add((KernelProfile.Describe(name), f));
            rows.Add(ToResult(row, f, now, sw.ElapsedMilliseconds));
        }

        var detected = ProfileDetector.FromFindings(lab, switchFindings);
        var profile = new ProfileSummary
        {
            Origin = detected.Profile.Origin,
            Prior = detected.Prior.Origin,
            Description = detected.Summary,
            Detected = new SortedDictionary<string, bool>(detected.Profile.Values.ToDictionary(kv => kv.Key, kv => kv.Value), StringComparer.Ordinal),
            Mainline = new SortedDictionary<string, bool>(detected.Prior.Values.ToDictionary(kv => kv.Key, kv => kv.Value), StringComparer.Ordinal),
        };
        var verdicts = rows.Select(r => VerdictText.Parse(r.Verdict)).ToList();
        return report with
        {
            Behaviours = rows,
            Facts = detected.Facts.Select(ToResult).ToList(),
            Profile = profile,
            Summary = new ProbeSummary
            {
                AsExpected = verdicts.Count(v => v == Verdict.AsExpected),
                Backported = verdicts.Count(v => v == Verdict.Backported),
                Regressed = verdicts.Count(v => v == Verdict.Regressed),
                Undetermined = verdicts.Count(v => v == Verdict.Undetermined),
                Informational = verdicts.Count(v => v == Verdict.Informational),
                Errors = verdicts.Count(v => v == Verdict.Error),
                NewerThanModel = verdicts.Count(v => v == Verdict.NewerThanModel) + (report.Features.Verdict == Verdict.NewerThanModel.Id() ? 1 : 0),
                DurationMs = total.ElapsedMilliseconds,
            },
        };
    }

    public static FactResult ToResult(FactFinding f) => new()
    {
        Id = f.Name,
        Title = f.Spec.Title,
        Use = f.Spec.Use == FactUse.Predicts ? "predicts" : "applicability",
        Value = f.Value,
        Mainline = f.Spec.Mainline,
        DiffersFromMainline = f.DiffersFromMainline,
        Evidence = f.Evidence,
        Cause = f.Cause,
    };

    public static BehaviourResult ToResult(RowSpec row, Finding f, KernelVersion now, long ms)
    {
        bool? mainline = row.Since is null ? null : row.MainlineAt(now);
        Verdict verdict = f.Kind switch
        {
            FindingKind.Error => Verdict.Error,
            FindingKind.Undetermined => Verdict.Undetermined,
            _ when mainline is not { } exp => Verdict.Informational,
            _ => VerdictText.Judge(f.Effective, mainline.Value, now, row.MainlineAt, row.ChangePoints),
        };
        string since = row.Since is { } s ? $" ({s}+ behaviour)" : "";
        string meaning = f.Effective switch
        {
            true => $"new: {row.New}{since}",
            false when f.Kind == FindingKind.NotSupported => $"old: {row.Old} (feature absent)",
            false => $"old: {row.Old}",
            _ => "",
        };
        if (row.Until is { } until && f.Effective is { } eff)
            meaning += eff ? $" (mainline {row.Since}–{until})" : $" (mainline before {row.Since} and from {until})";
        return new BehaviourResult
        {
            Id = row.Id,
            Section = row.Section,
            Title = row.Title,
            Switch = row.Switch,
            Kind = f.Kind switch
            {
                FindingKind.Observed => "observed",
                FindingKind.NotSupported => "not-supported",
                FindingKind.Undetermined => "undetermined",
                _ => "error",
            },
            Value = f.Value,
            Effective = f.Effective,
            Observed = f.Observed,
            Meaning = meaning,
            Evidence = f.Evidence,
            Since = row.Since?.ToString(),
            Until = row.Until?.ToString(),
            Mainline = mainline,
            MainlineText = mainline switch
            {
                true => $"new: {row.New}",
                false => $"old: {row.Old}",
                _ => "no dated expectation",
            },
            Verdict = verdict.Id(),
            DurationMs = ms,
        };
    }

    public static List<OpenPathResult> OpenPaths(KernelVersion kernel)
    {
        var list = new List<OpenPathResult>();
        foreach (var (path, name) in new[] { (UffdOpenPath.Syscall, "syscall"), (UffdOpenPath.SyscallUserModeOnly, "user-mode-only"), (UffdOpenPath.Device, "device") })
        {
            int fd = Userfaultfd.OpenRaw(path, Uffd.OCloexec | Uffd.ONonblock, out int stage);
            if (fd >= 0)
            {
                new SafeFdHandle(fd).Dispose();
                list.Add(new OpenPathResult(name, true, "OK", "", ""));
            }
            else
            {
                var (d, r) = Remedies.Open(path, -fd, stage, kernel);
                list.Add(new OpenPathResult(name, false, Errno.Name(-fd), d, r));
            }
        }
        return list;
    }

    public static string Advice(IReadOnlyList<OpenPathResult> paths, string? usable)
    {
        var failed = paths.Where(p => !p.Ok).ToList();
        if (failed.Count == 0)
            return "";
        var parts = failed.Select(p => $"{p.Path}: {p.Errno} — {p.Detail}; to change: {p.Remedy}").ToList();
        parts.Add(usable switch
        {
            "user-mode-only" => "continuing with user-mode-only uffds: user-space faults work; kernel-mode faults (read(2) into a registered range) fail with EFAULT instead of producing a message, and EVENT_FORK needs CAP_SYS_PTRACE",
            null => "no path works: userfaultfd cannot be used here",
            var p => $"continuing with the {p} path",
        });
        return string.Join("\n", parts);
    }

    /// <summary>The UFFDIO_API ioctls (on the fd) the model knows: REGISTER, UNREGISTER, API.</summary>
    public const ulong ModelledApiIoctls = (ulong)(UffdIoctls.Register | UffdIoctls.Unregister | UffdIoctls.Api);

    /// <summary>UFFDIO_API's answer judged on the bits the model has rules for (<see cref="KernelProfile.ModelledFeatures"/>):
    /// those are as expected, backported or regressed as before. Every other bit — one the binding can name (RWP,
    /// 7.3) or one nobody here knows — is listed by number ("feature bit 17: unknown to this model") and makes the
    /// verdict "newer than the model", which is not flagged: the kernel is newer, not wrong.</summary>
    public static FeatureReport Features(Lab lab, KernelVersion now)
    {
        ulong got = (ulong)lab.Supported;
        ulong ioctls;
        using (var u = Userfaultfd.Open())
            ioctls = (ulong)u.ApiIoctls;
        return JudgeFeatures(got, ioctls, now);
    }

    public static FeatureReport JudgeFeatures(ulong got, ulong ioctls, KernelVersion now)
    {
        ulong expected = ExpectedFeatures(now) & KernelProfile.ModelledFeatures;
        ulong modelled = got & KernelProfile.ModelledFeatures;
        Verdict v = modelled == expected ? Verdict.AsExpected : Verdict.Regressed;
        if (v != Verdict.AsExpected)
            foreach (var f in UffdFeatureInfo.All.Select(f => f.Since).Append(new KernelVersion(99, 0)).Distinct())
                if (f > now && (ExpectedFeatures(f) & KernelProfile.ModelledFeatures) == modelled)
                    v = Verdict.Backported;
        var unmodelled = UnmodelledBits(got & ~KernelProfile.ModelledFeatures, ioctls & ~ModelledApiIoctls);
        // A version after the newest the switch table was read against: what changed since is unknown here.
        if (now > KernelProfile.NewestKnown)
            unmodelled.Add($"kernel {now}: newer than the model (its switch table reads mainline through {KernelProfile.NewestKnown}); later changes are not modelled");
        if (v == Verdict.AsExpected && unmodelled.Count > 0)
            v = Verdict.NewerThanModel;
        return new FeatureReport
        {
            Supported = got,
            Names = UffdFeatureInfo.All.Where(f => (got & (ulong)f.Feature) != 0).Select(f => f.CName).ToList(),
            Expected = expected,
            Verdict = v.Id(),
            ApiIoctls = ioctls,
            Unmodelled = unmodelled,
        };
    }

    /// <summary>"feature bit 17: unknown to this model (UFFD_FEATURE_RWP, Linux 7.3+)", "ioctl bit 10: …" —
    /// by number always, with the name where the binding has one.</summary>
    public static List<string> UnmodelledBits(ulong features, ulong ioctls)
    {
        var list = new List<string>();
        for (int b = 0; b < 64; b++)
        {
            if ((features & (1UL << b)) == 0)
                continue;
            var info = UffdFeatureInfo.All.FirstOrDefault(f => (ulong)f.Feature == 1UL << b);
            list.Add($"feature bit {b}: unknown to this model" + (info is null ? "" : $" ({info.CName}, Linux {info.Since}+)"));
        }
        for (int b = 0; b < 64; b++)
        {
            if ((ioctls & (1UL << b)) == 0)
                continue;
            string? name = Enum.IsDefined(typeof(UffdIoctls), 1UL << b) ? ((UffdIoctls)(1UL << b)).ToString() : null;
            list.Add($"UFFDIO_API ioctl bit {b}: unknown to this model" + (name is null ? "" : $" ({name})"));
        }
        return list;
    }

    public static ulong ExpectedFeatures(KernelVersion v) =>
        UffdFeatureInfo.All.Where(f => v >= f.Since).Aggregate(0UL, (m, f) => m | (ulong)f.Feature);
}
