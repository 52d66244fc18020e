using System.Text.Json.Serialization;

namespace UffdNative.Harness.Probing;

/// <summary>One way of opening a uffd and what the kernel said.</summary>
public sealed record OpenPathResult(string Path, bool Ok, string Errno, string Detail, string Remedy);

/// <summary>UFFDIO_REGISTER of one memory type in one mode: the errno and the returned ioctl mask.</summary>
public sealed record RegisterMaskResult(string Memory, string Mode, string Errno, ulong Ioctls, string Explanation);

/// <summary>What <c>uffdnative probe</c> reports (JSON schema version <see cref="SchemaVersion"/>).</summary>
public sealed record ProbeReport
{
    public int SchemaVersion { get; init; } = 1;
    public string Tool { get; init; } = "uffdnative";
    public string KernelRelease { get; init; } = "";
    public string Kernel { get; init; } = "";
    public List<OpenPathResult> OpenPaths { get; init; } = [];
    public ulong Features { get; init; }
    public List<string> FeatureNames { get; init; } = [];
    public ulong ApiIoctls { get; init; }
    public string? ApiError { get; init; }
    public List<RegisterMaskResult> RegisterMasks { get; init; } = [];
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(ProbeReport))]
public sealed partial class ProbeJsonContext : JsonSerializerContext;
