#!/usr/bin/env bash
# Installs Debian's headless-capable `chromium` (the matrix HTML page test renders the page with it:
# `chromium --headless --screenshot` and `--dump-dom`). Uses the host's apt sources as they are
# (apt-get install --no-install-recommends; one `apt-get update` and a retry when the first attempt
# fails on stale lists); never writes /etc/apt. Needs root.
#
#   scripts/install-chromium.sh          # installs when no Chromium is on PATH; prints the one to use
#
# Exit: 0 installed (or already there; the path is printed), 3 it could not be installed (one line
# on stderr naming the cause and the fix; apt's output is in the log it names).
set -uo pipefail

# Debian's chromium first; another Chromium build already on PATH serves too (GitHub's Ubuntu runners
# carry Google Chrome, and Ubuntu has no Debian-style chromium package, only a snap stub).
for name in chromium google-chrome-stable google-chrome chromium-browser; do
  if path=$(command -v "$name"); then
    echo "$path"
    exit 0
  fi
done
fail() { echo "install-chromium: $1" >&2; exit 3; }
[ "$(id -u)" = 0 ] || fail "chromium is not installed and installing it needs root. Fix: run as root, or: sudo apt-get install --no-install-recommends chromium"
command -v apt-get >/dev/null || fail "chromium is not installed and there is no apt-get. Fix: install Chromium so that \`chromium\` is on PATH"
log=${TMPDIR:-/tmp}/install-chromium.$$.log
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends chromium >"$log" 2>&1; then
  # Stale package lists name files the mirror no longer has: refresh them once.
  apt-get update >>"$log" 2>&1
  apt-get install -y --no-install-recommends chromium >>"$log" 2>&1 ||
    fail "apt-get install chromium failed ($(tail -1 "$log")). Fix: see $log; the package is Debian's \`chromium\` (main)"
fi
rm -f "$log"
path=$(command -v chromium) || fail "apt-get installed chromium but \`chromium\` is not on PATH. Fix: check the package's /usr/bin/chromium"
echo "$path"
