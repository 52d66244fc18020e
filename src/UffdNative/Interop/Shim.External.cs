using System.Runtime.InteropServices;

namespace UffdNative.Interop;

// native/uffd_shim.h, section "uffd_external.c: handing a uffd to another process".

internal static unsafe partial class Shim
{
    internal const int SockMaxFds = 16;

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] internal static partial int uffd_sock_listen(string path, int backlog);
    [LibraryImport(Library)] internal static partial int uffd_sock_accept(int listenFd, int timeoutMs);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] internal static partial int uffd_sock_connect(string path);
    [LibraryImport(Library)] internal static partial int uffd_sock_send(int sock, void* buf, int len, int* fds, int nfds);
    [LibraryImport(Library)] internal static partial int uffd_sock_recv(int sock, void* buf, int len, int* fds, int maxfds, int* nfds, int timeoutMs);
    [LibraryImport(Library)] internal static partial int uffd_sock_peer(int sock, PeerCred* cred);
    [LibraryImport(Library)] internal static partial int uffd_sock_shutdown(int sock);
    [LibraryImport(Library)] internal static partial int uffd_pidfd_send_signal(int pidfd, int sig);
    [LibraryImport(Library)] internal static partial int uffd_tgkill(int tgid, int tid, int sig);
    [LibraryImport(Library)] internal static partial long uffd_process_read(int pid, void* local, ulong remote, ulong len);

    // Serving another process safely (docs/security.md).
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] internal static partial int uffd_sock_listen_mode(string path, int backlog, int mode);
    [LibraryImport(Library)] internal static partial int uffd_sock_send_timed(int sock, void* buf, int len, int* fds, int nfds, int timeoutMs);
    [LibraryImport(Library)] internal static partial int uffd_sock_peer_pidfd(int sock);
    [LibraryImport(Library)] internal static partial int uffd_sock_is_unix_listener(int fd);
    [LibraryImport(Library)] internal static partial int uffd_fd_info(int fd, FileInfoNative* info);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] internal static partial int uffd_path_info(string path, int follow, FileInfoNative* info);
    [LibraryImport(Library)] internal static partial int uffd_fd_link(int fd, byte* buf, int len);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] internal static partial int uffd_open_dir(string path);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] internal static partial int uffd_open_beneath(int dirfd, string path);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] internal static partial int uffd_lock_path(string path);
    [LibraryImport(Library)] internal static partial int uffd_parent_pidfd(int parentPid);
    [LibraryImport(Library)] internal static partial int uffd_pidfd_exited(int pidfd);

    /// <summary>unlink(2): 0 or -errno.</summary>
    internal static int uffd_unlink(string path)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* p = bytes)
            return Tmds.Linux.LibC.unlink(p) < 0 ? -Marshal.GetLastPInvokeError() : 0;
    }

    internal static uint uffd_geteuid() => Tmds.Linux.LibC.geteuid();
}

/// <summary>struct uffd_file_info (uffd_shim.h; its size and offsets are pinned by _Static_assert in
/// uffd_external.c): what fstat/lstat, fstatfs, F_GET_SEALS and F_GETFL say about a descriptor or path.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct FileInfoNative
{
    public uint Mode;
    public uint Uid;
    public uint Gid;
    public int Seals;
    public long Size;
    public ulong Dev;
    public ulong Ino;
    public long FsType;
    public int Fl;
    public int Pad;

    public const uint TypeMask = 0xF000, Regular = 0x8000, Directory = 0x4000, Fifo = 0x1000, Socket = 0xC000, CharDevice = 0x2000, BlockDevice = 0x6000, Symlink = 0xA000;
    public const long TmpfsMagic = 0x01021994, HugetlbfsMagic = 0x958458f6;
    public const int SealSeal = 1, SealShrink = 2, SealGrow = 4, SealWrite = 8;
    public const int ONonblock = 0x800, AccessMode = 3, ReadOnly = 0, WriteOnly = 1, ReadWrite = 2;

    public readonly uint Type => Mode & TypeMask;
    public readonly bool IsRegular => Type == Regular;

    public readonly string TypeName => Type switch
    {
        Regular => "a regular file",
        Directory => "a directory",
        Fifo => "a FIFO",
        Socket => "a socket",
        CharDevice => "a character device",
        BlockDevice => "a block device",
        Symlink => "a symbolic link",
        _ => $"a file of type 0{Type >> 12:o}",
    };
}

[StructLayout(LayoutKind.Sequential)]
internal struct PeerCred
{
    public int Pid;
    public int Uid;
    public int Gid;
}
