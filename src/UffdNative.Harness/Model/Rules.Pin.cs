using UffdNative.Harness.Scenarios;

namespace UffdNative.Harness.Model;

/// <summary>Long-term pins (io_uring fixed buffers, native/harness/uffd_pin.c): what the pin does to the pages.</summary>
internal sealed partial class ModelRun
{
    /// <summary>Set while a pin's fault runs: GUP's FOLL_WRITE fault (faultin_page with FAULT_FLAG_WRITE) maps the
    /// page as a write fault would — messages, CoW, a fresh page — but stores nothing.</summary>
    private bool pinFault;

    /// <summary>The parent's pins that succeeded, by the pin op's range.</summary>
    private readonly HashSet<(MapState Map, int First, int Count)> heldPins = [];

    /// <summary>pin_user_pages_fast(FOLL_WRITE | FOLL_LONGTERM) over the range (io_pin_pages): each page is faulted
    /// as a kernel-mode write (a uffd-wp PTE in a WP VMA raises a WP fault, flags WRITE|WP; a hole in a MISSING VMA a
    /// MISSING fault; FEATURE_SIGBUS, a user-mode-only uffd, a poison marker or a page beyond EOF make GUP fail),
    /// then pinned. io_pin_pages turns any shortfall into EFAULT and releases the pages it got.</summary>
    private string Pin(Mm mm, MapState m, int first, int count)
    {
        for (int p = first; p < first + count; p++)
        {
            Outcome o;
            pinFault = true;
            try
            {
                o = Access(mm, m, p, write: true, tag: 0, kernel: true);
            }
            finally
            {
                pinFault = false;
            }
            if (o.Kind == OutcomeKind.Blocked)
                return "blocked";
            if (o.Kind != OutcomeKind.Ok)
                return "EFAULT";
        }
        // A pin in a fork child (ChildAccess.Pin) ends with the child: only the parent's pins outlive the op.
        if (mm == parent)
        {
            for (int p = first; p < first + count; p++)
                m.Ptes[p].Pinned = true;
            heldPins.Add((m, first, count));
        }
        return "ok";
    }

    /// <summary>IORING_UNREGISTER_BUFFERS: unpin_user_pages of what the pin holds (the PTEs now may map other pages,
    /// which were never pinned).</summary>
    private string Unpin(MapState m, int first, int count)
    {
        // The executor unpins what a pin op of the same range holds; a pin that failed holds nothing.
        if (!heldPins.Remove((m, first, count)))
            return "ENOENT";
        for (int p = first; p < first + count; p++)
            m.Ptes[p].Pinned = false;
        return "ok";
    }
}
