using System.Text.Json;
using System.CommandLine;
using UffdNative.Cli.Infrastructure;
using UffdNative.Harness.Conformance;
using UffdNative.Harness.Model;
using UffdNative.Harness.Reporting;

namespace UffdNative.Cli.Commands;

/// <summary><c>uffdnative replay FILE</c>: runs a scenario JSON (a fuzz reproducer, or hand-written) on the
/// model and this kernel and prints both traces and the first divergence.</summary>
public static class ReplayCommand
{
    public static Command Create()
    {
        var file = CliOptions.InputFileArgument("file", "A scenario JSON written by 'uffdnative fuzz' (repro.json).");
        var profile = CliOptions.KernelRelease("--profile", "Use the mainline profile of this version instead of the detected one.");
        var set = new Option<string?>("--profile-set") { Description = "Override switches: name=new|old,... (see 'uffdnative check --list-switches')." };
        var c = CliOptions.OutputDirectory("--c", "Also write the standalone C reproducer (and the scenario) to this directory (a new numbered one beside an earlier reproducer).");
        var force = CliOptions.Force("the C reproducer");
        var json = new Option<bool>("--json") { Description = "Write both traces and the divergence as JSON on stdout (schema docs/schemas/replay.schema.json)." };
        var cmd = new Command("replay", "Run a scenario JSON on the model and this kernel; print both traces and the first divergence.")
        {
            file, profile, set, c, force, json,
        };
        cmd.SetAction(pr =>
        {
            var path = pr.GetValue(file)!;
            CliPaths.RequireInput("file", path);
            // Every scenario from outside is validated (checked arithmetic, every name resolved) before it runs.
            var s = ConformanceCli.LoadScenario(path);
            var (used, reference) = ConformanceCli.Profile(pr.GetValue(profile), pr.GetValue(set));
            var env = ConformanceCli.Detect();
            var runner = new ConformanceRunner(used, reference, env);
            var (model, kernel, d) = runner.Compare(s);
            if (pr.GetValue(json))
            {
                var cFile = pr.GetValue(c) is { } cDir ? ConformanceCli.WriteReproducer(s, runner, cDir, pr.GetValue(force), "--c")?.C : null;
                Console.WriteLine(JsonSerializer.Serialize(new ReplayJsonReport
                {
                    KernelRelease = KernelVersion.RunningRelease(),
                    Profile = used.Origin,
                    File = Path.GetFullPath(path),
                    Scenario = s.Describe(),
                    ModelTrace = model.Trace.Describe(),
                    KernelTrace = kernel.Describe(),
                    Divergence = d is null ? null : DivergenceJson.From(d),
                    CReproducer = cFile,
                }, VerbJsonContext.Default.ReplayJsonReport));
                return d is null ? ExitCodes.Ok : ExitCodes.Failure;
            }
            Console.WriteLine(s.Describe());
            Console.WriteLine($"---- model ({used.Origin})");
            Console.WriteLine(model.Trace.Describe());
            Console.WriteLine($"---- kernel ({KernelVersion.RunningRelease()})");
            Console.WriteLine(kernel.Describe());
            Console.WriteLine();
            if (pr.GetValue(c) is { } dir && ConformanceCli.WriteReproducer(s, runner, dir, pr.GetValue(force), "--c") is { } files)
                Console.WriteLine($"C reproducer: {files.C}");
            if (d is null)
            {
                Console.WriteLine("no divergence");
                return ExitCodes.Ok;
            }
            Console.WriteLine($"divergence at {d.Describe()}\n  state before: {d.StateBefore}");
            return ExitCodes.Failure;
        });
        return cmd;
    }
}
