namespace UffdNative.Harness.Scenarios;

/// <summary>A mapping of the scenario. File mappings map <see cref="Pages"/> pages of the memfd from file
/// page <see cref="FileOffset"/>. <see cref="HugePage"/> asks for MADV_HUGEPAGE (THP) instead of the default
/// MADV_NOHUGEPAGE, and a 2 MiB aligned placement.</summary>
public sealed record MappingSpec(string Name, MapKind Kind, int Pages, int FileOffset = 0)
{
    public bool HugePage { get; init; }
}
