using System.Runtime.InteropServices;

namespace UffdNative.Interop;

// native/uffd_shim.h, sections "uffd_external.c: handing a uffd to another process" and
// "uffd_soak.c: soak toucher threads".

public static unsafe partial class Shim
{
    public const int SockMaxFds = 16;

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] public static partial int uffd_sock_listen(string path, int backlog);
    [LibraryImport(Library)] public static partial int uffd_sock_accept(int listenFd, int timeoutMs);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] public static partial int uffd_sock_connect(string path);
    [LibraryImport(Library)] public static partial int uffd_sock_send(int sock, void* buf, int len, int* fds, int nfds);
    [LibraryImport(Library)] public static partial int uffd_sock_recv(int sock, void* buf, int len, int* fds, int maxfds, int* nfds, int timeoutMs);
    [LibraryImport(Library)] public static partial int uffd_sock_peer(int sock, PeerCred* cred);
    [LibraryImport(Library)] public static partial int uffd_sock_shutdown(int sock);
    [LibraryImport(Library)] public static partial int uffd_pidfd_send_signal(int pidfd, int sig);
    [LibraryImport(Library)] public static partial int uffd_tgkill(int tgid, int tid, int sig);
    [LibraryImport(Library)] public static partial long uffd_process_read(int pid, void* local, ulong remote, ulong len);

    [LibraryImport(Library)] public static partial nint uffd_soak_start(SoakConfig* cfg, int* err);
    [LibraryImport(Library)] public static partial int uffd_soak_go(nint soak);
    [LibraryImport(Library)] public static partial int uffd_soak_pause(nint soak, int timeoutMs);
    [LibraryImport(Library)] public static partial int uffd_soak_sweep(nint soak, uint mask, int* kinds);
    [LibraryImport(Library)] public static partial int uffd_soak_sweeps_done(nint soak, uint gen);
    [LibraryImport(Library)] public static partial int uffd_soak_stop(nint soak, int timeoutMs);
    [LibraryImport(Library)] public static partial int uffd_soak_thread_stats(nint soak, int index, SoakThreadStats* stats);
    [LibraryImport(Library)] public static partial int uffd_soak_failure(nint soak, int index, SoakFailure* failure);
    [LibraryImport(Library)] public static partial long uffd_soak_now_ns();
    [LibraryImport(Library)] public static partial ulong uffd_soak_region_addr(nint soak, int region);
    [LibraryImport(Library)] public static partial int uffd_soak_lock(nint soak, int region, int write);
    [LibraryImport(Library)] public static partial int uffd_soak_unlock(nint soak, int region);
    [LibraryImport(Library)] public static partial int uffd_soak_set_base(nint soak, int region, ulong addr);
    [LibraryImport(Library)] public static partial int uffd_soak_advise(nint soak, int region, ulong first, ulong count, int advice, int discards);
    [LibraryImport(Library)] public static partial int uffd_soak_free(nint soak);
}

[StructLayout(LayoutKind.Sequential)]
public struct PeerCred
{
    public int Pid;
    public int Uid;
    public int Gid;
}

/// <summary>struct uffd_soak_region_config (40 bytes, asserted in uffd_soak.c).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct SoakRegionConfig
{
    public ulong Addr;
    public ulong Pages;
    public ulong Seed;
    public int Base;
    public int MayRemove;
    public int Weight;
    public int WritePct;
}

/// <summary>struct uffd_soak_config.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct SoakConfig
{
    public const int MaxRegions = 8;
    public const int MaxThreads = 64;
    public int Threads;
    public int Regions;
    public ulong Seed;
    public SoakRegions Region;
}

[System.Runtime.CompilerServices.InlineArray(SoakConfig.MaxRegions)]
public struct SoakRegions
{
    private SoakRegionConfig first;
}

[StructLayout(LayoutKind.Sequential)]
public struct SoakThreadStats
{
    public ulong Ops;
    public ulong Reads;
    public ulong Writes;
    public ulong Verified;
    public ulong Inconclusive;
    public ulong Lost;
    public ulong Corrupt;
    public ulong SweepPages;
    public long OpStartNs;
    public ulong OpAddr;
    public int State;
    public int Tid;
}

[StructLayout(LayoutKind.Sequential)]
public struct SoakFailure
{
    public int Kind;
    public int Region;
    public int Thread;
    public int Reserved;
    public ulong Page;
    public ulong Word;
    public ulong Got;
    public ulong Expected;
}

/// <summary>Constants of the soak section (UFFD_SOAK_*).</summary>
public static class SoakAbi
{
    public const int Running = 0, Parked = 1, Done = 2;
    public const int SweepRead = 0, SweepWrite = 1;
    public const int Lost = 1, Corrupt = 2;
}
