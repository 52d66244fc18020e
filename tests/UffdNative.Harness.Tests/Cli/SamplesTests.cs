using System.IO.Compression;

namespace UffdNative.Harness.Tests.Cli;

/// <summary>
/// The binding as a library people install: `dotnet pack src/UffdNative` gives a package with the
/// assembly, its XML docs, README.md and libuffdshim.so as the linux-x64 native asset (and nothing of
/// the harness) and the external handler host (copied beside every consumer app by its buildTransitive
/// targets); each sample in samples/ builds against that package from a local feed — not a project
/// reference — and runs on the real kernel with the output it promises (ExternalHandler: faults served by
/// the package's host, started through HandlerHostProgram.StartInfo, in a process of its own).
/// </summary>
public sealed class SamplesTests
{
    private static CliResult Dotnet(string[] args, string workingDirectory) =>
        CliRunner.Exec([CliRunner.DotnetHost, .. args], workingDirectory, timeoutMs: 300_000);

    /// <summary>The configuration the tests were built in: the binding's output of it is what gets packed.</summary>
    private static string Configuration => AppContext.BaseDirectory.Split(Path.DirectorySeparatorChar) is var parts && Array.IndexOf(parts, "bin") is var i and >= 0 ? parts[i + 1] : "Debug";

    [Fact]
    public void ThePackageCarriesTheShimAndEverySampleBuildsAgainstItAndRuns()
    {
        using var work = new TempDirectory("uffdnative-samples-");
        // A version no cache can hold already: the samples can only get this very package.
        var version = "0.1.0-test" + DateTime.UtcNow.ToString("yyyyMMddHHmmssfff", System.Globalization.CultureInfo.InvariantCulture);
        var feed = Path.Combine(work.Path, "feed");
        var pack = Dotnet(["pack", Repo.PathOf("src/UffdNative/UffdNative.csproj"), "--no-build", "-c", Configuration, "-o", feed, $"-p:Version={version}"], Repo.Root);
        Assert.True(pack.ExitCode == 0, pack.ToString());
        var nupkg = Assert.Single(Directory.GetFiles(feed, "*.nupkg"));
        Assert.Equal($"UffdNative.Binding.{version}.nupkg", Path.GetFileName(nupkg));
        using (var zip = ZipFile.OpenRead(nupkg))
        {
            var names = zip.Entries.Select(e => e.FullName).Where(n => !n.StartsWith("package/", StringComparison.Ordinal) && !n.StartsWith("_rels/", StringComparison.Ordinal) && n != "[Content_Types].xml").Order(StringComparer.Ordinal).ToList();
            Assert.Equal(["README.md", "UffdNative.Binding.nuspec", "buildTransitive/UffdNative.Binding.targets", "lib/net10.0/UffdNative.dll", "lib/net10.0/UffdNative.xml",
                "runtimes/linux-x64/native/libuffdshim.so", "tools/handler-host/UffdNative.HandlerHost.dll", "tools/handler-host/UffdNative.HandlerHost.runtimeconfig.json"], names);
            using var nuspec = zip.GetEntry("UffdNative.Binding.nuspec")!.Open();
            var meta = XDocument.Load(nuspec).Root!.Elements().Single(e => e.Name.LocalName == "metadata");
            Assert.Equal("README.md", meta.Elements().Single(e => e.Name.LocalName == "readme").Value);
            // The docs document the public surface (the accessor rule at least).
            using var xml = new StreamReader(zip.GetEntry("lib/net10.0/UffdNative.xml")!.Open());
            Assert.Contains("T:UffdNative.Access.Accessor", xml.ReadToEnd(), StringComparison.Ordinal);
        }

        // The samples, copied out of the repository (no build output, no repository settings), with
        // a nuget.config of the local feed plus the machine's usual source; a fresh package folder
        // that falls back to the machine's for everything else (no download of those).
        var samples = Path.Combine(work.Path, "samples");
        CopyTree(Repo.PathOf("samples"), samples);
        var machinePackages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } p ? p
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        File.WriteAllText(Path.Combine(samples, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <config><add key="globalPackagesFolder" value="{Path.Combine(work.Path, "packages")}" /></config>
              <fallbackPackageFolders><add key="machine" value="{machinePackages}" /></fallbackPackageFolders>
              <packageSources>
                <clear />
                <add key="local" value="{feed}" />
                <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
              </packageSources>
            </configuration>
            """);
        var build = Dotnet(["build", "Samples.sln", "-c", "Release", $"-p:UffdNativeVersion={version}"], samples);
        Assert.True(build.ExitCode == 0, build.ToString());
        Assert.Contains("0 Warning(s)", build.Stdout, StringComparison.Ordinal);

        foreach (var (sample, expected) in new (string, string[])[]
        {
            ("LazyRestore", ["lazy-restore: 256 pages registered, 64 touched, 64 faults served from ", "lazy-restore: OK: every touched page holds its snapshot content; the other 192 pages were never read"]),
            ("LiveSnapshot", ["live-snapshot: 256 pages, the owner wrote 2000 times to ", "live-snapshot: OK: all 256 snapshot pages hold their content from snapshot time ("]),
            // The handler host came with the package (buildTransitive copies it beside the app) and serves from its own process.
            ("ExternalHandler", ["external-handler: 256 pages registered, 64 touched, 64 faults served by the handler host (pid ", "external-handler: OK: every touched page holds the handler's content; the other 192 pages were never read"]),
            ("DirtyTracking",
            [
                "dirty-tracking: round 1: wrote [3, 7, 8, 9, 100, 1023], PAGEMAP_SCAN found [3, 7, 8, 9, 100, 1023] ok",
                "dirty-tracking: round 2: wrote [5], PAGEMAP_SCAN found [5] ok",
                "dirty-tracking: round 3: wrote [], PAGEMAP_SCAN found [] ok",
                "dirty-tracking: round 4: wrote [0, 1, 2, 3, 512, 513], PAGEMAP_SCAN found [0, 1, 2, 3, 512, 513] ok",
                "dirty-tracking: OK: every round found exactly the pages written since the previous one (1024 pages tracked, no fault handler)",
            ]),
        })
        {
            var output = Path.Combine(samples, sample, "bin", "Release", "net10.0");
            // The shim came from the package (the only place it could come from), the harness's library did not.
            Assert.True(File.Exists(Path.Combine(output, "runtimes", "linux-x64", "native", "libuffdshim.so")), $"{sample}: no shim from the package");
            Assert.Empty(Directory.GetFiles(output, "libuffdharness.so", SearchOption.AllDirectories));
            // So did the external handler host (beside the app, with no deps.json of its own: it runs on the app's).
            Assert.True(File.Exists(Path.Combine(output, "UffdNative.HandlerHost.dll")) && File.Exists(Path.Combine(output, "UffdNative.HandlerHost.runtimeconfig.json")), $"{sample}: no handler host from the package");
            Assert.False(File.Exists(Path.Combine(output, "UffdNative.HandlerHost.deps.json")), $"{sample}: a deps.json of the host's own");
            var run = CliRunner.Exec([CliRunner.DotnetHost, Path.Combine(output, sample + ".dll")], work.Path, timeoutMs: 60_000);
            Assert.True(run.ExitCode == 0, run.ToString());
            Assert.Equal("", run.Stderr);
            var lines = run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(lines.Length == expected.Length, run.ToString());
            for (int i = 0; i < expected.Length; i++)
                Assert.StartsWith(expected[i], lines[i], StringComparison.Ordinal);
        }
    }

    private static void CopyTree(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from))
            File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
        foreach (var d in Directory.GetDirectories(from))
            if (Path.GetFileName(d) is not ("bin" or "obj"))
                CopyTree(d, Path.Combine(to, Path.GetFileName(d)));
    }
}
