using System.Text;
using Tmds.Linux;
using UffdNative.Interop;
using static Tmds.Linux.LibC;

namespace UffdNative.Memory;

[Flags]
public enum Protection
{
    None = 0,
    Read = 1,
    Write = 2,
    Exec = 4,
    ReadWrite = Read | Write,
}

/// <summary>madvise advice values (asm-generic/mman-common.h).</summary>
public enum Advice
{
    Normal = 0,
    WillNeed = 3,
    DontNeed = 4,
    Free = 8,
    Remove = 9,
    DontFork = 10,
    DoFork = 11,
    HugePage = 14,
    NoHugePage = 15,
    Cold = 20,
    PageOut = 21,
    PopulateRead = 22,
    PopulateWrite = 23,
    Collapse = 25,
}

public enum MappingKind { Anonymous, SharedAnonymous, Shared, Private }

internal static class Sys
{
    internal static int Err() => System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
    internal static size_t Size(ulong v) => (size_t)v;
}

/// <summary>A memfd (shmem file): create, size, pwrite/pread, punch holes, truncate, and map it.</summary>
public sealed unsafe class MemfdFile : IDisposable
{
    public SafeFdHandle Handle { get; }
    public int Fd => Handle.Fd;
    public string Name { get; }
    public long Size { get; private set; }
    public bool ReadOnly { get; }
    public bool HugeTlb { get; }

    private MemfdFile(SafeFdHandle h, string name, long size, bool readOnly, bool hugetlb)
    {
        Handle = h;
        Name = name;
        Size = size;
        ReadOnly = readOnly;
        HugeTlb = hugetlb;
    }

    public const uint MfdCloexec = 1, MfdAllowSealing = 2, MfdHugetlb = 4;

    public static MemfdFile Create(string name, long size, bool hugetlb = false) => Create(name, size, hugetlb, 0);

    /// <summary>MFD_HUGE_SHIFT (include/uapi/linux/memfd.h): bits 26–31 of memfd_create's flags carry log2 of the
    /// huge page size; 0 there means the default size (Hugepagesize in /proc/meminfo, default_hugepagesz=).</summary>
    private const int MfdHugeShift = 26;

    /// <summary>A hugetlbfs memfd of huge pages of 2^<paramref name="pageShift"/> bytes (21: 2 MiB, MFD_HUGE_2MB;
    /// 30: 1 GiB, MFD_HUGE_1GB) from that size's pool (/sys/kernel/mm/hugepages/hugepages-NkB), whatever the
    /// default huge page size. memfd_create fails EINVAL for a size the kernel does not support.</summary>
    public static MemfdFile CreateHugetlb(string name, long size, int pageShift)
    {
        // memfd_create accepts 6 bits of shift; a huge page is larger than a base page (x86-64: 2 MiB and 1 GiB).
        ArgumentOutOfRangeException.ThrowIfLessThan(pageShift, 13);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(pageShift, 63);
        return Create(name, size, true, 0, (uint)pageShift << MfdHugeShift);
    }

    /// <summary>F_ADD_SEALS values (fcntl(2)): F_SEAL_SHRINK forbids shrinking the file, so a MAP_SHARED
    /// mapping of its first Size bytes can never SIGBUS for want of a backing page.</summary>
    internal const int SealShrink = 2;

    /// <summary>A memfd of size bytes sealed against shrinking (F_SEAL_SHRINK, as QEMU's memfd backend
    /// seals guest memory): an external handler may then map it instead of reading it with pread
    /// (docs/security.md), since no truncation can take a page from under its mapping.</summary>
    public static MemfdFile CreateSealedAgainstShrinking(string name, long size) => Create(name, size, hugetlb: false, SealShrink);

    /// <summary>Create, size, then add seals (0: none, the file then cannot be sealed later).</summary>
    internal static MemfdFile Create(string name, long size, bool hugetlb, int seals, uint hugeSize = 0)
    {
        var bytes = Encoding.UTF8.GetBytes(name + "\0");
        int fd;
        fixed (byte* p = bytes)
            fd = memfd_create(p, MfdCloexec | (hugetlb ? MfdHugetlb | hugeSize : 0) | (seals != 0 ? MfdAllowSealing : 0));
        if (fd < 0)
        {
            int e = Sys.Err();
            if (hugeSize != 0)
            {
                long kb = (1L << (int)(hugeSize >> MfdHugeShift)) / 1024;
                throw new UffdException("memfd_create(MFD_HUGETLB)", e, $"huge pages of {kb} kB: /sys/kernel/mm/hugepages/hugepages-{kb}kB {(Directory.Exists($"/sys/kernel/mm/hugepages/hugepages-{kb}kB") ? "exists" : "absent: this kernel has no such size")}", "ask for a size listed in /sys/kernel/mm/hugepages");
            }
            throw new UffdException("memfd_create", e, hugetlb ? "hugetlb memfds need hugetlbfs (CONFIG_HUGETLBFS)" : "", hugetlb ? "use a kernel with hugetlbfs, or shmem" : "");
        }
        var f = new MemfdFile(new SafeFdHandle(fd), name, 0, false, hugetlb);
        if (size > 0)
            f.Truncate(size);
        const int FAddSeals = 1033; // F_LINUX_SPECIFIC_BASE + 9
        if (seals != 0 && fcntl(fd, FAddSeals, seals) < 0)
        {
            int e = Sys.Err();
            f.Dispose();
            throw new UffdException("fcntl(F_ADD_SEALS)", e, $"seals 0x{seals:x}", "");
        }
        return f;
    }

    /// <summary>A second fd on the same file opened O_RDONLY (through /proc/self/fd): its MAP_SHARED
    /// mappings lack VM_MAYWRITE, which UFFDIO_REGISTER refuses with EPERM (§1.4).</summary>
    public MemfdFile ReopenReadOnly()
    {
        var path = Encoding.UTF8.GetBytes($"/proc/self/fd/{Fd}\0");
        int fd;
        fixed (byte* p = path)
            fd = open(p, O_RDONLY | O_CLOEXEC, 0);
        if (fd < 0)
            throw new UffdException("open(O_RDONLY)", Sys.Err(), "", "");
        return new MemfdFile(new SafeFdHandle(fd), Name, Size, true, HugeTlb);
    }

    public void Truncate(long size)
    {
        if (ftruncate(Fd, size) < 0)
            throw new UffdException("ftruncate", Sys.Err(), $"size {size}", "");
        Size = size;
    }

    /// <summary>fallocate(PUNCH_HOLE|KEEP_SIZE): frees the pages; a shmem WP marker survives (§3.2).</summary>
    public int TryPunchHole(long offset, long length) => fallocate(Fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length) < 0 ? -Sys.Err() : 0;

    public void PunchHole(long offset, long length)
    {
        int r = TryPunchHole(offset, length);
        if (r < 0)
            throw new UffdException("fallocate(PUNCH_HOLE)", -r, $"offset {offset} length {length}", "");
    }

    /// <summary>fallocate(0): allocates page-cache pages without mapping them.</summary>
    public void Allocate(long offset, long length)
    {
        if (fallocate(Fd, 0, offset, length) < 0)
            throw new UffdException("fallocate", Sys.Err(), $"offset {offset} length {length}", "");
    }

    /// <summary>pwrite: writes the file directly; never intercepted by a uffd (§3.2 "alias and other writers").</summary>
    public int TryWrite(long offset, ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data)
        {
            long done = 0;
            while (done < data.Length)
            {
                long n = pwrite(Fd, p + done, Sys.Size((ulong)(data.Length - done)), offset + done);
                if (n < 0)
                {
                    int e = Sys.Err();
                    if (e == Errno.EINTR)
                        continue;
                    return -e;
                }
                done += n;
            }
        }
        return 0;
    }

    public void Write(long offset, ReadOnlySpan<byte> data)
    {
        int r = TryWrite(offset, data);
        if (r < 0)
            throw new UffdException("pwrite", -r, $"offset {offset}", "");
    }

    public void WriteU64(long offset, ulong value) => Write(offset, new ReadOnlySpan<byte>(&value, 8));

    /// <summary>Writes the shim's pattern (seed) over [offset, offset+length), word indices from 0.</summary>
    public void WritePattern(long offset, long length, ulong seed)
    {
        var buf = new byte[length];
        fixed (byte* p = buf)
            Shim.uffd_pattern_fill(p, (ulong)length, seed, 0);
        Write(offset, buf);
    }

    public int Read(long offset, Span<byte> data)
    {
        fixed (byte* p = data)
        {
            long n;
            do
                n = pread(Fd, p, Sys.Size((ulong)data.Length), offset);
            while (n < 0 && Sys.Err() == Errno.EINTR);
            if (n < 0)
                throw new UffdException("pread", Sys.Err(), $"offset {offset}", "");
            return (int)n;
        }
    }

    public ulong ReadU64(long offset)
    {
        ulong v = 0;
        Read(offset, new Span<byte>(&v, 8));
        return v;
    }

    public Mapping MapShared(long offset = 0, long length = -1, Protection prot = Protection.ReadWrite) =>
        Mapping.MapFile(this, offset, length < 0 ? Size - offset : length, prot, shared: true);

    public Mapping MapPrivate(long offset = 0, long length = -1, Protection prot = Protection.ReadWrite) =>
        Mapping.MapFile(this, offset, length < 0 ? Size - offset : length, prot, shared: false);

    public void Dispose() => Handle.Dispose();
}

/// <summary>
/// A mapping: private anonymous, shared anonymous, or MAP_SHARED / MAP_PRIVATE of a memfd (several
/// mappings of one file are aliases). Its bytes must never be touched from managed code — use
/// <see cref="Access.Accessor"/> (the shim) — because the memory may be uffd-registered.
/// Dispose order: close the uffd first (it unregisters), then mappings, then the file. With
/// EVENT_UNMAP registered, munmap blocks until the UNMAP event is read: never dispose a mapping on
/// the thread that reads the uffd.
/// Once unmapped (<see cref="Unmap"/>, <see cref="Dispose"/>, or consumed as a reservation) every
/// member but <see cref="IsUnmapped"/>, <see cref="Unmap"/> and <see cref="Dispose"/> throws
/// <see cref="ObjectDisposedException"/>: no call can act on an address range that is no longer this
/// mapping's. Each system call holds the mapping (a SafeHandle reference) for its duration, so an
/// Unmap on another thread waits for it to return before the range is unmapped. A remap concurrent
/// with other calls on the same mapping is the caller's race.
/// </summary>
public sealed unsafe class Mapping : IDisposable
{
    public static readonly ulong PageSize = (ulong)Environment.SystemPageSize;

    /// <summary>The mapped range as a handle: released (munmap) once, when the last call holding it
    /// has returned.</summary>
    private sealed class RangeHandle : System.Runtime.InteropServices.SafeHandle
    {
        public ulong Length;
        public int UnmapResult;

        public RangeHandle(ulong address, ulong length) : base(0, ownsHandle: true)
        {
            SetHandle((nint)address);
            Length = length;
            // A Mapping never unmapped by a finalizer: an address the caller still uses (native code,
            // a uffd registration) must not vanish because the managed object became unreachable.
            GC.SuppressFinalize(this);
        }

        public override bool IsInvalid => handle == 0;

        public void Moved(ulong address, ulong length)
        {
            SetHandle((nint)address);
            Length = length;
        }

        protected override bool ReleaseHandle()
        {
            UnmapResult = munmap((void*)handle, Sys.Size(Length)) < 0 ? -Sys.Err() : 0;
            return UnmapResult == 0;
        }
    }

    private readonly RangeHandle range;
    private readonly MappingKind kind;
    private readonly MemfdFile? file;
    private readonly long fileOffset;
    private Protection prot;

    public ulong Address => Live().Address;
    public ulong Length => Live().Length;
    public MappingKind Kind => Alive(kind);
    public MemfdFile? File => Alive(file);
    public long FileOffset => Alive(fileOffset);
    public Protection Prot => Alive(prot);
    public bool IsUnmapped => range.IsClosed;
    public long Pages => (long)(Length / PageSize);

    private Mapping(ulong addr, ulong len, MappingKind kind, MemfdFile? file, long offset, Protection prot)
    {
        range = new RangeHandle(addr, len);
        this.kind = kind;
        this.file = file;
        fileOffset = offset;
        this.prot = prot;
    }

    private T Alive<T>(T value)
    {
        ObjectDisposedException.ThrowIf(range.IsClosed, this);
        return value;
    }

    private (ulong Address, ulong Length) Live()
    {
        ObjectDisposedException.ThrowIf(range.IsClosed, this);
        return ((ulong)range.DangerousGetHandle(), range.Length);
    }

    /// <summary>Holds the range for one system call (ObjectDisposedException once unmapped).</summary>
    private (ulong Address, ulong Length) Lease()
    {
        bool added = false;
        range.DangerousAddRef(ref added);
        return ((ulong)range.DangerousGetHandle(), range.Length);
    }

    private void Unlease() => range.DangerousRelease();

    public ulong PageAddress(long page) => Address + (ulong)page * PageSize;
    public ulong End => Address + Length;

    private const int MapShared_ = 0x01, MapPrivate_ = 0x02, MapFixed = 0x10, MapAnonymous = 0x20, MapNoReserve = 0x4000, MapFixedNoReplace = 0x100000;

    public static Mapping Anonymous(ulong length, Protection prot = Protection.ReadWrite, bool shared = false, ulong fixedAddress = 0)
    {
        int flags = (shared ? MapShared_ : MapPrivate_) | MapAnonymous | MapNoReserve | (fixedAddress != 0 ? MapFixedNoReplace : 0);
        void* p = mmap((void*)fixedAddress, Sys.Size(length), (int)prot, flags, -1, 0);
        if (p == MAP_FAILED)
            throw new UffdException("mmap(anonymous)", Sys.Err(), $"length {length}", "");
        return new Mapping((ulong)p, length, shared ? MappingKind.SharedAnonymous : MappingKind.Anonymous, null, 0, prot);
    }

    internal static Mapping MapFile(MemfdFile file, long offset, long length, Protection prot, bool shared, ulong fixedAddress = 0)
    {
        int flags = (shared ? MapShared_ : MapPrivate_) | (fixedAddress != 0 ? MapFixedNoReplace : 0);
        void* p = mmap((void*)fixedAddress, Sys.Size((ulong)length), (int)prot, flags, file.Fd, offset);
        if (p == MAP_FAILED)
        {
            int e = Sys.Err();
            throw new UffdException(shared ? "mmap(MAP_SHARED)" : "mmap(MAP_PRIVATE)", e, $"memfd '{file.Name}' offset {offset} length {length}",
                e == Errno.EACCES ? "a MAP_SHARED writable mapping needs a read-write fd" : "");
        }
        return new Mapping((ulong)p, (ulong)length, shared ? MappingKind.Shared : MappingKind.Private, file, offset, prot);
    }

    /// <summary>madvise over [offset, offset+length) of this mapping; 0 or -errno. With EVENT_REMOVE
    /// registered, DONTNEED/REMOVE block until the REMOVE event is read.</summary>
    public int TryAdvise(Advice advice, ulong offset = 0, ulong length = 0)
    {
        var (address, len) = Lease();
        try
        {
            if (length == 0)
                length = len - offset;
            return madvise((void*)(address + offset), Sys.Size(length), (int)advice) < 0 ? -Sys.Err() : 0;
        }
        finally
        {
            Unlease();
        }
    }

    public void Advise(Advice advice, ulong offset = 0, ulong length = 0)
    {
        int r = TryAdvise(advice, offset, length);
        if (r < 0)
            throw new UffdException($"madvise({advice})", -r, $"0x{Address + offset:x}", r == -Errno.EINVAL ? $"this kernel or memory type does not support {advice}" : "");
    }

    public int TryProtect(Protection prot, ulong offset = 0, ulong length = 0)
    {
        var (address, len) = Lease();
        try
        {
            if (length == 0)
                length = len - offset;
            int r = mprotect((void*)(address + offset), Sys.Size(length), (int)prot) < 0 ? -Sys.Err() : 0;
            if (r == 0 && offset == 0 && length == len)
                this.prot = prot;
            return r;
        }
        finally
        {
            Unlease();
        }
    }

    public void Protect(Protection prot, ulong offset = 0, ulong length = 0)
    {
        int r = TryProtect(prot, offset, length);
        if (r < 0)
            throw new UffdException($"mprotect({prot})", -r, "", "");
    }

    /// <summary>mremap (MAYMOVE, and FIXED when an address is given — it must be a range the caller
    /// owns, see <see cref="Reserve"/>). With EVENT_REMAP registered it blocks until the REMAP event is
    /// read. Returns 0 or -errno; the mapping follows the move.</summary>
    public int TryRemap(ulong newLength) => TryRemap(newLength, 0UL);

    /// <summary>mremap to fixedAddress (0: wherever the kernel chooses), see <see cref="TryRemap(ulong)"/>.</summary>
    public int TryRemap(ulong newLength, ulong fixedAddress)
    {
        const int MremapMaymove = 1, MremapFixed = 2;
        var (address, len) = Lease();
        try
        {
            void* p = mremap((void*)address, Sys.Size(len), Sys.Size(newLength), MremapMaymove | (fixedAddress != 0 ? MremapFixed : 0), (void*)fixedAddress);
            if (p == MAP_FAILED)
                return -Sys.Err();
            range.Moved((ulong)p, newLength);
            return 0;
        }
        finally
        {
            Unlease();
        }
    }

    public ulong Remap(ulong newLength) => Remap(newLength, 0UL);

    public ulong Remap(ulong newLength, ulong fixedAddress)
    {
        int r = TryRemap(newLength, fixedAddress);
        if (r < 0)
            throw new UffdException("mremap", -r, "", "");
        return Address;
    }

    /// <summary>munmap now (0 or -errno), or — when a call on another thread still holds the
    /// mapping — as soon as it returns (0). Every later call but this one, <see cref="IsUnmapped"/> and
    /// <see cref="Dispose"/> throws <see cref="ObjectDisposedException"/>. With EVENT_UNMAP registered
    /// it blocks until UNMAP is read.</summary>
    public int Unmap()
    {
        if (range.IsClosed)
            return 0;
        range.Dispose();
        return range.UnmapResult;
    }

    /// <summary>Reserves address space (PROT_NONE) for a later move: MREMAP_FIXED silently replaces
    /// whatever is mapped at its target, so the target must stay ours until the move — a range that
    /// was reserved and released can meanwhile hold another thread's stack or the GC's heap.</summary>
    public static Mapping Reserve(ulong length) => Anonymous(length, Protection.None);

    /// <summary>mremap onto a reservation made by <see cref="Reserve"/>, which the move consumes (on
    /// success it no longer owns any memory). 0 or -errno. With EVENT_REMAP registered it blocks
    /// until the REMAP event is read (and with EVENT_UNMAP also until the old range's UNMAP is).</summary>
    public int TryRemap(ulong newLength, Mapping reservation)
    {
        ObjectDisposedException.ThrowIf(range.IsClosed, this);
        ArgumentNullException.ThrowIfNull(reservation);
        if (reservation.IsUnmapped || reservation.Length < newLength)
            throw new ArgumentException($"the reservation must be mapped and at least {newLength} bytes", nameof(reservation));
        int r = TryRemap(newLength, reservation.Address);
        if (r == 0)
            reservation.Consumed(newLength);
        return r;
    }

    public ulong Remap(ulong newLength, Mapping reservation)
    {
        int r = TryRemap(newLength, reservation);
        if (r < 0)
            throw new UffdException("mremap", -r, "", "");
        return Address;
    }

    // The front of the reservation now belongs to the moved mapping; only a tail it did not cover is
    // still ours to unmap. The reservation is then spent: it owns nothing.
    private void Consumed(ulong used)
    {
        var (address, len) = Live();
        if (used < len)
            munmap((void*)(address + used), Sys.Size(len - used));
        range.SetHandleAsInvalid();
    }

    public void Dispose() => Unmap();
}
