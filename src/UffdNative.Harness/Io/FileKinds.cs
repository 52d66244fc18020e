using System.Runtime.InteropServices;
using System.Text;
using Tmds.Linux;

namespace UffdNative.Harness.Io;

/// <summary>What a path names, from stat(2) — asked before a path is opened, so that a FIFO is never
/// opened for reading (open(2) of a FIFO blocks until a writer comes) and a device is never replaced by a
/// rename.</summary>
public enum FileKind { Missing, Regular, Directory, Fifo, CharDevice, BlockDevice, Socket, Other }

/// <summary>The result of <see cref="FileKinds.Of"/>: the kind, the size of a regular file, and the errno
/// when stat itself failed for another reason than ENOENT/ENOTDIR (EACCES, ELOOP, ENAMETOOLONG).</summary>
public readonly record struct PathStatus(FileKind Kind, long Size, int Errno, bool IsSymlink)
{
    public bool Exists => Kind != FileKind.Missing;
}

/// <summary>stat/lstat/access for paths given on a command line, and the words a person reads for them.</summary>
public static unsafe class FileKinds
{
    /// <summary>What <paramref name="path"/> names, following symbolic links (and whether the path itself is one).</summary>
    public static PathStatus Of(string path)
    {
        var bytes = CString(path);
        stat st;
        bool link = false;
        fixed (byte* p = bytes)
        {
            if (LibC.lstat(p, &st) == 0 && (st.st_mode & LibC.S_IFMT) == LibC.S_IFLNK)
                link = true;
            if (LibC.stat(p, &st) != 0)
            {
                int e = LibC.errno;
                return new PathStatus(FileKind.Missing, 0, e == LibC.ENOENT || e == 20 /* ENOTDIR */ ? 0 : e, link);
            }
        }
        return new PathStatus(KindOf(st.st_mode), (long)st.st_size, 0, link);
    }

    internal static FileKind KindOf(mode_t mode)
    {
        var t = mode & LibC.S_IFMT;
        return t == LibC.S_IFREG ? FileKind.Regular
            : t == LibC.S_IFDIR ? FileKind.Directory
            : t == LibC.S_IFIFO ? FileKind.Fifo
            : t == LibC.S_IFCHR ? FileKind.CharDevice
            : t == LibC.S_IFBLK ? FileKind.BlockDevice
            : t == LibC.S_IFSOCK ? FileKind.Socket
            : FileKind.Other;
    }

    /// <summary>0 when this process may access the path with <paramref name="mode"/> (R_OK, W_OK|X_OK), else
    /// the errno: EACCES, and EROFS for writing on a read-only file system (which even root cannot do).</summary>
    public static int Access(string path, int mode)
    {
        var bytes = CString(path);
        fixed (byte* p = bytes)
            return LibC.access(p, mode) == 0 ? 0 : LibC.errno;
    }

    public const int ReadAccess = 4;
    public const int WriteAccess = 2;
    public const int SearchAccess = 1;

    /// <summary>"a directory", "a FIFO (named pipe)", "a character device" …</summary>
    public static string Describe(FileKind k) => k switch
    {
        FileKind.Regular => "a regular file",
        FileKind.Directory => "a directory",
        FileKind.Fifo => "a FIFO (named pipe)",
        FileKind.CharDevice => "a character device",
        FileKind.BlockDevice => "a block device",
        FileKind.Socket => "a socket",
        FileKind.Missing => "missing",
        _ => "not a regular file",
    };

    /// <summary>strerror's text for an errno, lower-cased ("no space left on device").</summary>
    public static string ErrnoText(int errno)
    {
        var m = Marshal.GetPInvokeErrorMessage(errno);
        return m.Length > 0 ? char.ToLowerInvariant(m[0]) + m[1..] : $"errno {errno}";
    }

    internal static byte[] CString(string s)
    {
        if (s.Contains('\0', StringComparison.Ordinal))
            throw new ArgumentException("a path cannot contain a NUL character", nameof(s));
        var b = new byte[Encoding.UTF8.GetByteCount(s) + 1];
        Encoding.UTF8.GetBytes(s, b);
        return b;
    }
}
