using System.Runtime.InteropServices;
using UffdNative.Uapi;

namespace UffdNative.Interop;

/// <summary>struct uffdio_register: the public API registers with typed arguments
/// (<see cref="Userfaultfd.TryRegister(ulong, ulong, RegisterMode, out UffdIoctls)"/>).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct UffdioRegister
{
    public UffdioRange Range;
    public ulong Mode;
    public ulong Ioctls;
}

