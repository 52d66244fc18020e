#!/usr/bin/env bash
# Issue 15's pictures, for .ci/run: one `bench --plot` (a short run: missing-copy/shmem at 256 and
# 1024 pages, 2 repetitions; its CDFs and ns/fault charts) and the matrix page of the kernel-matrix
# step's reports (`compare --html`) with its headless-Chromium screenshot. Everything lands in
# TestResults/ci/pictures/ (kept as CI artifacts with the rest of TestResults/ci). Fails when a
# picture cannot be made; a flagged matrix is the kernel-matrix step's failure, not this one's.
set -uo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
out=TestResults/ci/pictures
matrix=${PICTURES_MATRIX:-TestResults/ci/kernel-matrix}
rm -rf "$out"
mkdir -p "$out"
start=$SECONDS
dotnet build src/UffdNative.Cli -v q -nologo >/dev/null || { echo "pictures: build failed" >&2; exit 1; }
cli=src/UffdNative.Cli/bin/Debug/net10.0/UffdNative.Cli.dll
rc=0

timeout --kill-after=30 300 dotnet "$cli" bench --pages 256,1024 --repeat 2 --scenario missing-copy/shmem --plot "$out/plots" >"$out/bench.txt"
brc=$?
# bench exits 1 when a scenario failed verification (its figures are not plotted): a failure here too.
[ $brc -eq 0 ] || { echo "pictures: bench --plot exited $brc (see $out/bench.txt)" >&2; rc=1; }
echo "pictures: bench --plot: $(find "$out/plots" -name '*.png' 2>/dev/null | wc -l) PNGs in $out/plots ($((SECONDS - start)) s so far)"

mapfile -t reports < <(find "$matrix" -mindepth 2 -maxdepth 2 \( -name probe.json -o -name probe-nobody.json -o -name check.json \) -size +0 2>/dev/null | sort)
if [ ${#reports[@]} -eq 0 ]; then
  echo "pictures: no reports under $matrix (the kernel-matrix step writes them): no matrix page" >&2
  rc=1
else
  dotnet "$cli" compare --html "$out/matrix.html" "${reports[@]}"
  crc=$?
  [ $crc -le 1 ] || { echo "pictures: compare --html exited $crc" >&2; rc=1; }
  if [ -s "$out/matrix.html" ]; then
    scripts/render-page.sh "$out/matrix.html" --screenshot "$out/matrix.png" --window-size 1400,1000 || rc=1
  fi
fi
echo "pictures: exit $rc after $((SECONDS - start)) s; $(ls "$out" | tr '\n' ' ')"
exit $rc
