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
}

[StructLayout(LayoutKind.Sequential)]
internal struct PeerCred
{
    public int Pid;
    public int Uid;
    public int Gid;
}
