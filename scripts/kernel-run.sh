#!/usr/bin/env bash
# kernel-run.sh — run one command under one Debian kernel in a throw-away qemu guest, or on the host.
# docs/matrix.md describes how it works; --help lists the options.
set -euo pipefail

KM_PROG=kernel-run
KM_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/lib" && pwd)"
# shellcheck source=lib/kernel-lib.sh
. "$KM_LIB_DIR/kernel-lib.sh"

usage() {
    cat <<'EOF'
Usage: scripts/kernel-run.sh [OPTIONS] KERNEL -- COMMAND [ARG...]

Boots KERNEL under qemu with the host's / shared read-only over 9p, runs COMMAND as root inside it
(in the current directory, which must not be under /tmp: the guest's /tmp is its own), prints its
output, and exits with its status. KERNEL "host" runs COMMAND directly on the host, changing nothing.

KERNEL     host
           | an alias, the newest of a series known to apt: 5.10 (bullseye), 6.1 (bookworm),
             6.12 (bookworm; also 6.12-bookworm), 6.12-trixie, 7.2 (sid), 7.3 (experimental, -rc),
             any X.Y from 7 on; -rt for that flavour (-cloud flavours have no 9p: not supported)
           | a release: 5.10.0-46-amd64, 6.1.0-55-amd64, 6.12.118+deb13-amd64, 7.3-amd64
           | a package: linux-image-6.1.0-55-amd64, linux-binary-7.2.13+deb14-amd64
           | a Debian package version: 6.12.117-1~deb12u1, 7.3~rc7-1~exp1 (the amd64 flavour)
           | a local .deb: ./linux-image-....deb (a 7.x linux-binary-*.deb takes its linux-modules
             and linux-base .debs from the same directory, else from apt)
           | a kernel of one's own: IMAGE[:MODDIR] (anything with a /): a bzImage or vmlinux, and the
             directory make modules_install wrote (INSTALL_MOD_PATH, or its lib/modules/RELEASE);
             without MODDIR, virtio_pci, 9pnet_virtio and 9p must be built in
           Packages come from the script's own apt state in $KERNEL_MATRIX_CACHE/apt (bullseye,
           bookworm, trixie, sid, experimental); /etc/apt is neither used nor changed.

Options:
  --timeout SECS     whole run, boot included (default 600); exit 124 when it expires
  --rw DIR           share host DIR writable with the guest, at the same path (repeatable)
  --ro DIR           share host DIR read-only at the same path (for a DIR under /tmp; repeatable)
  --append ARGS      extra kernel command line (e.g. "hugepages=8 transparent_hugepage=madvise")
  --sysctl KEY=VAL   set a sysctl inside the guest before COMMAND (repeatable; never on the host)
  -e, --env VAR=VAL  environment for COMMAND (repeatable)
  --mem MB           guest memory (default 1024; allocated lazily)
  --smp N            guest CPUs (default 2)
  --accel MODE       auto (default: kvm only with kvm_intel/kvm_amd, else tcg) | kvm | tcg
  --modules DIR      the modules of a local IMAGE (the same as IMAGE:DIR)
  --bzimage          boot the compressed bzImage instead of the extracted ELF vmlinux (PVH)
  --no-retry         do not boot again when the guest died in early boot, before COMMAND started
  --log-dir DIR      keep console.log, qemu.log and guest-status (what ttyS2 said) there (default: a temporary directory, shown on failure)
  --no-install       do not apt-get install missing host tools
  --prepare-only     fetch and prepare KERNEL, print its release, run nothing
  -v, --verbose      print the qemu command line and the console log
  -h, --help         this text

A guest that dies in early boot, before COMMAND started (no "kr-init: running the command" on its
console and no status: an Oops or panic during boot, seen once in 23 boots of 7.3-rc under TCG),
is booted once more; the first console is kept as console-boot1.log (with --log-dir) and the retry
is reported on stderr and in LOG_DIR/boots ("2 early-boot death: FIRST WARNING LINE"). A
WARN/Oops once COMMAND has started is never retried.

Exit status: COMMAND's status; 124 timeout; 125 runner failure (bad usage, fetch/prepare failed,
guest setup failed, guest died without reporting: panic, crash). Kernel WARNING/BUG/Oops/panic
lines in the console are printed to stderr and make a 0 status 125.
EOF
}

timeout_s=600 append="" mem=1024 smp=2 accel=auto log_dir="" install=1 prepare_only=0 modules="" retry=1
rw=() ro=() sysctls=() envs=()
KM_VERBOSE=0 KM_BZIMAGE=0
while [ $# -gt 0 ]; do
    case "$1" in
        --timeout) timeout_s=${2:?}; shift 2 ;;
        --rw) rw+=("$(realpath -m "${2:?}")"); shift 2 ;;
        --ro) ro+=("$(realpath -m "${2:?}")"); shift 2 ;;
        --append) append="$append ${2?}"; shift 2 ;;
        --sysctl) sysctls+=("${2:?}"); shift 2 ;;
        -e|--env) envs+=("${2:?}"); shift 2 ;;
        --mem) mem=${2:?}; shift 2 ;;
        --smp) smp=${2:?}; shift 2 ;;
        --accel) accel=${2:?}; shift 2 ;;
        --modules) modules=$(realpath -m "${2:?}"); shift 2 ;;
        --bzimage) KM_BZIMAGE=1; shift ;;
        --no-retry) retry=0; shift ;;
        --log-dir) log_dir=${2:?}; shift 2 ;;
        --no-install) install=0; shift ;;
        --prepare-only) prepare_only=1; shift ;;
        -v|--verbose) KM_VERBOSE=1; shift ;;
        -h|--help) usage; exit 0 ;;
        --) break ;;
        -*) km_log "unknown option $1"; usage >&2; exit $KM_EXIT_RUNNER ;;
        *) [ -n "${kernel:-}" ] && { km_log "two kernels given ($kernel, $1): one per run"; exit $KM_EXIT_RUNNER; }
           kernel=$1; shift ;;
    esac
done
[ -n "${kernel:-}" ] || { km_log "no KERNEL given"; usage >&2; exit $KM_EXIT_RUNNER; }
if [ -n "$modules" ]; then
    [[ "$kernel" == */* ]] || { km_log "--modules goes with a local IMAGE (a path with a /), not '$kernel'"; exit $KM_EXIT_RUNNER; }
    kernel="$kernel:$modules"
fi
[ "${1:-}" = -- ] && shift
[ $# -gt 0 ] || [ "$prepare_only" = 1 ] || { km_log "no COMMAND given after --"; exit $KM_EXIT_RUNNER; }
[[ "$timeout_s" =~ ^[0-9]+$ ]] || { km_log "--timeout takes seconds, not '$timeout_s'"; exit $KM_EXIT_RUNNER; }
for e in "${envs[@]}"; do [[ "$e" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || { km_log "bad -e '$e': use VAR=VALUE"; exit $KM_EXIT_RUNNER; }; done
for s in "${sysctls[@]}"; do [[ "$s" =~ ^[a-z0-9_.]+=.+$ ]] || { km_log "bad --sysctl '$s': use key.name=value"; exit $KM_EXIT_RUNNER; }; done
# Setup failures of the library exit with 2/3; this script reports every runner failure as 125.
trap 'rc=$?; if [ "$KM_DIED" = 1 ]; then exit $KM_EXIT_RUNNER; fi; exit $rc' EXIT

# ---- host: run directly, change nothing ----
if [ "$kernel" = host ]; then
    trap - EXIT
    [ "$prepare_only" = 1 ] && { uname -r; exit 0; }
    if [ ${#rw[@]} -gt 0 ] || [ ${#ro[@]} -gt 0 ] || [ -n "$append" ] || [ ${#sysctls[@]} -gt 0 ]; then
        km_log "host: ignoring --rw/--ro/--append/--sysctl (the host is left as it is)"
    fi
    set +e
    env "${envs[@]}" timeout -k 10 "$timeout_s" "$@"
    exit $?
fi

# ---- a guest kernel ----
[ "$install" = 1 ] && km_host_tools
for t in qemu-system-x86_64 cpio modprobe depmod dpkg-deb; do
    command -v "$t" >/dev/null || km_die $KM_EXIT_SETUP "$t not found: run without --no-install, or apt-get install qemu-system-x86 cpio kmod"
done
km_get "$kernel"
if [ "$prepare_only" = 1 ]; then echo "$KM_RELEASE"; trap - EXIT; exit 0; fi

case "$accel" in
    auto) accel=$(km_accel_for /sys/module /dev/kvm) ;;
    kvm|tcg) ;;
    *) km_die $KM_EXIT_USAGE "--accel takes auto, kvm or tcg" ;;
esac
cwd=$PWD
case "$cwd/" in
    /tmp/*)
        shared=0
        for d in "${rw[@]}" "${ro[@]}"; do case "$cwd/" in "$d"/*) shared=1 ;; esac; done
        if [ "$shared" = 0 ]; then
            km_log "warning: the current directory $cwd is under /tmp, which the guest does not see (share it with --ro); the command starts in /"
            cwd=/
        fi ;;
esac

run=$(mktemp -d /var/tmp/kernel-run.XXXXXX)
[ -n "$log_dir" ] && mkdir -p "$log_dir"
cleanup() {
    local rc=$?
    [ -n "${qemu_pid:-}" ] && kill "$qemu_pid" 2>/dev/null
    if [ -n "$log_dir" ]; then
        cp "$run/console.log" "$log_dir/console.log" 2>/dev/null
        cp "$run/qemu.log" "$log_dir/qemu.log" 2>/dev/null
        cp "$run/status" "$log_dir/guest-status" 2>/dev/null
    fi
    rm -rf "$run"
    [ "$KM_DIED" = 1 ] && rc=$KM_EXIT_RUNNER
    exit $rc
}
trap cleanup EXIT

# The per-run part of the initramfs, appended to the cached base (concatenated cpio archives).
mkdir -p "$run/extra/kr"
{
    echo '#!/bin/bash'
    echo 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb LANG=C.UTF-8'
    echo 'export DOTNET_CLI_HOME=/tmp/dotnet-cli-home DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1'
    for e in "${envs[@]}"; do printf 'export %q\n' "$e"; done
    printf 'cd %q || exit 125\n' "$cwd"
    printf 'exec'; printf ' %q' "$@"; echo
} >"$run/extra/kr/run.sh"
: >"$run/extra/kr/shares"
fsargs=()
# add_shares KIND OPTIONS DIR...: each DIR as the 9p share KIND0, KIND1, ... (KIND rw or ro; OPTIONS: more -fsdev options).
add_shares() {
    local kind=$1 options=$2 i=0 d
    shift 2
    for d in "$@"; do
        [ -d "$d" ] || km_die $KM_EXIT_USAGE "--$kind $d: no such directory"
        fsargs+=(-fsdev "local,id=$kind$i,path=$d,security_model=none$options" -device "virtio-9p-pci,fsdev=$kind$i,mount_tag=$kind$i")
        echo "$kind$i $kind $d" >>"$run/extra/kr/shares"; i=$((i + 1))
    done
}
add_shares rw "" "${rw[@]}"
add_shares ro ",readonly=on,multidevs=remap" "${ro[@]}"
: >"$run/extra/kr/sysctl"
for s in "${sysctls[@]}"; do echo "${s%%=*} ${s#*=}" >>"$run/extra/kr/sysctl"; done
(cd "$run/extra" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet >"$run/extra.cpio")
cat "$KM_BASE_CPIO" "$run/extra.cpio" >"$run/initramfs.cpio"

if [ "$accel" = kvm ]; then
    accel_args=(-accel kvm -cpu host,-arch-capabilities)
else
    # .NET needs x86-64-v2 (SSE4.2, POPCNT): qemu64 lacks it, -cpu max has it.
    accel_args=(-accel tcg -cpu max)
fi
: >"$run/status"
qemu=(qemu-system-x86_64 -nodefaults -no-user-config -display none -no-reboot
      -machine q35 -m "$mem" -smp "$smp" "${accel_args[@]}"
      -kernel "$KM_VMLINUX" -initrd "$run/initramfs.cpio"
      -append "console=ttyS0 loglevel=5 panic=-1 rdinit=/init${append}"
      -chardev "file,id=con,path=$run/console.log" -serial chardev:con
      -chardev "file,id=out,path=$run/output" -serial chardev:out
      -chardev "file,id=st,path=$run/status" -serial chardev:st
      -fsdev "local,id=fs0,path=/,security_model=none,readonly=on,multidevs=remap"
      -device virtio-9p-pci,fsdev=fs0,mount_tag=hostroot
      "${fsargs[@]}")
km_vlog "$(printf '%q ' "${qemu[@]}")"
km_vlog "$KM_RELEASE, $accel, timeout ${timeout_s}s"

start=$(date +%s%N)
boot=1
while :; do
    : >"$run/output"; : >"$run/status"; : >"$run/console.log"
    left=$(( timeout_s - ($(date +%s%N) - start) / 1000000000 ))
    timeout -k 10 "$left" "${qemu[@]}" </dev/null >"$run/qemu.log" 2>&1 &
    qemu_pid=$!
    # Stream the command's output (ttyS1 is a file) while qemu runs; tail reads the rest and stops
    # once qemu (and so timeout) has exited.
    tail -n +1 -s 0.2 -f --pid="$qemu_pid" "$run/output" || true
    set +e
    wait "$qemu_pid"
    qrc=$?
    set -e
    qemu_pid=""
    # One more boot when the guest died before the command started (never after a timeout).
    if [ "$retry" = 1 ] && [ "$boot" = 1 ] && [ "$qrc" != 124 ] && [ "$qrc" != 137 ] \
        && [ $(( timeout_s - ($(date +%s%N) - start) / 1000000000 )) -gt 10 ] \
        && km_early_boot_death "$run/console.log" "$(tr -d '\r\0' <"$run/status" | head -n1)"; then
        cause=$(km_kernel_warnings "$run/console.log" | head -n1 || true)
        [ -n "$cause" ] || cause="no status and no warning line (qemu exit $qrc)"
        km_log "guest $KM_RELEASE died in early boot before the command started ($cause); booting it once more"
        if [ -n "$log_dir" ]; then
            cp "$run/console.log" "$log_dir/console-boot1.log" 2>/dev/null || true
            printf '2 early-boot death: %s\n' "$cause" >"$log_dir/boots.tmp" && mv "$log_dir/boots.tmp" "$log_dir/boots"
        fi
        boot=2
        continue
    fi
    break
done
if [ -n "$log_dir" ] && [ "$boot" = 1 ]; then echo 1 >"$log_dir/boots.tmp" && mv "$log_dir/boots.tmp" "$log_dir/boots"; fi
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
elapsed="$((elapsed / 1000)).$(printf '%03d' $((elapsed % 1000)))"

status=$(tr -d '\r\0' <"$run/status" | head -n1)
warnings=$(km_kernel_warnings "$run/console.log" || true)
show_console() {
    km_log "console of $KM_RELEASE (last 40 lines${log_dir:+; full log in $log_dir/console.log}):"
    tail -n 40 "$run/console.log" | tr -d '\r' | sed 's/^/    /' >&2
    [ -s "$run/qemu.log" ] && { km_log "qemu said:"; sed 's/^/    /' "$run/qemu.log" >&2; }
    return 0
}
[ "$KM_VERBOSE" = 1 ] && show_console

if [ $qrc = 124 ] || [ $qrc = 137 ]; then
    km_log "timeout: $KM_RELEASE did not finish within ${timeout_s}s (raise --timeout, or look at the console)"
    show_console; exit $KM_EXIT_TIMEOUT
fi
if [ -n "$warnings" ]; then
    km_log "kernel $KM_RELEASE complained (WARN/BUG/Oops/panic) — a failure:"
    echo "$warnings" | sed 's/^/    /' >&2
fi
case "$status" in
    ''|*[!0-9]*)
        if [ -z "$status" ]; then
            if [ "$boot" = 2 ]; then
                km_log "guest $KM_RELEASE died before reporting a status on both boots (qemu exit $qrc): a panic or crash in boot, not a one-off; the consoles are console-boot1.log and console.log${log_dir:+ in $log_dir}"
            else
                km_log "guest $KM_RELEASE ended without reporting a status (qemu exit $qrc): panic or crash?"
            fi
        else
            km_log "guest $KM_RELEASE: $status"
        fi
        show_console; exit $KM_EXIT_RUNNER ;;
esac
km_vlog "$KM_RELEASE: status $status after ${elapsed}s"
if [ -n "$warnings" ] && [ "$status" = 0 ]; then exit $KM_EXIT_RUNNER; fi
exit "$status"
