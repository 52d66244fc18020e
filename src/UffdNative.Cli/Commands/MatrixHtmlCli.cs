using UffdNative.Cli.Infrastructure;
using UffdNative.Harness.Matrix;
using UffdNative.Harness.Output;

namespace UffdNative.Cli.Commands;

/// <summary><c>matrix --html FILE</c> and <c>compare --html FILE</c>: the harness's <see cref="MatrixHtml"/>
/// page written atomically, behind the CLI's error path (an unreadable or malformed report exits 2).</summary>
internal static class MatrixHtmlCli
{
    /// <summary>The page of a matrix output directory.</summary>
    public static List<MatrixKernel> WriteFromDirectory(string matrixDirectory, FileInfo page) =>
        Write(() => MatrixHtml.FromDirectory(matrixDirectory), page, $"uffdnative kernel matrix: {Path.GetFileName(Path.GetFullPath(matrixDirectory).TrimEnd('/'))}");

    /// <summary>The page of probe and check reports (any mix; grouped by directory into kernels).</summary>
    public static List<MatrixKernel> WriteFromFiles(IEnumerable<string> files, FileInfo page) =>
        Write(() => MatrixHtml.FromFiles(files), page, "uffdnative kernel matrix");

    /// <summary>Whether the reports hold anything flagged: a regressed/unexpected or failed probe row, a
    /// check divergence or error (compare's exit 1).</summary>
    public static bool Flagged(IEnumerable<MatrixKernel> kernels) => kernels.Any(k =>
        new[] { k.Probe, k.ProbeUnprivileged }.Any(p => p is not null && Harness.Probing.ReportComparer.Build([p]).Flagged.Count > 0) ||
        k.Check is { } c && (c.Diverged > 0 || c.Errors > 0));

    private static List<MatrixKernel> Write(Func<List<MatrixKernel>> load, FileInfo page, string title)
    {
        List<MatrixKernel> kernels;
        try
        {
            kernels = load();
        }
        catch (FormatException e)
        {
            throw new CliUsageException($"--html: {e.Message}", e);
        }
        var html = MatrixHtml.Render(kernels, page.DirectoryName ?? ".", title);
        try
        {
            AtomicFile.WriteText(page.FullName, html);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliUsageException($"--html: cannot write '{page.FullName}': {e.Message}", e);
        }
        Console.Error.WriteLine($"matrix page: {page.FullName} ({kernels.Count} kernel{(kernels.Count == 1 ? "" : "s")})");
        return kernels;
    }
}
