#!/usr/bin/env bash
# Renders an HTML page in headless Chromium (Debian's `chromium`): a PNG screenshot and/or the DOM
# after load. Used by the matrix page test and by CI (the screenshot artifact).
#
#   scripts/render-page.sh PAGE.html [--screenshot OUT.png] [--dom OUT.html] [--window-size W,H] [--no-install]
#
# Chromium is installed with scripts/install-chromium.sh when missing (unless --no-install). Each run
# uses a temporary profile directory, removed afterwards; the outputs are written atomically.
# Exit: 0 rendered, 2 usage, 3 chromium missing and not installable (one line naming the cause and fix),
# 1 chromium failed (its last lines on stderr).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
page="" shot="" dom="" size="1400,1000" install=1
usage() { echo "render-page.sh: $1. Usage: render-page.sh PAGE.html [--screenshot OUT.png] [--dom OUT.html] [--window-size W,H] [--no-install]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --screenshot) shot=${2:-}; [ -n "$shot" ] || usage "--screenshot needs a file"; shift 2 ;;
    --dom) dom=${2:-}; [ -n "$dom" ] || usage "--dom needs a file"; shift 2 ;;
    --window-size) size=${2:-}; [[ $size =~ ^[0-9]+,[0-9]+$ ]] || usage "--window-size is W,H (e.g. 1400,1000)"; shift 2 ;;
    --no-install) install=0; shift ;;
    -*) usage "unknown option '$1'" ;;
    *) [ -z "$page" ] || usage "one page at a time"; page=$1; shift ;;
  esac
done
[ -n "$page" ] || usage "no page given"
[ -f "$page" ] || usage "'$page' is not a file"
[ -n "$shot$dom" ] || usage "nothing to do: give --screenshot and/or --dom"

if [ $install = 1 ]; then
  chromium=$("$here/install-chromium.sh") || exit 3
else
  chromium=$(command -v chromium || command -v google-chrome-stable || command -v google-chrome || command -v chromium-browser) || { echo "render-page.sh: chromium is not installed. Fix: scripts/install-chromium.sh (root), or apt-get install --no-install-recommends chromium" >&2; exit 3; }
fi

url="file://$(realpath "$page")"
profile=$(mktemp -d "${TMPDIR:-/tmp}/render-page.XXXXXX")
trap 'rm -rf "$profile"' EXIT
# --no-sandbox: Chromium refuses to run as root with its sandbox. The profile is a fresh directory
# so that nothing is read from or left in the user's ~/.config/chromium.
flags=(--headless --no-sandbox --disable-gpu --no-first-run --no-default-browser-check --disable-extensions
       --hide-scrollbars --user-data-dir="$profile" --window-size="$size")
# Crashpad and the headless shell write under $HOME/.config even with --user-data-dir: point HOME and
# the XDG directories at the temporary profile too.
export HOME="$profile" XDG_CONFIG_HOME="$profile/config" XDG_CACHE_HOME="$profile/cache"
log="$profile/chromium.log"
if [ -n "$shot" ]; then
  tmp="$(dirname "$shot")/.$(basename "$shot").$$.tmp.png"
  if ! "$chromium" "${flags[@]}" --screenshot="$tmp" "$url" >"$log" 2>&1 || [ ! -s "$tmp" ]; then
    rm -f "$tmp"; echo "render-page.sh: chromium --screenshot of $page failed: $(grep -v dbus "$log" | tail -2 | tr '\n' ' ')" >&2; exit 1
  fi
  mv -f "$tmp" "$shot"
fi
if [ -n "$dom" ]; then
  tmp="$(dirname "$dom")/.$(basename "$dom").$$.tmp"
  if ! "$chromium" "${flags[@]}" --dump-dom "$url" >"$tmp" 2>"$log" || [ ! -s "$tmp" ]; then
    rm -f "$tmp"; echo "render-page.sh: chromium --dump-dom of $page failed: $(grep -v dbus "$log" | tail -2 | tr '\n' ' ')" >&2; exit 1
  fi
  mv -f "$tmp" "$dom"
fi
