# Sourced by .ci/run after the tests: further checks, one `extra NAME COMMAND...` each.
# Issue 5: probe (root and uid 65534) and check on Debian 6.1, 6.12 under qemu and on the host; fails on
# any regressed/unexpected probe row, any check divergence, or a guest kernel WARN/BUG/Oops.
extra kernel-matrix scripts/kernel-matrix.sh --ci --out TestResults/ci/kernel-matrix
