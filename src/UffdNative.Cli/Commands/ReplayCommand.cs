using System.CommandLine;
using System.Text.Json;
using UffdNative.Harness.Conformance;
using UffdNative.Harness.Model;
using UffdNative.Harness.Reporting;
using UffdNative.Harness.Scenarios;

namespace UffdNative.Cli.Commands;

/// <summary><c>uffdnative replay FILE</c>: runs a scenario JSON (a fuzz reproducer, or hand-written) on the
/// model and this kernel and prints both traces and the first divergence.</summary>
public static class ReplayCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("file") { Description = "A scenario JSON written by 'uffdnative fuzz' (repro.json)." };
        var profile = new Option<string?>("--profile") { Description = "Use the mainline profile of this version instead of the detected one." };
        var set = new Option<string?>("--profile-set") { Description = "Override switches: name=new|old,..." };
        var c = new Option<string?>("--c") { Description = "Also write the standalone C reproducer to this directory." };
        var json = new Option<bool>("--json") { Description = "Write both traces and the divergence as JSON on stdout (schema docs/schemas/replay.schema.json)." };
        var cmd = new Command("replay", "Run a scenario JSON on the model and this kernel; print both traces and the first divergence.")
        {
            file, profile, set, c, json,
        };
        cmd.SetAction(pr =>
        {
            var path = pr.GetValue(file)!;
            Scenario s;
            KernelProfile used, reference;
            try
            {
                s = Scenario.FromJson(File.ReadAllText(path));
                (used, reference, _, _, _) = UffdNative.Harness.Probing.ProfileResolver.Resolve(pr.GetValue(profile), pr.GetValue(set));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException or FormatException or ArgumentException or NotSupportedException)
            {
                Console.Error.WriteLine($"uffdnative: cannot replay '{path}': {e.Message}");
                return ExitCodes.Usage;
            }
            if (s.Mappings is null || s.Uffds is null || s.Ops is null || s.Policy is null)
            {
                Console.Error.WriteLine($"uffdnative: cannot replay '{path}': not a scenario (it lacks mappings, uffds, policy or ops; 'uffdnative fuzz' writes repro.json)");
                return ExitCodes.Usage;
            }
            if (ScenarioValidator.Validate(s) is { } why)
            {
                Console.Error.WriteLine($"uffdnative: '{path}' is not a runnable scenario: {why}");
                return ExitCodes.Usage;
            }
            if (ConformanceCli.DetectOrReport() is not { } env)
                return ExitCodes.Environment;
            var runner = new ConformanceRunner(used, reference, env);
            var (model, kernel, d) = runner.Compare(s);
            if (pr.GetValue(json))
            {
                var cFile = pr.GetValue(c) is { } cDir ? Reproducer.Write(s, runner, cDir).C : null;
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
            if (pr.GetValue(c) is { } dir)
                Console.WriteLine($"C reproducer: {Reproducer.Write(s, runner, dir).C}");
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
