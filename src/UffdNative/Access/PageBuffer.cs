using System.Runtime.InteropServices;
using UffdNative.Interop;
using UffdNative.Memory;

namespace UffdNative.Access;

/// <summary>
/// An ordinary page-aligned native buffer — never uffd-registered, so managed code may read and write
/// it freely: a COPY source, a snapshot store, a staging area. Optionally filled with the shim's
/// pattern (<see cref="Accessor.PatternWord"/>), word indices from 0.
/// </summary>
public sealed unsafe class PageBuffer : IDisposable
{
    public ulong Address { get; private set; }
    public ulong Length { get; }

    public PageBuffer(ulong length)
    {
        if (length == 0 || length % Mapping.PageSize != 0)
            throw new ArgumentOutOfRangeException(nameof(length), length, "a whole number of pages");
        Length = length;
        Address = (ulong)NativeMemory.AlignedAlloc((nuint)length, (nuint)Mapping.PageSize);
    }

    public PageBuffer(ulong length, ulong seed) : this(length) => Shim.uffd_pattern_fill((void*)Address, length, seed, 0);

    public Span<byte> Span => Address == 0 ? throw new ObjectDisposedException(nameof(PageBuffer)) : new((void*)Address, checked((int)Length));

    public ulong PageAddress(long page) => Address + (ulong)page * Mapping.PageSize;

    public void Dispose()
    {
        if (Address != 0)
            NativeMemory.AlignedFree((void*)Address);
        Address = 0;
    }
}
