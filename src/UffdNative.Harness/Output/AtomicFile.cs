namespace UffdNative.Harness.Output;

/// <summary>
/// Writes a file so that a reader never sees it half-written: the bytes go to a temporary file in the
/// same directory (so that the rename stays on one file system), which is flushed to disk and then
/// renamed over the target (rename(2) replaces atomically). Nothing is left behind on failure.
/// </summary>
public static class AtomicFile
{
    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/>; returns whether a file of that name was replaced.</summary>
    public static bool Write(string path, ReadOnlySpan<byte> bytes)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        var temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        bool replaced = File.Exists(full);
        try
        {
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                fs.Write(bytes);
                fs.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            try
            {
                File.Delete(temp);
            }
            catch (IOException)
            {
                // The original error is the one to report.
            }
            throw;
        }
        return replaced;
    }

    /// <summary>Writes <paramref name="text"/> as UTF-8 (no byte-order mark).</summary>
    public static bool WriteText(string path, string text) => Write(path, System.Text.Encoding.UTF8.GetBytes(text));
}
