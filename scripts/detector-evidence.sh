#!/usr/bin/env bash
# Keeps what the detector tests need from probe reports: the switch rows (value, kind, observed, evidence) of each
# kernel, in a probe-report JSON that ProbeReport.FromJson reads.
#   scripts/detector-evidence.sh OUT_DIR MATRIX_DIR/KERNEL/probe.json...
# writes OUT_DIR/<kernelRelease>.json for each report (tests/UffdNative.Harness.Tests/Probing/DetectorEvidence/
# holds the recorded ones; DetectorEvidenceTests compares fresh reports with them).
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 OUT_DIR PROBE.json..." >&2; exit 2; }
out=$1; shift
mkdir -p "$out"
for f in "$@"; do
  rel=$(jq -r .kernelRelease "$f")
  jq '{tool, schemaVersion, kernelRelease, kernel, mainlineVersion,
       behaviours: [.behaviours[] | select(.switch != null) | {id, switch, kind, value, effective, observed, evidence, mainline, verdict}]}' \
     "$f" >"$out/$rel.json.tmp"
  mv "$out/$rel.json.tmp" "$out/$rel.json"
  echo "$out/$rel.json"
done
