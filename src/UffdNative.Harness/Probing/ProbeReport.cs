using System.Text.Json;
using System.Text.Json.Serialization;

namespace UffdNative.Harness.Probing;

/// <summary>One way of opening a uffd and what the kernel said (reference §1.1).</summary>
public sealed record OpenPathResult(string Path, bool Ok, string Errno, string Detail, string Remedy);

/// <summary>UFFDIO_REGISTER of one memory type in one mode: what the kernel answered, what mainline of
/// this version answers, and the verdict.</summary>
public sealed record RegisterMaskResult(string Memory, string Mode, string Errno, ulong Ioctls, string ExpectedErrno, ulong ExpectedIoctls, string Verdict, string Explanation);

/// <summary>The /dev/userfaultfd node as seen from this process.</summary>
public sealed record DeviceInfo(bool Exists, string Mode, string DevNumber, bool KernelHasDevice, string Access);

public sealed record HugePagesInfo(long SizeKb, long Total, long Free, string Note);

/// <summary>Facts about the process and host that decide what uffd can do here.</summary>
public sealed record EnvironmentReport
{
    public string KernelRelease { get; init; } = "";
    public string KernelVersion { get; init; } = "";
    public string Architecture { get; init; } = "";
    public long PageSize { get; init; }
    public int Uid { get; init; }
    public bool Root { get; init; }
    public bool CapSysPtrace { get; init; }
    public int? UnprivilegedUserfaultfd { get; init; }
    public DeviceInfo Device { get; init; } = new(false, "", "", false, "");
    public int SeccompMode { get; init; }
    public bool NoNewPrivs { get; init; }
    public List<string> ContainerHints { get; init; } = [];
    public string Virtualization { get; init; } = "";
    public string Thp { get; init; } = "";
    public string ThpDefrag { get; init; } = "";
    public string ShmemThp { get; init; } = "";
    public HugePagesInfo HugePages { get; init; } = new(0, 0, 0, "");
    public bool Swap { get; init; }
    public int? FaultAroundBytes { get; init; }
    public int Cpus { get; init; }
    public string Runtime { get; init; } = "";
}

/// <summary>UFFDIO_API: the reported features, what mainline of this version reports, the verdict.</summary>
public sealed record FeatureReport
{
    public ulong Supported { get; init; }
    public List<string> Names { get; init; } = [];
    public ulong Expected { get; init; }
    public string Verdict { get; init; } = "";
    public ulong ApiIoctls { get; init; }
    /// <summary>Feature and ioctl bits this kernel reports that the model has no rules for, each by number
    /// ("feature bit 17: unknown to this model (UFFD_FEATURE_RWP, Linux 7.3+)").</summary>
    public List<string> Unmodelled { get; init; } = [];
    /// <summary>Why UFFDIO_API could not be asked (no uffd could be opened), or null.</summary>
    public string? Error { get; init; }
}

/// <summary>One behaviour row: a real experiment, its observed answer, mainline's answer, the verdict.</summary>
public sealed record BehaviourResult
{
    public string Id { get; init; } = "";
    public string Section { get; init; } = "";
    public string Title { get; init; } = "";
    /// <summary>The KernelProfile switch this row detects, or null.</summary>
    public string? Switch { get; init; }
    /// <summary>observed | not-supported | undetermined | error.</summary>
    public string Kind { get; init; } = "";
    /// <summary>What the experiment showed: true = the new behaviour, false = the old, null = not observed.</summary>
    public bool? Value { get; init; }
    /// <summary>Value, or false (old) when the kernel lacks the feature; null when undetermined.</summary>
    public bool? Effective { get; init; }
    public string Observed { get; init; } = "";
    /// <summary>What the observation means ("new: ... (5.19+)").</summary>
    public string Meaning { get; init; } = "";
    public string Evidence { get; init; } = "";
    /// <summary>Mainline version that introduced the new behaviour; null: no dated expectation.</summary>
    public string? Since { get; init; }
    public string? Until { get; init; }
    /// <summary>Mainline of this kernel's version: true = new, false = old, null = no expectation.</summary>
    public bool? Mainline { get; init; }
    public string MainlineText { get; init; } = "";
    public string Verdict { get; init; } = "";
    public long DurationMs { get; init; }
}

/// <summary>One environment fact (reference §0b): what this machine showed, mainline's default, the
/// evidence, and the setting that explains a difference.</summary>
public sealed record FactResult
{
    public string Id { get; init; } = "";
    public string Title { get; init; } = "";
    /// <summary>predicts | applicability: whether the model's predictions depend on it.</summary>
    public string Use { get; init; } = "";
    /// <summary>The detected value; null when the experiment could not decide (the profile keeps mainline's).</summary>
    public string? Value { get; init; }
    public string? Mainline { get; init; }
    public bool DiffersFromMainline { get; init; }
    public string Evidence { get; init; } = "";
    public string? Cause { get; init; }
}

public sealed record ProfileSummary
{
    public string Origin { get; init; } = "";
    public string Prior { get; init; } = "";
    /// <summary>"mainline 6.18 + zero page off (pvm_no_zero_page=1)": the detected profile in words.</summary>
    public string Description { get; init; } = "";
    public SortedDictionary<string, bool> Detected { get; init; } = [];
    public SortedDictionary<string, bool> Mainline { get; init; } = [];
}

public sealed record ProbeSummary
{
    public int AsExpected { get; init; }
    public int Backported { get; init; }
    public int Regressed { get; init; }
    public int Undetermined { get; init; }
    public int Informational { get; init; }
    public int Errors { get; init; }
    /// <summary>Rows and the feature mask showing what this model does not know (not flagged).</summary>
    public int NewerThanModel { get; init; }
    public long DurationMs { get; init; }
}

/// <summary>
/// What <c>uffdnative probe</c> reports. JSON schema version <see cref="CurrentSchema"/>, documented
/// in docs/probe.md. Readers must reject other schema versions (compare does).
/// </summary>
public sealed record ProbeReport
{
    public const int CurrentSchema = 3;

    public int SchemaVersion { get; init; } = CurrentSchema;
    public string Tool { get; init; } = "uffdnative";
    public string ToolVersion { get; init; } = "";
    public string GeneratedAt { get; init; } = "";
    public string KernelRelease { get; init; } = "";
    public string Kernel { get; init; } = "";
    /// <summary>The mainline version whose answers the verdicts compare with (major.minor).</summary>
    public string MainlineVersion { get; init; } = "";
    public EnvironmentReport Environment { get; init; } = new();
    public List<OpenPathResult> OpenPaths { get; init; } = [];
    /// <summary>device | syscall | user-mode-only | null: the path the experiments used.</summary>
    public string? UsablePath { get; init; }
    /// <summary>What to change to get the missing paths, or "".</summary>
    public string OpenAdvice { get; init; } = "";
    public FeatureReport Features { get; init; } = new();
    public List<RegisterMaskResult> RegisterMasks { get; init; } = [];
    public string HugetlbNote { get; init; } = "";
    public List<BehaviourResult> Behaviours { get; init; } = [];
    /// <summary>The environment facts the model depends on, each detected (schema 3).</summary>
    public List<FactResult> Facts { get; init; } = [];
    public ProfileSummary Profile { get; init; } = new();
    public ProbeSummary Summary { get; init; } = new();

    /// <summary>True when any row (feature, register or behaviour) is regressed/unexpected or errored.</summary>
    public bool HasFlagged => FlaggedItems().Count > 0;

    /// <summary>What makes probe exit 1, named: the summary prints the same list, so the two always agree.</summary>
    public List<string> FlaggedItems() =>
        Behaviours.Where(b => VerdictText.Parse(b.Verdict).IsFlagged()).Select(b => b.Id)
            .Concat(RegisterMasks.Where(m => VerdictText.Parse(m.Verdict).IsFlagged()).Select(m => $"register {m.Memory} {m.Mode}"))
            .Concat(Features.Error is null && VerdictText.Parse(Features.Verdict).IsFlagged() ? ["features"] : [])
            .ToList();

    public string ToJson() => JsonSerializer.Serialize(this, ProbeJsonContext.Default.ProbeReport);

    /// <summary>Parses a report; throws <see cref="FormatException"/> with one clear line on malformed
    /// JSON, a different tool or an unsupported schema version.</summary>
    public static ProbeReport FromJson(string json, string source = "input")
    {
        ProbeReport? r;
        try
        {
            r = JsonSerializer.Deserialize(json, ProbeJsonContext.Default.ProbeReport);
        }
        catch (JsonException e)
        {
            throw new FormatException($"{source}: not a probe report (malformed JSON{(e.LineNumber is { } l ? $" at line {l + 1}" : "")}: {FirstLine(e.Message)})");
        }
        catch (Exception e) when (e is NotSupportedException or InvalidOperationException or ArgumentException)
        {
            throw new FormatException($"{source}: not a probe report ({FirstLine(e.Message)})");
        }
        if (r is null)
            throw new FormatException($"{source}: not a probe report (JSON null)");
        if (r.Tool != "uffdnative")
            throw new FormatException($"{source}: not a uffdnative probe report (tool '{r.Tool}')");
        if (r.SchemaVersion != CurrentSchema)
            throw new FormatException($"{source}: probe report schema version {r.SchemaVersion} is not supported (this uffdnative reads version {CurrentSchema})");
        if (string.IsNullOrEmpty(r.KernelRelease))
            throw new FormatException($"{source}: probe report has no kernelRelease");
        // The source-generated reader sets an init-only member the document lacks to null, not to its
        // initializer: an absent section (a trimmed recording keeps only its behaviours) reads as empty.
        r = r with
        {
            Environment = r.Environment ?? new(),
            OpenPaths = r.OpenPaths ?? [],
            Features = r.Features ?? new(),
            RegisterMasks = r.RegisterMasks ?? [],
            Behaviours = r.Behaviours ?? [],
            Facts = r.Facts ?? [],
            Profile = r.Profile ?? new(),
            Summary = r.Summary ?? new(),
        };
        r = r with
        {
            Environment = r.Environment with { ContainerHints = r.Environment.ContainerHints ?? [] },
            Features = r.Features with { Names = r.Features.Names ?? [] },
            Profile = r.Profile with { Detected = r.Profile.Detected ?? [], Mainline = r.Profile.Mainline ?? [] },
        };
        // Elements of lists are not covered by the nullable annotations the serializer respects.
        if (r.OpenPaths.Any(x => x is null) || r.RegisterMasks.Any(x => x is null) || r.Behaviours.Any(x => x is null) || r.Facts.Any(x => x is null)
            || r.Features.Names.Any(x => x is null) || r.Environment.ContainerHints.Any(x => x is null)
            || r.Profile.Detected is null || r.Profile.Mainline is null)
            throw new FormatException($"{source}: not a probe report (a list holds null)");
        if (r.Behaviours.Any(b => string.IsNullOrEmpty(b.Id)) || r.Facts.Any(f => string.IsNullOrEmpty(f.Id)))
            throw new FormatException($"{source}: not a probe report (a behaviour or fact without its id)");
        // Text a trimmed recording leaves out (detector evidence keeps a few fields per row) reads as "": the reader
        // leaves an absent init-only member null.
        r = r with
        {
            ToolVersion = r.ToolVersion ?? "", GeneratedAt = r.GeneratedAt ?? "", Kernel = r.Kernel ?? "",
            MainlineVersion = r.MainlineVersion ?? "", OpenAdvice = r.OpenAdvice ?? "", HugetlbNote = r.HugetlbNote ?? "",
            Environment = r.Environment with
            {
                KernelRelease = r.Environment.KernelRelease ?? "", KernelVersion = r.Environment.KernelVersion ?? "",
                Architecture = r.Environment.Architecture ?? "", Virtualization = r.Environment.Virtualization ?? "",
                Thp = r.Environment.Thp ?? "", ThpDefrag = r.Environment.ThpDefrag ?? "", ShmemThp = r.Environment.ShmemThp ?? "",
                Runtime = r.Environment.Runtime ?? "", Device = r.Environment.Device ?? new(false, "", "", false, ""),
                HugePages = r.Environment.HugePages ?? new(0, 0, 0, ""),
            },
            Features = r.Features with { Verdict = r.Features.Verdict ?? "", Unmodelled = r.Features.Unmodelled ?? [] },
            Profile = r.Profile with { Origin = r.Profile.Origin ?? "", Prior = r.Profile.Prior ?? "", Description = r.Profile.Description ?? "" },
            Behaviours = [.. r.Behaviours.Select(b => b with
            {
                Section = b.Section ?? "", Title = b.Title ?? "", Kind = b.Kind ?? "", Observed = b.Observed ?? "", Meaning = b.Meaning ?? "",
                Evidence = b.Evidence ?? "", MainlineText = b.MainlineText ?? "", Verdict = b.Verdict ?? "",
            })],
            Facts = [.. r.Facts.Select(f => f with { Title = f.Title ?? "", Use = f.Use ?? "", Evidence = f.Evidence ?? "" })],
        };
        return r;
    }

    private static string FirstLine(string s)
    {
        int i = s.IndexOfAny(['\r', '\n']);
        return i < 0 ? s : s[..i];
    }
}

// A report from outside never binds null where the type says there is always a value, and never lacks a
// constructor parameter: such input is refused as malformed instead of failing later in compare (NRE).
[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip,
    RespectNullableAnnotations = true, RespectRequiredConstructorParameters = true)]
[JsonSerializable(typeof(ProbeReport))]
public sealed partial class ProbeJsonContext : JsonSerializerContext;
