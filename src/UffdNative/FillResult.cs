namespace UffdNative;

/// <summary>How a filling ioctl (COPY, ZEROPAGE, CONTINUE, POISON, MOVE) ended (reference §0.7, I4).</summary>
public enum FillStatus
{
    /// <summary>ret 0, field == len.</summary>
    Complete,
    /// <summary>EAGAIN with field &gt; 0: that many bytes were done; retry the rest.</summary>
    Partial,
    /// <summary>EEXIST: the page is already there (another resolver won). Wake the range anyway.</summary>
    Exists,
    /// <summary>EAGAIN with nothing done: a non-cooperative event is unread (mmap_changing, §1.6).
    /// Read events, then retry.</summary>
    Again,
    /// <summary>ENOENT: the range is no longer (fully) inside a registered VMA, e.g. after UNMAP.</summary>
    NotRegistered,
}

/// <summary>The outcome of a filling ioctl. <see cref="Field"/> is the kernel's signed result field:
/// bytes done, or -errno.</summary>
public readonly record struct FillResult(FillStatus Status, int Errno, long Field, ulong Requested)
{
    public long BytesDone => Field > 0 ? Field : 0;
    public bool IsComplete => Status == FillStatus.Complete;

    internal static FillResult From(string op, int ret, long field, ulong len)
    {
        switch (-ret)
        {
            case 0:
                return new FillResult(FillStatus.Complete, 0, field, len);
            case UffdNative.Errno.EAGAIN:
                return new FillResult(field > 0 ? FillStatus.Partial : FillStatus.Again, UffdNative.Errno.EAGAIN, field, len);
            case UffdNative.Errno.EEXIST:
                return new FillResult(FillStatus.Exists, UffdNative.Errno.EEXIST, field, len);
            case UffdNative.Errno.ENOENT:
                return new FillResult(FillStatus.NotRegistered, UffdNative.Errno.ENOENT, field, len);
        }
        var (detail, remedy) = -ret switch
        {
            UffdNative.Errno.EINVAL => ("an unaligned or zero-length range, an unknown mode bit, MODE_WP on a range not registered WP, or an unsupported memory type (MOVE is anonymous-only)",
                "align start and length to pages and check the mode against the registration (reference §1.4)"),
            UffdNative.Errno.EFAULT => ("the source is unreadable, the destination is beyond the file's size, or (CONTINUE) no page-cache page exists",
                "check the source buffer and the file size"),
            UffdNative.Errno.ESRCH => ("the process that owns the memory has exited (reference §1.8)", "stop serving this uffd and close it"),
            UffdNative.Errno.EBUSY => ("the source page is shared (e.g. with a fork child) or pinned", "MOVE only exclusive anonymous pages"),
            _ => Remedies.Generic(op, -ret),
        };
        throw new UffdException(op, -ret, detail, remedy);
    }
}
