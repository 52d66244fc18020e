#!/bin/bash
# run-steps.sh OUTDIR CLIDIR STEP_TIMEOUT NAME UID COMMAND [NAME UID COMMAND]...
#
# Runs each step (a bash command line) in turn, on the host or inside a guest, in its own session
# under a timeout (on expiry the kernel stacks of its threads go to its stderr file): stdout to
# OUTDIR/NAME, stderr to OUTDIR/NAME-without-extension.stderr, one row per step in
# OUTDIR/steps.tsv. UID is "root" or a number (then setpriv drops to that uid and gid with no
# supplementary groups; the output files are opened by root before that). In a step,
# `uffdnative ...` runs the CLI in CLIDIR. Exit 0 if every step exited 0, else 1.
#
# kernel-matrix.sh passes this file's text to `bash -c`, so it needs nothing from the repository.
set -u
out=$1 cli=$2 step_timeout=$3
shift 3
if [ -x "$cli/UffdNative.Cli" ]; then
    export UFFDNATIVE_EXE="$cli/UffdNative.Cli"
    prelude='uffdnative() { "$UFFDNATIVE_EXE" "$@"; }'
else
    export UFFDNATIVE_EXE="$cli/UffdNative.Cli.dll"
    prelude='uffdnative() { dotnet "$UFFDNATIVE_EXE" "$@"; }'
fi
# No diagnostics IPC socket in $TMPDIR: on the host the run leaves nothing behind.
export DOTNET_EnableDiagnostics=0 DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1

{
    echo "uname: $(uname -a)"
    echo "cmdline: $(cat /proc/cmdline 2>/dev/null)"
    echo "thp: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)"
    echo "hugepages: $(cat /proc/sys/vm/nr_hugepages 2>/dev/null)"
    echo "unprivileged_userfaultfd: $(cat /proc/sys/vm/unprivileged_userfaultfd 2>/dev/null)"
    echo "dev_userfaultfd: $(ls -l /dev/userfaultfd 2>&1)"
} >"$out/kernel.txt"

printf 'step\tuser\texit\tseconds\n' >"$out/steps.tsv"
failed=0
while [ $# -ge 3 ]; do
    name=$1 uid=$2 cmd=$3
    shift 3
    err="$out/${name%.*}.stderr"
    start=$(date +%s%N)
    if [ "$uid" = root ]; then
        as=()
    else
        as=(setpriv --reuid="$uid" --regid="$uid" --clear-groups env HOME=/)
    fi
    # Its own session (and process group), so a hung step can be examined and killed whole.
    setsid "${as[@]}" bash -c "$prelude"$'\n'"$cmd" >"$out/$name" 2>"$err" </dev/null &
    pid=$!
    # Wait for it, polling (tail --pid) under the step's timeout.
    if timeout "$step_timeout" tail --pid="$pid" -s 0.2 -f /dev/null; then
        wait "$pid"
        rc=$?
    else
        # Timed out: record where each thread of the step's processes waits in the kernel (a hung
        # uffd experiment shows up as handle_userfault & co.), then kill them all.
        {
            echo "== kernel-matrix: step timed out after ${step_timeout}s; kernel stacks of its threads:"
            for p in $(ps -o pid= -s "$pid" 2>/dev/null); do
                for t in /proc/"$p"/task/*; do
                    echo "-- pid $p tid ${t##*/} $(cat "$t/comm" 2>/dev/null) wchan=$(cat "$t/wchan" 2>/dev/null) state=$(sed 's/.*) //; s/ .*//' "$t/stat" 2>/dev/null)"
                    cat "$t/stack" 2>/dev/null
                done
            done
        } >>"$err" 2>&1
        kill -KILL -- "-$pid" 2>/dev/null
        { wait "$pid"; } 2>/dev/null
        rc=124
    fi
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    secs="$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
    printf '%s\t%s\t%s\t%s\n' "$name" "$uid" "$rc" "$secs" >>"$out/steps.tsv"
    if [ "$rc" = 0 ]; then
        echo "step $name (uid $uid): exit 0, ${secs}s"
    else
        failed=1
        [ "$rc" = 124 ] && what="timed out after ${step_timeout}s" || what="exit $rc"
        echo "step $name (uid $uid): FAILED, $what, ${secs}s; last lines of stderr:"
        tail -n "$([ "$rc" = 124 ] && echo 60 || echo 15)" "$err" | sed "s/^/    /"
    fi
done
exit $failed
