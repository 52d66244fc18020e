#!/usr/bin/env bash
# config-variants.sh — `probe` and `check` in guests booted in the configurations the environment facts
# describe (docs/environment-facts.md): THP always, a changed fault_around_bytes (set through debugfs inside
# the guest), shmem THP advise, always, within_size and force, and the test kernel with the shared zero page
# off. Huge pages are reserved in every guest (hugepages=16). `check` must pass in each with the detected
# profile; nothing in the suite knows which.
#
#   scripts/config-variants.sh [--out DIR] [--kernel KERNEL] [--only NAME,...] [kernel-matrix options...]
#
# Variants (each a kernel-matrix run into DIR/NAME):
#   thp-always       KERNEL with transparent_hugepage=always
#   fault-around-2   KERNEL with fault_around_bytes=8192 (2 pages) written in the guest before the steps
#   shmem-thp-advise KERNEL with shmem THP on (transparent_hugepage/shmem_enabled = advise, written in the guest
#                    before the steps): minor-collapse runs with it, and shmem cells keep their 4 KiB pins
#   shmem-thp-always KERNEL with shmem THP `always` (written in the guest the same way): every shmem cell keeps
#                    its MADV_NOHUGEPAGE pin, write(2) caches 2 MiB folios (modelled); minor-collapse runs too
#   shmem-thp-within-size  KERNEL with shmem THP `within_size` (written the same way): write(2) caches a 2 MiB
#                    folio only where i_size covers the whole extent (modelled; no cell's file does); minor-collapse runs
#   shmem-thp-force  KERNEL with shmem THP `force` (written the same way): huge on for every mount, but no
#                    MADV_NOHUGEPAGE pin is lifted: modelled as `always`, every shmem cell and minor-collapse run
#   zero-page-off    the test kernel (scripts/build-test-kernel.sh; about 25 min the first time, cached after)
#                    with uffdnative_no_zero_page=1
#   combined         (only when named in --only) one guest of KERNEL with THP always, fault_around_bytes 8192 and
#                    shmem THP advise at once: the default .ci/run's proof that check follows changed facts, in one boot
# KERNEL defaults to 6.12-trixie. Exit status: the worst of the runs (kernel-matrix.sh's codes).
set -uo pipefail
cd "$(dirname "$0")/.."
out=artifacts/config-variants kernel=6.12-trixie only="thp-always,fault-around-2,shmem-thp-advise,shmem-thp-always,shmem-thp-within-size,shmem-thp-force,zero-page-off" pass=()
while [ $# -gt 0 ]; do
    case $1 in
        --out) out=$2; shift 2 ;;
        --kernel) kernel=$2; shift 2 ;;
        --only) only=$2; shift 2 ;;
        -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
        *) pass+=("$1"); shift ;;
    esac
done
mkdir -p "$out"
worst=0
run() {
    local name=$1; shift
    case ",$only," in *",$name,"*) ;; *) return 0 ;; esac
    local t0=$SECONDS
    echo "config-variants: $name: scripts/kernel-matrix.sh --out $out/$name $*"
    scripts/kernel-matrix.sh --out "$out/$name" "${pass[@]}" "$@"
    local rc=$?
    echo "config-variants: $name: exit $rc after $((SECONDS - t0)) s"
    [ "$rc" -gt "$worst" ] && worst=$rc
    return 0
}
run thp-always --append "hugepages=16 transparent_hugepage=always" "$kernel"
run fault-around-2 \
    --step 'probe.json=mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null; echo 8192 >/sys/kernel/debug/fault_around_bytes || exit 3; uffdnative probe --json' \
    --step 'check.json=uffdnative check --json' "$kernel"
run shmem-thp-advise \
    --step 'probe.json=echo advise >/sys/kernel/mm/transparent_hugepage/shmem_enabled || exit 3; uffdnative probe --json' \
    --step 'check.json=uffdnative check --json' "$kernel"
run shmem-thp-always \
    --step 'probe.json=echo always >/sys/kernel/mm/transparent_hugepage/shmem_enabled || exit 3; uffdnative probe --json' \
    --step 'check.json=uffdnative check --json' "$kernel"
run shmem-thp-within-size \
    --step 'probe.json=echo within_size >/sys/kernel/mm/transparent_hugepage/shmem_enabled || exit 3; uffdnative probe --json' \
    --step 'check.json=uffdnative check --json' "$kernel"
run shmem-thp-force \
    --step 'probe.json=echo force >/sys/kernel/mm/transparent_hugepage/shmem_enabled || exit 3; uffdnative probe --json' \
    --step 'check.json=uffdnative check --json' "$kernel"
run combined --append "hugepages=16 transparent_hugepage=always" \
    --step 'probe.json=mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null; echo 8192 >/sys/kernel/debug/fault_around_bytes && echo advise >/sys/kernel/mm/transparent_hugepage/shmem_enabled || exit 3; uffdnative probe --json' \
    --step 'check.json=uffdnative check --json' "$kernel"
case ",$only," in
    *,zero-page-off,*)
        if image=$(scripts/build-test-kernel.sh | tail -1) && [ -f "$image" ]; then
            run zero-page-off --append "uffdnative_no_zero_page=1 hugepages=16 transparent_hugepage=madvise" "$image"
        else
            echo "config-variants: zero-page-off: the test kernel could not be built" >&2
            worst=3
        fi ;;
esac
echo "config-variants: exit $worst"
exit "$worst"
