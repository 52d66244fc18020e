using UffdNative.Harness.Io;

namespace UffdNative.Harness.Tests.Cli;

/// <summary>
/// Outputs never destroy what was there: written to a temporary file beside the target, fsync'd, renamed; a
/// failed write (the writer throws, the disk is full) leaves the old file byte for byte and no temporary file;
/// reproducers go to a new numbered directory unless --force; a reproducer that cannot be written is printed on
/// stderr instead of lost. A full disk is a 4 KiB tmpfs mounted in a private mount namespace (unshare -m) of
/// the command under test: nothing of it outlives the command.
/// </summary>
public sealed class OutputTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("uffdnative-output-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public void AFailedWriteLeavesTheOldFileAndNoTemporaryFile()
    {
        var target = Path.Combine(dir, "report.md");
        File.WriteAllText(target, "the earlier report");
        File.SetUnixFileMode(target, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
        var e = Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(target, s =>
        {
            s.Write("half of the new report"u8);
            throw new InvalidOperationException("the writer failed half-way");
        }));
        Assert.Equal("the writer failed half-way", e.Message);
        Assert.Equal("the earlier report", File.ReadAllText(target));
        Assert.Equal(["report.md"], Directory.GetFileSystemEntries(dir).Select(Path.GetFileName));

        AtomicFile.WriteAllText(target, "the new report");
        Assert.Equal("the new report", File.ReadAllText(target));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead, File.GetUnixFileMode(target));
        Assert.Equal(["report.md"], Directory.GetFileSystemEntries(dir).Select(Path.GetFileName));

        // Through a symbolic link: the file it names is replaced, the link stays a link.
        var link = Path.Combine(dir, "latest.md");
        File.CreateSymbolicLink(link, target);
        AtomicFile.WriteAllText(link, "through the link");
        Assert.NotNull(new FileInfo(link).LinkTarget);
        Assert.Equal("through the link", File.ReadAllText(target));

        // A device is never replaced by a rename.
        var io = Assert.Throws<IOException>(() => AtomicFile.WriteAllText("/dev/null", "x"));
        Assert.Contains("is a character device, not a regular file", io.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NewDirectoriesAreNumberedAndNeverReused()
    {
        var repro = Path.Combine(dir, "repro");
        Assert.Equal(repro, AtomicFile.NewDirectory(repro, force: false));
        File.WriteAllText(Path.Combine(repro, "repro.json"), "{}");
        Assert.Equal(repro + "-2", AtomicFile.NewDirectory(repro, force: false));
        File.WriteAllText(Path.Combine(repro + "-2", "repro.json"), "{}");
        Assert.Equal(repro + "-3", AtomicFile.NewDirectory(repro + "/", force: false));
        // An empty one is reused (nothing to overwrite); --force takes the path itself.
        Assert.Equal(repro + "-3", AtomicFile.NewDirectory(repro, force: false));
        Assert.Equal(repro, AtomicFile.NewDirectory(repro, force: true));
    }

    /// <summary>Runs a shell script in a private mount namespace with a full 4 KiB tmpfs at $FULL.</summary>
    private static CliResult WithFullDisk(string script) =>
        CliRunner.Exec(["unshare", "-m", "--propagation", "private", "sh", "-c",
            "set -e; FULL=$(mktemp -d /tmp/uffdnative-full-XXXXXX); trap 'umount \"$FULL\"; rmdir \"$FULL\"' EXIT; mount -t tmpfs -o size=4k tmpfs \"$FULL\"; echo 'the earlier report' > \"$FULL/old.md\"; " +
            "head -c 4096 /dev/zero > \"$FULL/filler\" 2>/dev/null || true; set +e; " + script], timeoutMs: 240_000);

    private static string Cli => $"'{CliRunner.DotnetHost}' '{CliRunner.CliDll()}'";

    [Fact]
    public void OnAFullDiskTheOldReportStaysAndOneLineSaysWhy()
    {
        var report = Path.Combine(dir, "report.json");
        var probe = CliRunner.Run("probe", "--rows", "wp-shmem-markers", "--json", "-o", report);
        Assert.True(probe.ExitCode == 0, probe.ToString());
        var r = WithFullDisk($"{Cli} compare '{report}' -o \"$FULL/old.md\"; echo \"exit=$?\"; cat \"$FULL/old.md\"; ls -A \"$FULL\"");
        var stdout = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(stdout.Length == 4 && stdout[0] == "exit=2", r.ToString());
        Assert.Equal("the earlier report", stdout[1]);
        Assert.Equal(["filler", "old.md"], stdout[2..].Order());
        var line = Assert.Single(r.StderrLines);
        Assert.Matches(@"^uffdnative: --output: cannot write '/tmp/[^']+/old\.md': no space left on device$", line);
    }

    [Fact]
    public void AReproducerThatCannotBeWrittenIsPrintedOnStderrAndAnEarlierOneIsNeverOverwritten()
    {
        // Twice into the same directory: the second goes beside the first.
        var output = Path.Combine(dir, "repro");
        string[] fuzz = ["fuzz", "--seed", "1", "--seconds", "60", "--inject-bug", "UnregisterKeepsWp"];
        var first = CliRunner.Run([.. fuzz, "--output", output]);
        Assert.True(first.ExitCode == 1, first.ToString());
        Assert.Contains($"reproducer: {output}/repro.json", first.Stdout, StringComparison.Ordinal);
        var before = File.ReadAllText(Path.Combine(output, "repro.c"));
        var second = CliRunner.Run([.. fuzz, "--output", output]);
        Assert.True(second.ExitCode == 1, second.ToString());
        Assert.Contains($"reproducer: {output}-2/repro.json", second.Stdout, StringComparison.Ordinal);
        Assert.Equal(before, File.ReadAllText(Path.Combine(output, "repro.c")));
        var forced = CliRunner.Run([.. fuzz, "--output", output, "--force"]);
        Assert.True(forced.ExitCode == 1, forced.ToString());
        Assert.Contains($"reproducer: {output}/repro.json", forced.Stdout, StringComparison.Ordinal);
        Assert.False(Directory.Exists(output + "-3"));

        // On a full disk: the finding is on stdout, the scenario on stderr (one line), nothing left behind.
        var full = WithFullDisk($"{Cli} {string.Join(' ', fuzz)} --output \"$FULL/repro\"; echo \"exit=$?\"; ls -A \"$FULL\"");
        Assert.Contains("exit=1", full.Stdout, StringComparison.Ordinal);
        Assert.Contains("divergence in scenario", full.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("repro\n", full.Stdout.Split("exit=1")[1], StringComparison.Ordinal);
        var line = Assert.Single(full.StderrLines);
        Assert.Matches(@"^uffdnative: --output: cannot write the reproducer into '/tmp/[^']+/repro': .*no space left on device; the scenario, to save as repro\.json: \{.*\}$", line);
        var json = line[(line.IndexOf("repro.json: ", StringComparison.Ordinal) + "repro.json: ".Length)..];
        Assert.Null(UffdNative.Harness.Scenarios.ScenarioValidator.Validate(UffdNative.Harness.Scenarios.Scenario.Load(json)));
    }
}
