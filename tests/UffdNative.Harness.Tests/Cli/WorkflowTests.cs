using System.Text.RegularExpressions;
using UffdNative.Cli.Infrastructure;
using YamlDotNet.RepresentationModel;

namespace UffdNative.Harness.Tests.Cli;

/// <summary>
/// .github/workflows/ci.yml, checked without GitHub: it parses as YAML; it has the jobs the project
/// promises (tests as root on ubuntu-22.04 and ubuntu-24.04, an unprivileged job given the device
/// with setfacl, the qemu kernel matrix, artifacts for the probe JSON of every runner and the
/// matrix Markdown); every repository path a step names exists; every option it passes to
/// scripts/kernel-matrix.sh and scripts/publish.sh is one those scripts accept; and every
/// `uffdnative ...` command line in it parses against the real CLI.
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
        Assert.Equal(["test", "unprivileged", "docker", "package", "kernel-matrix"], Map(Workflow, "jobs").Children.Keys.Select(k => ((YamlScalarNode)k).Value));
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
        Assert.Contains("sudo -E env \"PATH=$PATH\" \"DOTNET_ROOT=$DOTNET_ROOT\" bash .ci/run", runs);
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

    [Fact]
    public void TheKernelMatrixJobRunsTheMatrixScriptAndUploadsTheMarkdown()
    {
        var runs = RunCommands().Where(r => r.Job == "kernel-matrix").Select(r => r.Command).ToList();
        var matrix = Assert.Single(runs, r => r.Contains("scripts/kernel-matrix.sh", StringComparison.Ordinal));
        var words = Repo.ShellWords(matrix);
        var outDir = words[words.IndexOf("--out") + 1];
        Assert.Contains($"{outDir}/matrix.md", Uploads("kernel-matrix"));
        Assert.Contains($"{outDir}/**/*.json", Uploads("kernel-matrix"));
        // Debian's kernels come from Debian's archive: the job runs in a (pinned) Debian 12 container.
        var image = Scalar(Map(Job("kernel-matrix"), "container"), "image")!;
        Assert.Matches(@"^mcr\.microsoft\.com/dotnet/sdk:\d+\.\d+\.\d+-bookworm-slim$", image);
        Assert.Contains("--privileged", Scalar(Map(Job("kernel-matrix"), "container"), "options"), StringComparison.Ordinal);
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
        foreach (var expected in new[] { ".ci/run", "scripts/publish.sh", "scripts/kernel-matrix.sh", "tests/UffdNative.Harness.Tests/UffdNative.Harness.Tests.csproj" })
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
            int p = words.FindIndex(w => w == "scripts/publish.sh");
            if (p >= 0)
                foreach (var arg in words.Skip(p + 1).TakeWhile(w => w != "|"))
                {
                    Assert.Contains(arg, new[] { "tool", "fdd", "single-file", "aot", "--measure" });
                    checkedOptions++;
                }
        }
        Assert.True(checkedOptions >= 4, $"only {checkedOptions} script options found");
    }

    [Fact]
    public void EveryUffdnativeCommandLineParsesAgainstTheCli()
    {
        var lines = RunCommands().Select(r => r.Command).Where(c => c.Contains("uffdnative ", StringComparison.Ordinal) && !c.StartsWith("docker build", StringComparison.Ordinal)).ToList();
        Assert.True(lines.Count >= 6, string.Join("\n", lines));
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
