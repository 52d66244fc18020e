using UffdNative.Memory;

namespace UffdNative.Serving;

/// <summary>
/// A range a server serves: where it is now, and which offset of the page source (and of a snapshot
/// store) its first page corresponds to. REMAP moves it (the source offset stays, so moved memory keeps
/// its content), UNMAP forgets it, REMOVE marks its pages removed: a removed page that faults again is
/// served as zero (its content was discarded, as the kernel would without a uffd), not from the source.
/// </summary>
public sealed class ServedRange
{
    private readonly ulong[] removed;

    public ulong Start { get; internal set; }
    public ulong Length { get; }
    public ulong SourceOffset { get; }
    public ulong End => Start + Length;
    public long Pages => (long)(Length / Mapping.PageSize);

    public ServedRange(ulong start, ulong length, ulong sourceOffset = 0)
    {
        if (start % Mapping.PageSize != 0 || length % Mapping.PageSize != 0 || length == 0)
            throw new ArgumentException($"a served range must be page aligned and non-empty (start 0x{start:x}, length {length})");
        Start = start;
        Length = length;
        SourceOffset = sourceOffset;
        removed = new ulong[(Pages + 63) / 64];
    }

    /// <summary>A copy of a part of this range, [offset, offset+length), keeping its removed marks.</summary>
    internal ServedRange Slice(ulong offset, ulong length, ulong newStart)
    {
        var r = new ServedRange(newStart, length, SourceOffset + offset);
        long first = (long)(offset / Mapping.PageSize);
        for (long i = 0; i < r.Pages; i++)
            if (IsRemoved(first + i))
                r.SetRemoved(i, true);
        return r;
    }

    public bool Contains(ulong address) => address >= Start && address - Start < Length;

    /// <summary>The source offset of an address inside the range.</summary>
    public ulong SourceOffsetOf(ulong address) => SourceOffset + (address - Start);

    public long PageIndex(ulong address) => (long)((address - Start) / Mapping.PageSize);

    public bool IsRemoved(long page) => (removed[page >> 6] & (1UL << (int)(page & 63))) != 0;

    internal void SetRemoved(long page, bool value)
    {
        if (value)
            removed[page >> 6] |= 1UL << (int)(page & 63);
        else
            removed[page >> 6] &= ~(1UL << (int)(page & 63));
    }

    /// <summary>The length of the longest prefix of [address, address+length) whose pages are all
    /// removed, or all not removed (which one: <paramref name="isRemoved"/>).</summary>
    public ulong UniformPrefix(ulong address, ulong length, out bool isRemoved)
    {
        long first = PageIndex(address);
        long n = (long)(Math.Min(length, End - address) / Mapping.PageSize);
        isRemoved = IsRemoved(first);
        long k = 1;
        while (k < n && IsRemoved(first + k) == isRemoved)
            k++;
        return (ulong)k * Mapping.PageSize;
    }

    public override string ToString() => $"[0x{Start:x}, 0x{End:x}) source +0x{SourceOffset:x}";
}
