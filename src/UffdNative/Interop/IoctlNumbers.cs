using System.Runtime.CompilerServices;
using UffdNative.Uapi;

namespace UffdNative.Interop;

/// <summary>Ioctl request numbers computed the way asm-generic/ioctl.h does, from the managed struct
/// sizes. The shim issues the ioctls; these exist so the layout check proves both sides agree.</summary>
internal static class IoctlNumbers
{
    private const uint None = 0, Write = 1, Read = 2;
    private const uint Uffdio = 0xAA;

    private static ulong Ioc(uint dir, uint type, uint nr, int size) => (dir << 30) | ((uint)size << 16) | (type << 8) | nr;
    private static ulong IoWR<T>(uint type, uint nr) where T : unmanaged => Ioc(Read | Write, type, nr, Unsafe.SizeOf<T>());

    internal static readonly ulong Api = IoWR<UffdioApi>(Uffdio, 0x3F);
    internal static readonly ulong Register = IoWR<UffdioRegister>(Uffdio, 0x00);
    // _IOR, not _IOW: the kernel's historical mistake, kept for ABI stability.
    internal static readonly ulong Unregister = Ioc(Read, Uffdio, 0x01, Unsafe.SizeOf<UffdioRange>());
    internal static readonly ulong Wake = Ioc(Read, Uffdio, 0x02, Unsafe.SizeOf<UffdioRange>());
    internal static readonly ulong Copy = IoWR<UffdioCopy>(Uffdio, 0x03);
    internal static readonly ulong ZeroPage = IoWR<UffdioZeropage>(Uffdio, 0x04);
    internal static readonly ulong Move = IoWR<UffdioMove>(Uffdio, 0x05);
    internal static readonly ulong WriteProtect = IoWR<UffdioWriteprotect>(Uffdio, 0x06);
    internal static readonly ulong Continue = IoWR<UffdioContinue>(Uffdio, 0x07);
    internal static readonly ulong Poison = IoWR<UffdioPoison>(Uffdio, 0x08);
    internal static readonly ulong UserfaultfdIocNew = Ioc(None, Uffdio, 0x00, 0);
    internal static readonly ulong PagemapScan = IoWR<PmScanArg>('f', 16);
}
