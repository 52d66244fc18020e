#!/usr/bin/env bash
# build-test-kernel.sh — build the UffdNative test kernel: Debian's kernel source with a boot
# parameter `uffdnative_no_zero_page` that switches the shared zero page off for anonymous read
# faults (and the huge zero page for THP read faults). docs/matrix.md describes it; --help the options.
set -euo pipefail

KM_PROG=build-test-kernel
SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KM_LIB_DIR="$SCRIPTS_DIR/lib"
# shellcheck source=lib/kernel-lib.sh
. "$KM_LIB_DIR/kernel-lib.sh"

usage() {
    cat <<'EOF'
Usage: scripts/build-test-kernel.sh [OPTIONS]

Downloads Debian's linux-source-SERIES .deb (apt-get download into the cache, never installed),
applies scripts/test-kernel/no-zero-page-SERIES.patch, configures it with `make defconfig
kvm_guest.config` plus scripts/test-kernel/uffdnative.config (everything built in, no modules),
and builds bzImage. Prints the bzImage's path on the last line of stdout; boot it with
  scripts/kernel-run.sh --append uffdnative_no_zero_page=1 PATH -- COMMAND
  scripts/kernel-matrix.sh --append 'uffdnative_no_zero_page=1 hugepages=16' PATH

The result is cached in $KERNEL_MATRIX_CACHE/build/ (default /var/cache/kernel-matrix/build/) by
source version and the hash of the patch, the config fragment and this recipe: a second run with
the same inputs prints the cached path at once.

Options:
  --series 6.12|6.1   Debian's linux-source-SERIES (default 6.12: it has PAGEMAP_SCAN, 6.1 does not)
  --source-version V  that exact Debian version of linux-source-SERIES (default: the newest apt knows)
  -j, --jobs N        make -j N (default: nproc)
  --force             rebuild even when the cached bzImage exists
  --keep-tree         keep the built source tree (about 3 GB) next to the bzImage
  --no-install        do not apt-get install the build tools (build-essential flex bison bc libelf-dev libssl-dev)
  -h, --help          this text

Exit status: 0 built (or cached); 2 usage; 3 setup failed (packages, download, patch, config); 4
the build failed (the log's path is printed).
EOF
}

series=6.12 source_version="" jobs=$(nproc) force=0 keep=0 install=1
while [ $# -gt 0 ]; do
    case "$1" in
        --series) series=${2:?--series needs 6.12 or 6.1}; shift 2 ;;
        --source-version) source_version=${2:?}; shift 2 ;;
        -j|--jobs) jobs=${2:?}; shift 2 ;;
        --force) force=1; shift ;;
        --keep-tree) keep=1; shift ;;
        --no-install) install=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) km_log "unknown argument $1 (see --help)"; exit $KM_EXIT_USAGE ;;
    esac
done
case "$series" in 6.1|6.12) ;; *) km_log "--series takes 6.12 or 6.1, not '$series'"; exit $KM_EXIT_USAGE ;; esac
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || { km_log "--jobs takes a positive number, not '$jobs'"; exit $KM_EXIT_USAGE; }

patch_file="$SCRIPTS_DIR/test-kernel/no-zero-page-$series.patch"
fragment="$SCRIPTS_DIR/test-kernel/uffdnative.config"
[ -f "$patch_file" ] && [ -f "$fragment" ] || { km_log "missing $patch_file or $fragment: run from a complete checkout"; exit $KM_EXIT_SETUP; }

mkdir -p "$KM_CACHE/build" || km_die $KM_EXIT_SETUP "cannot create $KM_CACHE/build (set KERNEL_MATRIX_CACHE to a writable directory)"
[ "$install" = 1 ] && km_install build-essential flex bison bc libelf-dev libssl-dev xz-utils debian-archive-keyring
for t in make gcc flex bison bc patch xz; do
    command -v "$t" >/dev/null || km_die $KM_EXIT_SETUP "$t not found: apt-get install build-essential flex bison bc xz-utils (or run without --no-install)"
done

# ---- the source version (own apt state, as the kernel matrix uses) ----
pkg="linux-source-$series"
km_apt_ready
if [ -z "$source_version" ]; then
    source_version=$(km_apt_cache show "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -n1)
    [ -n "$source_version" ] || { km_apt_update; source_version=$(km_apt_cache show "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -n1); }
    [ -n "$source_version" ] || km_die $KM_EXIT_SETUP "apt knows no $pkg: is deb.debian.org reachable? (lists in $KM_APT_DIR)"
fi

# ---- the cache key: source version + patch + fragment + this recipe ----
recipe_hash=$(cat "$patch_file" "$fragment" <(sed -n '/^# ---- recipe/,$p' "$0") | sha256sum | cut -c1-12)
key="uffdnative-nozp-$(echo "$source_version" | tr '~:' '_-')-$recipe_hash"
dest="$KM_CACHE/build/$key"
if [ "$force" = 0 ] && [ -s "$dest/bzImage" ] && [ -f "$dest/.complete" ]; then
    km_log "cached: $dest/bzImage ($(cat "$dest/build-info" 2>/dev/null | sed -n 's/^release=//p'))"
    echo "$dest/bzImage"
    exit 0
fi

# ---- recipe (hashed into the cache key) ----
srcdebs="$KM_CACHE/build/src"
mkdir -p "$srcdebs"
deb=$(ls -1 "$srcdebs/${pkg}_$(echo "$source_version" | sed 's/:/%3a/')_all.deb" 2>/dev/null || true)
if [ -z "$deb" ]; then
    tmp=$(mktemp -d "$srcdebs/.download.XXXXXX")
    km_log "downloading $pkg=$source_version (apt-get download, about 150 MB)"
    (cd "$tmp" && timeout 900 apt-get "${KM_APT_OPTS[@]}" download -q "$pkg=$source_version" >"$tmp/log" 2>&1) || {
        grep -v unsandboxed "$tmp/log" | tail -n 5 >&2; rm -rf "$tmp"
        km_die $KM_EXIT_SETUP "apt-get download $pkg=$source_version failed: is the version right (apt-cache policy $pkg with the options in docs/matrix.md) and deb.debian.org reachable?"
    }
    mv "$tmp"/*.deb "$srcdebs/" && rm -rf "$tmp"
    deb=$(ls -1 "$srcdebs/${pkg}_"*"_all.deb" | grep -F "_$(echo "$source_version" | sed 's/:/%3a/')_" | head -n1)
fi

t0=$(date +%s)
tree="$dest.tree"
rm -rf "$tree" "$dest.tmp"
mkdir -p "$tree" "$dest.tmp"
trap 'rc=$?; if [ $rc != 0 ] && [ "$keep" = 0 ]; then rm -rf "$tree"; fi; rm -rf "$dest.tmp"; exit $rc' EXIT
km_log "unpacking $(basename "$deb")"
dpkg-deb --fsys-tarfile "$deb" | tar -xO "./usr/src/linux-source-$series.tar.xz" | tar -xJ -C "$tree" --strip-components=1 \
    || km_die $KM_EXIT_SETUP "cannot unpack $deb (a corrupt download? delete it and retry)"
km_log "applying $(basename "$patch_file")"
(cd "$tree" && patch -p1 --forward --batch --dry-run <"$patch_file" >/dev/null && patch -p1 --forward --batch <"$patch_file" >/dev/null) \
    || km_die $KM_EXIT_SETUP "$(basename "$patch_file") does not apply to $pkg $source_version: refresh the patch for this source (or pass --source-version)"
cp "$fragment" "$tree/kernel/configs/uffdnative.config"
export KBUILD_BUILD_USER=uffdnative KBUILD_BUILD_HOST=build-test-kernel
km_log "configuring: make defconfig kvm_guest.config uffdnative.config"
make -C "$tree" -s defconfig kvm_guest.config uffdnative.config >"$dest.tmp/config.log" 2>&1 \
    || { tail -n 20 "$dest.tmp/config.log" >&2; km_die $KM_EXIT_SETUP "make defconfig kvm_guest.config uffdnative.config failed (log above)"; }
missing=$(grep -E '^CONFIG_[A-Z0-9_]+=y$' "$fragment" | while read -r line; do grep -qxF "$line" "$tree/.config" || echo "${line%=y}"; done)
[ -z "$missing" ] || km_die $KM_EXIT_SETUP "the configured kernel lacks $(echo $missing) (a dependency is off in defconfig): add what they depend on to $fragment"
km_log "building bzImage with make -j$jobs (a defconfig kernel: tens of minutes on 2 cores)"
tb=$(date +%s)
if ! make -C "$tree" -j"$jobs" bzImage >"$dest.tmp/build.log" 2>&1; then
    tail -n 30 "$dest.tmp/build.log" >&2
    cp "$dest.tmp/build.log" "$KM_CACHE/build/$key.failed.log"
    km_log "make bzImage failed (log: $KM_CACHE/build/$key.failed.log)"
    exit 4
fi
te=$(date +%s)
release=$(cat "$tree/include/config/kernel.release")
cp "$tree/arch/x86/boot/bzImage" "$dest.tmp/bzImage"
cp "$tree/.config" "$dest.tmp/config"
cp "$tree/System.map" "$dest.tmp/System.map"
{
    echo "release=$release"
    echo "source=$pkg $source_version"
    echo "patch=$(basename "$patch_file") $(sha256sum "$patch_file" | cut -c1-12)"
    echo "recipe_hash=$recipe_hash"
    echo "jobs=$jobs"
    echo "nproc=$(nproc)"
    echo "build_seconds=$((te - tb))"
    echo "total_seconds=$((te - t0))"
    echo "built=$(date -u +%FT%TZ)"
} >"$dest.tmp/build-info"
touch "$dest.tmp/.complete"
rm -rf "$dest"
mv "$dest.tmp" "$dest"
if [ "$keep" = 1 ]; then km_log "source tree kept in $tree"; else rm -rf "$tree"; fi
trap - EXIT
km_log "built $release in $((te - tb)) s (make -j$jobs bzImage; $((te - t0)) s with unpacking and configuring): $dest/bzImage"
echo "$dest/bzImage"
