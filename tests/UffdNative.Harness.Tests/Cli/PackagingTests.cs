using System.IO.Compression;

namespace UffdNative.Harness.Tests.Cli;

/// <summary>
/// The distributable forms, built with the commands docs/packaging.md documents and run as a user
/// would: the .NET tool installed into a fresh tool path from a fresh package cache, the
/// self-contained single file and the NativeAOT binary run with no .NET on the search paths.
/// </summary>
public sealed class PackagingTests
{
    private const string Csproj = "src/UffdNative.Cli/UffdNative.Cli.csproj";

    private static CliResult Dotnet(string[] args, IDictionary<string, string>? env = null) =>
        CliRunner.Exec([CliRunner.DotnetHost, .. args], Repo.Root, env, timeoutMs: 540_000);

    private static void AssertProbeRan(CliResult r)
    {
        Assert.True(r.ExitCode == 0, r.ToString());
        using var report = JsonDocument.Parse(r.Stdout);
        Assert.Equal("uffdnative", report.RootElement.GetProperty("tool").GetString());
        Assert.Equal(KernelVersion.RunningRelease(), report.RootElement.GetProperty("kernelRelease").GetString());
        Assert.Contains(report.RootElement.GetProperty("openPaths").EnumerateArray(), p => p.GetProperty("ok").GetBoolean());
        Assert.Equal("", r.Stderr);
    }

    /// <summary>No dotnet anywhere the executable could look (self-contained forms).</summary>
    private static Dictionary<string, string> NoDotnet(string home) => new()
    {
        ["PATH"] = "/usr/local/sbin:/sbin:/bin/nonexistent",
        ["DOTNET_ROOT"] = "/nonexistent",
        ["HOME"] = home,
        ["DOTNET_BUNDLE_EXTRACT_BASE_DIR"] = Path.Combine(home, "extract"),
    };

    [Fact]
    public void TheToolPackageCarriesTheShimAndInstallsAndRunsProbeFromAFreshToolPath()
    {
        using var work = new TempDirectory("uffdnative-tool-");
        var feed = Path.Combine(work.Path, "nupkg");
        var pack = Dotnet(["pack", Csproj, "-c", "Release", "-o", feed]);
        Assert.True(pack.ExitCode == 0, pack.ToString());
        var nupkg = Assert.Single(Directory.GetFiles(feed, "*.nupkg"));
        Assert.StartsWith("uffdnative.", Path.GetFileName(nupkg), StringComparison.Ordinal);

        using (var zip = ZipFile.OpenRead(nupkg))
        {
            var names = zip.Entries.Select(e => e.FullName).ToList();
            // The shim under runtimes/linux-x64/native, and only there: probe below can only work.Path by finding it there.
            Assert.Equal(["tools/net10.0/any/runtimes/linux-x64/native/libuffdshim.so"], names.Where(n => n.EndsWith("libuffdshim.so", StringComparison.Ordinal)));
            // The harness's library beside it (bench, soak), where it finds the shim ($ORIGIN).
            Assert.Equal(["tools/net10.0/any/runtimes/linux-x64/native/libuffdharness.so"], names.Where(n => n.EndsWith("libuffdharness.so", StringComparison.Ordinal)));
            using var settings = zip.GetEntry("tools/net10.0/any/DotnetToolSettings.xml")!.Open();
            var command = XDocument.Load(settings).Descendants("Command").Single();
            Assert.Equal("uffdnative", command.Attribute("Name")!.Value);
            Assert.Equal("UffdNative.Cli.dll", command.Attribute("EntryPoint")!.Value);
            using var nuspec = zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal)).Open();
            var root = XDocument.Load(nuspec).Root!;
            var ns = root.Name.Namespace;
            var meta = root.Element(ns + "metadata")!;
            Assert.Equal("uffdnative", meta.Element(ns + "id")!.Value);
            Assert.Equal("DotnetTool", meta.Element(ns + "packageTypes")!.Element(ns + "packageType")!.Attribute("name")!.Value);
        }

        // A fresh tool path and a fresh package cache: nothing from an earlier install can be reused.
        var tools = Path.Combine(work.Path, "tools");
        // Only the local feed is a source (a package of that name elsewhere cannot be picked instead).
        var config = Path.Combine(work.Path, "nuget.config");
        File.WriteAllText(config, $"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<configuration><packageSources><clear /><add key=\"local\" value=\"{feed}\" /></packageSources></configuration>\n");
        var env = new Dictionary<string, string> { ["NUGET_PACKAGES"] = Path.Combine(work.Path, "packages"), ["DOTNET_CLI_HOME"] = Path.Combine(work.Path, "home") };
        var install = Dotnet(["tool", "install", "uffdnative", "--tool-path", tools, "--configfile", config, "--add-source", feed], env);
        Assert.True(install.ExitCode == 0, install.ToString());
        Assert.Contains("Tool 'uffdnative' (version '0.1.0') was successfully installed.", install.Stdout, StringComparison.Ordinal);
        var exe = Path.Combine(tools, "uffdnative");
        Assert.True(File.Exists(exe));

        AssertProbeRan(CliRunner.Exec([exe, "probe", "--json"], work.Path));
        var usage = CliRunner.Exec([exe, "prob"], work.Path);
        Assert.Equal(2, usage.ExitCode);
        Assert.Equal(["uffdnative: Unrecognized command or argument 'prob'. — see 'uffdnative --help'."], usage.StderrLines);
        var help = CliRunner.Exec([exe, "--help"], work.Path);
        Assert.Equal(0, help.ExitCode);
        Assert.Contains("Usage:\n  uffdnative [command] [options]", help.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void TheSelfContainedSingleFileRunsProbeWithoutDotnet()
    {
        using var work = new TempDirectory("uffdnative-single-");
        var output = Path.Combine(work.Path, "out");
        var publish = Dotnet(["publish", Csproj, "-c", "Release", "-r", "linux-x64", "--self-contained", "-p:PublishSingleFile=true",
            "-p:IncludeNativeLibrariesForSelfExtract=true", "-p:PublishTrimmed=true", "-p:PublishReadyToRun=true", "-p:DebugType=none", "-o", output]);
        Assert.True(publish.ExitCode == 0, publish.ToString());
        Assert.DoesNotContain("warning", publish.Stdout, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(["uffdnative"], Directory.GetFiles(output).Select(Path.GetFileName));
        var home = Directory.CreateDirectory(Path.Combine(work.Path, "home")).FullName;
        AssertProbeRan(CliRunner.Exec([Path.Combine(output, "uffdnative"), "probe", "--json"], work.Path, NoDotnet(home)));
        // The shim came out of the bundle.
        Assert.Single(Directory.GetFiles(Path.Combine(home, "extract"), "libuffdshim.so", SearchOption.AllDirectories));
    }

    [Fact]
    public void TheNativeAotBinaryRunsProbeWithoutDotnet()
    {
        using var work = new TempDirectory("uffdnative-aot-");
        var output = Path.Combine(work.Path, "out");
        var publish = Dotnet(["publish", Csproj, "-c", "Release", "-r", "linux-x64", "-p:PublishAot=true", "-p:DebugType=none", "-p:CopyOutputSymbolsToPublishDirectory=false", "-o", output]);
        Assert.True(publish.ExitCode == 0, publish.ToString());
        Assert.DoesNotContain("warning", publish.Stdout, StringComparison.OrdinalIgnoreCase);
        // The executable and the native libraries beside it (the binding's shim, the harness's library
        // for bench and soak, SkiaSharp's and HarfBuzzSharp's for bench --plot), nothing else.
        Assert.Equal(["libHarfBuzzSharp.so", "libSkiaSharp.so", "libuffdharness.so", "libuffdshim.so", "uffdnative"],
            Directory.GetFiles(output).Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal));
        var exe = File.ReadAllBytes(Path.Combine(output, "uffdnative"));
        Assert.Equal("\u007fELF"u8.ToArray(), exe[..4]);
        var home = Directory.CreateDirectory(Path.Combine(work.Path, "home")).FullName;
        AssertProbeRan(CliRunner.Exec([Path.Combine(output, "uffdnative"), "probe", "--json"], work.Path, NoDotnet(home)));
    }
}
