namespace UffdNative.Harness.Scenarios;

/// <summary>A uffd of the scenario: the features enabled by UFFDIO_API, and whether it is opened
/// UFFD_USER_MODE_ONLY.</summary>
public sealed record UffdSpec(string Name, UffdFeatures Features, bool UserModeOnly = false);
