// Kernel-touching tests (probes, the differential executor, CLI runs) share one process; run them
// one at a time. Pure model tests are fast enough not to need parallelism.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
