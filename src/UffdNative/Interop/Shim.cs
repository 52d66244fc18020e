using System.Runtime.InteropServices;
using UffdNative.Access;
using UffdNative.Uapi;

namespace UffdNative.Interop;

/// <summary>
/// Every entry point of libuffdshim.so (native/uffd_shim.h), declared once. Each returns &gt;= 0 or
/// -errno. None carries [SuppressGCTransition]: any of them may block or fault, and a thread that
/// blocks in cooperative mode stalls the GC for the whole process.
/// </summary>
internal static unsafe partial class Shim
{
    internal const string Library = "uffdshim";

    static Shim() => LayoutVerifier.EnsureVerified();

    // uffd_shim.c
    [LibraryImport(Library)] internal static partial int uffd_open_syscall(int flags);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] internal static partial int uffd_open_device(string? path, int flags, out int stage);
    [LibraryImport(Library)] internal static partial int uffd_api(int fd, UffdioApi* api);
    [LibraryImport(Library)] internal static partial int uffd_register(int fd, UffdioRegister* reg);
    [LibraryImport(Library)] internal static partial int uffd_unregister(int fd, UffdioRange* range);
    [LibraryImport(Library)] internal static partial int uffd_wake(int fd, UffdioRange* range);
    [LibraryImport(Library)] internal static partial int uffd_copy(int fd, UffdioCopy* copy);
    [LibraryImport(Library)] internal static partial int uffd_zeropage(int fd, UffdioZeropage* zp);
    [LibraryImport(Library)] internal static partial int uffd_writeprotect(int fd, UffdioWriteprotect* wp);
    [LibraryImport(Library)] internal static partial int uffd_continue(int fd, UffdioContinue* cont);
    [LibraryImport(Library)] internal static partial int uffd_poison(int fd, UffdioPoison* poison);
    [LibraryImport(Library)] internal static partial int uffd_move(int fd, UffdioMove* move);
    [LibraryImport(Library)] internal static partial int uffd_ioctl_raw(int fd, ulong request, void* arg);
    [LibraryImport(Library)] internal static partial int uffd_read_msgs(int fd, UffdMsg* buf, int max);
    [LibraryImport(Library)] internal static partial int uffd_poll(int fd, int stopfd, int timeoutMs);
    [LibraryImport(Library)] internal static partial int uffd_eventfd(int nonblocking);
    [LibraryImport(Library)] internal static partial int uffd_eventfd_signal(int efd);
    [LibraryImport(Library)] internal static partial int uffd_eventfd_drain(int efd);
    [LibraryImport(Library)] internal static partial int uffd_close(int fd);
    [LibraryImport(Library)] internal static partial int uffd_pagemap_scan(int pagemapFd, PmScanArg* arg);
    [LibraryImport(Library)] internal static partial int uffd_gettid();
    [LibraryImport(Library)] internal static partial int uffd_pin_thread(int cpu);

    // uffd_access.c
    [LibraryImport(Library)] internal static partial ulong uffd_pattern_word(ulong seed, ulong index);
    [LibraryImport(Library)] internal static partial void uffd_pattern_fill(void* buf, ulong len, ulong seed, ulong firstIndex);
    [LibraryImport(Library)] internal static partial int uffd_access_run(AccessOp* ops, int nops, AccessResult* results);
    [LibraryImport(Library)] internal static partial nint uffd_worker_start(AccessOp* ops, int nops, int cpu);
    [LibraryImport(Library)] internal static partial int uffd_worker_tid(nint worker);
    [LibraryImport(Library)] internal static partial int uffd_worker_progress(nint worker);
    [LibraryImport(Library)] internal static partial int uffd_worker_join(nint worker, int timeoutMs, AccessResult* results);
    [LibraryImport(Library)] internal static partial int uffd_worker_done_fd(nint worker);
    [LibraryImport(Library)] internal static partial int uffd_worker_signal(nint worker, int sig);
    [LibraryImport(Library)] internal static partial int uffd_worker_signal_count(nint worker);
    [LibraryImport(Library)] internal static partial int uffd_worker_free(nint worker);

    // uffd_fork.c
    [LibraryImport(Library)] internal static partial nint uffd_fork_start(ChildOp* ops, int nops, out int err);
    [LibraryImport(Library)] internal static partial int uffd_fork_pid(nint child);
    [LibraryImport(Library)] internal static partial int uffd_fork_next(nint child, int timeoutMs, ChildResult* res);
    [LibraryImport(Library)] internal static partial int uffd_fork_recv_fd(nint child, int timeoutMs, out ulong addr);
    [LibraryImport(Library)] internal static partial int uffd_fork_release(nint child);
    [LibraryImport(Library)] internal static partial int uffd_fork_finish(nint child, int timeoutMs, out int status);
}

/// <summary>The layout table and version, kept apart from <see cref="Shim"/> so that verifying the
/// layout does not itself require a verified layout.</summary>
internal static unsafe partial class ShimLayout
{
    [LibraryImport(Shim.Library)] internal static partial int uffd_shim_abi_version();
    [LibraryImport(Shim.Library)] internal static partial int uffd_layout_count();
    [LibraryImport(Shim.Library)] internal static partial int uffd_layout_get(int index, byte** name, long* value);
}
