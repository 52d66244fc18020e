using System.Runtime.InteropServices;

namespace UffdNative;

/// <summary>Linux errno values (x86-64) with their names; the shim returns them negated.</summary>
public static class Errno
{
    public const int EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EIO = 5, ENXIO = 6, EBADF = 9, ECHILD = 10,
        EAGAIN = 11, ENOMEM = 12, EACCES = 13, EFAULT = 14, EBUSY = 16, EEXIST = 17, ENODEV = 19, ENOTDIR = 20,
        EISDIR = 21, EINVAL = 22, EMFILE = 24, ENOTTY = 25, EFBIG = 27, ENOSPC = 28, ESPIPE = 29, EROFS = 30,
        EPIPE = 32, ERANGE = 34, ENOSYS = 38, EPROTO = 71, EOVERFLOW = 75, EOPNOTSUPP = 95, ETIMEDOUT = 110;

    private static readonly Dictionary<int, string> Names = new()
    {
        [EPERM] = "EPERM", [ENOENT] = "ENOENT", [ESRCH] = "ESRCH", [EINTR] = "EINTR", [EIO] = "EIO", [ENXIO] = "ENXIO",
        [EBADF] = "EBADF", [ECHILD] = "ECHILD", [EAGAIN] = "EAGAIN", [ENOMEM] = "ENOMEM", [EACCES] = "EACCES",
        [EFAULT] = "EFAULT", [EBUSY] = "EBUSY", [EEXIST] = "EEXIST", [ENODEV] = "ENODEV", [ENOTDIR] = "ENOTDIR",
        [EISDIR] = "EISDIR", [EINVAL] = "EINVAL", [EMFILE] = "EMFILE", [ENOTTY] = "ENOTTY", [EFBIG] = "EFBIG",
        [ENOSPC] = "ENOSPC", [ESPIPE] = "ESPIPE", [EROFS] = "EROFS", [EPIPE] = "EPIPE", [ERANGE] = "ERANGE",
        [ENOSYS] = "ENOSYS", [EPROTO] = "EPROTO", [EOVERFLOW] = "EOVERFLOW", [EOPNOTSUPP] = "EOPNOTSUPP",
        [ETIMEDOUT] = "ETIMEDOUT",
    };

    public static string Name(int errno)
    {
        errno = Math.Abs(errno);
        return errno == 0 ? "OK" : Names.TryGetValue(errno, out var n) ? n : "E" + errno;
    }

    /// <summary>Inverse of <see cref="Name"/> ("EINVAL" → 22); also accepts "OK" and numbers.</summary>
    public static bool TryParse(string name, out int errno)
    {
        if (name == "OK")
        {
            errno = 0;
            return true;
        }
        foreach (var (k, v) in Names)
            if (v == name)
            {
                errno = k;
                return true;
            }
        return int.TryParse(name.TrimStart('E'), out errno);
    }

    public static string Describe(int errno) => Marshal.GetPInvokeErrorMessage(Math.Abs(errno));
}

/// <summary>
/// A failed userfaultfd operation: which operation, the errno, what it means here, and a remedy a
/// person can act on (a sysctl, a capability, a device permission, a seccomp profile, or the kernel
/// version that added a missing feature).
/// </summary>
public sealed class UffdException : Exception
{
    public string Operation { get; }
    public int Errno { get; }
    public string ErrnoName => UffdNative.Errno.Name(Errno);
    public string Detail { get; }
    public string Remedy { get; }

    public UffdException(string operation, int errno, string detail, string remedy)
        : base(Format(operation, errno, detail, remedy))
    {
        Operation = operation;
        Errno = Math.Abs(errno);
        Detail = detail;
        Remedy = remedy;
    }

    private static string Format(string op, int errno, string detail, string remedy)
    {
        var s = $"{op} failed: {UffdNative.Errno.Name(errno)} ({UffdNative.Errno.Describe(errno)})";
        if (!string.IsNullOrEmpty(detail))
            s += " — " + detail;
        if (!string.IsNullOrEmpty(remedy))
            s += ". Fix: " + remedy;
        return s;
    }

    /// <summary>Throws unless ret &gt;= 0; the detail and remedy come from <see cref="Remedies"/>.</summary>
    internal static int Check(int ret, string op, Func<int, (string Detail, string Remedy)>? explain = null)
    {
        if (ret >= 0)
            return ret;
        var (detail, remedy) = explain?.Invoke(-ret) ?? Remedies.Generic(op, -ret);
        throw new UffdException(op, -ret, detail, remedy);
    }
}
