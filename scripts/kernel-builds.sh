#!/usr/bin/env bash
# kernel-builds.sh — the Debian kernel builds of a series, and what their packages say, from
# kernel-matrix's own apt state ($KERNEL_MATRIX_CACHE/apt; /etc/apt is never read or written).
# `uffdnative bisect` runs it; docs/bisect.md describes it.
#
#   scripts/kernel-builds.sh list SERIES        one line per build, oldest first (version sort; the
#                                               CLI sorts again in dpkg order):
#                                               VERSION<TAB>PACKAGE<TAB>RELEASE
#   scripts/kernel-builds.sh deb KERNEL         the path of the kernel's .deb in the cache (fetched
#                                               through the own apt state when missing)
#   scripts/kernel-builds.sh changelog KERNEL   its changelog.Debian (usr/share/doc/*/changelog*.gz
#                                               inside the .deb), uncompressed, on stdout
#
# SERIES is an alias of kernel-matrix.sh (5.10, 6.1, 6.12, 6.12-trixie, 7.2, 7.3, -rt), KERNEL any
# kernel it takes that comes from a package: a package version (6.1.192-1), a release, a package
# name, or a local .deb. Exit status: 0; 2 usage (unknown series or kernel); 3 apt, download or
# dpkg-deb failed.
set -euo pipefail

KM_PROG=kernel-builds
SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KM_LIB_DIR="$SCRIPTS_DIR/lib"
# shellcheck source=lib/kernel-lib.sh
. "$KM_LIB_DIR/kernel-lib.sh"

usage() { sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

cmd=${1:-}
arg=${2:-}
case "$cmd" in
    -h|--help) usage; exit 0 ;;
    list|deb|changelog)
        what=KERNEL; [ "$cmd" = list ] && what=SERIES
        [ -n "$arg" ] && [ $# -eq 2 ] || { km_log "usage: kernel-builds.sh $cmd $what (see --help)"; exit $KM_EXIT_USAGE; } ;;
    *) km_log "usage: kernel-builds.sh list SERIES | deb KERNEL | changelog KERNEL (see --help)"; exit $KM_EXIT_USAGE ;;
esac

# The .deb that holds KERNEL's image (its first package: linux-image-*, or linux-binary-* on 7.x).
deb_of() {
    local spec=$1 parsed kind
    parsed=$(km_kernel_spec "$spec") || km_die $KM_EXIT_USAGE "unknown kernel '$spec': a package version (6.1.192-1), a release, a package name or a .deb"
    kind=${parsed%%$'\t'*}
    case "$kind" in
        host|image) km_die $KM_EXIT_USAGE "'$spec' is not a Debian package: only packaged kernels have a changelog" ;;
    esac
    mkdir -p "$KM_CACHE" || km_die $KM_EXIT_SETUP "cannot create the cache $KM_CACHE"
    exec {KM_LOCK_FD}>"$KM_CACHE/.lock"
    flock -w 900 "$KM_LOCK_FD" || km_die $KM_EXIT_SETUP "another kernel-matrix run held $KM_CACHE/.lock for 15 minutes"
    KM_SPEC=$spec
    km_resolve "$spec"
    km_fetch
    flock -u "$KM_LOCK_FD"
    printf '%s\n' "${KM_DEB_FILES[0]}"
}

case "$cmd" in
    list)
        parsed=$(km_kernel_spec "$arg") || true
        [ "${parsed%%$'\t'*}" = alias ] || km_die $KM_EXIT_USAGE "unknown series '$arg': use 5.10, 6.1, 6.12, 6.12-trixie, 7.2, 7.3 (or -rt of one)"
        re=${parsed#*$'\t'}
        km_apt_ready
        names=$(km_apt_cache search --names-only "$re" 2>/dev/null | awk '{print $1}' | grep -E -- "$re" || true)
        if [ -z "$names" ]; then
            km_apt_update
            names=$(km_apt_cache search --names-only "$re" 2>/dev/null | awk '{print $1}' | grep -E -- "$re" || true)
        fi
        [ -n "$names" ] || km_die $KM_EXIT_SETUP "apt knows no package matching $re: is deb.debian.org reachable? (log: $KM_APT_DIR/update.log)"
        # shellcheck disable=SC2086
        km_apt_cache show $names 2>/dev/null \
            | awk '/^Package: / { p = $2 } /^Version: / { v = $2 } /^$/ { if (p != "" && v != "") print v "\t" p; p = v = "" }
                   END { if (p != "" && v != "") print v "\t" p }' \
            | sort -u | sort -V -k1,1 \
            | while IFS=$'\t' read -r v p; do printf '%s\t%s\t%s\n' "$v" "$p" "$(km_release_of_package "$p")"; done
        ;;
    deb) deb_of "$arg" ;;
    changelog)
        deb=$(deb_of "$arg")
        member=$(dpkg-deb -c "$deb" | awk '{ print $NF }' | grep -E '^\./usr/share/doc/[^/]+/changelog(\.Debian)?\.gz$' | head -n1 || true)
        [ -n "$member" ] || km_die $KM_EXIT_SETUP "$deb has no usr/share/doc/*/changelog.Debian.gz"
        dpkg-deb --fsys-tarfile "$deb" | tar -xO "$member" | gzip -dc \
            || km_die $KM_EXIT_SETUP "cannot extract $member from $deb (dpkg-deb, tar, gzip)"
        ;;
esac
