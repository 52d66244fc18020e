using UffdNative.Interop;
using UffdNative.Uapi;

namespace UffdNative.Messages;

/// <summary>A typed uffd message (reference §1.5). The serving loop reads raw <see cref="UffdMsg"/>
/// structs without allocating; these records are the typed events a program handles.</summary>
public abstract record UffdMessage
{
    public abstract UffdEventKind Kind { get; }

    /// <summary>Types a raw message. A FORK message's fd becomes owned by the returned
    /// <see cref="ForkEvent"/>; <paramref name="features"/> are the parent context's (inherited).</summary>
    public static UffdMessage FromRaw(in UffdMsg m, UffdFeatures features = UffdFeatures.None) => m.Kind switch
    {
        UffdEventKind.PageFault => new PageFault(m.PagefaultAddress, m.Flags, (int)m.PagefaultPtid),
        UffdEventKind.Fork => new ForkEvent(new SafeFdHandle((int)m.ForkUfd), features),
        UffdEventKind.Remap => new RemapEvent(m.RemapFrom, m.RemapTo, m.RemapLen),
        UffdEventKind.Remove => new RemoveEvent(m.RemoveStart, m.RemoveEnd),
        UffdEventKind.Unmap => new UnmapEvent(m.RemoveStart, m.RemoveEnd),
        _ => new UnknownMessage(m.Event),
    };
}

/// <summary>The kind of a page fault (also the index of the statistics' fault counters).</summary>
public enum FaultKind
{
    Missing = LoopAbi.KindMissing,
    WriteProtect = LoopAbi.KindWriteProtect,
    Minor = LoopAbi.KindMinor,
}

/// <summary>A thread is blocked on this page. Flags: MISSING read 0x0, MISSING write 0x1, WP write 0x3,
/// MINOR read 0x4 (§1.5). ThreadId is 0 unless UFFD_FEATURE_THREAD_ID was enabled.</summary>
public sealed record PageFault(ulong Address, PageFaultFlags Flags, int ThreadId) : UffdMessage
{
    public override UffdEventKind Kind => UffdEventKind.PageFault;
    public bool IsWrite => (Flags & PageFaultFlags.Write) != 0;
    public FaultKind FaultKind => (Flags & PageFaultFlags.WriteProtect) != 0 ? FaultKind.WriteProtect : (Flags & PageFaultFlags.Minor) != 0 ? FaultKind.Minor : FaultKind.Missing;
    public ulong PageAddress(ulong pageSize = 4096) => Address & ~(pageSize - 1);
}

/// <summary>The process forked with EVENT_FORK: the child's uffd, now in this process's fd table.
/// Serve it (<see cref="TakeUffd"/>) or dispose the event to close it; the child's faults on its
/// registered ranges arrive on that fd.</summary>
public sealed record ForkEvent(SafeFdHandle ChildUffd, UffdFeatures InheritedFeatures) : UffdMessage, IDisposable
{
    public override UffdEventKind Kind => UffdEventKind.Fork;
    public int Fd => ChildUffd.Fd;

    /// <summary>Transfers ownership of the child's uffd to a <see cref="Userfaultfd"/>.</summary>
    public Userfaultfd TakeUffd()
    {
        int fd = (int)ChildUffd.DangerousGetHandle();
        ChildUffd.SetHandleAsInvalid();
        return Userfaultfd.Adopt(fd, InheritedFeatures);
    }

    public void Dispose() => ChildUffd.Dispose();
}

/// <summary>mremap moved [From, From+Length) to To (with EVENT_REMAP; the originating call blocks until read).</summary>
public sealed record RemapEvent(ulong From, ulong To, ulong Length) : UffdMessage
{
    public override UffdEventKind Kind => UffdEventKind.Remap;
}

/// <summary>MADV_DONTNEED/MADV_REMOVE on [Start, End): the range stays registered.</summary>
public sealed record RemoveEvent(ulong Start, ulong End) : UffdMessage
{
    public override UffdEventKind Kind => UffdEventKind.Remove;
}

/// <summary>munmap of [Start, End): the range is gone; COPY into it gives ENOENT.</summary>
public sealed record UnmapEvent(ulong Start, ulong End) : UffdMessage
{
    public override UffdEventKind Kind => UffdEventKind.Unmap;
}

public sealed record UnknownMessage(byte Event) : UffdMessage
{
    public override UffdEventKind Kind => (UffdEventKind)Event;
}
