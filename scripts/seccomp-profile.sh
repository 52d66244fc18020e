#!/usr/bin/env bash
# Makes docs/containers/seccomp-userfaultfd.json: Docker's default seccomp profile with `userfaultfd`
# added to the names of its unconditional SCMP_ACT_ALLOW rule, and nothing else changed.
# See --help.
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE=docs/containers/seccomp-userfaultfd.json
ORIGIN=docs/containers/seccomp-userfaultfd.json.origin

usage() {
  cat <<'EOF'
Usage: scripts/seccomp-profile.sh [OPTIONS] MOBY_DEFAULT_JSON
       scripts/seccomp-profile.sh --verify

Writes docs/containers/seccomp-userfaultfd.json from Docker's default seccomp profile
(MOBY_DEFAULT_JSON: seccomp/default.json of github.com/moby/profiles, which moby/moby's
profiles/seccomp/default.json moved to) with one change: "userfaultfd" joins the names of the
profile's unconditional SCMP_ACT_ALLOW rule (the first rule with that action and no args, includes
or excludes), in sorted position. Formatting is kept (tab-indented, as moby generates it).
docs/containers/seccomp-userfaultfd.json.origin records where the input came from.

Options:
  --source TEXT   where MOBY_DEFAULT_JSON came from (repository, path, commit); written to the
                  .origin file (default: "moby/profiles seccomp/default.json (commit unknown)")
  --check         write nothing; exit 1 if the committed profile is not what MOBY_DEFAULT_JSON gives
  --verify        no input: check the committed profile alone (valid JSON, default action
                  SCMP_ACT_ERRNO, userfaultfd exactly once and in the unconditional allow rule,
                  the .origin file's sha256 of the profile matches); what the container test runs
  -h, --help      this text

Exit status: 0 done or as expected, 1 a difference (--check/--verify), 2 usage error, 3 jq missing.
EOF
}

source_text="moby/profiles seccomp/default.json (commit unknown)"
mode=write input=""
while [ $# -gt 0 ]; do
  case $1 in
    --source) [ $# -ge 2 ] || { echo "seccomp-profile.sh: --source needs a value" >&2; exit 2; }; source_text=$2; shift 2 ;;
    --check) mode=check; shift ;;
    --verify) mode=verify; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "seccomp-profile.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) [ -z "$input" ] || { echo "seccomp-profile.sh: one input file only" >&2; exit 2; }; input=$1; shift ;;
  esac
done
command -v jq >/dev/null || { echo "seccomp-profile.sh: jq is missing: apt-get install jq" >&2; exit 3; }

# The unconditional allow rule: action ALLOW and none of args/includes/excludes (or all empty).
JQ_RULE='(.action == "SCMP_ACT_ALLOW") and ((.args // []) | length == 0) and ((.includes // {}) | length == 0) and ((.excludes // {}) | length == 0)'

generate() { # $1 = moby default.json -> stdout
  jq --tab "
    if ([.syscalls[] | select(.names | index(\"userfaultfd\"))] | length) > 0 then
      error(\"the input already mentions userfaultfd: not Docker's default profile?\")
    else . end
    | (first(.syscalls | to_entries[] | select(.value | $JQ_RULE) | .key)) as \$i
    | if \$i == null then error(\"no unconditional SCMP_ACT_ALLOW rule in the input\") else . end
    | .syscalls[\$i].names |= (. as \$n | ([\$n[] | select(. < \"userfaultfd\")] | length) as \$k
                               | \$n[:\$k] + [\"userfaultfd\"] + \$n[\$k:])" "$1"
}

case $mode in
  verify)
    [ -f "$PROFILE" ] && [ -f "$ORIGIN" ] || { echo "seccomp-profile.sh: $PROFILE or $ORIGIN is missing" >&2; exit 1; }
    jq -e "
      (.defaultAction == \"SCMP_ACT_ERRNO\")
      and ([.syscalls[] | .names[] | select(. == \"userfaultfd\")] | length == 1)
      and ([.syscalls[] | select(.names | index(\"userfaultfd\")) | select($JQ_RULE)] | length == 1)" "$PROFILE" >/dev/null \
      || { echo "seccomp-profile.sh: $PROFILE does not allow userfaultfd exactly once, unconditionally, under a default ERRNO action" >&2; exit 1; }
    want=$(sed -n 's/^profile_sha256=//p' "$ORIGIN")
    have=$(sha256sum "$PROFILE" | cut -d' ' -f1)
    [ "$want" = "$have" ] || { echo "seccomp-profile.sh: $PROFILE was edited by hand (sha256 $have, $ORIGIN says $want): regenerate it" >&2; exit 1; }
    echo "$PROFILE: Docker's default profile + userfaultfd ($(sed -n 's/^source=//p' "$ORIGIN"))"
    ;;
  check|write)
    [ -n "$input" ] || { usage >&2; exit 2; }
    [ -f "$input" ] || { echo "seccomp-profile.sh: $input does not exist" >&2; exit 2; }
    tmp=$(mktemp)
    trap 'rm -f "$tmp" "$tmp.origin"' EXIT
    generate "$input" > "$tmp"
    # The only difference from the input is the one added name.
    added=$(diff <(jq --tab . "$input") "$tmp" | grep -c '^[<>]' || true)
    [ "$added" = 1 ] || { echo "seccomp-profile.sh: the generated profile differs from the input in $added lines, not 1" >&2; exit 1; }
    if [ "$mode" = check ]; then
      cmp -s "$tmp" "$PROFILE" && { echo "$PROFILE is what $input gives"; exit 0; }
      diff -u "$PROFILE" "$tmp" | head -40 >&2
      exit 1
    fi
    mkdir -p "$(dirname "$PROFILE")"
    {
      echo "# Provenance of seccomp-userfaultfd.json (written by scripts/seccomp-profile.sh; do not edit)."
      echo "# Docker's default seccomp profile is Apache-2.0 licensed (moby); this file adds one syscall name."
      echo "source=$source_text"
      echo "source_sha256=$(sha256sum "$input" | cut -d' ' -f1)"
      echo "change=added \"userfaultfd\" to the names of the unconditional SCMP_ACT_ALLOW rule (syscalls[$(jq "first(.syscalls | to_entries[] | select(.value | $JQ_RULE) | .key)" "$input")])"
      echo "profile_sha256=$(sha256sum "$tmp" | cut -d' ' -f1)"
    } > "$tmp.origin"
    mv "$tmp" "$PROFILE" && chmod 644 "$PROFILE"
    mv "$tmp.origin" "$ORIGIN" && chmod 644 "$ORIGIN"
    echo "wrote $PROFILE and $ORIGIN"
    ;;
esac
