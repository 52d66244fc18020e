using System.CommandLine;

namespace UffdNative.Harness.Tests.Cli;

/// <summary>Help names only options that exist (check's help named --list-switches, which did not), and the tool
/// has one version everywhere (probe's toolVersion said 1.0.0 while --version said 0.1.0).</summary>
public sealed partial class HelpNamesRealOptionsTests
{
    /// <summary>A command line in the help text ("see 'uffdnative check --list-switches'", an example, a
    /// --step command): its options are options of the verb it names.</summary>
    [GeneratedRegex(@"uffdnative (?<verb>[a-z]+)(?<rest>[^'\n)]*)")]
    private static partial Regex CommandLine();

    [GeneratedRegex(@"(?<![\w-])--[a-z][a-z-]*")]
    private static partial Regex AnyOption();

    private static IEnumerable<string> Names(Command c) => c.Options.SelectMany(o => o.Aliases.Prepend(o.Name));

    [Fact]
    public void EveryOptionAVerbsHelpNamesExists()
    {
        var root = CliApp.BuildRoot();
        var global = Names(root).ToHashSet();
        foreach (var verb in root.Subcommands)
        {
            var output = new StringWriter();
            Assert.Equal(0, CliApp.Run([verb.Name, "--help"], output, new StringWriter()));
            var help = output.ToString();
            // "see 'uffdnative check --list-switches'": an option of the verb named.
            foreach (Match m in CommandLine().Matches(help))
            {
                if (root.Subcommands.FirstOrDefault(c => c.Name == m.Groups["verb"].Value) is not { } other)
                    continue; // "uffdnative <verb> --help": a placeholder, checked below as the verb's own text
                foreach (Match o in AnyOption().Matches(m.Groups["rest"].Value))
                    Assert.True(Names(other).Contains(o.Value) || global.Contains(o.Value), $"{verb.Name} --help names '{m.Value}', but {other.Name} has no {o.Value}");
            }
            foreach (Match m in AnyOption().Matches(CommandLine().Replace(help, m => root.Subcommands.Any(c => c.Name == m.Groups["verb"].Value) ? "" : m.Value)))
                Assert.True(Names(verb).Contains(m.Value) || global.Contains(m.Value), $"{verb.Name} --help names {m.Value}, which it does not have:\n{help}");
        }
    }

    [Fact]
    public void OneVersionEverywhere()
    {
        var version = CliRunner.Run("--version");
        Assert.Equal(0, version.ExitCode);
        var cli = version.Stdout.Trim();
        var harness = typeof(UffdNative.Harness.Probing.ProbeRunner).Assembly.GetName().Version!;
        var binding = typeof(UffdNative.KernelVersion).Assembly.GetName().Version!;
        var tool = typeof(CliApp).Assembly.GetName().Version!;
        Assert.Equal(tool, harness);
        Assert.Equal(tool, binding);
        Assert.StartsWith($"{tool.Major}.{tool.Minor}.{tool.Build}", cli, StringComparison.Ordinal);
        var probe = CliRunner.Run("probe", "--rows", "wp-shmem-markers", "--json");
        Assert.Equal(cli, UffdNative.Harness.Probing.ProbeReport.FromJson(probe.Stdout).ToolVersion);
    }
}
