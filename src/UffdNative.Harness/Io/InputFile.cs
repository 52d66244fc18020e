using System.Text;
using Microsoft.Win32.SafeHandles;
using Tmds.Linux;

namespace UffdNative.Harness.Io;

/// <summary>
/// Reads an input file given by a person without ever blocking or exhausting memory: opened with
/// O_NONBLOCK (a FIFO swapped in after the check cannot block the open), checked with fstat to be a
/// regular file of at most <see cref="MaxBytes"/> bytes, then read. Problems are <see cref="IOException"/>s
/// whose message is the reason alone ("is a FIFO (named pipe) …"), for the caller to prefix with the path.
/// </summary>
public static unsafe class InputFile
{
    /// <summary>The largest input accepted (a probe report is ~100 kB, a scenario a few kB).</summary>
    public const long MaxBytes = 64L << 20;

    public static string ReadAllText(string path, long maxBytes = MaxBytes)
    {
        var bytes = FileKinds.CString(path);
        int fd;
        fixed (byte* p = bytes)
            fd = LibC.open(p, LibC.O_RDONLY | LibC.O_NONBLOCK | LibC.O_CLOEXEC | LibC.O_NOCTTY, 0);
        if (fd < 0)
            throw new IOException(FileKinds.ErrnoText(LibC.errno));
        using var handle = new SafeFileHandle(fd, ownsHandle: true);
        stat st;
        if (LibC.fstat(fd, &st) != 0)
            throw new IOException(FileKinds.ErrnoText(LibC.errno));
        var kind = FileKinds.KindOf(st.st_mode);
        if (kind != FileKind.Regular)
            throw new IOException($"it is {FileKinds.Describe(kind)}, not a regular file");
        long size = (long)st.st_size;
        if (size > maxBytes)
            throw new IOException($"it is {size} bytes, more than the {maxBytes >> 20} MiB accepted");
        using var stream = new FileStream(handle, FileAccess.Read, 1, isAsync: false);
        using var reader = new StreamReader(stream, new UTF8Encoding(false, throwOnInvalidBytes: true), detectEncodingFromByteOrderMarks: true);
        var buffer = new char[8192];
        var sb = new StringBuilder();
        long total = 0;
        int n;
        try
        {
            while ((n = reader.Read(buffer, 0, buffer.Length)) > 0)
            {
                // A file that grows while being read (/proc, a log) stops at the limit too.
                total += n;
                if (total > maxBytes)
                    throw new IOException($"it grew beyond the {maxBytes >> 20} MiB accepted while being read");
                sb.Append(buffer, 0, n);
            }
        }
        catch (DecoderFallbackException)
        {
            throw new IOException("it is not UTF-8 text");
        }
        return sb.ToString();
    }
}
