#!/bin/sh
# Test stand-in for `systemctl restart containerd` on a node root (the node scripts' WSF_RESTART in the
# integration tier): stop the node's containerd, render its config the way the node's distribution would, start it
# again, and return once it answers on its socket. Everything it touches is under WSF_NODE_ROOT.
#
#   WSF_NODE_ROOT   the node root (exported by the node scripts)
#   CONTAINERD_BIN  the containerd binary to run (1.x from Debian, or the 2.x built by build-containerd2.sh)
#   CONFIG          the config containerd loads, relative to the root (default etc/containerd/config.toml)
#   SOCKET          its socket, relative to the root (default run/containerd/containerd.sock)
#   RENDER          optional, how the distribution renders CONFIG before it starts containerd:
#                   base:TEMPLATE  k3s/rke2: TEMPLATE (relative to the root) with its `{{ template "base" . }}` line
#                                  replaced by the node's base config (.wsf-test/base.toml), or that base alone
#                   snap:TEMPLATE  microk8s: TEMPLATE with the snap's ${SNAP}, ${SNAP_DATA}, ${RUNTIME} and
#                                  ${SNAPSHOTTER} replaced
#   REFUSE_IF       optional: refuse to start while the config contains this text (a daemon that fails on the
#                   new config, for the rollback test)
set -eu
R=${WSF_NODE_ROOT%/}
cfg=$R/${CONFIG:-etc/containerd/config.toml}
sock=$R/${SOCKET:-run/containerd/containerd.sock}
pidfile=$R/run/containerd-test-daemon.pid
log=$R/var/log/containerd.log
mkdir -p "$R/run/containerd" "$R/var/log" "${sock%/*}" "${cfg%/*}"
echo restart >> "$R/var/log/restarts"

# A daemon reparented to a pid 1 that does not reap stays a zombie: that counts as stopped.
alive() {
    [ -r "/proc/$1/stat" ] || return 1
    read -r _pid _comm state _rest < "/proc/$1/stat" || return 1
    [ "$state" != Z ]
}

if [ -f "$pidfile" ]; then
    pid=$(cat "$pidfile")
    if alive "$pid"; then
        kill "$pid" 2>/dev/null || true
        i=0
        while alive "$pid" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
        if alive "$pid"; then kill -9 "$pid" 2>/dev/null || true; sleep 0.2; fi
    fi
    rm -f "$pidfile"
fi
case ${RENDER:-} in
    base:*)
        tmpl=$R/${RENDER#base:}
        if [ -f "$tmpl" ]; then
            awk -v base="$R/.wsf-test/base.toml" '
                $0 == "{{ template \"base\" . }}" { while ((getline l < base) > 0) print l; next }
                { print }' "$tmpl" > "$cfg.render"
        else
            cp "$R/.wsf-test/base.toml" "$cfg.render"
        fi
        mv -f "$cfg.render" "$cfg" ;;
    snap:*)
        sed -e "s#\${SNAP_DATA}#$R/var/snap/microk8s/current#g" -e "s#\${SNAP}#$R/snap/microk8s/current#g" \
            -e "s#\${RUNTIME}#runc#g" -e "s#\${SNAPSHOTTER}#overlayfs#g" "$R/${RENDER#snap:}" > "$cfg.render"
        mv -f "$cfg.render" "$cfg" ;;
esac
if [ -n "${REFUSE_IF:-}" ] && grep -q -F -- "$REFUSE_IF" "$cfg"; then
    echo "containerd (test): refusing to start on a config containing '$REFUSE_IF'" >&2
    exit 1
fi
echo "=== restart-containerd.sh: starting $CONTAINERD_BIN" >> "$log"
# Root, state and socket under the node root whatever the config says (the distributions pass them as flags too).
"$CONTAINERD_BIN" --config "$cfg" --root "$R/var/lib/containerd" --state "$R/run/containerd" --address "$sock" \
    </dev/null >>"$log" 2>&1 &
pid=$!
echo "$pid" > "$pidfile"
# At most 60 s, each probe bounded (a containerd stuck at start accepts the connection and never answers).
deadline=$(($(date +%s) + 60))
while [ "$(date +%s)" -lt "$deadline" ]; do
    if ! alive "$pid"; then
        echo "containerd exited at start: $(tail -n 1 "$log")" >&2
        exit 1
    fi
    if timeout 5 ctr --address "$sock" version >/dev/null 2>&1; then exit 0; fi
    sleep 0.2
done
echo "containerd did not answer on $sock within 60s; its log ends: $(tail -n 1 "$log")" >&2
exit 1
