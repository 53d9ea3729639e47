#!/bin/sh
# wasm-shim-fleet: remove containerd-shim-slight-v1-3-0-v1 (slight@1.3.0) on node node-a (pool pool-a), by the node kit
set -eu
if [ -z "${WSF_NODE_ROOT:-}" ]; then WSF_NODE_ROOT='/'; fi
k=${WSF_NODE_ROOT%/}/var/lib/wasm-shim-fleet/kit; WSF_KIT=$(cat "$k/selected" 2>/dev/null) || WSF_KIT=none
[ "$(sha256sum < "$k/$WSF_KIT/wsf.sh" 2>/dev/null | cut -c1-64)" = "$WSF_KIT" ] || {
    for f in '/usr/local/bin/containerd-shim-slight-v1-3-0-v1' '/var/lib/wasm-shim-fleet/binaries/containerd-shim-slight-v1-3-0-v1.sha256'; do
        [ ! -e "${WSF_NODE_ROOT%/}$f" ] || { echo "wasm-shim-fleet: error: no node kit in $k matches its sha256 (selected: $WSF_KIT); deliver it: pulumi up" >&2; exit 1; }
    done
    echo "wasm-shim-fleet: no node kit, and nothing of this left to remove"; echo unchanged; exit 0
}
. "$k/$WSF_KIT/wsf.sh"
wsf 1 containerd-1 remove-binary 'containerd-shim-slight-v1-3-0-v1' 'io.containerd.slight-v1-3-0.v1'
