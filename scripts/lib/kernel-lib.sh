# shellcheck shell=bash
# Shared functions of scripts/kernel-run.sh and scripts/kernel-matrix.sh.
#
# Sourced, never run. Every function either succeeds or calls km_die with a message that names the
# cause and the fix. The "pure" functions at the top (no side effects, input on stdin or in
# arguments) are what tests/UffdNative.Harness.Tests/Matrix/ exercises.
#
# Nothing here touches the host's /boot, /lib/modules, sysctls or /dev: kernels are unpacked with
# dpkg-deb -x into the cache, never installed.

KM_CACHE="${KERNEL_MATRIX_CACHE:-/var/cache/kernel-matrix}"
KM_ARCH_FLAVOUR="amd64"
# Exit codes shared by the two scripts (documented in docs/matrix.md).
KM_EXIT_USAGE=2
KM_EXIT_SETUP=3
KM_EXIT_TIMEOUT=124
KM_EXIT_RUNNER=125

# With KM_T0 (seconds since the epoch) set, each line shows the time since then.
km_log() {
    if [ -n "${KM_T0:-}" ]; then
        printf '%s [+%ss]: %s\n' "${KM_PROG:-kernel}" "$(( $(date +%s) - KM_T0 ))" "$*" >&2
    else
        printf '%s: %s\n' "${KM_PROG:-kernel}" "$*" >&2
    fi
}
km_vlog() { [ "${KM_VERBOSE:-0}" = 1 ] && km_log "$@"; return 0; }
# km_die CODE MESSAGE...
km_die() { local code=$1; shift; KM_DIED=1; printf '%s: error: %s\n' "${KM_PROG:-kernel}" "$*" >&2; exit "$code"; }
KM_DIED=0

# ---------------------------------------------------------------------------------------------
# Pure functions
# ---------------------------------------------------------------------------------------------

# km_kernel_spec SPEC -> prints "alias REGEX" or "package NAME" or "host".
# Aliases pick the newest package of a series known to apt; anything else names one package.
#   6.1 | 6.1-rt | 6.12 | 6.12-rt | host    (-cloud parses, but cloud kernels lack 9p: km_prepare says so)
#   6.1.0-55-amd64 | 6.12.115+deb12-amd64 | 6.1.0-55 (flavour amd64 added) | linux-image-...
km_kernel_spec() {
    local s=$1 flavour series
    case "$s" in
        host) echo host; return 0 ;;
        "") return 1 ;;
    esac
    if [[ "$s" =~ ^(6\.1|6\.12)(-(cloud|rt))?$ ]]; then
        series=${BASH_REMATCH[1]}
        flavour=${BASH_REMATCH[3]:+${BASH_REMATCH[3]}-}$KM_ARCH_FLAVOUR
        if [ "$series" = 6.1 ]; then
            echo "alias ^linux-image-6\\.1\\.0-[0-9]+-${flavour}\$"
        else
            echo "alias ^linux-image-6\\.12\\.[0-9]+\\+deb[0-9]+-${flavour}\$"
        fi
        return 0
    fi
    if [[ "$s" =~ ^linux-image-[0-9][0-9A-Za-z.+~-]*$ ]]; then
        echo "package $s"; return 0
    fi
    if [[ "$s" =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9]+|\+deb[0-9]+)$ ]]; then
        echo "package linux-image-$s-$KM_ARCH_FLAVOUR"; return 0
    fi
    if [[ "$s" =~ ^[0-9]+\.[0-9]+[0-9A-Za-z.+~-]*-(cloud-|rt-)?amd64$ ]]; then
        echo "package linux-image-$s"; return 0
    fi
    return 1
}

# km_newest_package REGEX < "name - description" lines (apt-cache search output) -> newest name.
km_newest_package() {
    local re=$1
    awk '{print $1}' | grep -E -- "$re" | sort -V | tail -n 1
}

# km_release_of_package NAME -> the kernel release (uname -r) the package installs.
km_release_of_package() { echo "${1#linux-image-}"; }

# km_parse_show_depends < `modprobe --show-depends` output -> module files to insmod, in order,
# each once. "builtin X" lines are skipped (nothing to load).
km_parse_show_depends() {
    awk '$1 == "insmod" && !seen[$2]++ { print $2 }'
}

# km_kernel_warnings FILE -> the console lines that mean the kernel complained (WARN, BUG, Oops,
# panic, lockups, RCU stalls, sanitizers). Exit 0 if any were found, 1 if none.
km_kernel_warnings() {
    local found
    found=$(tr -d '\r' <"$1" | grep -a -E -e 'WARNING: (CPU: |at )' -e '(^|[] ])BUG: ' -e 'kernel BUG at' -e 'Oops' \
        -e 'Kernel panic' -e 'general protection fault' -e '(UBSAN|KASAN|KFENCE|KCSAN): ' \
        -e 'cut here \]' -e 'INFO: task .* blocked for more than' -e 'rcu: INFO: ' \
        -e 'watchdog: BUG: soft lockup' -e 'refcount_t: ' -e 'Unable to handle kernel') || true
    [ -n "$found" ] || return 1
    printf '%s\n' "$found"
}

# km_accel_for SYSFS_MODULE_DIR DEV_KVM -> "kvm" when hardware KVM (kvm_intel or kvm_amd) is
# loaded and DEV_KVM is usable, else "tcg". PVM's kvm_pvm cannot run stock kernels.
km_accel_for() {
    local mod=${1:-/sys/module} dev=${2:-/dev/kvm}
    if [ -c "$dev" ] && { [ -d "$mod/kvm_intel" ] || [ -d "$mod/kvm_amd" ]; } && [ ! -d "$mod/kvm_pvm" ]; then
        echo kvm
    else
        echo tcg
    fi
}

# km_parse_step SPEC -> "NAME<TAB>UID<TAB>COMMAND". SPEC is NAME[@UID]=COMMAND; NAME is a file name
# ([A-Za-z0-9._-]+), UID a number or "nobody" (65534); root when absent.
km_parse_step() {
    local spec=$1 head cmd name uid
    case "$spec" in *=*) ;; *) return 1 ;; esac
    head=${spec%%=*}; cmd=${spec#*=}
    name=${head%%@*}; uid=root
    [ "$head" != "$name" ] && uid=${head#*@}
    [ "$uid" = nobody ] && uid=65534
    [[ "$name" =~ ^[A-Za-z0-9._-]+$ ]] || return 1
    [[ "$uid" =~ ^(root|[0-9]+)$ ]] || return 1
    [ -n "$cmd" ] || return 1
    printf '%s\t%s\t%s\n' "$name" "$uid" "$cmd"
}

# ---------------------------------------------------------------------------------------------
# Host packages
# ---------------------------------------------------------------------------------------------

# km_install PACKAGE... -> installs the missing ones with apt-get (--no-install-recommends).
km_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || km_die $KM_EXIT_SETUP "missing packages ${missing[*]} and not root: install them (apt-get install --no-install-recommends ${missing[*]}) or run as root"
    km_log "installing ${missing[*]} (apt-get)"
    if ! DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q --no-install-recommends "${missing[@]}" >"$KM_CACHE/apt-install.log" 2>&1; then
        km_log "apt-get install failed; retrying after apt-get update"
        km_apt_update
        DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q --no-install-recommends "${missing[@]}" >"$KM_CACHE/apt-install.log" 2>&1 \
            || { tail -n 20 "$KM_CACHE/apt-install.log" >&2; km_die $KM_EXIT_SETUP "apt-get install ${missing[*]} failed (log: $KM_CACHE/apt-install.log): is the Debian mirror reachable?"; }
    fi
}

KM_APT_UPDATED=0
km_apt_update() {
    [ "$KM_APT_UPDATED" = 1 ] && return 0
    KM_APT_UPDATED=1
    km_log "apt-get update"
    timeout 300 apt-get update -q >"$KM_CACHE/apt-update.log" 2>&1 \
        || km_log "apt-get update failed (log: $KM_CACHE/apt-update.log); using the package lists as they are"
}

km_host_tools() {
    mkdir -p "$KM_CACHE" || km_die $KM_EXIT_SETUP "cannot create the cache $KM_CACHE (set KERNEL_MATRIX_CACHE to a writable directory)"
    km_install qemu-system-x86 busybox-static cpio kmod xz-utils zstd lz4
    [ -x /bin/busybox ] && /bin/busybox sh -c true \
        || km_die $KM_EXIT_SETUP "/bin/busybox is missing: apt-get install busybox-static"
    if ldd /bin/busybox >/dev/null 2>&1; then
        km_die $KM_EXIT_SETUP "/bin/busybox is dynamically linked: apt-get install busybox-static (it replaces busybox)"
    fi
}

# ---------------------------------------------------------------------------------------------
# Kernels: resolve, fetch, unpack, prepare
# ---------------------------------------------------------------------------------------------

# km_resolve SPEC -> sets KM_PKG and KM_RELEASE.
km_resolve() {
    local spec=$1 kind arg names cached
    read -r kind arg < <(km_kernel_spec "$spec") \
        || km_die $KM_EXIT_USAGE "unknown kernel '$spec': use host, 6.1, 6.12, 6.1-rt, 6.12-rt, or an exact version such as 6.1.0-55-amd64 or 6.12.115+deb12-amd64"
    case "$kind" in
        host) KM_PKG=""; KM_RELEASE=$(uname -r); return 0 ;;
        package) KM_PKG=$arg ;;
        alias)
            names=$(apt-cache search --names-only "$arg" 2>/dev/null | km_newest_package "$arg")
            if [ -z "$names" ]; then
                km_apt_update
                names=$(apt-cache search --names-only "$arg" 2>/dev/null | km_newest_package "$arg")
            fi
            if [ -z "$names" ]; then
                # Offline: fall back on the newest kernel of the series already in the cache.
                cached=$(ls "$KM_CACHE/debs" 2>/dev/null | sed -n 's/_.*//p' | sort -u | km_newest_package "$arg")
                [ -n "$cached" ] || km_die $KM_EXIT_SETUP "apt knows no package matching $arg and the cache has none: check the apt sources (bookworm/main) and the network, then apt-get update"
                km_log "apt knows no package for '$spec'; using $cached from the cache"
                names=$cached
            fi
            KM_PKG=$names ;;
    esac
    KM_RELEASE=$(km_release_of_package "$KM_PKG")
}

# km_fetch -> KM_DEB (the .deb of KM_PKG in the cache, downloaded if needed).
km_fetch() {
    local debs="$KM_CACHE/debs" tmp
    mkdir -p "$debs"
    KM_DEB=$(ls -1 "$debs/${KM_PKG}_"*.deb 2>/dev/null | sort -V | tail -n1 || true)
    [ -n "$KM_DEB" ] && return 0
    tmp=$(mktemp -d "$debs/.download.XXXXXX")
    km_log "downloading $KM_PKG (apt-get download)"
    if ! (cd "$tmp" && timeout 600 apt-get download -q "$KM_PKG" >"$tmp/log" 2>&1); then
        # Stale package lists name files the mirror no longer has: update and, for an alias,
        # resolve again (a newer kernel may have replaced the one the old lists named).
        km_apt_update
        [ -n "${KM_SPEC:-}" ] && km_resolve "$KM_SPEC"
        km_log "retrying: apt-get download $KM_PKG"
        (cd "$tmp" && timeout 600 apt-get download -q "$KM_PKG" >"$tmp/log" 2>&1) || {
            grep -v 'unsandboxed' "$tmp/log" | tail -n 5 >&2
            rm -rf "$tmp"
            km_die $KM_EXIT_SETUP "apt-get download $KM_PKG failed: is the package name right (apt-cache search --names-only '^linux-image-6') and the Debian mirror reachable?"
        }
    fi
    mv "$tmp"/*.deb "$debs/" && rm -rf "$tmp"
    KM_DEB=$(ls -1 "$debs/${KM_PKG}_"*.deb | sort -V | tail -n1)
    KM_RELEASE=$(km_release_of_package "$KM_PKG")
}

# km_unpack -> KM_TREE: the package unpacked with dpkg-deb -x, with modules.dep from depmod -b.
km_unpack() {
    KM_TREE="$KM_CACHE/kernels/$KM_RELEASE"
    [ -f "$KM_TREE/.complete" ] && return 0
    rm -rf "$KM_TREE" "$KM_TREE.tmp"
    mkdir -p "$KM_TREE.tmp"
    km_log "unpacking $(basename "$KM_DEB")"
    dpkg-deb -x "$KM_DEB" "$KM_TREE.tmp" || km_die $KM_EXIT_SETUP "dpkg-deb -x $KM_DEB failed: corrupt download? delete it and retry"
    if [ ! -d "$KM_TREE.tmp/lib/modules/$KM_RELEASE" ] && [ -d "$KM_TREE.tmp/usr/lib/modules/$KM_RELEASE" ]; then
        mkdir -p "$KM_TREE.tmp/lib/modules" && ln -s "../../usr/lib/modules/$KM_RELEASE" "$KM_TREE.tmp/lib/modules/$KM_RELEASE"
    fi
    [ -f "$KM_TREE.tmp/boot/vmlinuz-$KM_RELEASE" ] || km_die $KM_EXIT_SETUP "$KM_DEB has no boot/vmlinuz-$KM_RELEASE: not a kernel image package?"
    depmod -b "$KM_TREE.tmp" "$KM_RELEASE" || km_die $KM_EXIT_SETUP "depmod -b $KM_TREE.tmp $KM_RELEASE failed (kmod installed?)"
    touch "$KM_TREE.tmp/.complete"
    mv "$KM_TREE.tmp" "$KM_TREE"
}

# km_extract_vmlinux IMAGE OUT -> an uncompressed ELF vmlinux (like the kernel's extract-vmlinux),
# which qemu boots through PVH: no real-mode setup, no in-guest decompression. Returns 1 if none.
km_extract_vmlinux() {
    local img=$1 out=$2 magic tool off
    for pair in '\x28\xb5\x2f\xfd:zstd -dcq' '\xfd\x37\x7a\x58\x5a\x00:xz -dcq' '\x1f\x8b\x08:gzip -dcq' \
                '\x02\x21\x4c\x18:lz4 -dcq' '\x42\x5a\x68:bzip2 -dcq' '\x5d\x00\x00\x00:xz -dcq --format=lzma'; do
        magic=${pair%%:*}; tool=${pair#*:}
        for off in $(LC_ALL=C grep -aobUP "$magic" "$img" 2>/dev/null | cut -d: -f1 | head -n 5); do
            tail -c +$((off + 1)) "$img" | $tool >"$out.tmp" 2>/dev/null
            if [ "$(head -c 4 "$out.tmp" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then
                mv "$out.tmp" "$out"; return 0
            fi
        done
    done
    rm -f "$out.tmp"
    return 1
}

# km_prepare -> KM_VMLINUX (ELF, or the bzImage with --bzimage / when no ELF can be extracted)
# and KM_BASE_CPIO: busybox, /init and the modules needed for 9p, in load order.
km_prepare() {
    local boot="$KM_CACHE/boot" base="$KM_CACHE/initramfs/$KM_RELEASE" m f dst
    mkdir -p "$boot" "$KM_CACHE/initramfs"
    KM_VMLINUX="$boot/vmlinux-$KM_RELEASE"
    if [ "${KM_BZIMAGE:-0}" = 1 ]; then
        KM_VMLINUX="$KM_TREE/boot/vmlinuz-$KM_RELEASE"
    elif [ ! -s "$KM_VMLINUX" ]; then
        km_extract_vmlinux "$KM_TREE/boot/vmlinuz-$KM_RELEASE" "$KM_VMLINUX" || {
            km_log "no ELF vmlinux found inside vmlinuz-$KM_RELEASE; booting the bzImage (slower)"
            KM_VMLINUX="$KM_TREE/boot/vmlinuz-$KM_RELEASE"
        }
    fi
    KM_BASE_CPIO="$base.cpio"
    if [ -s "$KM_BASE_CPIO" ] && [ "$KM_BASE_CPIO" -nt "$KM_LIB_DIR/guest-init.sh" ]; then return 0; fi
    rm -rf "$base.d" && mkdir -p "$base.d"/{bin,sbin,dev,proc,sys,newroot,kr,lib/modules,usr/bin,usr/sbin,run,tmp}
    cp /bin/busybox "$base.d/bin/busybox"
    cp "$KM_LIB_DIR/guest-init.sh" "$base.d/init" && chmod 755 "$base.d/init"
    # 9pnet_virtio is not a dependency of 9p (it is a transport, found through an alias): name it.
    modprobe -a -d "$KM_TREE" -S "$KM_RELEASE" --show-depends virtio_pci 9pnet_virtio 9p >"$base.d/kr/show-depends" 2>"$base.d/kr/show-depends.err" \
        || km_die $KM_EXIT_SETUP "modprobe --show-depends 9p failed for $KM_RELEASE ($(head -n1 "$base.d/kr/show-depends.err")): a kernel without 9p (a -cloud flavour?) is not supported"
    : >"$base.d/kr/modules.list"
    while read -r f; do
        m=$(basename "$f"); dst="$base.d/lib/modules/${m%.xz}"; dst=${dst%.zst}; dst=${dst%.gz}
        case "$f" in
            *.ko.xz) xz -dc "$KM_TREE$f" >"$dst" ;;
            *.ko.zst) zstd -dcq "$KM_TREE$f" >"$dst" ;;
            *.ko.gz) gzip -dc "$KM_TREE$f" >"$dst" ;;
            *) cp "$KM_TREE$f" "$dst" ;;
        esac || km_die $KM_EXIT_SETUP "cannot decompress module $f"
        basename "$dst" >>"$base.d/kr/modules.list"
    done < <(sed "s#$KM_TREE##" "$base.d/kr/show-depends" | km_parse_show_depends)
    (cd "$base.d" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet >"$KM_BASE_CPIO.tmp") \
        || km_die $KM_EXIT_SETUP "cpio failed building $KM_BASE_CPIO"
    mv "$KM_BASE_CPIO.tmp" "$KM_BASE_CPIO"
}

# km_get SPEC -> resolve, fetch, unpack, prepare, under a lock on the cache (bounded wait).
km_get() {
    KM_SPEC=$1
    km_resolve "$1"
    [ -z "$KM_PKG" ] && return 0
    mkdir -p "$KM_CACHE"
    exec {KM_LOCK_FD}>"$KM_CACHE/.lock"
    flock -w 900 "$KM_LOCK_FD" || km_die $KM_EXIT_SETUP "another kernel-matrix run held $KM_CACHE/.lock for 15 minutes"
    km_fetch
    km_unpack
    km_prepare
    flock -u "$KM_LOCK_FD"
    exec {KM_LOCK_FD}>&-
}
