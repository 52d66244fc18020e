using System.Runtime.InteropServices;
using UffdNative.Memory;

namespace UffdNative.Serving;

/// <summary>
/// Where <see cref="Policies.WpSnapshot"/> keeps the pre-write content of each page: ordinary native
/// memory indexed by source offset, plus which pages were saved. Pages never written during the
/// snapshot were never copied; the snapshot of those is the live memory itself.
/// </summary>
public sealed unsafe class SnapshotStore : IDisposable
{
    private readonly ulong[] saved;
    private nint buffer;
    private long savedCount;

    public ulong Length { get; }
    public nint Address => buffer;
    public long SavedPages => Interlocked.Read(ref savedCount);

    public SnapshotStore(ulong length)
    {
        Length = length;
        buffer = (nint)NativeMemory.AlignedAlloc((nuint)length, (nuint)Mapping.PageSize);
        saved = new ulong[(length / Mapping.PageSize + 63) / 64];
    }

    public nint AddressOf(ulong offset) => buffer + (nint)offset;

    public bool IsSaved(ulong offset)
    {
        ulong page = offset / Mapping.PageSize;
        return (Volatile.Read(ref saved[page >> 6]) & (1UL << (int)(page & 63))) != 0;
    }

    /// <summary>Marks the page at offset saved; false if it already was (or is outside the store).</summary>
    internal bool TryClaim(ulong offset)
    {
        if (offset >= Length)
            return false;
        ulong page = offset / Mapping.PageSize;
        ulong bit = 1UL << (int)(page & 63);
        if ((saved[page >> 6] & bit) != 0)
            return false;
        saved[page >> 6] |= bit;
        savedCount++;
        return true;
    }

    public void Dispose()
    {
        if (buffer != 0)
        {
            NativeMemory.AlignedFree((void*)buffer);
            buffer = 0;
        }
    }
}
