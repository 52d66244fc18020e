#!/usr/bin/env bash
# kernel-matrix.sh — run uffdnative's probe (and check) on the host and under Debian's 6.1 and 6.12
# kernels in qemu, and write the comparison matrix. docs/matrix.md describes it; --help the options.
set -euo pipefail

KM_PROG=kernel-matrix
SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$SCRIPTS_DIR/.." && pwd)"
KM_LIB_DIR="$SCRIPTS_DIR/lib"
# shellcheck source=lib/kernel-lib.sh
. "$KM_LIB_DIR/kernel-lib.sh"

EXIT_OK=0 EXIT_FAILED=1 EXIT_USAGE=2 EXIT_SETUP=3 EXIT_NO_RESULT=4

usage() {
    cat <<'EOF'
Usage: scripts/kernel-matrix.sh [OPTIONS] [KERNEL...]

Builds the uffdnative CLI, then for each KERNEL (default: host 6.1 6.12) runs the steps — by
default `uffdnative probe --json` as root and as uid 65534, and `uffdnative check --json` when the
CLI has `check` — on the host (directly, changing nothing) or in a qemu guest booted from that
Debian kernel package, and writes OUT/KERNEL/*.json and OUT/matrix.md (`uffdnative compare`).

KERNEL       host | 6.1 | 6.12 (newest of the series known to apt) | an exact version
             (6.1.0-55-amd64, 6.12.115+deb12-amd64, linux-image-...)

Options:
  --out DIR           results (default: artifacts/kernel-matrix in the repository)
  --ci                what CI runs: kernels host 6.1 6.12 (unless given), the default steps
  --step SPEC         replace the default steps (repeatable). SPEC is NAME[@UID]=COMMAND: bash
                      COMMAND's stdout goes to OUT/KERNEL/NAME; UID is root (default), a number
                      or nobody; `uffdnative` in COMMAND is the CLI under test.
                      e.g. --step 'probe.json=uffdnative probe --json' --step 'uname.txt=uname -a'
  --timeout SECS      per kernel, boot included (default 270)
  --step-timeout SECS per step (default 150)
  --append ARGS       guest kernel command line (default: "hugepages=16 transparent_hugepage=<the host's>")
  --cli DIR           use this already-built CLI (a publish/build output directory) instead of building
  --no-install        do not apt-get install the host tools (qemu-system-x86 busybox-static cpio kmod ...)
  --accel MODE        auto (default: kvm only with kvm_intel/kvm_amd loaded, else tcg) | kvm | tcg
  -v, --verbose       show kernel-run's qemu command lines and consoles
  -h, --help          this text

Exit status:
  0  every kernel ran every step with exit 0, no kernel WARN/BUG/Oops/panic, compare flagged nothing
  1  a step failed (e.g. probe found a regressed/unexpected row, check diverged, a command failed),
     a guest kernel logged a WARN/BUG/Oops/panic, or compare flagged a difference as a failure
  2  usage error
  3  setup failed: apt-get install, kernel download/unpack, CLI build, or qemu unusable
  4  a kernel produced no result: timeout, or the guest died/panicked before reporting
  When several apply the highest-priority one wins: 2, 3, 4, then 1.
EOF
}

kernels=() steps=() out="" ci=0 timeout_s=270 step_timeout=150 append="" append_set=0 cli="" install=1 accel=auto verbose=0
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out=${2:?--out needs a directory}; shift 2 ;;
        --ci) ci=1; shift ;;
        --step) steps+=("${2:?--step needs NAME[@UID]=COMMAND}"); shift 2 ;;
        --timeout) timeout_s=${2:?}; shift 2 ;;
        --step-timeout) step_timeout=${2:?}; shift 2 ;;
        --append) append=${2?}; append_set=1; shift 2 ;;
        --cli) cli=${2:?}; shift 2 ;;
        --no-install) install=0; shift ;;
        --accel) accel=${2:?}; shift 2 ;;
        -v|--verbose) verbose=1; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) km_log "unknown option $1 (see --help)"; exit $EXIT_USAGE ;;
        *) kernels+=("$1"); shift ;;
    esac
done
[ ${#kernels[@]} -gt 0 ] || kernels=(host 6.1 6.12)
for n in "$timeout_s" "$step_timeout"; do [[ "$n" =~ ^[1-9][0-9]*$ ]] || { km_log "timeouts are whole seconds, not '$n'"; exit $EXIT_USAGE; }; done
case "$accel" in auto|kvm|tcg) ;; *) km_log "--accel takes auto, kvm or tcg"; exit $EXIT_USAGE ;; esac
for k in "${kernels[@]}"; do
    km_kernel_spec "$k" >/dev/null || { km_log "unknown kernel '$k': use host, 6.1, 6.12 or an exact version such as 6.12.115+deb12-amd64"; exit $EXIT_USAGE; }
done
[ "$ci" = 1 ] && verbose=0

# ---- steps: NAME UID COMMAND triples ----
step_args=()
add_step() {
    local parsed name uid cmd
    parsed=$(km_parse_step "$1") || { km_log "bad --step '$1': use NAME[@UID]=COMMAND, NAME of [A-Za-z0-9._-]"; exit $EXIT_USAGE; }
    IFS=$'\t' read -r name uid cmd <<<"$parsed"
    step_args+=("$name" "$uid" "$cmd")
}
for s in "${steps[@]}"; do add_step "$s"; done

# ---- output directory ----
[ -n "$out" ] || out="$REPO/artifacts/kernel-matrix"
out=$(realpath -m "$out")
if [ -d "$out" ] && [ -n "$(ls -A "$out")" ] && [ ! -f "$out/.kernel-matrix-out" ]; then
    km_log "--out $out exists and is not a kernel-matrix output directory (no .kernel-matrix-out): choose an empty or new directory"
    exit $EXIT_USAGE
fi
mkdir -p "$out" && touch "$out/.kernel-matrix-out" || { km_log "cannot create --out $out"; exit $EXIT_SETUP; }
rm -f "$out/matrix.md" "$out/matrix.stderr" "$out/matrix-nobody.md" "$out/matrix-nobody.stderr" "$out/summary.tsv"

t0=$(date +%s)
KM_T0=$t0
elapsed() { echo "$(( $(date +%s) - t0 ))s"; }

# ---- host tools ----
if [ "$install" = 1 ]; then
    ( km_host_tools ) || exit $EXIT_SETUP
fi

# ---- the CLI ----
if [ -z "$cli" ]; then
    cli="$REPO/artifacts/kernel-matrix-cli"
    km_log "building the CLI into $cli (dotnet publish, framework-dependent)"
    command -v dotnet >/dev/null || { km_log "dotnet not found: the .NET 10 SDK is needed to build the CLI (or pass --cli DIR)"; exit $EXIT_SETUP; }
    if ! timeout 600 dotnet publish "$REPO/src/UffdNative.Cli/UffdNative.Cli.csproj" -c Release -o "$cli" --nologo -v q >"$out/build.log" 2>&1; then
        tail -n 30 "$out/build.log" >&2
        km_log "dotnet publish failed (log: $out/build.log)"
        exit $EXIT_SETUP
    fi
fi
cli=$(realpath "$cli")
if [ -x "$cli/UffdNative.Cli" ]; then cli_exe=("$cli/UffdNative.Cli")
elif [ -f "$cli/UffdNative.Cli.dll" ]; then cli_exe=(dotnet "$cli/UffdNative.Cli.dll")
else km_log "--cli $cli holds no UffdNative.Cli (a build or publish output directory of src/UffdNative.Cli)"; exit $EXIT_SETUP
fi
# The verbs the CLI has, from its help's "Commands:" section (`X --help` of an unknown X prints the
# root help and exits 0, so it cannot tell).
cli_verbs=$(DOTNET_EnableDiagnostics=0 "${cli_exe[@]}" --help 2>/dev/null | awk '/^Commands:/ { f = 1; next } f && /^  [a-z]/ { print $1 }') \
    || { km_log "the CLI in $cli does not run (${cli_exe[*]} --help failed)"; exit $EXIT_SETUP; }
has_verb() { grep -qx -- "$1" <<<"$cli_verbs"; }
if [ ${#steps[@]} -eq 0 ]; then
    add_step 'probe.json=uffdnative probe --json'
    add_step 'probe-nobody.json@65534=uffdnative probe --json'
    if has_verb check; then add_step 'check.json=uffdnative check --json'
    else km_log "this CLI has no 'check' verb yet: running probe only"; fi
fi
step_count=$(( ${#step_args[@]} / 3 ))

# ---- guest kernel command line: huge pages reserved inside the guest only; THP as on the host ----
if [ "$append_set" = 0 ]; then
    thp=$(sed -n 's/.*\[\(.*\)\].*/\1/p' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || true)
    append="hugepages=16${thp:+ transparent_hugepage=$thp}"
fi

runner_text=$(cat "$KM_LIB_DIR/run-steps.sh")
declare -A result=()
worst=$EXIT_OK
fail_with() {  # keep the highest-priority exit status: 2 > 3 > 4 > 1 > 0
    local rank_new rank_old
    rank() { case $1 in 2) echo 5;; 3) echo 4;; 4) echo 3;; 1) echo 2;; *) echo 0;; esac; }
    rank_new=$(rank "$1"); rank_old=$(rank "$worst")
    [ "$rank_new" -gt "$rank_old" ] && worst=$1
    return 0
}

labels=()
for k in "${kernels[@]}"; do
    kt0=$(date +%s)
    if [ "$k" = host ]; then
        label=host
    else
        km_log "[$k] preparing (fetch, unpack, initramfs; cached in $KM_CACHE)"
        if ! release=$("$SCRIPTS_DIR/kernel-run.sh" --no-install --prepare-only "$k" 2>"$out/prepare-$k.log"); then
            cat "$out/prepare-$k.log" >&2
            km_log "[$k] could not be prepared (log: $out/prepare-$k.log)"
            result[$k]="setup failed"; fail_with $EXIT_SETUP; labels+=("$k"); continue
        fi
        rm -f "$out/prepare-$k.log"
        label=$release
    fi
    labels+=("$label")
    dir="$out/$label"
    rm -rf "$dir" && mkdir -p "$dir"
    km_log "[$label] running $step_count step(s) (timeout ${timeout_s}s)"
    set +e
    if [ "$label" = host ]; then
        timeout -k 10 "$timeout_s" bash -c "$runner_text" run-steps "$dir" "$cli" "$step_timeout" "${step_args[@]}" 2>&1 \
            | tee "$dir/run.log" | sed -u "s/^/[$label] /" >&2
        rc=${PIPESTATUS[0]}
    else
        share=(--rw "$dir")
        case "$cli/" in /tmp/*) share+=(--ro "$cli") ;; esac
        vflag=(); [ "$verbose" = 1 ] && vflag=(-v)
        "$SCRIPTS_DIR/kernel-run.sh" "${vflag[@]}" --no-install --timeout "$timeout_s" --accel "$accel" --log-dir "$dir" \
            "${share[@]}" --append "$append" "$k" -- bash -c "$runner_text" run-steps "$dir" "$cli" "$step_timeout" "${step_args[@]}" 2>&1 \
            | tee "$dir/run.log" | sed -u "s/^/[$label] /" >&2
        rc=${PIPESTATUS[0]}
    fi
    set -e
    secs=$(( $(date +%s) - kt0 ))
    warnings=""
    if [ -f "$dir/console.log" ]; then warnings=$(km_kernel_warnings "$dir/console.log" || true); fi
    if [ -n "$warnings" ]; then
        printf '%s\n' "$warnings" >"$dir/kernel-warnings.txt"
        km_log "[$label] the kernel logged WARN/BUG/Oops/panic lines (see $dir/console.log):"
        sed 's/^/    /' "$dir/kernel-warnings.txt" >&2
        result[$label]="kernel warning"; fail_with $EXIT_FAILED
    fi
    # kernel-run turns a 0 into 125 when the console has warnings; the guest's own status says
    # whether the steps ran to the end.
    if [ "$rc" = 125 ] && [ -n "$warnings" ]; then
        gs=$(tr -d '\r\0' <"$dir/guest-status" 2>/dev/null | head -n1 || true)
        if [[ "$gs" =~ ^[0-9]+$ ]]; then rc=$gs; fi
    fi
    case "$rc" in
        0) [ -n "$warnings" ] || result[$label]="ok" ;;
        1) result[$label]="step failed${warnings:+, kernel warning}"; fail_with $EXIT_FAILED ;;
        124) result[$label]="timeout after ${timeout_s}s${warnings:+, kernel warning}"; fail_with $EXIT_NO_RESULT ;;
        *) result[$label]="no result (exit $rc${warnings:+, kernel warning/panic}; see $dir/run.log)"; fail_with $EXIT_NO_RESULT ;;
    esac
    echo "$secs" >"$dir/seconds"
    km_log "[$label] ${result[$label]} (${secs}s)"
done

# ---- summary ----
passed=0 failed=0
{
    printf 'kernel\tstep\tuser\texit\tseconds\n'
    for label in "${labels[@]}"; do
        dir="$out/$label"
        i=0
        while [ $i -lt ${#step_args[@]} ]; do
            name=${step_args[$i]} uid=${step_args[$((i + 1))]}
            row=$(awk -F'\t' -v n="$name" '$1 == n { print $3 "\t" $4 }' "$dir/steps.tsv" 2>/dev/null || true)
            [ -n "$row" ] || row=$'none\t-'
            printf '%s\t%s\t%s\t%s\n' "$label" "$name" "$uid" "$row"
            i=$((i + 3))
        done
    done
} >"$out/summary.tsv"
while IFS=$'\t' read -r label name uid rc secs; do
    [ "$label" = kernel ] && continue
    if [ "$rc" = 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done <"$out/summary.tsv"

# ---- the matrix ----
reports=() nobody_reports=()
for label in "${labels[@]}"; do
    if [ -s "$out/$label/probe.json" ]; then reports+=("$out/$label/probe.json"); fi
    if [ -s "$out/$label/probe-nobody.json" ]; then nobody_reports+=("$out/$label/probe-nobody.json"); fi
done
# compare: exit 1 when a report has regressed/unexpected or failed rows, 2 for a malformed report.
run_compare() {
    local what=$1 file=$2 crc; shift 2
    set +e
    DOTNET_EnableDiagnostics=0 "${cli_exe[@]}" compare --markdown "$@" >"$out/$file" 2>"$out/${file%.md}.stderr"
    crc=$?
    set -e
    if [ "$crc" != 0 ]; then
        km_log "uffdnative compare of the $what reports exited $crc: $(head -c 2000 "$out/${file%.md}.stderr")"
        fail_with $EXIT_FAILED
    fi
    if [ ! -s "$out/${file%.md}.stderr" ]; then rm -f "$out/${file%.md}.stderr"; fi
    return 0
}
if [ ${#reports[@]} -gt 0 ] && has_verb compare; then
    run_compare root matrix.md "${reports[@]}"
    if [ ${#nobody_reports[@]} -gt 0 ]; then run_compare "uid 65534" matrix-nobody.md "${nobody_reports[@]}"; fi
    # The terminal form, for the log.
    DOTNET_EnableDiagnostics=0 NO_COLOR=1 "${cli_exe[@]}" compare "${reports[@]}" >&2 2>/dev/null || true
elif [ ${#reports[@]} -gt 0 ]; then
    km_log "this CLI has no 'compare' verb: matrix.md is not written (the per-kernel reports are)"
fi

{
    echo
    echo "kernel-matrix: results in $out ($(elapsed))"
    for label in "${labels[@]}"; do printf '  %-28s %s\n' "$label" "${result[$label]:-?}"; done
    column -t -s $'\t' "$out/summary.tsv" | sed 's/^/  /'
    if [ -s "$out/matrix.md" ]; then echo "  matrix: $out/matrix.md${nobody_reports:+ (uid 65534: $out/matrix-nobody.md)}"; fi
    echo "kernel-matrix: $passed steps passed, $failed failed; exit $worst"
} >&2
exit "$worst"
