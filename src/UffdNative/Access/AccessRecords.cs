using System.Runtime.InteropServices;

namespace UffdNative.Access;

// The shim's accessor and fork-helper records (native/uffd_shim.h): what an access or a child op is,
// and what it returned. Build ops with Op and ChildOps; the layout table proves the layouts.

[StructLayout(LayoutKind.Sequential)]
public struct AccessOp
{
    public int Kind;
    public int Reserved;
    public ulong Addr;
    public ulong Len;
    public ulong Value;
    public ulong Stride;
}

[StructLayout(LayoutKind.Sequential)]
public struct AccessResult
{
    public long Ret;
    public ulong Value;
    public long ElapsedNs;
}

[StructLayout(LayoutKind.Sequential)]
public struct ChildOp
{
    public int Kind;
    public int Arg;
    public ulong Addr;
    public ulong Len;
    public ulong Value;
}

[StructLayout(LayoutKind.Sequential)]
public struct ChildResult
{
    public int Index;
    public int Sigbus;
    public int SiCode;
    public int Reserved;
    public long Ret;
    public ulong Value;
}
