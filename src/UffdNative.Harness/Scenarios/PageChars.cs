namespace UffdNative.Harness.Scenarios;

/// <summary>The canonical one-character form of a pagemap entry (bits 63 present, 62 swap, 61 file,
/// 57 uffd-wp; reference §1.7).</summary>
public static class PageChars
{
    public const char None = '.';
    /// <summary>Present, not a file page (anonymous page or the zero page).</summary>
    public const char Anon = 'a';
    public const char AnonWp = 'A';
    /// <summary>Present page-cache page.</summary>
    public const char File = 'f';
    public const char FileWp = 'F';
    /// <summary>uffd-wp PTE marker: not present, swap + uffd-wp.</summary>
    public const char WpMarker = 'M';
    /// <summary>Poison marker (or any swap entry without wp): not present, swap.</summary>
    public const char Swap = 'x';
    /// <summary>Not present, uffd-wp without swap: a hugetlb uffd-wp marker (pagemap_hugetlb_range sets only
    /// PM_UFFD_WP for it, reference §3.11).</summary>
    public const char WpOnly = 'm';
    public const char Unspecified = '*';

    public static char From(bool present, bool swap, bool file, bool wp) => (present, swap, file, wp) switch
    {
        (false, false, _, false) => None,
        (true, _, false, false) => Anon,
        (true, _, false, true) => AnonWp,
        (true, _, true, false) => File,
        (true, _, true, true) => FileWp,
        (false, true, _, true) => WpMarker,
        (false, true, _, false) => Swap,
        (false, false, _, true) => WpOnly,
    };

    public static char FromRaw(ulong raw) => From((raw & (1UL << 63)) != 0, (raw & (1UL << 62)) != 0, (raw & (1UL << 61)) != 0, (raw & (1UL << 57)) != 0);
}
