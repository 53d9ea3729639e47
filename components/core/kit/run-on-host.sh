# wasm-shim-fleet: run one node command on the host, detached from the pod that started it, and report its
# result (transport kubernetes, components/core/incluster.py).
#
# Run by a runner pod as `/wsf-enter -- /bin/sh -c <this text> wasm-shim-fleet-run MODE ID`, i.e. by the
# host's own /bin/sh in the namespaces of the node's container runtime (deploy/runner/wsf-enter.c).
#   MODE start   write the script ($WSF_RUN_SCRIPT, and the payload $WSF_RUN_PAYLOAD if set) to the run
#                folder, start it detached, wait for its status and print the result
#   MODE attach  only wait for the result of run ID (its first pod ended before printing it)
# The result, between lines that carry the run id: stdout, stderr, exit status. Then the pod waits until the
# runner, having read the result from the pod's log, deletes it: only on that SIGTERM is the run folder removed,
# so a result whose log was lost (the runtime restarted while it was printed) can still be read by a new pod.
# The detached command joins the cgroups of the node's container runtime (the containerd shim, or conmon, that
# started this pod) and runs with that runtime's environment: neither the end of this pod nor a restart of
# containerd can kill it, and settings such as WSF_NODE_ROOT come only from the node itself, never the pod.
set -eu
# Everything this writes (the script, its payload, its output) is the node's business only.
umask 077
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
mode=$1 id=$2
case $id in *[!0-9a-f]*|'') echo "wasm-shim-fleet: bad run id" >&2; exit 2 ;; esac
rt='' p=$$
while [ "$p" -gt 1 ]; do
    c=$(cat "/proc/$p/comm" 2>/dev/null) || break
    case $c in containerd-shim*|conmon) rt=$p; break ;; esac
    p=$(sed 's/^.*) [A-Za-z] \([0-9]*\) .*$/\1/' "/proc/$p/stat" 2>/dev/null) || break
done
root=''
if [ -n "$rt" ]; then
    root=$(tr '\0' '\n' < "/proc/$rt/environ" 2>/dev/null | sed -n 's/^WSF_NODE_ROOT=//p' | head -n 1)
fi
d=${root%/}/var/lib/wasm-shim-fleet/runs/$id
if [ "$mode" = start ]; then
    mkdir -p "${d%/*}"
    chmod 700 "${d%/*}"
    # Results nobody came back for (the runner was killed) are kept a day, then removed by a later run; so are
    # runs whose detached command was killed before its status (its pid gone, or another program's now).
    find "${d%/*}" -mindepth 2 -maxdepth 2 -name rc -mmin +1440 2>/dev/null | while IFS= read -r old; do
        rm -rf "${old%/rc}"
    done
    for old in "${d%/*}"/*/; do
        old=${old%/}
        if [ ! -d "$old" ] || [ -e "$old/rc" ]; then continue; fi
        if [ -s "$old/pid" ]; then
            tr '\0' ' ' < "/proc/$(cat "$old/pid")/cmdline" 2>/dev/null | grep -q -F -- "$old/detached" && continue
        elif [ -z "$(find "$old" -maxdepth 0 -mmin +1440 2>/dev/null)" ]; then
            continue  # just made, its command not started yet
        fi
        rm -rf "$old"
    done
    if ! mkdir "$d" 2>/dev/null; then
        echo "wasm-shim-fleet: run $id exists already on this node; not starting it twice" >&2
        exit 2
    fi
    printf '%s' "$WSF_RUN_SCRIPT" > "$d/script"
    if [ -n "${WSF_RUN_PAYLOAD+x}" ]; then printf '%s' "$WSF_RUN_PAYLOAD" > "$d/payload"; fi
    if [ -n "$rt" ]; then echo "$rt" > "$d/runtime"; fi
    cat > "$d/detached" <<'DETACHED'
# The detached command: join the runtime's cgroups, run the script with the runtime's environment (read from the
# runtime itself, never stored), write its status last (rc.tmp, then renamed: a reader never sees half of it).
d=$1
umask 077
echo $$ > "$d/pid"
if [ -s "$d/runtime" ]; then
    while IFS=: read -r _ ctl path; do
        case $ctl in
            '') f=/sys/fs/cgroup/unified; [ -d "$f" ] || f=/sys/fs/cgroup ;;
            name=*) f=/sys/fs/cgroup/${ctl#name=} ;;
            *) f=/sys/fs/cgroup/$ctl ;;
        esac
        echo $$ > "$f$path/cgroup.procs" 2>/dev/null || :
    done < "/proc/$(cat "$d/runtime")/cgroup"
fi
cd /
set -- PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
if [ -s "$d/runtime" ]; then
    renv=$(tr '\0' '\n' < "/proc/$(cat "$d/runtime")/environ" 2>/dev/null) || renv=
    saved_ifs=$IFS
    IFS='
'
    set -f
    for a in $renv; do
        case $a in
            NOTIFY_SOCKET=*|LISTEN_*|WATCHDOG_*) ;;
            [A-Za-z_]*=*) case ${a%%=*} in *[!A-Za-z0-9_]*) ;; *) set -- "$@" "$a" ;; esac ;;
        esac
    done
    set +f
    IFS=$saved_ifs
    renv=
fi
env -i "$@" WSF_RUN_PAYLOAD="$d/payload" sh "$d/script" > "$d/out" 2> "$d/err"
echo $? > "$d/rc.tmp"
mv "$d/rc.tmp" "$d/rc"
DETACHED
    if command -v setsid > /dev/null 2>&1; then
        setsid sh "$d/detached" "$d" < /dev/null > /dev/null 2>&1 &
    else
        sh "$d/detached" "$d" < /dev/null > /dev/null 2>&1 &
    fi
elif [ ! -d "$d" ]; then
    echo "wasm-shim-fleet: no run $id on this node: its result was already reported, or it never started" >&2
    exit 3
fi
while [ ! -e "$d/rc" ]; do sleep 1; done
# The runner acknowledges the result by deleting this pod (SIGTERM) once it has read all of it from the log:
# then, and only then, the run is forgotten. (Before the result exists, SIGTERM leaves the run alone.)
trap 'rm -rf "$d"; rmdir "${d%/*}" 2>/dev/null || :; exit 0' TERM INT HUP
# Each part is followed by one newline of ours, so that the markers stand on lines of their own.
echo "--- wasm-shim-fleet run $id: stdout ---"
cat "$d/out"; echo
echo "--- wasm-shim-fleet run $id: stderr ---"
cat "$d/err"; echo
echo "--- wasm-shim-fleet run $id: exit $(cat "$d/rc") ---"
i=0
while [ "$i" -lt 3600 ]; do sleep 1; i=$((i + 1)); done
