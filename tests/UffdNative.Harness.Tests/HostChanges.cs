namespace UffdNative.Harness.Tests;

/// <summary>
/// The tests that change the host's global state: vm.nr_hugepages, through <c>probe --allow-host-changes</c> and the
/// signals sent while its reservation stands. xunit runs a collection whose parallelization is disabled alone, after
/// the parallel ones. Run beside them, a reservation is a pool every other test's probe, check and fuzz sees: they
/// start hugetlb rows and cells on pages that are gone again when the reservation is restored (a CI run's plain
/// <c>probe --rows wp-shmem-markers</c> exited 1 that way).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class HostChangesCollection
{
    public const string Name = "host-changes";
}
