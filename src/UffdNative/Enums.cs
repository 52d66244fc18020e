namespace UffdNative;

/// <summary>UFFD_FEATURE_* bits 0..16: every mainline feature through Linux 6.18 (reference §1.2).</summary>
[Flags]
public enum UffdFeatures : ulong
{
    None = 0,
    PageFaultFlagWp = 1UL << 0,
    EventFork = 1UL << 1,
    EventRemap = 1UL << 2,
    EventRemove = 1UL << 3,
    MissingHugetlbfs = 1UL << 4,
    MissingShmem = 1UL << 5,
    EventUnmap = 1UL << 6,
    Sigbus = 1UL << 7,
    ThreadId = 1UL << 8,
    MinorHugetlbfs = 1UL << 9,
    MinorShmem = 1UL << 10,
    ExactAddress = 1UL << 11,
    WpHugetlbfsShmem = 1UL << 12,
    WpUnpopulated = 1UL << 13,
    Poison = 1UL << 14,
    WpAsync = 1UL << 15,
    Move = 1UL << 16,
    /// <summary>UFFD_FEATURE_RWP (7.3): the read-write-protect register mode and UFFDIO_RWPROTECT.</summary>
    Rwp = 1UL << 17,
    /// <summary>UFFD_FEATURE_RWP_ASYNC (7.3): RWP faults resolved by the kernel, toggled by UFFDIO_SET_MODE.</summary>
    RwpAsync = 1UL << 18,
}

/// <summary>UFFDIO_REGISTER_MODE_*.</summary>
[Flags]
public enum RegisterMode : ulong
{
    None = 0,
    Missing = 1UL << 0,
    WriteProtect = 1UL << 1,
    Minor = 1UL << 2,
}

/// <summary>Bits of uffdio_api.ioctls and uffdio_register.ioctls: 1 &lt;&lt; _UFFDIO_*.</summary>
[Flags]
public enum UffdIoctls : ulong
{
    None = 0,
    Register = 1UL << 0x00,
    Unregister = 1UL << 0x01,
    Wake = 1UL << 0x02,
    Copy = 1UL << 0x03,
    ZeroPage = 1UL << 0x04,
    Move = 1UL << 0x05,
    WriteProtect = 1UL << 0x06,
    Continue = 1UL << 0x07,
    Poison = 1UL << 0x08,
    /// <summary>_UFFDIO_RWPROTECT (7.3, RWP-registered ranges).</summary>
    RwProtect = 1UL << 0x09,
    /// <summary>_UFFDIO_SET_MODE (7.3, an fd-level ioctl: UFFDIO_API's mask).</summary>
    SetMode = 1UL << 0x0A,
    Api = 1UL << 0x3F,
}

/// <summary>uffd_msg.event.</summary>
public enum UffdEventKind : byte
{
    PageFault = 0x12,
    Fork = 0x13,
    Remap = 0x14,
    Remove = 0x15,
    Unmap = 0x16,
}

/// <summary>UFFD_PAGEFAULT_FLAG_*: WP messages always carry Write as well (§1.5).</summary>
[Flags]
public enum PageFaultFlags : ulong
{
    None = 0,
    Write = 1UL << 0,
    WriteProtect = 1UL << 1,
    Minor = 1UL << 2,
}

[Flags]
public enum CopyMode : ulong
{
    None = 0,
    DontWake = 1UL << 0,
    WriteProtect = 1UL << 1,
}

[Flags]
public enum ZeroPageMode : ulong
{
    None = 0,
    DontWake = 1UL << 0,
}

/// <summary>UFFDIO_WRITEPROTECT modes: WriteProtect set protects, clear un-protects; DontWake applies
/// only to un-protect (WP|DONTWAKE is EINVAL, §1.4).</summary>
[Flags]
public enum WriteProtectMode : ulong
{
    None = 0,
    WriteProtect = 1UL << 0,
    DontWake = 1UL << 1,
}

[Flags]
public enum ContinueMode : ulong
{
    None = 0,
    DontWake = 1UL << 0,
    WriteProtect = 1UL << 1,
}

[Flags]
public enum PoisonMode : ulong
{
    None = 0,
    DontWake = 1UL << 0,
}

[Flags]
public enum MoveMode : ulong
{
    None = 0,
    DontWake = 1UL << 0,
    AllowSrcHoles = 1UL << 1,
}

/// <summary>PAGEMAP_SCAN categories (PAGE_IS_*). "Written" means the uffd-wp bit is clear.</summary>
[Flags]
public enum PageCategory : ulong
{
    None = 0,
    WpAllowed = 1UL << 0,
    Written = 1UL << 1,
    File = 1UL << 2,
    Present = 1UL << 3,
    Swapped = 1UL << 4,
    PfnZero = 1UL << 5,
    Huge = 1UL << 6,
    SoftDirty = 1UL << 7,
    Guard = 1UL << 8,
}

[Flags]
public enum PageMapScanFlags : ulong
{
    None = 0,
    /// <summary>PM_SCAN_WP_MATCHING: write-protect the matched pages atomically with the scan.</summary>
    WpMatching = 1UL << 0,
    /// <summary>PM_SCAN_CHECK_WPASYNC: abort (EPERM) if a page lacks async WP.</summary>
    CheckWpAsync = 1UL << 1,
}

/// <summary>The shim's accessor kinds (uffd_access_kind).</summary>
public enum AccessKind
{
    Read64 = 1,
    Write64 = 2,
    Fill = 3,
    Verify = 4,
    TouchRead = 5,
    TouchWrite = 6,
    KernelWrite = 7,
    KernelRead = 8,
}

/// <summary>The fork helper's child ops (uffd_child_kind).</summary>
public enum ChildOpKind
{
    Read64 = 1,
    Write64 = 2,
    PageMap = 3,
    Verify = 4,
    Fill = 5,
    WaitParent = 6,
    UffdOpen = 7,
    MmapAnon = 8,
    Register = 9,
    SendUffd = 10,
    TouchWrite = 11,
    Exit = 12,
    MmapFill = 13,
}
