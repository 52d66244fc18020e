namespace UffdNative.Harness.Tests.Cli;

/// <summary>
/// The container images this repository names (the Dockerfile's default base images, any image a
/// workflow job runs in or pulls), each known to be published, with where it is listed. A structural
/// test cannot ask a registry, so an image enters this list only with its source; DockerfileTests and
/// WorkflowTests refuse any image not in it. (The workflow's `kernel-matrix` job once ran in
/// `sdk:10.0.401-bookworm-slim`, a tag that does not exist: <see cref="NotPublished"/>.)
/// </summary>
public static class PublishedImages
{
    /// <param name="Image">registry/repository:tag</param>
    /// <param name="ListedAt">where the tag is listed by its publisher</param>
    /// <param name="Evidence">what was seen of this exact tag, and when</param>
    public sealed record Entry(string Image, string ListedAt, string Evidence);

    public static readonly IReadOnlyList<Entry> All =
    [
        new("mcr.microsoft.com/dotnet/sdk:10.0.401-noble",
            ListedAt: "the registry's tag list https://mcr.microsoft.com/v2/dotnet/sdk/tags/list, and README.sdk.md \"Full Tag Listing\" of " +
                      "github.com/dotnet/dotnet-docker (rows `<SDK version>-noble`, Ubuntu 24.04, the default Linux tag since .NET 10; " +
                      "e.g. `10.0.101-noble` in its December 2025 revision); pattern: dotnet-docker documentation/supported-tags.md (fixed version tags)",
            Evidence: "manifest list sha256:35d40304542c8689331f8cab17c65926cdf48fe711e289321d71924b230a7d29: public repositories pin this tag at this " +
                      "digest in their Dockerfiles (one records resolving it from the registry on 2026-09-28); SDK 10.0.401 is the SDK this repository " +
                      "is built with (runtime 10.0.12)"),
        new("mcr.microsoft.com/dotnet/runtime:10.0.12-noble",
            ListedAt: "the registry's tag list https://mcr.microsoft.com/v2/dotnet/runtime/tags/list, and README.runtime.md \"Full Tag Listing\" of " +
                      "github.com/dotnet/dotnet-docker (rows `<runtime version>-noble`)",
            Evidence: "manifest list sha256:ff17a18b639a0327e52c7c296fa2e1abe6e03eb61d8121a8ef67cc6aa430a27e: public repositories pin this tag at this " +
                      "digest (one records resolving it from the registry on 2026-09-28); 10.0.12 is the runtime of SDK 10.0.401"),
    ];

    /// <summary>Tags that do not exist, with why: a guard against their coming back.</summary>
    public static readonly IReadOnlyDictionary<string, string> NotPublished = new Dictionary<string, string>
    {
        ["mcr.microsoft.com/dotnet/sdk:10.0.401-bookworm-slim"] =
            "Microsoft publishes no Debian tags for .NET 10: the .NET 10 rows of dotnet-docker's README.sdk.md are noble, noble-aot, alpine and " +
            "azurelinux only (bookworm-slim rows exist for 8.0 and 9.0); .NET 10's default images are Ubuntu (learn.microsoft.com, " +
            ".NET 10 breaking change \"Default .NET images use Ubuntu\")",
    };

    public static bool IsKnown(string image) => All.Any(e => e.Image == image);
}
