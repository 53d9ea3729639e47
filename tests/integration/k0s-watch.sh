#!/bin/sh
# Test stand-in for k0s's watch of /etc/k0s/containerd.d (pkg/component/worker/containerd/component.go,
# watchDropinConfigs): whenever the folder's files change, wait until they have been quiet for a second (k0s
# debounces for 3 s), then restart the node's containerd (restart-containerd.sh, with the environment given).
# Runs until killed; the tests start it and stop it by pid.
#
#   WSF_NODE_ROOT  the node root; the folder is $WSF_NODE_ROOT/etc/k0s/containerd.d
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dir=${WSF_NODE_ROOT%/}/etc/k0s/containerd.d
mkdir -p "$dir"
state() {
    for f in "$dir"/* "$dir"/.[!.]*; do
        if [ -e "$f" ]; then printf '%s %s\n' "$f" "$(cksum < "$f")"; fi
    done
}
seen=$(state)
while :; do
    sleep 0.3
    now=$(state)
    [ "$now" != "$seen" ] || continue
    while :; do
        sleep 1
        later=$(state)
        [ "$later" != "$now" ] || break
        now=$later
    done
    seen=$now
    sh "$here/restart-containerd.sh" >/dev/null 2>&1 || :
done
