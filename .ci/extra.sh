# Sourced by .ci/run after the tests: further checks, one `extra NAME COMMAND...` each.
# Issue 5: probe (root and uid 65534) and check on Debian 6.1, 6.12 under qemu and on the host; fails on
# any regressed/unexpected probe row, any check divergence, or a guest kernel WARN/BUG/Oops.
extra kernel-matrix scripts/kernel-matrix.sh --ci --out TestResults/ci/kernel-matrix
# Issue 7: a bounded soak (about 2 minutes, 4 toucher threads): lost 0, corrupt 0, hung 0.
extra soak .ci/soak.sh
extra containers scripts/container-test.sh  # Issue 14: the Dockerfile built and probe/check/bench run in every documented container mode; docs/containers.md table
# Issue 11: the detectors' evidence in the matrix's guests (and, for a kernel recorded in
# tests/UffdNative.Harness.Tests/Probing/DetectorEvidence/, the recorded answers): catches a detector that
# answers without its experiment where the kernel differs from mainline of its version (6.1.192's backports).
extra detector-evidence env UFFDNATIVE_DETECTOR_REPORTS=TestResults/ci/kernel-matrix \
  dotnet test tests/UffdNative.Harness.Tests --no-build --filter FullyQualifiedName~DetectorEvidenceTests
