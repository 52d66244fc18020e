using System.CommandLine;
using System.Text.Json;
using UffdNative.Harness.Probing;

namespace UffdNative.Cli.Commands;

public static class ProbeCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Write the report as JSON (schema: docs in README, 'Probe JSON')." };
        var cmd = new Command("probe", "Report what this kernel's userfaultfd supports and how it behaves: open paths, features, registration masks.")
        {
            json,
        };
        cmd.SetAction(pr =>
        {
            var report = BasicProbe.Run();
            if (pr.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(report, ProbeJsonContext.Default.ProbeReport));
            else
                Print(report);
            return report.ApiError is null ? ExitCodes.Ok : ExitCodes.Environment;
        });
        return cmd;
    }

    private static void Print(ProbeReport r)
    {
        Console.WriteLine($"kernel            {r.KernelRelease}");
        foreach (var p in r.OpenPaths)
            Console.WriteLine($"open {p.Path,-20} {(p.Ok ? "OK" : p.Errno + " — " + p.Detail)}");
        if (r.ApiError is not null)
        {
            Console.WriteLine($"UFFDIO_API        {r.ApiError}");
            return;
        }
        Console.WriteLine($"features          0x{r.Features:x}  {string.Join(' ', r.FeatureNames.Select(n => n.Replace("UFFD_FEATURE_", "")))}");
        Console.WriteLine($"api ioctls        0x{r.ApiIoctls:x}");
        Console.WriteLine();
        Console.WriteLine($"{"register",-16} {"MISSING",-10} {"WP",-10} {"MINOR",-10}");
        foreach (var g in r.RegisterMasks.GroupBy(m => m.Memory))
            Console.WriteLine($"{g.Key,-16} " + string.Join(" ", g.Select(m => (m.Errno == "OK" ? $"0x{m.Ioctls:x}" : m.Errno).PadRight(10))));
    }
}
