using System.Runtime.InteropServices;
using UffdNative.Uapi;

namespace UffdNative.Interop;

// native/uffd_shim.h, section "uffd_wait.c: what every fault loop shares". The managed FaultServer
// writes struct uffd_loop_stats; the harness's native twin loop (libuffdharness.so) writes the same.

internal static unsafe partial class Shim
{
    [LibraryImport(Library)] internal static partial int uffd_loop_wait(int fd, int stopfd, int timeoutMs, UffdMsg* buf, int max, UffdLoopStats* stats, int* mask);
    [LibraryImport(Library)] internal static partial int uffd_thread_usage(UffdThreadUsage* usage);
    [LibraryImport(Library)] internal static partial void uffd_copy_memory(void* dst, void* src, ulong len);
    [LibraryImport(Library)] internal static partial int uffd_pidfd_open(int pid);
}

// LoopAbi and the structs (UffdHist, UffdLoopStats, UffdThreadUsage) are in src/Shared/NativeMirror.cs,
// which the harness compiles too: its native twin loop fills the same struct.
