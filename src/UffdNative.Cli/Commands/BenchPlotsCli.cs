using UffdNative.Cli.Infrastructure;
using UffdNative.Harness.Benchmarks;

namespace UffdNative.Cli.Commands;

/// <summary><c>bench --plot DIR</c>: the harness's <see cref="BenchPlots"/> behind the CLI's error path
/// (a refused directory exits 2, a missing native library or font 3) and its file list on stderr
/// (stdout may be the JSON report).</summary>
internal static class BenchPlotsCli
{
    public static void Prepare(string dir)
    {
        try
        {
            BenchPlots.CheckRenderer(); // first: a run that cannot draw leaves no directory behind
            BenchPlots.PrepareDirectory(dir);
        }
        catch (BenchPlotException e)
        {
            throw Translate(e);
        }
    }

    public static void Write(Harness.Benchmarks.BenchReport report, string dir)
    {
        List<BenchPlots.Written> files;
        try
        {
            files = BenchPlots.Write(report, dir);
        }
        catch (BenchPlotException e)
        {
            throw Translate(e);
        }
        Console.Error.WriteLine($"plots: {files.Count} files in {Path.GetFullPath(dir)}{(files.Any(f => f.Replaced) ? $" ({files.Count(f => f.Replaced)} replaced those of an earlier --plot run)" : "")}");
        foreach (var f in files)
            Console.Error.WriteLine($"  {Path.GetFileName(f.Path)}{(f.Replaced ? " (replaced)" : "")}");
    }

    private static Exception Translate(BenchPlotException e) =>
        e.Environment ? new CliEnvironmentException(e.Message, e) : new CliUsageException(e.Message, e);
}
