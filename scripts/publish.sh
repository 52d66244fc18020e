#!/usr/bin/env bash
# publish.sh — build the distributable forms of the uffdnative CLI (docs/packaging.md).
#
#   tool          .NET tool package: nupkg/uffdnative.<version>.nupkg (needs a .NET 10 runtime to run)
#   fdd           framework-dependent: artifacts/publish/framework-dependent/uffdnative (+ assemblies;
#                 what the Dockerfile ships; needs a .NET 10 runtime)
#   single-file   self-contained, trimmed, ReadyToRun, one file (the shim inside): artifacts/publish/single-file/uffdnative
#   aot           NativeAOT: artifacts/publish/aot/uffdnative + libuffdshim.so (no .NET needed)
#
# Usage: scripts/publish.sh [--measure] [FORM...]     (default: every form)
#   --measure  afterwards, time each built form from start to a finished `uffdnative probe`
#              (hyperfine when installed, else 20 timed runs) and print a Markdown table.
# Exit status: 0 built (and measured); 1 a build or measurement failed; 2 usage.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

CSPROJ=src/UffdNative.Cli/UffdNative.Cli.csproj
measure=0 forms=()
for a in "$@"; do
    case "$a" in
        --measure) measure=1 ;;
        tool|fdd|single-file|aot) forms+=("$a") ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "publish.sh: unknown argument '$a' (forms: tool fdd single-file aot; --measure)" >&2; exit 2 ;;
    esac
done
[ ${#forms[@]} -eq 0 ] && forms=(tool fdd single-file aot)

build() {
    case "$1" in
        tool)
            rm -f nupkg/uffdnative.*.nupkg
            dotnet pack $CSPROJ -c Release ;;
        fdd)
            rm -rf artifacts/publish/framework-dependent
            dotnet publish $CSPROJ -c Release -o artifacts/publish/framework-dependent ;;
        single-file)
            rm -rf artifacts/publish/single-file
            dotnet publish $CSPROJ -c Release -r linux-x64 --self-contained -p:PublishSingleFile=true -p:IncludeNativeLibrariesForSelfExtract=true -p:PublishTrimmed=true -p:PublishReadyToRun=true -p:DebugType=none -o artifacts/publish/single-file ;;
        aot)
            rm -rf artifacts/publish/aot
            dotnet publish $CSPROJ -c Release -r linux-x64 -p:PublishAot=true -p:DebugType=none -p:CopyOutputSymbolsToPublishDirectory=false -o artifacts/publish/aot ;;
    esac
}

for f in "${forms[@]}"; do
    echo "== publish.sh: $f"
    build "$f"
done

[ $measure -eq 1 ] || exit 0

# Start-up to a finished probe, per form. The tool is installed into a fresh tool path first.
declare -A cmd disp
for f in "${forms[@]}"; do
    case "$f" in
        tool)
            tp=$(mktemp -d /var/tmp/uffdnative-tool.XXXXXX)
            trap 'rm -rf "$tp"' EXIT
            NUGET_PACKAGES="$tp/packages" dotnet tool install uffdnative --tool-path "$tp/bin" --add-source nupkg >/dev/null
            cmd[$f]="$tp/bin/uffdnative probe"; disp[$f]="<fresh tool path>/uffdnative probe" ;;
        fdd) cmd[$f]="artifacts/publish/framework-dependent/uffdnative probe" ;;
        single-file) cmd[$f]="artifacts/publish/single-file/uffdnative probe" ;;
        aot) cmd[$f]="artifacts/publish/aot/uffdnative probe" ;;
    esac
    disp[$f]=${disp[$f]:-${cmd[$f]}}
    ${cmd[$f]} >/dev/null   # one warm-up run, and it must succeed
done
echo
echo "| form | command | wall mean ± σ (ms) | wall min (ms) | user CPU mean (ms) | sys CPU mean (ms) | runs |"
echo "|---|---|---|---|---|---|---|"
for f in "${forms[@]}"; do
    if command -v hyperfine >/dev/null; then
        j=$(mktemp)
        hyperfine -N --warmup 3 --runs 30 --export-json "$j" "${cmd[$f]}" >/dev/null
        python3 - "$f" "${disp[$f]}" "$j" <<'PY'
import json, sys
r = json.load(open(sys.argv[3]))["results"][0]
print(f"| {sys.argv[1]} | `{sys.argv[2]}` | {r['mean']*1000:.1f} ± {r['stddev']*1000:.1f} | {r['min']*1000:.1f} | {r['user']*1000:.1f} | {r['system']*1000:.1f} | {len(r['times'])} |")
PY
        rm -f "$j"
    else
        ts=()
        for _ in $(seq 20); do
            s=$(date +%s%N); ${cmd[$f]} >/dev/null; e=$(date +%s%N); ts+=($(( (e - s) / 1000 )))
        done
        printf '%s\n' "${ts[@]}" | awk -v f="$f" -v c="${disp[$f]}" '{s+=$1; q+=$1*$1; if(min==""||$1<min)min=$1; if($1>max)max=$1; n++}
            END {m=s/n; sd=sqrt(q/n-m*m); printf "| %s | `%s` | %.1f ± %.1f | %.1f | - | - | %d |\n", f, c, m/1000, sd/1000, min/1000, n}'
    fi
done
