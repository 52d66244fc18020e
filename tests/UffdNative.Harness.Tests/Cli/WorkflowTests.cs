using YamlDotNet.RepresentationModel;

namespace UffdNative.Harness.Tests.Cli;

/// <summary>
/// .github/workflows/ci.yml, checked without GitHub: it parses as YAML; it has the jobs the project
/// promises (tests as root on ubuntu-22.04 and ubuntu-24.04, an unprivileged job given the device
/// with setfacl, the container test with the real base images, the qemu kernel matrix fanned out per
/// kernel and merged by `uffdnative compare`, artifacts for the probe JSON of every runner and the
/// matrix Markdown); every repository path a step names exists; every option it passes to
/// scripts/kernel-matrix.sh, scripts/container-test.sh and scripts/publish.sh is one those scripts
/// accept; every `uffdnative ...` command line in it parses against the real CLI; and every container
/// image it names is one known to be published (<see cref="PublishedImages"/>).
/// </summary>
public sealed partial class WorkflowTests
{
    private static readonly YamlMappingNode Workflow = Load();

    private static YamlMappingNode Load()
    {
        var yaml = new YamlStream();
        using var reader = new StringReader(Repo.Read(".github/workflows/ci.yml"));
        yaml.Load(reader);
        return (YamlMappingNode)Assert.Single(yaml.Documents).RootNode;
    }

    private static YamlMappingNode Map(YamlNode node, string key) => (YamlMappingNode)Child(node, key);

    private static YamlSequenceNode Seq(YamlNode node, string key) => (YamlSequenceNode)Child(node, key);

    private static YamlNode Child(YamlNode node, string key) => ((YamlMappingNode)node).Children[new YamlScalarNode(key)];

    private static string? Scalar(YamlNode node, string key) =>
        ((YamlMappingNode)node).Children.TryGetValue(new YamlScalarNode(key), out var v) ? ((YamlScalarNode)v).Value : null;

    private static IEnumerable<(string Job, YamlMappingNode Step)> Steps() =>
        Map(Workflow, "jobs").Children.SelectMany(j => Seq(j.Value, "steps").Children.Select(s => (((YamlScalarNode)j.Key).Value!, (YamlMappingNode)s)));

    private static IEnumerable<(string Job, string Command)> RunCommands() =>
        Steps().Where(s => Scalar(s.Step, "run") is not null)
            .SelectMany(s => Scalar(s.Step, "run")!.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0).Select(l => (s.Job, l)));

    private static YamlMappingNode Job(string name) => Map(Map(Workflow, "jobs"), name);

    private static List<string> Uploads(string job) =>
        Seq(Job(job), "steps").Children.Cast<YamlMappingNode>()
            .Where(s => Scalar(s, "uses")?.StartsWith("actions/upload-artifact@", StringComparison.Ordinal) == true)
            .SelectMany(s => Scalar(Map(s, "with"), "path")!.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .ToList();

    [Fact]
    public void ItRunsOnPushAndPullRequestsWithTheDocumentedJobs()
    {
        var on = Map(Workflow, "on");
        Assert.Contains(new YamlScalarNode("push"), on.Children.Keys);
        Assert.Contains(new YamlScalarNode("pull_request"), on.Children.Keys);
        Assert.Equal(["test", "unprivileged", "docker", "package", "kernel-matrix", "kernel-matrix-merge"], Map(Workflow, "jobs").Children.Keys.Select(k => ((YamlScalarNode)k).Value));
        foreach (var (job, step) in Steps())
            if (Scalar(step, "uses") is { } uses)
                Assert.Matches(@"^actions/[a-z-]+@v\d+$", uses); // pinned to a major version, never a branch
        foreach (var j in Map(Workflow, "jobs").Children)
            Assert.NotNull(Scalar(j.Value, "timeout-minutes"));
    }

    [Fact]
    public void TheTestJobRunsTheSuiteAsRootOnBothUbuntuRunnersAndUploadsEachProbe()
    {
        var test = Job("test");
        var os = ((YamlSequenceNode)Map(Map(test, "strategy"), "matrix").Children[new YamlScalarNode("os")]).Children.Select(n => ((YamlScalarNode)n).Value);
        Assert.Equal(["ubuntu-22.04", "ubuntu-24.04"], os);
        Assert.Equal("${{ matrix.os }}", Scalar(test, "runs-on"));
        var runs = RunCommands().Where(r => r.Job == "test").Select(r => r.Command).ToList();
        // The README's test command (as .ci/run runs it) and the soak, as root. Not .ci/run itself: its
        // extras, the kernel matrix and the container test, are jobs of their own here.
        Assert.Contains(runs, r => r.StartsWith("sudo -E env \"PATH=$PATH\" \"DOTNET_ROOT=$DOTNET_ROOT\" dotnet test ", StringComparison.Ordinal)
            && Repo.Read(".ci/run").Contains(r[r.IndexOf("dotnet test ", StringComparison.Ordinal)..].Replace("TestResults/ci", "\"$results\"", StringComparison.Ordinal), StringComparison.Ordinal));
        Assert.Contains("sudo -E env \"PATH=$PATH\" \"DOTNET_ROOT=$DOTNET_ROOT\" bash .ci/soak.sh", runs);
        Assert.DoesNotContain(runs, r => r.Contains(".ci/run", StringComparison.Ordinal) || r.Contains("kernel-matrix.sh", StringComparison.Ordinal));
        Assert.Contains(runs, r => r.StartsWith("sudo ", StringComparison.Ordinal) && r.Contains("uffdnative probe --json > probe-${{ matrix.os }}.json", StringComparison.Ordinal));
        Assert.Equal(["probe-${{ matrix.os }}.json"], Uploads("test"));
    }

    [Fact]
    public void TheUnprivilegedJobGrantsTheDeviceWithSetfaclAndProbesWithoutSudo()
    {
        var runs = RunCommands().Where(r => r.Job == "unprivileged").Select(r => r.Command).ToList();
        int grant = runs.IndexOf("sudo setfacl -m u:$USER:rw /dev/userfaultfd");
        Assert.True(grant >= 0, string.Join("\n", runs));
        var probes = runs.Select((r, i) => (r, i)).Where(x => x.r.Contains("uffdnative probe", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, probes.Count);
        Assert.All(probes, p => Assert.False(p.r.StartsWith("sudo", StringComparison.Ordinal)));
        Assert.True(probes[0].i < grant && grant < probes[1].i, "one probe before the grant, one after");
        Assert.Contains("jq -e '.usablePath == \"device\"' probe-ubuntu-24.04-unprivileged.json", runs);
        Assert.Equal("ubuntu-24.04", Scalar(Job("unprivileged"), "runs-on"));
        Assert.Equal(["probe-ubuntu-24.04-*.json"], Uploads("unprivileged"));
    }

    /// <summary>The kernels `scripts/kernel-matrix.sh --ci` runs when given none (from its --help).</summary>
    private static List<string> CiKernels()
    {
        var help = CliRunner.Exec([Repo.PathOf("scripts/kernel-matrix.sh"), "--help"], Repo.Root);
        Assert.True(help.ExitCode == 0, help.ToString());
        var m = Regex.Match(help.Stdout, @"--ci\s+what CI runs: kernels (.+?) \(unless given\)");
        Assert.True(m.Success, "kernel-matrix.sh --help no longer says which kernels --ci runs:\n" + help.Stdout);
        return m.Groups[1].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToList();
    }

    [Fact]
    public void TheKernelMatrixRunsOneJobPerKernelOnUbuntuAndALastJobMergesThemWithCompare()
    {
        // One job per kernel: exactly the kernels --ci runs, each passed to the script on its own.
        var job = Job("kernel-matrix");
        var kernels = ((YamlSequenceNode)Map(Map(job, "strategy"), "matrix").Children[new YamlScalarNode("kernel")]).Children.Select(n => ((YamlScalarNode)n).Value!).ToList();
        Assert.Equal(CiKernels(), kernels);
        Assert.StartsWith("ubuntu-", Scalar(job, "runs-on"), StringComparison.Ordinal);
        // On the runner itself, no container: the script's own apt state fetches Debian's kernel packages,
        // verified with Debian's archive keyring, which the job installs.
        Assert.False(job.Children.ContainsKey(new YamlScalarNode("container")), "the kernel matrix runs on the runner, not in a container");
        var runs = RunCommands().Where(r => r.Job == "kernel-matrix").Select(r => r.Command).ToList();
        Assert.Contains(runs, r => r.Contains("apt-get install", StringComparison.Ordinal) && Repo.ShellWords(r).Contains("debian-archive-keyring"));
        var matrix = Assert.Single(runs, r => r.Contains("scripts/kernel-matrix.sh", StringComparison.Ordinal));
        Assert.StartsWith("sudo ", matrix, StringComparison.Ordinal);
        var words = Repo.ShellWords(matrix);
        Assert.Contains("--ci", words);
        Assert.EndsWith(" ${{ matrix.kernel }}", matrix, StringComparison.Ordinal);
        var outDir = words[words.IndexOf("--out") + 1];
        Assert.Equal([$"{outDir}/*/*.json"], Uploads("kernel-matrix"));

        // The merge: after every shard (whatever their outcome), their reports into one matrix.
        var merge = Job("kernel-matrix-merge");
        Assert.Equal("kernel-matrix", Scalar(merge, "needs"));
        Assert.Equal("always()", Scalar(merge, "if"));
        var download = Seq(merge, "steps").Children.Cast<YamlMappingNode>().Single(s => Scalar(s, "uses")?.StartsWith("actions/download-artifact@", StringComparison.Ordinal) == true);
        Assert.Equal("kernel-matrix-*", Scalar(Map(download, "with"), "pattern"));
        Assert.Equal(outDir, Scalar(Map(download, "with"), "path"));
        Assert.Equal("true", Scalar(Map(download, "with"), "merge-multiple"));
        var compares = RunCommands().Where(r => r.Job == "kernel-matrix-merge" && r.Command.Contains("uffdnative compare", StringComparison.Ordinal)).Select(r => Repo.ShellWords(r.Command)).ToList();
        Assert.Equal(2, compares.Count);
        Assert.Contains(compares, c => c.Contains($"{outDir}/*/probe.json") && c[c.IndexOf(">") + 1] == $"{outDir}/matrix.md");
        Assert.Contains(compares, c => c.Contains($"{outDir}/*/probe-nobody.json") && c[c.IndexOf(">") + 1] == $"{outDir}/matrix-nobody.md");
        Assert.Contains($"{outDir}/matrix.md", Uploads("kernel-matrix-merge"));
        Assert.Contains($"{outDir}/**/*.json", Uploads("kernel-matrix-merge"));
    }

    [Fact]
    public void TheDockerJobRunsTheContainerTestWithTheRealBaseImages()
    {
        var runs = RunCommands().Where(r => r.Job == "docker").Select(r => r.Command).ToList();
        var test = Assert.Single(runs, r => r.Contains("scripts/container-test.sh", StringComparison.Ordinal));
        var words = Repo.ShellWords(test);
        Assert.Contains("--real", words);       // the runner's Docker and the Dockerfile's own base images
        Assert.Contains("--no-docs", words);    // the committed table is the one measured on the dev machines
        var outDir = words[words.IndexOf("--out") + 1];
        Assert.Equal([outDir], Uploads("docker"));
        // The mode table is the script's, not a second copy in the workflow.
        Assert.DoesNotContain(runs, r => r.StartsWith("docker run", StringComparison.Ordinal));
    }

    [Fact]
    public void EveryContainerImageIsOneKnownToBePublished()
    {
        var images = new List<string>(DockerfileTests.DefaultBaseImages());
        foreach (var j in Map(Workflow, "jobs").Children)
        {
            var job = (YamlMappingNode)j.Value;
            if (job.Children.TryGetValue(new YamlScalarNode("container"), out var c))
                images.Add(c is YamlScalarNode sc ? sc.Value! : Scalar(c, "image")!);
            if (job.Children.TryGetValue(new YamlScalarNode("services"), out var services))
                images.AddRange(((YamlMappingNode)services).Children.Values.Select(v => v is YamlScalarNode sv ? sv.Value! : Scalar(v, "image")!));
        }
        foreach (var (_, command) in RunCommands())
        {
            var words = Repo.ShellWords(command);
            for (int i = 0; i + 2 < words.Count; i++)
                if (words[i] == "docker" && words[i + 1] == "pull")
                    images.Add(words[i + 2]);
        }
        Assert.NotEmpty(images);
        foreach (var image in images)
            Assert.True(PublishedImages.IsKnown(image), $"{image} is not in PublishedImages (is it published? add it with where it is listed)");
        var text = Repo.Read(".github/workflows/ci.yml") + Repo.Read("Dockerfile");
        foreach (var (gone, why) in PublishedImages.NotPublished)
            Assert.False(text.Contains(gone, StringComparison.Ordinal), $"{gone} does not exist: {why}");
        Assert.All(PublishedImages.All, e => Assert.False(string.IsNullOrWhiteSpace(e.ListedAt) || string.IsNullOrWhiteSpace(e.Evidence), e.Image));
    }

    [Fact]
    public void EveryRepositoryPathAStepNamesExists()
    {
        var checkedPaths = new List<string>();
        foreach (var (job, command) in RunCommands())
            foreach (var word in Repo.ShellWords(command))
            {
                var m = RepoPath().Match(word);
                if (!m.Success)
                    continue;
                var path = m.Value;
                // Outputs (artifacts/, nupkg/) are made by the steps; everything else must be in the repository.
                if (path.StartsWith("artifacts/", StringComparison.Ordinal) || path.StartsWith("nupkg/", StringComparison.Ordinal))
                    continue;
                Assert.True(File.Exists(Repo.PathOf(path)) || Directory.Exists(Repo.PathOf(path)), $"job {job}: `{command}` names {path}, which is not in the repository");
                checkedPaths.Add(path);
            }
        foreach (var expected in new[] { ".ci/soak.sh", "scripts/publish.sh", "scripts/kernel-matrix.sh", "scripts/container-test.sh", "tests/UffdNative.Harness.Tests/UffdNative.Harness.Tests.csproj" })
            Assert.Contains(expected, checkedPaths);
        foreach (var script in checkedPaths.Where(p => p.EndsWith(".sh", StringComparison.Ordinal) || p == ".ci/run").Distinct())
            Assert.True((File.GetUnixFileMode(Repo.PathOf(script)) & UnixFileMode.UserExecute) != 0 || RunCommands().Any(r => r.Command.Contains("bash " + script, StringComparison.Ordinal)),
                $"{script} is run directly but is not executable");
    }

    [Fact]
    public void EveryOptionPassedToAScriptIsOneItAccepts()
    {
        var matrixHelp = CliRunner.Exec([Repo.PathOf("scripts/kernel-matrix.sh"), "--help"], Repo.Root);
        Assert.True(matrixHelp.ExitCode == 0, matrixHelp.ToString());
        var publishHelp = CliRunner.Exec([Repo.PathOf("scripts/publish.sh"), "--help"], Repo.Root);
        Assert.True(publishHelp.ExitCode == 0, publishHelp.ToString());
        var containerHelp = CliRunner.Exec([Repo.PathOf("scripts/container-test.sh"), "--help"], Repo.Root);
        Assert.True(containerHelp.ExitCode == 0, containerHelp.ToString());
        int checkedOptions = 0;
        foreach (var (_, command) in RunCommands())
        {
            var words = Repo.ShellWords(command);
            int m = words.FindIndex(w => w == "scripts/kernel-matrix.sh");
            if (m >= 0)
                foreach (var option in words.Skip(m + 1).Where(w => w.StartsWith("--", StringComparison.Ordinal)))
                {
                    Assert.Contains("  " + option + " ", matrixHelp.Stdout, StringComparison.Ordinal);
                    checkedOptions++;
                }
            int ct = words.FindIndex(w => w == "scripts/container-test.sh");
            if (ct >= 0)
                foreach (var option in words.Skip(ct + 1).Where(w => w.StartsWith("--", StringComparison.Ordinal)))
                {
                    Assert.Contains("  " + option + " ", containerHelp.Stdout, StringComparison.Ordinal);
                    checkedOptions++;
                }
            int p = words.FindIndex(w => w == "scripts/publish.sh");
            if (p >= 0)
                foreach (var arg in words.Skip(p + 1).TakeWhile(w => w != "|"))
                {
                    Assert.Contains(arg, new[] { "tool", "fdd", "single-file", "aot", "--measure" });
                    checkedOptions++;
                }
        }
        Assert.True(checkedOptions >= 7, $"only {checkedOptions} script options found");
    }

    [Fact]
    public void EveryUffdnativeCommandLineParsesAgainstTheCli()
    {
        var lines = RunCommands().Select(r => r.Command).Where(c => c.Contains("uffdnative ", StringComparison.Ordinal) && !c.StartsWith("docker build", StringComparison.Ordinal)).ToList();
        // The runner's probe (test), the two of the unprivileged job, the two merges of the kernel matrix.
        Assert.True(lines.Count >= 5, string.Join("\n", lines));
        var root = CliApp.BuildRoot();
        foreach (var line in lines)
        {
            var words = Repo.ShellWords(line);
            int exe = words.FindIndex(w => w == "uffdnative" || w.EndsWith("/uffdnative", StringComparison.Ordinal));
            Assert.True(exe >= 0, line);
            var args = words.Skip(exe + 1).TakeWhile(w => w is not (">" or "|" or "||" or "&&") && !w.StartsWith('>')).ToList();
            if (args.Count == 0 && line.StartsWith("docker run ", StringComparison.Ordinal))
                args = ["probe"]; // the image's default command (Dockerfile CMD, checked by DockerfileTests)
            var parsed = root.Parse(args);
            Assert.True(parsed.Errors.Count == 0, $"`{line}`: {string.Join("; ", parsed.Errors.Select(e => e.Message))}");
            Assert.Contains(parsed.CommandResult.Command, root.Subcommands);
        }
    }

    [GeneratedRegex(@"^(\.ci|scripts|src|tests|native|docs|artifacts|nupkg)/[^\s""'*]*")]
    private static partial Regex RepoPath();
}
