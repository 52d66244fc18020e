using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using UffdNative.Memory;

namespace UffdNative.Serving;

/// <summary>Fills destination with the source bytes at offset (a multiple of the page size).
/// Runs on the loop thread; must not touch uffd-registered memory.</summary>
public delegate void PageFiller(ulong offset, Span<byte> destination);

/// <summary>
/// Where <see cref="Policies.MissingCopy"/> takes page contents from: a buffer (copied from directly),
/// a file (read into a staging buffer), or a delegate (fills the staging buffer). The bytes handed to
/// UFFDIO_COPY must be ordinary memory: never a uffd-registered range of the same process (the copy
/// would fault on itself, reference §1.4).
/// </summary>
public abstract class PageSource : IDisposable
{
    /// <summary>Bytes the source has; offsets past it read as zero.</summary>
    public abstract ulong Length { get; }

    /// <summary>Returns the address of the bytes for [offset, offset+length) and how many of them are
    /// there (at least one page, at most length).</summary>
    public abstract nint Prepare(ulong offset, ulong length, out ulong available);

    /// <summary>The source a FORK child's server uses: sources with a staging buffer return a copy.</summary>
    public virtual PageSource ForForkChild() => this;

    public virtual void Dispose() => GC.SuppressFinalize(this);

    /// <summary>Ordinary memory at address (never registered), length bytes. Not owned.</summary>
    public static PageSource FromBuffer(nint address, ulong length) => new BufferPageSource(address, length, null);

    /// <summary>Pages from a <see cref="Access.PageBuffer"/> (which must outlive the source).</summary>
    public static PageSource FromBuffer(Access.PageBuffer buffer) => FromBuffer((nint)buffer.Address, buffer.Length);

    /// <summary>A managed array, pinned for the source's lifetime.</summary>
    public static PageSource FromArray(byte[] data)
    {
        var h = GCHandle.Alloc(data, GCHandleType.Pinned);
        return new BufferPageSource(h.AddrOfPinnedObject(), (ulong)data.Length, h);
    }

    /// <summary>A file read with pread at fileOffset + offset (not owned).</summary>
    public static PageSource FromFile(SafeFileHandle file, long fileOffset = 0, ulong? length = null, int stagingPages = 64) =>
        new FilePageSource(file, fileOffset, length ?? (ulong)(RandomAccess.GetLength(file) - fileOffset), stagingPages);

    public static PageSource FromDelegate(PageFiller fill, ulong length, int stagingPages = 64) => new DelegatePageSource(fill, length, stagingPages);
}

internal sealed class BufferPageSource(nint address, ulong length, GCHandle? pin) : PageSource
{
    private GCHandle? pin = pin;

    public override ulong Length => length;

    public override nint Prepare(ulong offset, ulong len, out ulong available)
    {
        if (offset + len <= length)
        {
            available = len;
            return address + (nint)offset;
        }
        // Past the end: never hand the kernel bytes outside the buffer.
        available = offset < length ? (length - offset) / Mapping.PageSize * Mapping.PageSize : 0;
        if (available == 0)
        {
            available = Mapping.PageSize;
            return ZeroPage.Address;
        }
        return address + (nint)offset;
    }

    public override void Dispose()
    {
        if (pin is { } h)
        {
            h.Free();
            pin = null;
        }
        base.Dispose();
    }
}

/// <summary>Sources that produce bytes into a page-aligned native staging buffer.</summary>
internal abstract unsafe class StagedPageSource : PageSource
{
    protected readonly int StagingPages;
    private nint staging;

    protected StagedPageSource(int stagingPages)
    {
        StagingPages = Math.Max(1, stagingPages);
        staging = (nint)NativeMemory.AlignedAlloc((nuint)((ulong)StagingPages * Mapping.PageSize), (nuint)Mapping.PageSize);
    }

    public override nint Prepare(ulong offset, ulong len, out ulong available)
    {
        available = Math.Min(len, (ulong)StagingPages * Mapping.PageSize);
        var span = new Span<byte>((void*)staging, (int)available);
        Fill(offset, span);
        return staging;
    }

    protected abstract void Fill(ulong offset, Span<byte> destination);

    public override void Dispose()
    {
        if (staging != 0)
        {
            NativeMemory.AlignedFree((void*)staging);
            staging = 0;
        }
        base.Dispose();
    }
}

internal sealed class FilePageSource(SafeFileHandle file, long fileOffset, ulong length, int stagingPages) : StagedPageSource(stagingPages)
{
    public override ulong Length => length;

    protected override void Fill(ulong offset, Span<byte> destination)
    {
        int done = 0;
        while (done < destination.Length)
        {
            int n = RandomAccess.Read(file, destination[done..], fileOffset + (long)offset + done);
            if (n <= 0)
                break;
            done += n;
        }
        destination[done..].Clear(); // past the end of the file: zeros
    }

    public override PageSource ForForkChild() => new FilePageSource(file, fileOffset, length, StagingPages);
}

internal sealed class DelegatePageSource(PageFiller fill, ulong length, int stagingPages) : StagedPageSource(stagingPages)
{
    public override ulong Length => length;

    protected override void Fill(ulong offset, Span<byte> destination) => fill(offset, destination);

    public override PageSource ForForkChild() => new DelegatePageSource(fill, length, StagingPages);
}

/// <summary>One shared page of zeros (ordinary memory) for copies past a buffer's end.</summary>
internal static unsafe class ZeroPage
{
    public static readonly nint Address = (nint)NativeMemory.AlignedAlloc((nuint)Mapping.PageSize, (nuint)Mapping.PageSize);

    static ZeroPage() => NativeMemory.Clear((void*)Address, (nuint)Mapping.PageSize);
}
