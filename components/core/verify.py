"""Before a node is labelled: where the kubelet reports `node.status.runtimeHandlers` (KEP-3857; containerd 2.x
lists every runtime it loaded), every handler the node's table names must appear there. Otherwise containerd
did not load the table, and a label would send pods to a node that cannot run them.

The check is a POSIX sh script run by a `command:local:Command` on the machine that runs `pulumi up`, between
the node's handler table and its labels; it needs `kubectl` there, and no Pulumi language host or dynamic
provider. It reads the Node with the stack's kubeconfig and context, polling while the kubelet catches up
with containerd's restart, and fails the node (so nothing is labelled) with one line naming the missing
handlers. A kubelet that reports no runtimeHandlers (containerd 1.x) is nothing to verify.

Environment: WSF_KUBECONFIG (a kubeconfig path, or its contents; empty: kubectl's usual lookup),
WSF_KUBE_CONTEXT (optional), KUBECTL (default: kubectl on PATH).
"""

from __future__ import annotations

from .nodescript import shq
from .plan import NodePlan

#: How long a node may take to report freshly loaded handlers (the kubelet's status updates run every ~10 s).
WAIT_SECONDS = 120


def runtime_handlers_script(node: NodePlan, wait_seconds: int = WAIT_SECONDS) -> str:
    want = " ".join(node.handlers)
    return f"""#!/bin/sh
# wasm-shim-fleet: before labelling node {node.name}, check that the kubelet reports its handlers
set -eu
node={shq(node.name)}
want={shq(want)}
kubectl=${{KUBECTL:-kubectl}}
if ! command -v "$kubectl" >/dev/null 2>&1; then
    echo "wasm-shim-fleet: node $node: kubectl is not installed where pulumi runs;" \
        "install it (or set KUBECTL) to verify the node's runtimeHandlers before labelling" >&2
    exit 1
fi
tmp=
trap '[ -z "$tmp" ] || rm -f -- "$tmp"' EXIT
set --
case ${{WSF_KUBECONFIG:-}} in
    '') ;;
    *'
'*|'{{'*|' {{'*) tmp=$(mktemp) && chmod 600 "$tmp" && printf '%s' "$WSF_KUBECONFIG" > "$tmp"
        set -- --kubeconfig "$tmp" ;;
    *) set -- --kubeconfig "$WSF_KUBECONFIG" ;;
esac
if [ -n "${{WSF_KUBE_CONTEXT:-}}" ]; then set -- "$@" --context "$WSF_KUBE_CONTEXT"; fi
waited=0
while :; do
    if ! got=$("$kubectl" "$@" get node "$node" -o 'jsonpath={{.status.runtimeHandlers[*].name}}' 2>&1); then
        echo "wasm-shim-fleet: node $node: cannot read the Node from the cluster: $got" >&2
        exit 1
    fi
    if [ -z "$got" ]; then
        echo "node $node: the kubelet reports no runtimeHandlers (containerd 1.x): nothing to verify"
        exit 0
    fi
    missing=
    for h in $want; do
        case " $got " in *" $h "*) ;; *) missing="$missing $h" ;; esac
    done
    if [ -z "$missing" ]; then
        echo "node $node: node.status.runtimeHandlers lists every handler: $want"
        exit 0
    fi
    if [ "$waited" -ge {wait_seconds} ]; then break; fi
    sleep 2
    waited=$((waited + 2))
done
echo "wasm-shim-fleet: node $node: handler(s)$missing not in node.status.runtimeHandlers after" \
    "{wait_seconds}s (the kubelet reports: $got): containerd did not load them; the node is not labelled" >&2
exit 1
"""
