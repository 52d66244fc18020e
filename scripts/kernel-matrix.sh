#!/usr/bin/env bash
# kernel-matrix.sh — run uffdnative's probe (and check) on the host and under Debian kernels (5.10 to
# 7.3-rc) or one's own in qemu, in parallel, and write the comparison matrix. docs/matrix.md describes it.
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
kernel, and writes OUT/KERNEL/*.json and OUT/matrix.md (`uffdnative compare`). Guests run in
parallel (--jobs). Each kernel is an independent shard: `--kernel 7.3 --out DIR` on one machine,
`--kernel 5.10 --out DIR2` on another; `uffdnative compare DIR/*/probe.json DIR2/*/probe.json`
(or --merge) joins them.

KERNEL       host
             | an alias (the newest of the series known to the script's own apt state):
               5.10 (bullseye) 6.1 (bookworm) 6.12 (bookworm; = 6.12-bookworm) 6.12-trixie
               7.2 (sid) 7.3 (experimental, an -rc) — any X.Y from 7 on; -rt for that flavour
             | a release (5.10.0-46-amd64, 6.12.118+deb13-amd64, 7.3-amd64), a package name
               (linux-image-…, linux-binary-…), a Debian package version (6.12.117-1~deb12u1)
             | a local .deb, or IMAGE[:MODDIR]: a bzImage/vmlinux of one's own (a path with a /)
               and the directory its `make modules_install` wrote (none: 9p built in)

Options:
  --kernel KERNEL     a kernel to run (repeatable; the same as a positional KERNEL)
  --out DIR           results (default: artifacts/kernel-matrix in the repository)
  -j, --jobs N        guests (and the host column) run in parallel, at most N at once (default: nproc)
  --merge DIR...      no run: join the results of earlier runs (shards, possibly from other
                      machines) into --out: matrix.md, matrix-nobody.md and summary.tsv of all of them
  --ci                what CI runs: kernels host 5.10 6.1 6.12 6.12-trixie 7.2 7.3 (unless given), the
                      default steps; the GitHub workflow runs each kernel as a job of its own
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
  4  a kernel produced no result: timeout, or the guest died/panicked before reporting (a guest
     that died in early boot, before any step ran, is booted once more first; the retry is
     reported in the log, the summary and OUT/KERNEL/boots)
  When several apply the highest-priority one wins: 2, 3, 4, then 1.
EOF
}

kernels=() steps=() out="" ci=0 timeout_s=270 step_timeout=150 append="" append_set=0 cli="" install=1 accel=auto verbose=0
jobs=$(nproc 2>/dev/null || echo 1) merge=0 merge_dirs=()
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out=${2:?--out needs a directory}; shift 2 ;;
        --kernel) kernels+=("${2:?--kernel needs a KERNEL}"); shift 2 ;;
        -j|--jobs) jobs=${2:?--jobs needs a number}; shift 2 ;;
        --merge) merge=1; shift ;;
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
        *) if [ "$merge" = 1 ]; then merge_dirs+=("$1"); else kernels+=("$1"); fi; shift ;;
    esac
done
if [ "$merge" = 1 ]; then
    [ ${#merge_dirs[@]} -gt 0 ] || { km_log "--merge needs the result directories of earlier runs"; exit $EXIT_USAGE; }
    [ ${#kernels[@]} -eq 0 ] || { km_log "--merge runs no kernel: drop --kernel ${kernels[*]}"; exit $EXIT_USAGE; }
    for d in "${merge_dirs[@]}"; do
        [ -f "$d/.kernel-matrix-out" ] || { km_log "--merge $d: not a kernel-matrix output directory (no .kernel-matrix-out)"; exit $EXIT_USAGE; }
    done
fi
[ ${#kernels[@]} -gt 0 ] || { [ "$ci" = 1 ] && kernels=(host 5.10 6.1 6.12 6.12-trixie 7.2 7.3); } || kernels=(host 6.1 6.12)
for n in "$timeout_s" "$step_timeout" "$jobs"; do [[ "$n" =~ ^[1-9][0-9]*$ ]] || { km_log "timeouts and --jobs are positive whole numbers, not '$n'"; exit $EXIT_USAGE; }; done
case "$accel" in auto|kvm|tcg) ;; *) km_log "--accel takes auto, kvm or tcg"; exit $EXIT_USAGE ;; esac
for k in "${kernels[@]}"; do
    km_kernel_spec "$k" >/dev/null || { km_log "unknown kernel '$k': use host, 5.10, 6.1, 6.12, 6.12-trixie, 7.2, 7.3, a release such as 6.12.115+deb12-amd64, a package version, a .deb or IMAGE[:MODDIR] (see --help)"; exit $EXIT_USAGE; }
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
if [ "$install" = 1 ] && [ "$merge" = 0 ]; then
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
if [ ${#steps[@]} -eq 0 ] && [ "$merge" = 0 ]; then
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

# Machine-readable progress for `uffdnative matrix` (its live bar): with KM_PROGRESS_FILE set, one
# tab-separated line per event is appended there (each line one write, O_APPEND: shards do not interleave):
#   plan  KERNELS  STEPS            once, before the first kernel
#   step  LABEL    NAME  UID  exit 0|FAILED    as each step of a kernel ends
#   kernel  LABEL  CODE  RESULT     as each kernel ends (its remaining steps will not run)
km_progress() {
    [ -n "${KM_PROGRESS_FILE:-}" ] || return 0
    local IFS=$'\t'
    printf '%s\n' "$*" >>"$KM_PROGRESS_FILE"
}
# Passes the guest's output through and reports its "step NAME (uid U): exit 0, Ns" / "... FAILED, ..." lines.
km_step_tap() {
    local line rest name uid
    while IFS= read -r line; do
        printf '%s\n' "$line"
        case $line in
            "step "*" (uid "*"): exit 0"*|"step "*" (uid "*"): FAILED"*)
                rest=${line#step } name=${rest%% (uid *} uid=${rest#* (uid } uid=${uid%%)*}
                case $rest in *"): exit 0"*) km_progress step "$1" "$name" "$uid" "exit 0" ;; *) km_progress step "$1" "$name" "$uid" FAILED ;; esac ;;
        esac
    done
}
worst=$EXIT_OK
rank() { case $1 in 2) echo 5;; 3) echo 4;; 4) echo 3;; 1) echo 2;; *) echo 0;; esac; }
fail_with() {  # keep the highest-priority exit status: 2 > 3 > 4 > 1 > 0
    [ "$(rank "$1")" -gt "$(rank "$worst")" ] && worst=$1
    return 0
}

# run_kernel INDEX SPEC: one shard — prepare, boot, run the steps, judge. Runs in the background;
# writes OUT/LABEL/* and, for the summary, OUT/.run/INDEX (label, exit class, result text).
run_kernel() {
    local idx=$1 k=$2 kt0 label release dir rc secs warnings gs n boots code=$EXIT_OK text share vflag
    kt0=$(date +%s)
    if [ "$k" = host ]; then
        release=host
    else
        km_log "[$k] preparing (fetch, unpack, initramfs; cached in $KM_CACHE)"
        if ! release=$("$SCRIPTS_DIR/kernel-run.sh" --no-install --prepare-only "$k" 2>"$out/.run/prepare-$idx.log"); then
            sed "s/^/[$k] /" "$out/.run/prepare-$idx.log" >&2
            km_log "[$k] could not be prepared: $(grep -m1 'error:' "$out/.run/prepare-$idx.log" | sed 's/^[^:]*: error: //')"
            printf '%s\t%s\t%s\n' "$k" "$EXIT_SETUP" "setup failed (see above)" >"$out/.run/$idx.tmp" && mv "$out/.run/$idx.tmp" "$out/.run/$idx"
            km_progress kernel "$k" "$EXIT_SETUP" "setup failed"
            return 0
        fi
        rm -f "$out/.run/prepare-$idx.log"
    fi
    # The label is the release (uname -r); a second kernel with the same release gets -2, -3, ...
    label=$release n=1
    until mkdir "$out/.run/claim-$label" 2>/dev/null; do n=$((n + 1)); label="$release-$n"; done
    dir="$out/$label"
    rm -rf "$dir" && mkdir -p "$dir"
    printf '%s\n' "$k" >"$dir/spec.tmp" && mv "$dir/spec.tmp" "$dir/spec"
    km_log "[$label] running $step_count step(s) (timeout ${timeout_s}s)"
    set +e
    if [ "$k" = host ]; then
        timeout -k 10 "$timeout_s" bash -c "$runner_text" run-steps "$dir" "$cli" "$step_timeout" "${step_args[@]}" 2>&1 \
            | tee "$dir/run.log" | km_step_tap "$label" | sed -u "s/^/[$label] /" >&2
        rc=${PIPESTATUS[0]}
        echo 1 >"$dir/boots.tmp" && mv "$dir/boots.tmp" "$dir/boots"
    else
        share=(--rw "$dir")
        case "$cli/" in /tmp/*) share+=(--ro "$cli") ;; esac
        vflag=(); [ "$verbose" = 1 ] && vflag=(-v)
        "$SCRIPTS_DIR/kernel-run.sh" "${vflag[@]}" --no-install --timeout "$timeout_s" --accel "$accel" --log-dir "$dir" \
            "${share[@]}" --append "$append" "$k" -- bash -c "$runner_text" run-steps "$dir" "$cli" "$step_timeout" "${step_args[@]}" 2>&1 \
            | tee "$dir/run.log" | km_step_tap "$label" | sed -u "s/^/[$label] /" >&2
        rc=${PIPESTATUS[0]}
    fi
    set -e
    secs=$(( $(date +%s) - kt0 ))
    boots=$(cat "$dir/boots" 2>/dev/null || echo 1)
    warnings=""
    if [ -f "$dir/console.log" ]; then warnings=$(km_kernel_warnings "$dir/console.log" || true); fi
    if [ -n "$warnings" ]; then
        printf '%s\n' "$warnings" >"$dir/kernel-warnings.txt"
        km_log "[$label] the kernel logged WARN/BUG/Oops/panic lines (see $dir/console.log):"
        sed 's/^/    /' "$dir/kernel-warnings.txt" >&2
        text="kernel warning"; code=$EXIT_FAILED
    fi
    # kernel-run turns a 0 into 125 when the console has warnings; the guest's own status says
    # whether the steps ran to the end.
    if [ "$rc" = 125 ] && [ -n "$warnings" ]; then
        gs=$(tr -d '\r\0' <"$dir/guest-status" 2>/dev/null | head -n1 || true)
        if [[ "$gs" =~ ^[0-9]+$ ]]; then rc=$gs; fi
    fi
    case "$rc" in
        0) [ -n "$warnings" ] || text="ok" ;;
        1) text="step failed${warnings:+, kernel warning}"; code=$EXIT_FAILED ;;
        124) text="timeout after ${timeout_s}s${warnings:+, kernel warning}"; code=$EXIT_NO_RESULT ;;
        *) text="no result (exit $rc${warnings:+, kernel warning/panic}; see $dir/run.log)"; code=$EXIT_NO_RESULT ;;
    esac
    case "$boots" in 2*) text="$text; booted twice: ${boots#2 }" ;; esac
    echo "$secs" >"$dir/seconds.tmp" && mv "$dir/seconds.tmp" "$dir/seconds"
    printf '%s\t%s\n' "$code" "$text" >"$dir/result.tmp" && mv "$dir/result.tmp" "$dir/result"
    km_log "[$label] $text (${secs}s)"
    printf '%s\t%s\t%s\n' "$label" "$code" "$text" >"$out/.run/$idx.tmp" && mv "$out/.run/$idx.tmp" "$out/.run/$idx"
    km_progress kernel "$label" "$code" "$text"
}

labels=() results=()
if [ "$merge" = 0 ]; then
    rm -rf "$out/.run" && mkdir -p "$out/.run"
    km_log "running ${#kernels[@]} kernel(s), at most $jobs at once"
    km_progress plan "${#kernels[@]}" "$step_count"
    running=0 idx=0
    for k in "${kernels[@]}"; do
        if [ "$running" -ge "$jobs" ]; then wait -n || true; running=$((running - 1)); fi
        run_kernel "$idx" "$k" &
        running=$((running + 1)) idx=$((idx + 1))
    done
    wait || true
    idx=0
    for k in "${kernels[@]}"; do
        if [ -f "$out/.run/$idx" ]; then
            IFS=$'\t' read -r label code text <"$out/.run/$idx"
        else
            label=$k code=$EXIT_NO_RESULT text="the shard ended without a result (see the log above)"
        fi
        labels+=("$label"); results+=("$text"); fail_with "$code"
        idx=$((idx + 1))
    done
    rm -rf "$out/.run"
else
    # --merge: every kernel directory of the given results, in order. A directory of an earlier
    # merge into the same --out is replaced, not kept beside the new copies.
    own=0
    for d in "${merge_dirs[@]}"; do [ "$(realpath "$d")" = "$out" ] && own=1; done
    if [ "$own" = 0 ]; then
        for kd in "$out"/*/; do
            kd=${kd%/}
            if [ -f "$kd/steps.tsv" ] || [ -f "$kd/result" ]; then rm -rf "$kd"; fi
        done
    fi
    for d in "${merge_dirs[@]}"; do
        for kd in "$d"/*/; do
            kd=${kd%/}
            [ -f "$kd/steps.tsv" ] || [ -f "$kd/result" ] || continue
            label=$(basename "$kd")
            if [ "$(realpath "$d")" != "$out" ]; then
                n=1; base=$label
                while [ -e "$out/$label" ]; do n=$((n + 1)); label="$base-$n"; done
                cp -r "$kd" "$out/$label"
            fi
            code=$EXIT_NO_RESULT text="no result file"
            if [ -f "$out/$label/result" ]; then IFS=$'\t' read -r code text <"$out/$label/result"; fi
            labels+=("$label"); results+=("$text (from $d)"); fail_with "$code"
        done
    done
    [ ${#labels[@]} -gt 0 ] || { km_log "--merge: no kernel results in ${merge_dirs[*]}"; exit $EXIT_USAGE; }
fi

# ---- summary ----
passed=0 failed=0
{
    printf 'kernel\tstep\tuser\texit\tseconds\tboots\n'
    for label in "${labels[@]}"; do
        dir="$out/$label"
        boots=$(head -c 1 "$dir/boots" 2>/dev/null || echo 1)
        if [ -f "$dir/steps.tsv" ]; then
            awk -F'\t' -v l="$label" -v b="$boots" 'NR > 1 { print l "\t" $1 "\t" $2 "\t" $3 "\t" $4 "\t" b }' "$dir/steps.tsv"
        fi
        # Steps that never ran (a guest that died, a setup failure) count as failed.
        i=0
        while [ $i -lt ${#step_args[@]} ]; do
            name=${step_args[$i]} uid=${step_args[$((i + 1))]}
            if ! awk -F'\t' -v n="$name" '$1 == n { f = 1 } END { exit !f }' "$dir/steps.tsv" 2>/dev/null; then
                printf '%s\t%s\t%s\tnone\t-\t%s\n' "$label" "$name" "$uid" "$boots"
            fi
            i=$((i + 3))
        done
    done
} >"$out/summary.tsv.tmp"
mv "$out/summary.tsv.tmp" "$out/summary.tsv"
while IFS=$'\t' read -r label name uid rc secs boots; do
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
    DOTNET_EnableDiagnostics=0 "${cli_exe[@]}" compare --markdown "$@" >"$out/$file.tmp" 2>"$out/${file%.md}.stderr"
    crc=$?
    set -e
    mv "$out/$file.tmp" "$out/$file"
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
    i=0
    for label in "${labels[@]}"; do printf '  %-28s %s\n' "$label" "${results[$i]:-?}"; i=$((i + 1)); done
    column -t -s $'\t' "$out/summary.tsv" | sed 's/^/  /'
    if [ -s "$out/matrix.md" ]; then echo "  matrix: $out/matrix.md${nobody_reports:+ (uid 65534: $out/matrix-nobody.md)}"; fi
    echo "kernel-matrix: $passed steps passed, $failed failed; exit $worst"
} >&2
exit "$worst"
