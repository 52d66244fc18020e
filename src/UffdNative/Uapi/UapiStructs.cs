using System.Runtime.InteropServices;

namespace UffdNative.Uapi;

// Blittable mirrors of the kernel's uapi structs (reference docs/kernel-reference.md §1.4, §1.5, §1.7), the
// arguments of the raw Try* calls (Userfaultfd.TryCopy, PageMapReader.TryScan, ...), which hand the
// kernel's answer back unchanged, output fields included: what probes and conformance checks need.
// The typed methods (Userfaultfd.Copy, ...) are the ones to build on. Field order and types are the
// kernel's; the layout table in the shim proves them at first use.
// Output fields the kernel writes (copy, zeropage, mapped, updated, move) are signed: a negative
// value is -errno, never a huge byte count (userfaultfd-rs PR #91).

[StructLayout(LayoutKind.Sequential)]
public struct UffdioApi
{
    public ulong Api;
    public ulong Features;
    public ulong Ioctls;
}

[StructLayout(LayoutKind.Sequential)]
public struct UffdioRange
{
    public ulong Start;
    public ulong Len;

    public UffdioRange(ulong start, ulong len)
    {
        Start = start;
        Len = len;
    }
}

[StructLayout(LayoutKind.Sequential)]
public struct UffdioCopy
{
    public ulong Dst;
    public ulong Src;
    public ulong Len;
    public ulong Mode;
    public long Copy;
}

[StructLayout(LayoutKind.Sequential)]
public struct UffdioZeropage
{
    public UffdioRange Range;
    public ulong Mode;
    public long Zeropage;
}

[StructLayout(LayoutKind.Sequential)]
public struct UffdioWriteprotect
{
    public UffdioRange Range;
    public ulong Mode;
}

[StructLayout(LayoutKind.Sequential)]
public struct UffdioContinue
{
    public UffdioRange Range;
    public ulong Mode;
    public long Mapped;
}

[StructLayout(LayoutKind.Sequential)]
public struct UffdioPoison
{
    public UffdioRange Range;
    public ulong Mode;
    public long Updated;
}

[StructLayout(LayoutKind.Sequential)]
public struct UffdioMove
{
    public ulong Dst;
    public ulong Src;
    public ulong Len;
    public ulong Mode;
    public long Move;
}

/// <summary>struct uffd_msg: 32 bytes, packed; <c>arg</c> is a union read through the named views.</summary>
[StructLayout(LayoutKind.Explicit, Size = 32)]
public struct UffdMsg
{
    [FieldOffset(0)] public byte Event;
    [FieldOffset(8)] public ulong PagefaultFlags;
    [FieldOffset(16)] public ulong PagefaultAddress;
    [FieldOffset(24)] public uint PagefaultPtid;
    [FieldOffset(8)] public uint ForkUfd;
    [FieldOffset(8)] public ulong RemapFrom;
    [FieldOffset(16)] public ulong RemapTo;
    [FieldOffset(24)] public ulong RemapLen;
    [FieldOffset(8)] public ulong RemoveStart;
    [FieldOffset(16)] public ulong RemoveEnd;

    public readonly UffdEventKind Kind => (UffdEventKind)Event;
    public readonly PageFaultFlags Flags => (PageFaultFlags)PagefaultFlags;
}

[StructLayout(LayoutKind.Sequential)]
public struct PmScanArg
{
    public ulong Size;
    public ulong Flags;
    public ulong Start;
    public ulong End;
    public ulong WalkEnd;
    public ulong Vec;
    public ulong VecLen;
    public ulong MaxPages;
    public ulong CategoryInverted;
    public ulong CategoryMask;
    public ulong CategoryAnyofMask;
    public ulong ReturnMask;
}

[StructLayout(LayoutKind.Sequential)]
public struct PageRegion
{
    public ulong Start;
    public ulong End;
    public ulong Categories;
}
