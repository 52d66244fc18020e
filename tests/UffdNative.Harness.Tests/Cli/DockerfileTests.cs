namespace UffdNative.Harness.Tests.Cli;

/// <summary>One Dockerfile instruction: the keyword and its text with continuations joined.</summary>
public sealed record DockerInstruction(string Keyword, string Arguments, int Line);

/// <summary>A small Dockerfile reader: comments dropped, backslash continuations joined.</summary>
public static class DockerfileReader
{
    public static List<DockerInstruction> Parse(string text)
    {
        var result = new List<DockerInstruction>();
        var lines = text.Replace("\r\n", "\n").Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0 || line.StartsWith('#'))
                continue;
            int start = i + 1;
            var sb = new System.Text.StringBuilder();
            while (line.EndsWith('\\'))
            {
                sb.Append(line[..^1].TrimEnd()).Append(' ');
                do
                {
                    i++;
                    line = i < lines.Length ? lines[i].Trim() : "";
                }
                while (i < lines.Length && line.StartsWith('#'));
            }
            sb.Append(line);
            var full = sb.ToString();
            int sp = full.IndexOf(' ');
            result.Add(new DockerInstruction(full[..sp].ToUpperInvariant(), full[(sp + 1)..].Trim(), start));
        }
        return result;
    }
}

/// <summary>The build context `docker build .` sends: the repository minus what .dockerignore
/// excludes (the patterns this repository uses: `**/`, `*`, and a trailing `/` for a directory).</summary>
public static class DockerContext
{
    public static List<Regex> Patterns(string dockerignore) =>
        dockerignore.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(p =>
            {
                var dir = p.EndsWith('/');
                var body = Regex.Escape(p.TrimEnd('/')).Replace(@"\*\*/", "(.*/)?", StringComparison.Ordinal).Replace(@"\*", "[^/]*", StringComparison.Ordinal);
                return new Regex("^" + body + (dir ? "/.*$" : "(/.*)?$"));
            }).ToList();

    public static bool Excluded(string relativePath, List<Regex> patterns) => patterns.Any(p => p.IsMatch(relativePath));

    /// <summary>Copies the context of <paramref name="root"/> into <paramref name="destination"/>.</summary>
    public static int CopyTo(string root, string destination)
    {
        var patterns = Patterns(File.ReadAllText(Path.Combine(root, ".dockerignore")));
        int n = 0;
        foreach (var file in Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories))
        {
            var rel = Path.GetRelativePath(root, file).Replace('\\', '/');
            if (Excluded(rel, patterns))
                continue;
            var dst = Path.Combine(destination, rel);
            Directory.CreateDirectory(Path.GetDirectoryName(dst)!);
            File.Copy(file, dst);
            n++;
        }
        return n;
    }
}

/// <summary>
/// The Dockerfile, checked without a container engine: pinned base images that match the target
/// framework, a build stage with the native toolchain, the README's (docs/containers.md) build
/// command, and an entrypoint that the build command really produces (it is run here and the
/// entrypoint then runs `probe`, as the image's default command does).
/// </summary>
public sealed partial class DockerfileTests
{
    private static readonly List<DockerInstruction> Instructions = DockerfileReader.Parse(Repo.Read("Dockerfile"));

    private static List<List<DockerInstruction>> Stages()
    {
        var stages = new List<List<DockerInstruction>>();
        foreach (var i in Instructions)
        {
            if (i.Keyword == "FROM")
                stages.Add([]);
            if (stages.Count == 0 && i.Keyword == "ARG")
                continue; // a global build argument (the base images), see GlobalArgs
            Assert.True(stages.Count > 0, $"line {i.Line}: {i.Keyword} before the first FROM");
            stages[^1].Add(i);
        }
        return stages;
    }

    /// <summary>The ARGs before the first FROM with their defaults: the only ones a FROM line may use.</summary>
    public static Dictionary<string, string> GlobalArgs() =>
        Instructions.TakeWhile(i => i.Keyword != "FROM").Where(i => i.Keyword == "ARG")
            .Select(i => i.Arguments.Split('=', 2))
            .ToDictionary(kv => kv[0].Trim(), kv => kv.Length == 2 ? kv[1].Trim() : "");

    /// <summary>The image each FROM names when built without --build-arg: `${NAME}` replaced by its default.</summary>
    public static List<string> DefaultBaseImages()
    {
        var args = GlobalArgs();
        return Instructions.Where(i => i.Keyword == "FROM")
            .Select(i => ArgReference().Replace(Repo.ShellWords(i.Arguments)[0], m =>
            {
                var name = m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Value;
                Assert.True(args.TryGetValue(name, out var value) && value.Length > 0, $"FROM uses ${name}, which has no default in a global ARG");
                return value!;
            }))
            .ToList();
    }

    private static string PublishCommand() =>
        Assert.Single(Stages()[0], i => i.Keyword == "RUN" && i.Arguments.StartsWith("dotnet publish ", StringComparison.Ordinal)).Arguments;

    [Fact]
    public void ReaderJoinsContinuationsAndDropsComments()
    {
        var parsed = DockerfileReader.Parse("# c\nFROM a:1 AS b\nRUN x \\\n    # inner comment\n    && y\nCMD [\"z\"]\n");
        Assert.Equal([("FROM", "a:1 AS b", 2), ("RUN", "x && y", 3), ("CMD", "[\"z\"]", 6)], parsed.Select(p => (p.Keyword, p.Arguments, p.Line)));
    }

    [Fact]
    public void BaseImagesArePinnedToExactVersionsOfTheTargetFramework()
    {
        var froms = Instructions.Where(i => i.Keyword == "FROM").Select(i => Repo.ShellWords(i.Arguments)).ToList();
        Assert.Equal(2, froms.Count);
        Assert.Equal(["AS", "build"], froms[0][1..]);
        // Each base image is a build argument (scripts/container-test.sh substitutes local stand-ins where
        // the registry is unreachable) whose default is the pinned image everyone else builds from.
        Assert.Equal(["${SDK_IMAGE}", "${RUNTIME_IMAGE}"], froms.Select(f => f[0]));
        Assert.Equal(["SDK_IMAGE", "RUNTIME_IMAGE"], GlobalArgs().Keys);
        var pinned = new Regex(@"^mcr\.microsoft\.com/dotnet/(sdk|runtime|runtime-deps):(\d+)\.(\d+)\.(\d+)-[a-z]+$");
        var images = DefaultBaseImages();
        foreach (var image in images)
        {
            Assert.DoesNotContain("latest", image, StringComparison.Ordinal);
            var m = pinned.Match(image);
            Assert.True(m.Success, $"{image} is not pinned to an exact version (repo:MAJOR.MINOR.PATCH-distro)");
            Assert.Equal(Repo.TargetFrameworkVersion, $"{m.Groups[2].Value}.{m.Groups[3].Value}");
        }
        Assert.StartsWith("mcr.microsoft.com/dotnet/sdk:", images[0], StringComparison.Ordinal);
        Assert.StartsWith("mcr.microsoft.com/dotnet/runtime:", images[1], StringComparison.Ordinal);
        // Both stages on the same Ubuntu release (the runners' distribution).
        Assert.Equal(images[0].Split('-')[^1], images[1].Split('-')[^1]);
        // And both are tags Microsoft publishes (PublishedImages cites where each is listed).
        foreach (var image in images)
            Assert.True(PublishedImages.IsKnown(image), $"{image} is not in PublishedImages: check that it is published and add it with its source");
    }

    [Fact]
    public void TheContainerTestSubstitutesExactlyTheseBuildArguments()
    {
        var script = Repo.Read("scripts/container-test.sh");
        foreach (var name in GlobalArgs().Keys)
            Assert.Contains($"--build-arg {name}=", script, StringComparison.Ordinal);
        Assert.DoesNotMatch(@"--build-arg (?!SDK_IMAGE=|RUNTIME_IMAGE=)", script);
    }

    [Fact]
    public void TheBuildStageHasTheNativeToolchainAndTheDefaultCommandIsProbe()
    {
        var build = Stages()[0];
        var install = Assert.Single(build, i => i.Keyword == "RUN" && i.Arguments.Contains("apt-get install", StringComparison.Ordinal));
        var words = Repo.ShellWords(install.Arguments);
        Assert.Contains("gcc", words);
        Assert.Contains("make", words);
        Assert.Contains("libc6-dev", words);
        Assert.True(build.FindIndex(i => i == install) < build.FindIndex(i => i.Arguments.StartsWith("dotnet publish", StringComparison.Ordinal)));

        var final = Stages()[^1];
        var entry = JsonSerializer.Deserialize<string[]>(Assert.Single(final, i => i.Keyword == "ENTRYPOINT").Arguments)!;
        var cmd = JsonSerializer.Deserialize<string[]>(Assert.Single(final, i => i.Keyword == "CMD").Arguments)!;
        Assert.Equal("uffdnative", Path.GetFileName(Assert.Single(entry)));
        Assert.Equal(["probe"], cmd);
    }

    [Fact]
    public void TheBuildCommandIsTheDocumentedOneAndTheOneThePublishScriptUses()
    {
        var command = PublishCommand();
        Assert.Contains(command, Repo.Read("docs/containers.md"), StringComparison.Ordinal);
        Assert.Contains(command, Repo.Read("README.md"), StringComparison.Ordinal);
        var words = Repo.ShellWords(command);
        int o = words.IndexOf("-o");
        Assert.True(o > 0 && o + 1 < words.Count, command);
        var withoutOutput = string.Join(' ', words.Take(o).Concat(words.Skip(o + 2)));
        var script = Repo.Read("scripts/publish.sh").Replace("$CSPROJ", "src/UffdNative.Cli/UffdNative.Cli.csproj", StringComparison.Ordinal);
        Assert.Contains(withoutOutput + " -o artifacts/publish/framework-dependent", script, StringComparison.Ordinal);
        Assert.Contains(withoutOutput + " -o artifacts/publish/framework-dependent", Repo.Read("docs/packaging.md"), StringComparison.Ordinal);
    }

    [Fact]
    public void DockerignoreKeepsHostBuildOutputsOutOfTheImage()
    {
        var patterns = DockerContext.Patterns(Repo.Read(".dockerignore"));
        foreach (var excluded in new[] { "src/UffdNative/bin/Debug/net10.0/UffdNative.dll", "tests/UffdNative.Tests/obj/project.assets.json", "native/build/libuffdshim.so",
                     ".git/HEAD", "nupkg/uffdnative.0.1.0.nupkg", "artifacts/publish/aot/uffdnative", "TestResults/ci/tests.trx",
                     "docs/containers.md" /* rewritten by scripts/container-test.sh: it must not invalidate the build cache */ })
            Assert.True(DockerContext.Excluded(excluded, patterns), $"{excluded} would be sent to the image");
        foreach (var included in new[] { "Dockerfile", "Directory.Build.props", "native/uffd_shim.c", "native/tools/uffd_seccomp_launch.c", "src/UffdNative.Cli/UffdNative.Cli.csproj", "src/UffdNative/Memory/Memory.cs" })
            Assert.False(DockerContext.Excluded(included, patterns), $"{included} would be missing from the image");
    }

    /// <summary>Runs the Dockerfile's build command in a copy of the build context (the repository
    /// minus .dockerignore: no host build outputs, no native/build, no .git), into a temporary
    /// directory instead of /app, then the entrypoint with the image's default command, as the
    /// container would.</summary>
    [Fact]
    public void TheEntrypointExistsInTheBuildOutputAndRunsTheDefaultCommand()
    {
        var words = Repo.ShellWords(PublishCommand());
        int o = words.IndexOf("-o");
        var imageOutput = words[o + 1];
        var final = Stages()[^1];
        var copy = Repo.ShellWords(Assert.Single(final, i => i.Keyword == "COPY").Arguments);
        Assert.Equal(["--from=build", imageOutput], copy[..2]);
        var copyDestination = copy[2];
        var entry = JsonSerializer.Deserialize<string[]>(final.Single(i => i.Keyword == "ENTRYPOINT").Arguments)![0];
        Assert.StartsWith(copyDestination.TrimEnd('/') + "/", entry, StringComparison.Ordinal);
        var relative = entry[(copyDestination.TrimEnd('/').Length + 1)..];

        using var work = new TempDirectory("uffdnative-docker-build-");
        var context = Path.Combine(work.Path, "src");
        var output = Path.Combine(work.Path, "app");
        Assert.True(DockerContext.CopyTo(Repo.Root, context) > 20);
        Assert.False(Directory.Exists(Path.Combine(context, "native", "build")));
        words[o + 1] = output;
        var build = CliRunner.Exec([CliRunner.DotnetHost, .. words.Skip(1)], context, timeoutMs: 480_000);
        Assert.True(build.ExitCode == 0, build.ToString());
        var executable = Path.Combine(output, relative);
        Assert.True(File.Exists(executable), $"{relative} is not in the build output");
        Assert.True((File.GetUnixFileMode(executable) & UnixFileMode.UserExecute) != 0, $"{relative} is not executable");
        Assert.True(File.Exists(Path.Combine(output, "runtimes/linux-x64/native/libuffdshim.so")), "the shim is not in the build output");

        var cmd = JsonSerializer.Deserialize<string[]>(final.Single(i => i.Keyword == "CMD").Arguments)!;
        var env = new Dictionary<string, string> { ["DOTNET_ROOT"] = Path.GetDirectoryName(CliRunner.DotnetHost) ?? "/usr/share/dotnet" };
        var run = CliRunner.Exec([executable, .. cmd, "--json"], output, env);
        Assert.True(run.ExitCode == 0, run.ToString());
        using var report = JsonDocument.Parse(run.Stdout);
        Assert.Equal("uffdnative", report.RootElement.GetProperty("tool").GetString());
        Assert.Equal(KernelVersion.RunningRelease(), report.RootElement.GetProperty("kernelRelease").GetString());
    }

    [GeneratedRegex(@"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")]
    private static partial Regex ArgReference();
}
