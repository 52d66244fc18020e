#!/usr/bin/env bash
# The soak of issue 7, for .ci/run (called by the lead's stage): `uffdnative soak` with 4 native
# toucher threads over anonymous and shmem regions under mixed policies, protect/unprotect churn and
# madvise/mremap/fork from other threads, bounded to about 2 minutes (at ~60k faults/s on the CI
# machine that is several million faults; 1,000,000 is the floor the issue asks for, or the time
# bound). Exits non-zero unless lost 0, corrupt 0, hung 0 and the fault accounting matched.
set -uo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
seconds=${SOAK_SECONDS:-110}
out=TestResults/ci/soak.json
mkdir -p "$(dirname "$out")"
dotnet build src/UffdNative.Cli -v q -nologo >/dev/null || { echo "soak: build failed" >&2; exit 1; }
cli=src/UffdNative.Cli/bin/Debug/net10.0/UffdNative.Cli.dll
# timeout: the soak bounds itself; this only guards against a wedged process.
timeout --kill-after=30 $((seconds + 120)) dotnet "$cli" soak --seconds "$seconds" --threads 4 --json >"$out"
rc=$?
cat "$out"
faults=$(sed -n 's/.*"faults": \([0-9]*\),.*/\1/p' "$out" | head -1)
echo "soak: exit $rc, ${faults:-?} faults in ${seconds} s"
if [ "$rc" -eq 0 ] && [ "${faults:-0}" -lt 1000000 ]; then
  echo "soak: note: fewer than 1,000,000 faults within the ${seconds} s time bound (a slow or busy machine)" >&2
fi
exit "$rc"
