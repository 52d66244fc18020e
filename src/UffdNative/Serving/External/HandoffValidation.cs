using UffdNative.Interop;
using UffdNative.Memory;

namespace UffdNative.Serving.External;

/// <summary>
/// Everything a handler checks in a handoff before it adopts anything (docs/security.md): the
/// protocol version; that the descriptor named as the uffd is one (the kernel's anon inode name, not
/// the client's word) with the API handshake done, non-blocking, and its features as fdinfo reports
/// them; regions with overflow-safe arithmetic (aligned, non-empty, inside the user address space,
/// disjoint in both address and source space); every memfd a regular tmpfs/hugetlbfs file large enough
/// for its region's offset and size; the snapshot store a read-write memfd of the size the regions need;
/// an owner that is the peer itself. Any failure is an <see cref="ArgumentException"/> naming the
/// field and the fix; the caller then closes every descriptor it received.
/// </summary>
internal static unsafe class HandoffValidation
{
    /// <summary>The end of the largest user address space (5-level page tables).</summary>
    public const ulong UserSpaceEnd = 1UL << 57;

    public sealed record Result(IReadOnlyList<HandoffRegion> Regions, ulong Extent, UffdFeatures UffdFeatures);

    public static Result Validate(Frame h, IReadOnlyList<int> fds, int peerPid, HandlerHostOptions options)
    {
        if (h.Version != Frame.ProtocolVersion)
            throw new ArgumentException($"protocol version {h.Version}; this handler speaks {Frame.ProtocolVersion}");
        if (h.OwnerPid != 0 && h.OwnerPid != peerPid)
            throw new ArgumentException($"owner_pid {h.OwnerPid} is not the connecting process ({peerPid}): the handler serves only the memory of the process that connects; connect from the owner");
        if (h.UffdFd < 0 || h.UffdFd >= fds.Count)
            throw new ArgumentException($"uffd_fd {h.UffdFd} names none of the {fds.Count} descriptors received");
        var features = CheckUffd(fds[h.UffdFd]);

        var regions = h.Regions ?? [];
        if (regions.Count == 0)
            throw new ArgumentException("the handoff describes no region");
        if (regions.Count > options.MaxRegions)
            throw new ArgumentException($"{regions.Count} regions (at most {options.MaxRegions})");
        ulong page = Mapping.PageSize, extent = 0;
        var memfds = new HashSet<int>();
        foreach (var r in regions)
        {
            if (r is null)
                throw new ArgumentException("a region is null");
            string at = $"region 0x{r.BaseHostVirtAddr:x}";
            if (r.PageSize != page || r.Size == 0 || r.Size % page != 0 || r.BaseHostVirtAddr % page != 0 || r.Offset % page != 0)
                throw new ArgumentException($"{at} size {r.Size} offset {r.Offset} page {r.PageSize}: must be non-empty and aligned to {page}");
            if (!Fits(r.BaseHostVirtAddr, r.Size, UserSpaceEnd) || r.BaseHostVirtAddr == 0)
                throw new ArgumentException($"{at} size {r.Size}: outside the user address space");
            if (!Fits(r.Offset, r.Size, UserSpaceEnd))
                throw new ArgumentException($"{at}: source offset {r.Offset} + size {r.Size} overflows");
            extent = Math.Max(extent, r.Offset + r.Size);
            if (r.Memory is not ("anon" or "shmem"))
                throw new ArgumentException($"{at}: memory '{r.Memory}' is not anon or shmem");
            foreach (var m in r.Modes ?? [])
                if (m is not ("missing" or "wp" or "minor"))
                    throw new ArgumentException($"{at}: mode '{m}' is not missing, wp or minor");
            if (r.Memfd is { } i)
            {
                if (i < 0 || i >= fds.Count || i == h.UffdFd)
                    throw new ArgumentException($"{at}: memfd #{i} names none of the {fds.Count} descriptors (or the uffd)");
                if (r.MemfdOffset % page != 0 || !Fits(r.MemfdOffset, r.Size, long.MaxValue))
                    throw new ArgumentException($"{at}: memfd offset {r.MemfdOffset} must be page-aligned and offset + size must not overflow");
                var info = Info(fds[i], $"{at}: memfd #{i}");
                if (!info.IsRegular || (info.FsType != FileInfoNative.TmpfsMagic && info.FsType != FileInfoNative.HugetlbfsMagic))
                    throw new ArgumentException($"{at}: memfd #{i} is {info.TypeName} (fs 0x{info.FsType:x}), not a memfd/shmem file");
                if ((ulong)info.Size < r.MemfdOffset + r.Size)
                    throw new ArgumentException($"{at}: memfd #{i} has {info.Size} bytes, the region needs offset {r.MemfdOffset} + {r.Size}");
                if ((info.Fl & FileInfoNative.AccessMode) == FileInfoNative.WriteOnly)
                    throw new ArgumentException($"{at}: memfd #{i} is write-only");
                memfds.Add(i);
            }
            else if (r.Memory == "shmem" && r.Has("minor"))
            {
                // MINOR on shmem needs nothing from the handler but the page cache the client holds.
            }
        }
        var byAddr = regions.OrderBy(r => r.BaseHostVirtAddr).ToList();
        for (int k = 1; k < byAddr.Count; k++)
            if (byAddr[k].BaseHostVirtAddr < byAddr[k - 1].End)
                throw new ArgumentException($"regions 0x{byAddr[k - 1].BaseHostVirtAddr:x} and 0x{byAddr[k].BaseHostVirtAddr:x} overlap");
        var bySource = regions.OrderBy(r => r.Offset).ToList();
        for (int k = 1; k < bySource.Count; k++)
            if (bySource[k].Offset < bySource[k - 1].Offset + bySource[k - 1].Size)
                throw new ArgumentException($"regions overlap in the source space (offsets 0x{bySource[k - 1].Offset:x} and 0x{bySource[k].Offset:x})");

        if (h.SnapshotFd is { } sf)
        {
            if (sf < 0 || sf >= fds.Count || sf == h.UffdFd)
                throw new ArgumentException($"snapshot_fd {sf} names none of the {fds.Count} descriptors (or the uffd)");
            var info = Info(fds[sf], $"snapshot_fd #{sf}");
            if (!info.IsRegular || info.FsType != FileInfoNative.TmpfsMagic)
                throw new ArgumentException($"snapshot_fd #{sf} is {info.TypeName} (fs 0x{info.FsType:x}), not a memfd");
            if ((info.Fl & FileInfoNative.AccessMode) != FileInfoNative.ReadWrite)
                throw new ArgumentException($"snapshot_fd #{sf} is not open read-write");
            ulong need = SharedSnapshotStore.SizeFor(extent);
            if ((ulong)info.Size < need)
                throw new ArgumentException($"snapshot_fd #{sf} has {info.Size} bytes; the regions need {need} (SharedSnapshotStore.SizeFor)");
        }
        foreach (var spec in options.Policies ?? h.Policies ?? [])
            if (spec?.Source is { Kind: "fd", Fd: { } f })
            {
                if (f < 0 || f >= fds.Count || f == h.UffdFd)
                    throw new ArgumentException($"source fd #{f} names none of the {fds.Count} descriptors (or the uffd)");
                var info = Info(fds[f], $"source fd #{f}");
                if (!info.IsRegular)
                    throw new ArgumentException($"source fd #{f} is {info.TypeName}; a source must be a regular file");
                if ((info.Fl & FileInfoNative.AccessMode) == FileInfoNative.WriteOnly)
                    throw new ArgumentException($"source fd #{f} is write-only");
            }
        return new Result(regions, extent, features);
    }

    /// <summary>
    /// Every region lies in VMAs of the connecting process registered for each of its modes. The kernel
    /// exposes a registration only as the VMA flags in /proc/PID/smaps ("VmFlags: ... um uw ui",
    /// fs/proc/task_mmu.c: VM_UFFD_MISSING, VM_UFFD_WP, VM_UFFD_MINOR), read with the handler's own
    /// ptrace-read access to the peer (the same uid, or root). It says that the range is registered with
    /// a uffd of the peer's mm for those modes — not with which one. A range the client did not register
    /// would make every fill fail (ENOENT/EINVAL); one claimed with a mode it lacks would make the handler
    /// promise service it cannot give (a takeover from that table would too). The caller re-checks that
    /// the peer still lives after this (its pidfd), so the file read was the peer's.
    /// </summary>
    public static void CheckRegistered(IReadOnlyList<HandoffRegion> regions, int peerPid)
    {
        IEnumerable<string> lines;
        try
        {
            lines = File.ReadAllLines($"/proc/{peerPid}/smaps");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"cannot read /proc/{peerPid}/smaps to check the regions' registration ({e.Message}); the client must be readable by the handler (same uid, dumpable)");
        }
        if (Unregistered(regions, ParseVmas(lines)) is { } why)
            throw new ArgumentException(why);
    }

    /// <summary>The VMAs of an smaps text: [start, end) and their VmFlags mnemonics, in address order.</summary>
    internal static List<(ulong Start, ulong End, string[] Flags)> ParseVmas(IEnumerable<string> lines)
    {
        var vmas = new List<(ulong, ulong, string[])>();
        ulong start = 0, end = 0;
        bool open = false;
        foreach (var line in lines)
        {
            int dash = line.IndexOf('-');
            int space = line.IndexOf(' ');
            if (dash > 0 && space > dash && ulong.TryParse(line.AsSpan(0, dash), System.Globalization.NumberStyles.AllowHexSpecifier, null, out var s)
                && ulong.TryParse(line.AsSpan(dash + 1, space - dash - 1), System.Globalization.NumberStyles.AllowHexSpecifier, null, out var e))
            {
                (start, end, open) = (s, e, true);
            }
            else if (open && line.StartsWith("VmFlags:", StringComparison.Ordinal))
            {
                vmas.Add((start, end, line["VmFlags:".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries)));
                open = false;
            }
        }
        return vmas;
    }

    /// <summary>Why a region is not covered by VMAs registered for all its modes, or null.</summary>
    internal static string? Unregistered(IReadOnlyList<HandoffRegion> regions, List<(ulong Start, ulong End, string[] Flags)> vmas)
    {
        foreach (var r in regions)
        {
            ulong pos = r.BaseHostVirtAddr;
            while (pos < r.End)
            {
                int i = vmas.FindIndex(v => v.Start <= pos && pos < v.End);
                if (i < 0)
                    return $"region 0x{r.BaseHostVirtAddr:x} size {r.Size}: 0x{pos:x} is not mapped in the connecting process; register the region with the uffd before the handoff";
                foreach (var m in r.Modes ?? [])
                {
                    string flag = m switch { "missing" => "um", "wp" => "uw", _ => "ui" };
                    if (!vmas[i].Flags.Contains(flag, StringComparer.Ordinal))
                        return $"region 0x{r.BaseHostVirtAddr:x} size {r.Size}: [0x{pos:x}, 0x{Math.Min(vmas[i].End, r.End):x}) is not registered for {m} in the connecting process (its VmFlags lack '{flag}'); register it with that mode before the handoff";
                }
                pos = vmas[i].End;
            }
        }
        return null;
    }

    /// <summary>start + length ≤ limit without overflow.</summary>
    public static bool Fits(ulong start, ulong length, ulong limit) => length <= limit && start <= limit - length;

    private static FileInfoNative Info(int fd, string what)
    {
        FileInfoNative info;
        int r = Shim.uffd_fd_info(fd, &info);
        if (r < 0)
            throw new ArgumentException($"{what}: fstat failed ({Errno.Name(-r)})");
        return info;
    }

    /// <summary>What the kernel says the descriptor is: "anon_inode:[userfaultfd]" (the anon inode's
    /// name), O_NONBLOCK (the handler polls it and never changes the client's file
    /// flags), and the features fdinfo reports.</summary>
    public static UffdFeatures CheckUffd(int fd)
    {
        const string UffdLink = "anon_inode:[userfaultfd]";
        byte* buf = stackalloc byte[128];
        int n = Shim.uffd_fd_link(fd, buf, 128);
        string link = n > 0 ? System.Text.Encoding.UTF8.GetString(buf, n) : $"(unreadable: {Errno.Name(-n)})";
        if (link != UffdLink)
            throw new ArgumentException($"the descriptor sent as the uffd is not a userfaultfd ({link})");
        var info = Info(fd, "the uffd");
        if ((info.Fl & FileInfoNative.ONonblock) == 0)
            throw new ArgumentException("the uffd is blocking: open it with O_NONBLOCK (the handler polls it)");
        long pending = 0, total = 0;
        ulong feats = 0, ioctls = 0;
        Userfaultfd.ParseFdInfo(File.ReadLines($"/proc/self/fdinfo/{fd}"), ref pending, ref total, ref feats, ref ioctls);
        // Bit 31 (UFFD_FEATURE_INITIALIZED) is the kernel's own state, not a feature; whether it is
        // shown depends on the kernel, so an fd without the handshake is left to fail its first ioctl.
        return (UffdFeatures)(feats & 0x7FFFFFFFUL);
    }
}
