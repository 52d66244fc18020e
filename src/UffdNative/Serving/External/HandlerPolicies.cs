using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using UffdNative.Interop;
using UffdNative.Memory;
using UffdNative.Messages;
using UffdNative.Serving.Policies;

namespace UffdNative.Serving.External;

/// <summary>
/// Reads the current content of a page of the client's memory from the handler process, for the
/// snapshot copy: from the region's memfd (shmem), or process_vm_readv from the owner (anonymous
/// memory). A WP-registered page can be read either way without a uffd fault (a read of a
/// write-protected page never faults, reference §3.2). A memfd the client sealed against shrinking is
/// mapped read-only (<see cref="SealedMapping"/>: no truncation can SIGBUS the handler) and a page is one
/// native copy; any other memfd is read with pread, so a client that shrinks it gets short reads (the
/// page is refused), never a SIGBUS in the handler. process_vm_readv reads only the peer, and only while
/// its pidfd says it is the same process.
/// </summary>
internal sealed unsafe class RegionContent : IDisposable
{
    private readonly IReadOnlyList<HandoffRegion> regions;
    private readonly IReadOnlyList<int> fds;
    private readonly int ownerPid;
    private readonly SafeFdHandle ownerPidfd;
    private readonly MappedView?[] views; // per region: its sealed memfd mapped, or null

    public RegionContent(IReadOnlyList<HandoffRegion> regions, IReadOnlyList<int> fds, int ownerPid, SafeFdHandle ownerPidfd)
    {
        this.regions = regions;
        this.fds = fds;
        this.ownerPid = ownerPid;
        this.ownerPidfd = ownerPidfd;
        views = new MappedView?[regions.Count];
        for (int k = 0; k < regions.Count; k++)
            if (regions[k].Memfd is { } i)
                views[k] = SealedMapping.Map(fds[i], regions[k].MemfdOffset, regions[k].Size, write: false);
    }

    /// <summary>Copies the page at source offset (client address addr) into dst. 0 or -errno.</summary>
    public int Read(ulong offset, ulong addr, nint dst, ulong len)
    {
        for (int k = 0; k < regions.Count; k++)
        {
            var r = regions[k];
            if (offset >= r.Offset && offset - r.Offset < r.Size)
            {
                if (r.Memfd is not { } i)
                    break;
                if (views[k] is { } view)
                {
                    Shim.uffd_copy_memory((void*)dst, (void*)(view.Address + (nint)(offset - r.Offset)), len);
                    return 0;
                }
                long n = Tmds.Linux.LibC.pread(fds[i], (void*)dst, (Tmds.Linux.size_t)len, (long)(r.MemfdOffset + (offset - r.Offset)));
                if (n < 0)
                    return -Marshal.GetLastPInvokeError();
                return n == (long)len ? 0 : -Errno.EFAULT; // the client shrank its file under the region
            }
        }
        long got = Shim.uffd_process_read(ownerPid, (void*)dst, addr, len);
        if (got < 0)
            return (int)got;
        // Read by number: the bytes are the owner's only if it is still alive now (a pid is reused
        // only after its process was reaped).
        if (Shim.uffd_pidfd_exited(ownerPidfd.Fd) != 0)
            return -Errno.ESRCH;
        return got == (long)len ? 0 : -Errno.EFAULT;
    }

    public void Dispose()
    {
        foreach (var view in views)
            view?.Dispose();
    }
}

/// <summary>
/// Maps a client's memfd only when no SIGBUS can come of it: a tmpfs file sealed against shrinking
/// (F_SEAL_SHRINK can never be removed, so every page of [offset, offset+length) stays backed) and, for a
/// writable mapping, without a write seal. A file the client allocated in full (no hole: st_blocks
/// covers its size) is mapped with MAP_POPULATE — page-table entries for pages that exist, no allocation
/// on the client's behalf, and no fault of the handler's own per page; a sparse one is mapped lazily.
/// </summary>
internal static unsafe class SealedMapping
{
    private const int SealWrite = 8, SealFutureWrite = 16;

    /// <summary>The mapping (its owner unmaps it), or null when the file may not be mapped (or mmap refused).</summary>
    public static MappedView? Map(int fd, ulong offset, ulong length, bool write)
    {
        FileInfoNative info;
        if (Shim.uffd_fd_info(fd, &info) != 0 || info.Seals < 0 || (info.Seals & FileInfoNative.SealShrink) == 0
            || info.FsType != FileInfoNative.TmpfsMagic || !HandoffValidation.Fits(offset, length, (ulong)info.Size)
            || (write && (info.Seals & (SealWrite | SealFutureWrite)) != 0))
            return null;
        Tmds.Linux.stat st;
        bool allocated = Tmds.Linux.LibC.fstat(fd, &st) == 0 && (long)st.st_blocks * 512 >= (long)st.st_size;
        int prot = Tmds.Linux.LibC.PROT_READ | (write ? Tmds.Linux.LibC.PROT_WRITE : 0);
        return MappedView.Map(fd, offset, length, prot, Tmds.Linux.LibC.MAP_SHARED | (allocated ? Tmds.Linux.LibC.MAP_POPULATE : 0));
    }
}

/// <summary>A shared mapping of a file, owned: unmapped exactly once, by Dispose (or the finalizer if the
/// owner forgot). The one place the handler's views of client files (and its mapped snapshot store) are
/// mapped and unmapped.</summary>
internal sealed unsafe class MappedView : SafeHandleZeroOrMinusOneIsInvalid
{
    private MappedView(nint address, ulong length) : base(ownsHandle: true)
    {
        SetHandle(address);
        Length = length;
    }

    public nint Address => handle;
    public ulong Length { get; }

    /// <summary>mmap(fd, offset, length); null when mmap refused (its errno in Marshal.GetLastPInvokeError).</summary>
    public static MappedView? Map(int fd, ulong offset, ulong length, int prot, int flags)
    {
        void* p = Tmds.Linux.LibC.mmap(null, (Tmds.Linux.size_t)length, prot, flags, fd, (long)offset);
        return p == Tmds.Linux.LibC.MAP_FAILED ? null : new MappedView((nint)p, length);
    }

    protected override bool ReleaseHandle() => Tmds.Linux.LibC.munmap((void*)handle, (Tmds.Linux.size_t)Length) == 0;
}

/// <summary>Where the external wp-snapshot saves pages.</summary>
internal abstract class SnapshotTarget : IDisposable
{
    /// <summary>The target for a client's store memfd: mapped when the client sealed it against
    /// shrinking (<see cref="SealedMapping"/>) — then a page costs one copy straight into the store and a
    /// bitmap store; otherwise pwrite (<see cref="FdSnapshotTarget"/>: the page and its bitmap byte, two
    /// writes). Validation has already checked the size.</summary>
    public static SnapshotTarget ForMemfd(int fd, ulong length)
    {
        var view = SealedMapping.Map(fd, 0, SharedSnapshotStore.SizeFor(length), write: true);
        return view != null ? new LocalSnapshotTarget(SharedSnapshotStore.Adopt(view, length)) : new FdSnapshotTarget(fd, length);
    }

    public abstract ulong Length { get; }
    public abstract bool IsSaved(ulong offset);
    /// <summary>Saves the page at source offset (client address addr) read through content. 0 or -errno.</summary>
    public abstract int Save(ulong offset, ulong addr, RegionContent content);
    public abstract void Dispose();
}

/// <summary>A store in memory: the handler's own, or a sealed client memfd mapped (<see cref="SnapshotTarget.ForMemfd"/>).
/// The page is read straight into the store (a pread fails with EFAULT, never SIGBUS), then claimed.</summary>
internal sealed class LocalSnapshotTarget(SharedSnapshotStore store) : SnapshotTarget
{
    public override ulong Length => store.Length;
    public override bool IsSaved(ulong offset) => store.IsSaved(offset);

    public override int Save(ulong offset, ulong addr, RegionContent content)
    {
        int r = content.Read(offset, addr, store.AddressOf(offset), Mapping.PageSize);
        if (r == 0)
            store.TryClaim(offset);
        return r;
    }

    public override void Dispose() => store.Dispose();
}

/// <summary>
/// The client's store memfd (<see cref="SharedSnapshotStore"/>'s layout: data, then a saved-page
/// bitmap), written with pwrite and never mapped: a client that truncates its store cannot SIGBUS the
/// handler. The bitmap is kept here too (read once at the start, so a resumed store keeps its pages).
/// </summary>
internal sealed unsafe class FdSnapshotTarget : SnapshotTarget
{
    private readonly int fd;
    private readonly ulong length;
    private readonly byte[] bitmap;
    private readonly nint page;

    public FdSnapshotTarget(int fd, ulong length)
    {
        this.fd = fd;
        this.length = length;
        bitmap = new byte[(length / Mapping.PageSize + 7) / 8];
        fixed (byte* b = bitmap)
            Tmds.Linux.LibC.pread(fd, b, (Tmds.Linux.size_t)bitmap.Length, (long)length);
        page = (nint)NativeMemory.AlignedAlloc((nuint)Mapping.PageSize, (nuint)Mapping.PageSize);
    }

    public override ulong Length => length;

    public override bool IsSaved(ulong offset)
    {
        long p = (long)(offset / Mapping.PageSize);
        return (bitmap[p >> 3] & (1 << (int)(p & 7))) != 0;
    }

    public override int Save(ulong offset, ulong addr, RegionContent content)
    {
        int r = content.Read(offset, addr, page, Mapping.PageSize);
        if (r < 0)
            return r;
        if (Tmds.Linux.LibC.pwrite(fd, (void*)page, (Tmds.Linux.size_t)Mapping.PageSize, (long)offset) != (long)Mapping.PageSize)
            return -Errno.EIO;
        long pg = (long)(offset / Mapping.PageSize);
        bitmap[pg >> 3] |= (byte)(1 << (int)(pg & 7));
        fixed (byte* b = &bitmap[pg >> 3])
            if (Tmds.Linux.LibC.pwrite(fd, b, 1, (long)length + (pg >> 3)) != 1)
                return -Errno.EIO;
        return 0;
    }

    public override void Dispose()
    {
        if (page != 0)
            NativeMemory.AlignedFree((void*)page);
    }
}

/// <summary>
/// The snapshot store of a handler: <c>Length</c> bytes of page data indexed by source offset, followed
/// by a bitmap of the pages saved (bit i of byte i/8). It lives in a memfd the client sent (so the
/// client reads the snapshot after the session, whatever became of the handler) or, without one, in
/// the handler's own memory.
/// </summary>
public sealed unsafe class SharedSnapshotStore : IDisposable
{
    private nint address;
    private readonly MappedView? view; // a mapped store; null: this process's own memory
    private long saved;

    public ulong Length { get; }
    public long Pages => (long)(Length / Mapping.PageSize);
    public nint Address => address;
    public long SavedPages => Interlocked.Read(ref saved);
    private byte* Bitmap => (byte*)address + Length;

    /// <summary>Bytes a store of length bytes needs (data plus bitmap, rounded to pages).</summary>
    public static ulong SizeFor(ulong length)
    {
        ulong bitmap = (length / Mapping.PageSize + 7) / 8;
        return (length + bitmap + Mapping.PageSize - 1) / Mapping.PageSize * Mapping.PageSize;
    }

    private SharedSnapshotStore(nint address, ulong length, MappedView? view)
    {
        this.address = address;
        Length = length;
        this.view = view;
    }

    /// <summary>Maps a store memfd (read-write, shared). Its size gives the data length.</summary>
    public static SharedSnapshotStore Map(int fd, ulong length)
    {
        ulong size = SizeFor(length);
        var view = MappedView.Map(fd, 0, size, Tmds.Linux.LibC.PROT_READ | Tmds.Linux.LibC.PROT_WRITE, Tmds.Linux.LibC.MAP_SHARED)
            ?? throw new UffdException("mmap(snapshot store)", Marshal.GetLastPInvokeError(), $"{size} bytes", "the store memfd must be at least SharedSnapshotStore.SizeFor(length) bytes");
        return Adopt(view, length);
    }

    /// <summary>A store over a shared mapping of SizeFor(length) bytes, which it owns (unmapped on dispose).</summary>
    internal static SharedSnapshotStore Adopt(MappedView view, ulong length)
    {
        var s = new SharedSnapshotStore(view.Address, length, view);
        long n = 0;
        for (long i = 0; i < s.Pages; i++)
            if (s.IsSavedPage(i))
                n++;
        s.saved = n;
        return s;
    }

    /// <summary>A memfd for a store of length bytes (<see cref="SizeFor"/>), sealed against shrinking: a
    /// handler may then map it and save a page with one read instead of two writes (an unsealed store
    /// works too, more slowly).</summary>
    public static MemfdFile CreateMemfd(string name, ulong length) => MemfdFile.CreateSealedAgainstShrinking(name, (long)SizeFor(length));

    /// <summary>A store in this process's own memory.</summary>
    public static SharedSnapshotStore Local(ulong length)
    {
        ulong size = SizeFor(length);
        var p = NativeMemory.AlignedAlloc((nuint)size, (nuint)Mapping.PageSize);
        NativeMemory.Clear(p, (nuint)size);
        return new SharedSnapshotStore((nint)p, length, view: null);
    }

    public nint AddressOf(ulong offset) => address + (nint)offset;

    public bool IsSavedPage(long page) => (Volatile.Read(ref Bitmap[page >> 3]) & (1 << (int)(page & 7))) != 0;

    public bool IsSaved(ulong offset) => IsSavedPage((long)(offset / Mapping.PageSize));

    internal bool TryClaim(ulong offset)
    {
        if (offset >= Length)
            return false;
        long page = (long)(offset / Mapping.PageSize);
        if (IsSavedPage(page))
            return false;
        Bitmap[page >> 3] |= (byte)(1 << (int)(page & 7));
        saved++;
        return true;
    }

    public void Dispose()
    {
        if (address == 0)
            return;
        if (view != null)
            view.Dispose();
        else
            NativeMemory.AlignedFree((void*)address);
        address = 0;
    }
}

/// <summary>
/// WP faults of another process's memory: before a page may change, its current content is copied
/// (through <see cref="RegionContent"/>: a memfd view or process_vm_readv) into the store at the page's
/// source offset, then the page is unprotected. The external twin of <see cref="WpSnapshot"/>, which
/// copies from an address of its own process.
/// </summary>
internal sealed class ExternalWpSnapshot(RegionContent content, SnapshotTarget store) : FaultPolicy
{
    public override FaultKind Kind => FaultKind.WriteProtect;
    public override string Name => "wp-snapshot";

    public override ResolveResult Resolve(in FaultContext context, in FaultRun run, bool dontWake)
    {
        var saver = new Saver(content, store);
        return SnapshotResolution.SaveThenUnprotect(ref saver, context, run, dontWake);
    }

    private readonly struct Saver(RegionContent content, SnapshotTarget store) : IPageSaver
    {
        // A negative result (ESRCH: the owner is gone) fails the run.
        public int Save(in FaultContext context, ulong offset, ulong address)
        {
            if (offset >= store.Length || store.IsSaved(offset))
                return 0;
            int r = store.Save(offset, address, content);
            return r < 0 ? r : 1;
        }
    }
}

/// <summary>A page source whose offsets are source offsets of the handoff regions (Firecracker's
/// <c>offset</c>): the shim's pattern, zeros, a received descriptor or a file.</summary>
internal static class HandlerSources
{
    // trusted: the spec is the operator's (command line), not the client's: only then may it name a
    // path (a client sends its file as a descriptor, "fd").
    public static PageSource Create(SourceSpec? spec, IReadOnlyList<int> fds, ulong length, bool trusted)
    {
        spec ??= new SourceSpec();
        switch (spec.Kind)
        {
            case "zero":
                return PageSource.FromDelegate((_, dest) => dest.Clear(), length);
            case "pattern":
                ulong seed = spec.Seed;
                return PageSource.FromDelegate((offset, dest) => Access.Accessor.PatternFill(dest, seed, offset / 8), length);
            case "fd":
                if (spec.Fd is not { } i || i < 0 || i >= fds.Count)
                    throw new UffdException("handoff", Errno.EINVAL, $"source fd index {spec.Fd} is not among the {fds.Count} descriptors received", "");
                // A tmpfs file sealed against shrinking is mapped (SealedMapping: no truncation can SIGBUS the
                // handler) and UFFDIO_COPY reads the page straight from the mapping, as from an in-process
                // buffer; any other file is read with pread into a staging buffer first (one copy more).
                if (SealedMapping.Map(fds[i], 0, length, write: false) is { } view)
                    return new OwningSource(new BufferPageSource(view.Address, length, null), view);
                return PageSource.FromFile(new SafeFileHandle(fds[i], ownsHandle: false), 0, length);
            case "file" when !trusted:
                throw new UffdException("handoff", Errno.EPERM, "a client may not name a file path as its source (the handler would open it with its own authority)", "send the file as a descriptor: source kind \"fd\"");
            case "file":
                var h = File.OpenHandle(spec.Path ?? throw new UffdException("handoff", Errno.EINVAL, "a file source without a path", ""), FileMode.Open, FileAccess.Read);
                return new OwningSource(PageSource.FromFile(h, 0, length), h);
            default:
                throw new UffdException("handoff", Errno.EINVAL, $"unknown source kind '{spec.Kind}'", "use zero, pattern, fd or file");
        }
    }

    private sealed class OwningSource(PageSource inner, IDisposable owned) : PageSource
    {
        public override ulong Length => inner.Length;
        public override nint Prepare(ulong offset, ulong length, out ulong available) => inner.Prepare(offset, length, out available);
        public override PageSource ForForkChild() => inner.ForForkChild();

        public override void Dispose()
        {
            inner.Dispose();
            owned.Dispose();
            base.Dispose();
        }
    }
}
