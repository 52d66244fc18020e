using System.Text;
using Tmds.Linux;

namespace UffdNative.Harness.Io;

/// <summary>
/// Outputs that never destroy what was there: the content goes to a temporary file in the target's own
/// directory (created O_EXCL), is flushed and fsync'd, and only then renamed over the target — rename(2) in
/// one directory is atomic, so a reader sees the old file or the new one, never a truncated mix. Whatever
/// fails (ENOSPC, EIO, an exception of the writer) removes the temporary file and leaves the old one as it
/// was. A symbolic link is followed and its target replaced (the link stays); a target that exists and is
/// not a regular file (a device such as /dev/full, a FIFO, a directory) is refused, since renaming over it
/// would replace the node itself.
/// </summary>
public static unsafe class AtomicFile
{
    /// <summary>Writes what <paramref name="write"/> produces to <paramref name="path"/> atomically.
    /// Throws <see cref="IOException"/> (or the writer's exception) with the target unchanged.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        var target = Target(path);
        var status = FileKinds.Of(target);
        if (status.Exists && status.Kind != FileKind.Regular)
            throw new IOException($"'{target}' is {FileKinds.Describe(status.Kind)}, not a regular file; only regular files are written");
        var dir = Path.GetDirectoryName(target) ?? "/";
        var temp = Path.Combine(dir, $".{Path.GetFileName(target)}.{Environment.ProcessId}.{Random.Shared.Next():x8}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 65536))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            if (status.Exists && OperatingSystem.IsLinux())
                File.SetUnixFileMode(temp, File.GetUnixFileMode(target));
            File.Move(temp, target, overwrite: true);
        }
        catch
        {
            try
            {
                File.Delete(temp);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Nothing more can be done; the original exception says why.
            }
            throw;
        }
        SyncDirectory(dir);
    }

    /// <summary>Writes <paramref name="text"/> (UTF-8, no BOM) to <paramref name="path"/> atomically.</summary>
    public static void WriteAllText(string path, string text)
    {
        var bytes = new UTF8Encoding(false).GetBytes(text);
        Write(path, s => s.Write(bytes));
    }

    /// <summary>The file a write to <paramref name="path"/> replaces: the path itself, or the final target
    /// of a symbolic link.</summary>
    public static string Target(string path)
    {
        var full = Path.GetFullPath(path);
        var info = new FileInfo(full);
        if (info.LinkTarget is not null)
        {
            var resolved = info.ResolveLinkTarget(returnFinalTarget: true);
            if (resolved is not null)
                return resolved.FullName;
        }
        return full;
    }

    /// <summary>fsync of the directory, so the rename itself is durable (best effort: some file systems
    /// refuse fsync on a directory).</summary>
    private static void SyncDirectory(string dir)
    {
        var bytes = FileKinds.CString(dir);
        int fd;
        fixed (byte* p = bytes)
            fd = LibC.open(p, LibC.O_RDONLY | LibC.O_DIRECTORY | LibC.O_CLOEXEC, 0);
        if (fd < 0)
            return;
        LibC.fsync(fd);
        LibC.close(fd);
    }

    /// <summary>
    /// A new directory for a set of outputs (a reproducer): <paramref name="path"/> itself when it does not
    /// exist or is empty, else the first of PATH-2, PATH-3, … that can be created — so an earlier result is
    /// never overwritten. With <paramref name="force"/> the path itself, created if missing, whatever it holds.
    /// </summary>
    public static string NewDirectory(string path, bool force) => NewDirectory(path, force, out _);

    /// <summary><see cref="NewDirectory(string, bool)"/>, saying whether this call created the directory (so
    /// that a caller whose writes then fail can remove it and leave nothing behind).</summary>
    public static string NewDirectory(string path, bool force, out bool created)
    {
        var full = Path.GetFullPath(path).TrimEnd('/');
        if (force)
        {
            created = !Directory.Exists(full);
            Directory.CreateDirectory(full);
            return full;
        }
        for (int n = 1; n < 10000; n++)
        {
            var candidate = n == 1 ? full : $"{full}-{n}";
            int r = MakeDirectory(candidate);
            if (r == 0)
            {
                created = true;
                return candidate;
            }
            if (r != 17 /* EEXIST */)
                throw new IOException($"cannot create directory '{candidate}': {FileKinds.ErrnoText(r)}");
            if (Directory.Exists(candidate) && !Directory.EnumerateFileSystemEntries(candidate).Any())
            {
                created = false;
                return candidate;
            }
        }
        throw new IOException($"'{full}' and 9998 numbered directories beside it exist; remove some, or pass --force");
    }

    private static int MakeDirectory(string path)
    {
        var bytes = FileKinds.CString(path);
        fixed (byte* p = bytes)
            return LibC.mkdir(p, 0x1ed /* 0755 */) == 0 ? 0 : LibC.errno;
    }
}
