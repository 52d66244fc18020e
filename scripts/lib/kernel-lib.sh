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

# km_kernel_spec SPEC -> one line, fields separated by a tab: KIND and its arguments.
#   host                               "host"
#   an alias: the newest of a series   "alias<TAB>REGEX" (matched against package names apt knows)
#     5.10 (bullseye)  6.1 (bookworm)  6.12 = 6.12-bookworm  6.12-trixie  7.2 (sid)  7.3 (experimental,
#     an -rc while it is one) and any X.Y from 7 on; each with -cloud or -rt for that flavour
#     (cloud kernels lack 9p: km_prepare says so). From 7.x Debian's linux-image-RELEASE is an empty
#     metapackage: the kernel is linux-binary-RELEASE, so those aliases match linux-binary-* names.
#   a kernel release (uname -r)        "release<TAB>RELEASE"
#     5.10.0-46-amd64, 6.1.0-55-amd64, 6.12.115+deb12-amd64, 7.3-amd64; the flavour amd64 is added
#     when missing from 5.10.0-46, 6.1.0-55, 6.12.118+deb13, 7.2.13+deb14
#   a package name                     "package<TAB>NAME"        linux-image-..., linux-binary-...
#   a Debian package version           "version<TAB>VERSION"     5.10.262-1, 6.12.117-1~deb12u1, 7.3~rc7-1~exp1
#   a local .deb                       "deb<TAB>PATH"            anything ending in .deb
#   a kernel image of one's own        "image<TAB>PATH<TAB>MODDIR"   a bzImage or ELF vmlinux, optionally
#     IMAGE:MODDIR with its modules (lib/modules/RELEASE, or a root holding it); anything with a /.
km_kernel_spec() {
    local s=$1 series flavour tail img mods
    case "$s" in
        host) echo host; return 0 ;;
        ""|*[[:space:]]*|*[\;\&\|\$\`\<\>\"\'\\]*) return 1 ;;
    esac
    if [[ "$s" == *.deb ]]; then
        printf 'deb\t%s\n' "$s"; return 0
    fi
    if [[ "$s" == */* ]]; then
        img=${s%%:*}; mods=""
        [ "$img" != "$s" ] && mods=${s#*:}
        [ -n "$img" ] || return 1
        printf 'image\t%s\t%s\n' "$img" "$mods"; return 0
    fi
    if [[ "$s" =~ ^(5\.10|6\.1|6\.12|6\.12-bookworm|6\.12-trixie|[7-9]\.[0-9]+|[1-9][0-9]\.[0-9]+)(-(cloud|rt))?$ ]]; then
        series=${BASH_REMATCH[1]}
        flavour=${BASH_REMATCH[3]:+${BASH_REMATCH[3]}-}$KM_ARCH_FLAVOUR
        case "$series" in
            5.10) printf 'alias\t^linux-image-5\\.10\\.0-[0-9]+-%s$\n' "$flavour" ;;
            6.1) printf 'alias\t^linux-image-6\\.1\\.0-[0-9]+-%s$\n' "$flavour" ;;
            6.12|6.12-bookworm) printf 'alias\t^linux-image-6\\.12\\.[0-9]+\\+deb12-%s$\n' "$flavour" ;;
            6.12-trixie) printf 'alias\t^linux-image-6\\.12\\.[0-9]+\\+deb13(\\.[0-9]+)?-%s$\n' "$flavour" ;;
            *) printf 'alias\t^linux-binary-%s(\\.[0-9]+\\+deb[0-9]+(\\.[0-9]+)?)?-%s$\n' "${series//./\\.}" "$flavour" ;;
        esac
        return 0
    fi
    if [[ "$s" =~ ^linux-(image|binary)-[0-9][0-9A-Za-z.+~-]*$ ]] && [[ "$s" != *..* ]]; then
        printf 'package\t%s\n' "$s"; return 0
    fi
    # Releases: X.Y.0-N (5.10, 6.1 ABI names), X.Y.Z+debN[.M] (6.12 on), X.Y-FLAVOUR (an -rc), ...-amd64.
    if [[ "$s" =~ ^[0-9]+\.[0-9]+[0-9A-Za-z.+~-]*-(cloud-|rt-)?amd64$ ]]; then
        printf 'release\t%s\n' "$s"; return 0
    fi
    if [[ "$s" =~ ^[0-9]+\.[0-9]+\.0-[0-9]+$ ]] || [[ "$s" =~ ^[0-9]+\.[0-9]+\.[0-9]+\+deb[0-9]+(\.[0-9]+)?$ ]]; then
        printf 'release\t%s-%s\n' "$s" "$KM_ARCH_FLAVOUR"; return 0
    fi
    # A Debian package version: upstream part without "+debN" (that is a release), then -REVISION.
    if [[ "$s" =~ ^[0-9]+\.[0-9]+(\.[0-9]+)?(~rc[0-9]+)?-[0-9]+([~+.][0-9A-Za-z.~+]*)?$ ]]; then
        tail=${s%%-*}
        [[ "$tail" == *+* ]] && return 1
        printf 'version\t%s\n' "$s"; return 0
    fi
    return 1
}

# km_newest_package REGEX < "name - description" lines (apt-cache search output) -> newest name.
km_newest_package() {
    local re=$1
    awk '{print $1}' | grep -E -- "$re" | sort -V | tail -n 1
}

# km_release_of_package NAME -> the kernel release (uname -r) the package installs.
km_release_of_package() {
    local r=${1#linux-image-}
    r=${r#linux-binary-}; r=${r#linux-modules-}; r=${r#linux-base-}
    echo "$r"
}

# km_release_packages LAYOUT RELEASE -> the packages that make up one kernel. LAYOUT "image": one
# linux-image-RELEASE with everything (up to 6.x); "binary": from 7.x, where linux-image-RELEASE is
# an empty metapackage, linux-binary (vmlinuz), linux-modules and linux-base (modules.builtin,
# modules.order, config) under /usr/lib/modules/RELEASE/.
km_release_packages() {
    case "$1" in
        binary) echo "linux-binary-$2 linux-modules-$2 linux-base-$2" ;;
        *) echo "linux-image-$2" ;;
    esac
}

# km_deb_release < `dpkg-deb -c` listing -> the release whose vmlinuz the package ships
# (./boot/vmlinuz-RELEASE or ./usr/lib/modules/RELEASE/vmlinuz), else that of its modules
# directory; exit 1 if neither.
km_deb_release() {
    awk '{ f = $NF }
         found { next }
         match(f, /^\.?\/boot\/vmlinuz-/) { rel = substr(f, RLENGTH + 1); found = 1; next }
         match(f, /^\.?\/(usr\/)?lib\/modules\/[^\/]+\/vmlinuz$/) { n = split(f, a, "/"); rel = a[n - 1]; found = 1; next }
         match(f, /^\.?\/(usr\/)?lib\/modules\/[^\/]+\/./) && mod == "" { n = split(f, a, "/"); mod = a[(f ~ /usr\/lib/) ? 5 : 4] }
         END { if (!found && mod != "") { rel = mod; found = 1 } if (found) print rel; exit !found }'
}

# km_version_package VERSION FLAVOUR < `apt-cache show` records -> the package of that Debian version
# that holds the kernel image of that flavour: linux-binary-* (7.x) before linux-image-*; empty
# metapackages (Installed-Size below 5 MB: linux-image-6.12-amd64, linux-image-7.x) skipped.
km_version_package() {
    awk -v want="$1" -v fl="$2" '
        /^Package: / { p = $2 } /^Version: / { v = $2 } /^Installed-Size: / { sz = $2 }
        /^$/ { consider() }
        END { consider(); if (best != "") print best; else exit 1 }
        function flavour_of(name) {
            if (name ~ /-cloud-amd64$/) return "cloud-amd64"
            if (name ~ /-rt-amd64$/) return "rt-amd64"
            if (name ~ /-amd64$/) return "amd64"
            return ""
        }
        function consider() {
            if (p != "" && v == want && sz + 0 >= 5000 && p ~ /^linux-(image|binary)-[0-9]/ && flavour_of(p) == fl)
                if (best == "" || (p ~ /^linux-binary-/ && best !~ /^linux-binary-/)) best = p
            p = ""; v = ""; sz = 0
        }'
}

# km_bzimage_release FILE -> the release (first word of the version string) of a bzImage (setup
# header "HdrS" at 0x202, kernel_version pointer at 0x20e, +0x200) or of an ELF vmlinux ("Linux
# version RELEASE"); exit 1 if FILE is neither.
km_bzimage_release() {
    local f=$1 ptr magic
    [ -f "$f" ] || return 1
    magic=$(od -An -c -j 514 -N 4 "$f" 2>/dev/null | tr -d ' \n')
    if [ "$magic" = HdrS ]; then
        ptr=$(od -An -tu2 -j 526 -N 2 "$f" | tr -d ' \n')
        [ -n "$ptr" ] && [ "$ptr" -gt 0 ] || return 1
        dd if="$f" bs=1 skip=$((ptr + 512)) count=200 2>/dev/null | tr '\0' '\n' | head -n1 | awk 'NF { print $1; ok = 1 } END { exit !ok }'
        return
    fi
    if [ "$(head -c 4 "$f" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then
        LC_ALL=C grep -a -o -m1 'Linux version [^ ]*' "$f" | head -n1 | awk '{ print $3; ok = 1 } END { exit !ok }'
        return
    fi
    return 1
}

# km_apt_sources KEYRING MIRROR SECURITY_MIRROR -> the sources.list of the script's own apt state:
# bullseye (5.10), bookworm (6.1, 6.12), trixie (6.12), sid (7.2), experimental (7.3-rc), each with
# its security suite where there is one, main only, signed by the Debian archive keyring.
km_apt_sources() {
    local key=$1 mirror=$2 sec=$3 suite
    echo "# Written by scripts/lib/kernel-lib.sh (kernel-matrix's own apt state; /etc/apt is not used)."
    for suite in bullseye bookworm trixie; do
        echo "deb [signed-by=$key] $mirror $suite main"
        echo "deb [signed-by=$key] $sec $suite-security main"
    done
    echo "deb [signed-by=$key] $mirror sid main"
    echo "deb [signed-by=$key] $mirror experimental main"
}

# km_early_boot_death CONSOLE STATUS -> exit 0 when a guest died before its command started: no
# status on ttyS2 and no "kr-init: running the command" on the console (an Oops or panic in early
# boot, seen once in 23 boots of 7.3-rc under TCG). Such a boot is worth one retry; a death after
# the command started, or a failed setup step ("setup: ..."), is not.
km_early_boot_death() {
    local console=$1 status=$2
    [ -z "$status" ] || return 1
    ! tr -d '\r' <"$console" 2>/dev/null | grep -a -q -e '^kr-init: running the command' -e '^kr-init: setup failed'
}

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
        timeout 300 apt-get update -q >"$KM_CACHE/apt-update.log" 2>&1 \
            || km_log "apt-get update failed (log: $KM_CACHE/apt-update.log); retrying with the lists as they are"
        DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q --no-install-recommends "${missing[@]}" >"$KM_CACHE/apt-install.log" 2>&1 \
            || { tail -n 20 "$KM_CACHE/apt-install.log" >&2; km_die $KM_EXIT_SETUP "apt-get install ${missing[*]} failed (log: $KM_CACHE/apt-install.log): is the Debian mirror reachable?"; }
    fi
}

# ---------------------------------------------------------------------------------------------
# The script's own apt state (kernel packages only; host tools come from the host's apt)
# ---------------------------------------------------------------------------------------------
# Everything lives under $KM_CACHE/apt: its own sources.list (bullseye, bookworm, trixie, sid,
# experimental), package lists, cache and an empty dpkg status. Nothing under /etc/apt is read for
# sources or changed; the host's apt.conf.d still applies (proxies, index compression).
KM_APT_DIR="$KM_CACHE/apt"
KM_APT_KEYRING="${KERNEL_MATRIX_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}"
KM_APT_MIRROR="${KERNEL_MATRIX_MIRROR:-http://deb.debian.org/debian}"
KM_APT_SECURITY_MIRROR="${KERNEL_MATRIX_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
KM_APT_MAX_AGE=${KERNEL_MATRIX_APT_MAX_AGE:-86400}
KM_APT_OPTS=(
    -o "Dir::Etc::sourcelist=$KM_APT_DIR/sources.list" -o Dir::Etc::sourceparts=-
    -o "Dir::Etc::preferences=$KM_APT_DIR/preferences" -o "Dir::Etc::preferencesparts=$KM_APT_DIR/preferences.d"
    -o "Dir::State::Lists=$KM_APT_DIR/lists" -o "Dir::State::status=$KM_APT_DIR/status"
    -o "Dir::Cache=$KM_APT_DIR/cache" -o "Dir::Cache::archives=$KM_APT_DIR/cache/archives"
    -o Dir::Cache::pkgcache=pkgcache.bin
    -o APT::Architecture=amd64 -o APT::Architectures=amd64 -o Acquire::Languages=none
    -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false -o Acquire::PDiffs=false
)
km_apt_get() { apt-get "${KM_APT_OPTS[@]}" "$@"; }
km_apt_cache() { apt-cache "${KM_APT_OPTS[@]}" "$@"; }

# km_apt_init -> the state's directories and sources.list (rewritten atomically when it changed).
km_apt_init() {
    mkdir -p "$KM_APT_DIR/lists/partial" "$KM_APT_DIR/cache/archives/partial" "$KM_APT_DIR/preferences.d" \
        || km_die $KM_EXIT_SETUP "cannot create $KM_APT_DIR (set KERNEL_MATRIX_CACHE to a writable directory)"
    [ -f "$KM_APT_KEYRING" ] || km_die $KM_EXIT_SETUP "no Debian archive keyring at $KM_APT_KEYRING: apt-get install debian-archive-keyring (or set KERNEL_MATRIX_KEYRING)"
    [ -f "$KM_APT_DIR/status" ] || : >"$KM_APT_DIR/status"
    [ -f "$KM_APT_DIR/preferences" ] || : >"$KM_APT_DIR/preferences"
    km_apt_sources "$KM_APT_KEYRING" "$KM_APT_MIRROR" "$KM_APT_SECURITY_MIRROR" >"$KM_APT_DIR/sources.list.tmp"
    if cmp -s "$KM_APT_DIR/sources.list.tmp" "$KM_APT_DIR/sources.list"; then
        rm -f "$KM_APT_DIR/sources.list.tmp"
    else
        mv "$KM_APT_DIR/sources.list.tmp" "$KM_APT_DIR/sources.list"
        rm -f "$KM_APT_DIR/lists/"*_* 2>/dev/null   # new sources: the lists are stale
    fi
}

KM_APT_UPDATED=0
# km_apt_update -> apt-get update of the script's own state, at most once per run.
km_apt_update() {
    [ "$KM_APT_UPDATED" = 1 ] && return 0
    KM_APT_UPDATED=1
    km_apt_init
    km_log "apt-get update (own state in $KM_APT_DIR: bullseye bookworm trixie sid experimental)"
    if ! timeout 300 apt-get "${KM_APT_OPTS[@]}" update -q >"$KM_APT_DIR/update.log" 2>&1 \
        || grep -q -e '^E: ' -e '^W: GPG error' "$KM_APT_DIR/update.log"; then
        km_log "apt-get update of $KM_APT_DIR had errors ($(grep -m1 -e '^E: ' -e '^W: ' "$KM_APT_DIR/update.log" | cut -c1-160)); using the lists it has (log: $KM_APT_DIR/update.log)"
    fi
}

# km_apt_ready -> the own state exists and its lists are less than KM_APT_MAX_AGE seconds old
# (updated otherwise: sid and experimental change daily, and stale lists name removed files).
km_apt_ready() {
    local newest age
    km_apt_init
    newest=$(ls -t "$KM_APT_DIR/lists/"*_InRelease 2>/dev/null | head -n1 || true)
    if [ -z "$newest" ]; then km_apt_update; return 0; fi
    age=$(( $(date +%s) - $(stat -c %Y "$newest") ))
    [ "$age" -le "$KM_APT_MAX_AGE" ] || km_apt_update
}

km_host_tools() {
    mkdir -p "$KM_CACHE" || km_die $KM_EXIT_SETUP "cannot create the cache $KM_CACHE (set KERNEL_MATRIX_CACHE to a writable directory)"
    km_install qemu-system-x86 busybox-static cpio kmod xz-utils zstd lz4 debian-archive-keyring
    [ -x /bin/busybox ] && /bin/busybox sh -c true \
        || km_die $KM_EXIT_SETUP "/bin/busybox is missing: apt-get install busybox-static"
    if ldd /bin/busybox >/dev/null 2>&1; then
        km_die $KM_EXIT_SETUP "/bin/busybox is dynamically linked: apt-get install busybox-static (it replaces busybox)"
    fi
}

# ---------------------------------------------------------------------------------------------
# Kernels: resolve, fetch, unpack, prepare
# ---------------------------------------------------------------------------------------------

# What a resolved kernel is (set by km_resolve, completed by km_fetch/km_unpack):
#   KM_KIND     apt (packages from the own apt state), deb (a local .deb), image (a local bzImage/vmlinux)
#   KM_RELEASE  its uname -r
#   KM_PKGS     the packages to fetch (apt; and a local linux-binary .deb's companions)
#   KM_KEY      the cache key: the release for Debian's packages; deb-/local-RELEASE-HASH otherwise
#               (a local build may reuse a release name with different contents)
#   KM_IMAGE    the bzImage (or ELF vmlinux) to boot;  KM_MODROOT  a root holding lib/modules/RELEASE,
#               or empty when the kernel needs no modules (a local image given without MODDIR)

# km_resolve_alias REGEX -> the newest package apt knows matching REGEX (offline: the newest cached).
km_resolve_alias() {
    local re=$1 spec=$2 name cached
    km_apt_ready
    name=$(km_apt_cache search --names-only "$re" 2>/dev/null | km_newest_package "$re")
    if [ -z "$name" ]; then
        km_apt_update
        name=$(km_apt_cache search --names-only "$re" 2>/dev/null | km_newest_package "$re")
    fi
    if [ -z "$name" ]; then
        cached=$(ls "$KM_CACHE/debs" 2>/dev/null | sed -n 's/_.*//p' | sort -u | km_newest_package "$re")
        [ -n "$cached" ] || km_die $KM_EXIT_SETUP "apt knows no package matching $re and the cache has none: is deb.debian.org reachable? (lists: $KM_APT_DIR/lists, log: $KM_APT_DIR/update.log)"
        km_log "apt knows no package for '$spec'; using $cached from the cache"
        name=$cached
    fi
    echo "$name"
}

# km_layout_of RELEASE -> "binary" when the kernel is split into linux-binary/-modules/-base
# (Debian from 7.x), else "image". Asks the own apt state, then the cache.
km_layout_of() {
    if km_apt_cache show "linux-binary-$1" >/dev/null 2>&1 || ls "$KM_CACHE/debs/linux-binary-$1_"*.deb >/dev/null 2>&1; then
        echo binary
    else
        echo image
    fi
}

# km_resolve SPEC -> KM_KIND, KM_RELEASE, KM_PKGS, KM_KEY (and KM_IMAGE/KM_MODROOT for an image).
km_resolve() {
    local spec=$1 parsed kind arg arg2 name
    parsed=$(km_kernel_spec "$spec") \
        || km_die $KM_EXIT_USAGE "unknown kernel '$spec': use host, 5.10, 6.1, 6.12, 6.12-trixie, 7.2, 7.3 (-cloud/-rt), a release (6.1.0-55-amd64, 7.3-amd64), a package version (6.12.117-1~deb12u1), a .deb, or IMAGE[:MODDIR] (a path with a /)"
    IFS=$'\t' read -r kind arg arg2 <<<"$parsed"
    KM_PKGS=() KM_IMAGE="" KM_MODROOT="" KM_DEB_FILES=()
    case "$kind" in
        host) KM_KIND=host; KM_RELEASE=$(uname -r); KM_KEY=host; return 0 ;;
        alias) name=$(km_resolve_alias "$arg" "$spec"); KM_RELEASE=$(km_release_of_package "$name") ;;
        package) km_apt_ready; KM_RELEASE=$(km_release_of_package "$arg") ;;
        release) km_apt_ready; KM_RELEASE=$arg ;;
        version)
            km_apt_ready
            name=$(km_apt_cache show $(km_apt_cache search --names-only '^linux-(image|binary)-[0-9].*-amd64$' 2>/dev/null | awk '{print $1}') 2>/dev/null \
                | km_version_package "$arg" "$KM_ARCH_FLAVOUR" || true)
            [ -n "$name" ] || km_die $KM_EXIT_SETUP "apt knows no $KM_ARCH_FLAVOUR kernel of package version $arg: list them with apt-cache ${KM_APT_OPTS[*]} madison linux-image-<release> (or use an alias such as 6.12)"
            KM_RELEASE=$(km_release_of_package "$name") ;;
        deb) km_resolve_deb "$arg"; return 0 ;;
        image) km_resolve_image "$arg" "$arg2"; return 0 ;;
    esac
    KM_KIND=apt KM_KEY=$KM_RELEASE
    read -r -a KM_PKGS <<<"$(km_release_packages "$(km_layout_of "$KM_RELEASE")" "$KM_RELEASE")"
}

# km_resolve_deb PATH -> a local kernel .deb. A linux-binary-RELEASE .deb (7.x) brings its
# linux-modules-RELEASE and linux-base-RELEASE from the same directory, else from apt.
km_resolve_deb() {
    local deb=$1 pkg dir p f
    [ -f "$deb" ] || km_die $KM_EXIT_USAGE "kernel .deb $deb: no such file"
    deb=$(realpath "$deb")
    pkg=$(dpkg-deb -f "$deb" Package 2>/dev/null) || km_die $KM_EXIT_SETUP "$deb is not a .deb (dpkg-deb -f failed): a linux-image-* or linux-binary-* package is needed"
    KM_RELEASE=$(dpkg-deb -c "$deb" | km_deb_release) \
        || km_die $KM_EXIT_USAGE "$deb ($pkg) holds no kernel (no boot/vmlinuz-* nor lib/modules/*/vmlinuz): pass the linux-image-* (up to 6.x) or linux-binary-* (7.x) package"
    KM_KIND=deb KM_KEY="deb-$KM_RELEASE-$(sha256sum "$deb" | cut -c1-12)"
    KM_DEB_FILES=("$deb")
    if [ "${pkg#linux-binary-}" != "$pkg" ] || ! dpkg-deb -c "$deb" | grep -q -E '/(vmlinuz|vmlinuz-[^/]*)$'; then
        dir=$(dirname "$deb")
        for p in "linux-binary-$KM_RELEASE" "linux-modules-$KM_RELEASE" "linux-base-$KM_RELEASE"; do
            [ "$p" = "$pkg" ] && continue
            f=$(ls -1 "$dir/${p}_"*.deb 2>/dev/null | sort -V | tail -n1 || true)
            if [ -n "$f" ]; then KM_DEB_FILES+=("$f"); else KM_PKGS+=("$p"); fi
        done
        [ ${#KM_PKGS[@]} -gt 0 ] && km_apt_ready
    fi
    return 0
}

# km_resolve_image IMAGE MODDIR -> a kernel of one's own: a bzImage or ELF vmlinux, and optionally
# its modules: MODDIR is lib/modules/RELEASE itself, or a root holding it (INSTALL_MOD_PATH).
km_resolve_image() {
    local img=$1 mods=$2
    [ -f "$img" ] || km_die $KM_EXIT_USAGE "kernel image $img: no such file (give a bzImage or vmlinux path, optionally IMAGE:MODDIR)"
    KM_IMAGE=$(realpath "$img")
    KM_RELEASE=$(km_bzimage_release "$KM_IMAGE") \
        || km_die $KM_EXIT_USAGE "$img is neither a bzImage (no HdrS setup header) nor an ELF vmlinux with a version string: pass arch/x86/boot/bzImage or vmlinux"
    KM_KIND=image
    if [ -n "$mods" ]; then
        [ -d "$mods" ] || km_die $KM_EXIT_USAGE "modules directory $mods (after the : in $img:$mods): no such directory"
        mods=$(realpath "$mods")
        if [ -d "$mods/lib/modules/$KM_RELEASE" ]; then mods="$mods/lib/modules/$KM_RELEASE"
        elif [ -d "$mods/usr/lib/modules/$KM_RELEASE" ]; then mods="$mods/usr/lib/modules/$KM_RELEASE"
        elif [ ! -f "$mods/modules.order" ] && [ ! -f "$mods/modules.dep" ] && [ ! -f "$mods/modules.builtin" ]; then
            km_die $KM_EXIT_USAGE "$mods holds neither lib/modules/$KM_RELEASE nor modules.order/modules.builtin: pass the directory make modules_install wrote (INSTALL_MOD_PATH or its lib/modules/$KM_RELEASE)"
        fi
        KM_MODROOT=$mods   # made into a root under the cache by km_unpack
    fi
    KM_KEY="local-$KM_RELEASE-$( { sha256sum "$KM_IMAGE" | cut -d' ' -f1; echo "$mods"; } | sha256sum | cut -c1-12)"
}

# km_fetch -> KM_DEB_FILES += the .debs of KM_PKGS in the cache, downloaded (together) when missing.
km_fetch() {
    local debs="$KM_CACHE/debs" tmp p f missing=()
    mkdir -p "$debs"
    for p in "${KM_PKGS[@]}"; do
        f=$(ls -1 "$debs/${p}_"*.deb 2>/dev/null | sort -V | tail -n1 || true)
        if [ -n "$f" ]; then KM_DEB_FILES+=("$f"); else missing+=("$p"); fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    tmp=$(mktemp -d "$debs/.download.XXXXXX")
    km_log "downloading ${missing[*]} (apt-get download, own apt state)"
    if ! (cd "$tmp" && timeout 600 apt-get "${KM_APT_OPTS[@]}" download -q "${missing[@]}" >"$tmp/log" 2>&1); then
        # Stale package lists name files the mirror no longer has (sid and experimental change
        # daily): update and, for an alias, resolve again (a newer kernel may have replaced it).
        if [ "$KM_APT_UPDATED" = 0 ]; then
            rm -rf "$tmp"
            km_apt_update
            if [ "$KM_KIND" = apt ] && [ -n "${KM_SPEC:-}" ]; then km_resolve "$KM_SPEC"; fi
            km_log "retrying the download"
            km_fetch; return 0
        fi
        grep -v 'unsandboxed' "$tmp/log" | tail -n 5 >&2
        rm -rf "$tmp"
        km_die $KM_EXIT_SETUP "apt-get download ${missing[*]} failed: is the name right (apt-cache search --names-only '^linux-(image|binary)-' with the options in docs/matrix.md) and deb.debian.org reachable?"
    fi
    for f in "$tmp"/*.deb; do
        mv "$f" "$debs/" && KM_DEB_FILES+=("$debs/$(basename "$f")")
    done
    rm -rf "$tmp"
}

# km_unpack -> KM_TREE (and KM_IMAGE, KM_MODROOT): the .debs unpacked with dpkg-deb -x (no
# maintainer scripts), or a local modules directory mirrored as symlinks, with modules.dep from
# depmod -b. Built in KEY.tmp and renamed: a failure leaves nothing behind.
km_unpack() {
    local f moddir
    KM_TREE="$KM_CACHE/kernels/$KM_KEY"
    if [ ! -f "$KM_TREE/.complete" ]; then
        rm -rf "$KM_TREE" "$KM_TREE.tmp"
        mkdir -p "$KM_TREE.tmp"
        if [ "$KM_KIND" = image ]; then
            if [ -n "$KM_MODROOT" ]; then
                mkdir -p "$KM_TREE.tmp/lib/modules"
                cp -rs "$KM_MODROOT" "$KM_TREE.tmp/lib/modules/$KM_RELEASE" \
                    || km_unpack_fail "cannot mirror $KM_MODROOT into the cache (cp -rs): is it readable?"
                # depmod writes its own modules.dep*: never through a link into the user's directory.
                find "$KM_TREE.tmp/lib/modules/$KM_RELEASE" -maxdepth 1 -type l -name 'modules.*' ! -name modules.builtin ! -name modules.builtin.modinfo ! -name modules.order -delete
            fi
        else
            for f in "${KM_DEB_FILES[@]}"; do
                km_log "unpacking $(basename "$f")"
                dpkg-deb -x "$f" "$KM_TREE.tmp" || km_unpack_fail "dpkg-deb -x $f failed: a corrupt download? delete $f and retry"
            done
            if [ ! -e "$KM_TREE.tmp/lib/modules/$KM_RELEASE" ] && [ -d "$KM_TREE.tmp/usr/lib/modules/$KM_RELEASE" ]; then
                mkdir -p "$KM_TREE.tmp/lib/modules" && ln -s "../../usr/lib/modules/$KM_RELEASE" "$KM_TREE.tmp/lib/modules/$KM_RELEASE"
            fi
            if [ -f "$KM_TREE.tmp/boot/vmlinuz-$KM_RELEASE" ]; then :
            elif [ -f "$KM_TREE.tmp/lib/modules/$KM_RELEASE/vmlinuz" ]; then ln -s "../lib/modules/$KM_RELEASE/vmlinuz" "$KM_TREE.tmp/vmlinuz"
            else km_unpack_fail "${KM_DEB_FILES[*]} hold no boot/vmlinuz-$KM_RELEASE nor usr/lib/modules/$KM_RELEASE/vmlinuz: not a kernel image package (7.x: linux-binary-*)"
            fi
        fi
        moddir="$KM_TREE.tmp/lib/modules/$KM_RELEASE"
        if [ -d "$moddir" ]; then
            depmod -b "$KM_TREE.tmp" "$KM_RELEASE" 2>"$KM_TREE.tmp/depmod.err" \
                || km_unpack_fail "depmod -b $KM_TREE.tmp $KM_RELEASE failed ($(head -n1 "$KM_TREE.tmp/depmod.err")): kmod installed?"
        fi
        touch "$KM_TREE.tmp/.complete"
        mv "$KM_TREE.tmp" "$KM_TREE"
    fi
    if [ "$KM_KIND" != image ]; then
        if [ -f "$KM_TREE/boot/vmlinuz-$KM_RELEASE" ]; then KM_IMAGE="$KM_TREE/boot/vmlinuz-$KM_RELEASE"
        else KM_IMAGE="$KM_TREE/lib/modules/$KM_RELEASE/vmlinuz"; fi
    fi
    KM_MODROOT=""
    [ -d "$KM_TREE/lib/modules/$KM_RELEASE" ] && KM_MODROOT=$KM_TREE
    return 0
}
km_unpack_fail() { rm -rf "$KM_TREE.tmp"; km_die $KM_EXIT_SETUP "$@"; }

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
# and KM_BASE_CPIO: busybox, /init and the modules needed for 9p, in load order (none when the
# kernel came without modules: then virtio_pci, 9pnet_virtio and 9p must be built in).
km_prepare() {
    local boot="$KM_CACHE/boot" base="$KM_CACHE/initramfs/$KM_KEY" m f dst
    mkdir -p "$boot" "$KM_CACHE/initramfs"
    KM_VMLINUX="$boot/vmlinux-$KM_KEY"
    if [ "${KM_BZIMAGE:-0}" = 1 ]; then
        KM_VMLINUX=$KM_IMAGE
    elif [ "$(head -c 4 "$KM_IMAGE" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then
        KM_VMLINUX=$KM_IMAGE                      # already an ELF vmlinux
    elif [ ! -s "$KM_VMLINUX" ] || [ "$KM_IMAGE" -nt "$KM_VMLINUX" ]; then
        km_extract_vmlinux "$KM_IMAGE" "$KM_VMLINUX" || {
            km_log "no ELF vmlinux found inside $(basename "$KM_IMAGE") of $KM_RELEASE; booting the bzImage (slower)"
            KM_VMLINUX=$KM_IMAGE
        }
    fi
    KM_BASE_CPIO="$base.cpio"
    if [ -s "$KM_BASE_CPIO" ] && [ "$KM_BASE_CPIO" -nt "$KM_LIB_DIR/guest-init.sh" ] && [ "$KM_BASE_CPIO" -nt "$KM_TREE/.complete" ]; then return 0; fi
    rm -rf "$base.d" && mkdir -p "$base.d"/{bin,sbin,dev,proc,sys,newroot,kr,lib/modules,usr/bin,usr/sbin,run,tmp}
    cp /bin/busybox "$base.d/bin/busybox"
    cp "$KM_LIB_DIR/guest-init.sh" "$base.d/init" && chmod 755 "$base.d/init"
    : >"$base.d/kr/modules.list"
    if [ -n "$KM_MODROOT" ]; then
        # 9pnet_virtio is not a dependency of 9p (it is a transport, found through an alias): name it.
        modprobe -a -d "$KM_MODROOT" -S "$KM_RELEASE" --show-depends virtio_pci 9pnet_virtio 9p >"$base.d/kr/show-depends" 2>"$base.d/kr/show-depends.err" \
            || km_die $KM_EXIT_SETUP "modprobe --show-depends 9p failed for $KM_RELEASE ($(head -n1 "$base.d/kr/show-depends.err")): a kernel without 9p (a -cloud flavour?) is not supported; build NET_9P, NET_9P_VIRTIO, 9P_FS, VIRTIO_PCI in or as modules"
        while read -r f; do
            m=$(basename "$f"); dst="$base.d/lib/modules/${m%.xz}"; dst=${dst%.zst}; dst=${dst%.gz}
            case "$f" in
                *.ko.xz) xz -dc "$KM_MODROOT$f" >"$dst" ;;
                *.ko.zst) zstd -dcq "$KM_MODROOT$f" >"$dst" ;;
                *.ko.gz) gzip -dc "$KM_MODROOT$f" >"$dst" ;;
                *) cp "$KM_MODROOT$f" "$dst" ;;
            esac || km_die $KM_EXIT_SETUP "cannot decompress module $f"
            basename "$dst" >>"$base.d/kr/modules.list"
        done < <(sed "s#$KM_MODROOT##" "$base.d/kr/show-depends" | km_parse_show_depends)
    else
        echo "no modules: virtio_pci, 9pnet_virtio and 9p must be built into $KM_RELEASE" >"$base.d/kr/show-depends"
    fi
    (cd "$base.d" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet >"$KM_BASE_CPIO.tmp") \
        || km_die $KM_EXIT_SETUP "cpio failed building $KM_BASE_CPIO"
    mv "$KM_BASE_CPIO.tmp" "$KM_BASE_CPIO"
    rm -rf "$base.d"
}

# km_get SPEC -> resolve, fetch, unpack, prepare, under a lock on the cache (bounded wait: parallel
# runs share the apt state and the unpacked trees).
km_get() {
    KM_SPEC=$1
    if [ "$1" = host ]; then km_resolve host; return 0; fi
    # Usage errors (an unknown spec, a missing local file) before the cache is touched.
    local parsed kind arg
    parsed=$(km_kernel_spec "$1") || km_resolve "$1"
    IFS=$'\t' read -r kind arg _ <<<"$parsed"
    case "$kind" in
        deb) [ -f "$arg" ] || km_die $KM_EXIT_USAGE "kernel .deb $arg: no such file" ;;
        image) [ -f "$arg" ] || km_die $KM_EXIT_USAGE "kernel image $arg: no such file (give a bzImage or vmlinux path, optionally IMAGE:MODDIR)" ;;
    esac
    mkdir -p "$KM_CACHE" || km_die $KM_EXIT_SETUP "cannot create the cache $KM_CACHE (set KERNEL_MATRIX_CACHE to a writable directory)"
    exec {KM_LOCK_FD}>"$KM_CACHE/.lock"
    flock -w 900 "$KM_LOCK_FD" || km_die $KM_EXIT_SETUP "another kernel-matrix run held $KM_CACHE/.lock for 15 minutes: wait for it, or remove a stale run"
    km_resolve "$1"
    km_fetch
    km_unpack
    km_prepare
    flock -u "$KM_LOCK_FD"
    exec {KM_LOCK_FD}>&-
}
