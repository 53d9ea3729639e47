#!/bin/sh
# wasm-shim-fleet: write the containerd handler table on node node-a (pool pool-a), by the node kit
set -eu
if [ -z "${WSF_NODE_ROOT:-}" ]; then WSF_NODE_ROOT='/'; fi
if [ -z "${WSF_RESTART:-}" ]; then WSF_RESTART='systemctl restart containerd'; fi
k=${WSF_NODE_ROOT%/}/var/lib/wasm-shim-fleet/kit; WSF_KIT=$(cat "$k/selected" 2>/dev/null) || WSF_KIT=none
[ "$(sha256sum < "$k/$WSF_KIT/wsf.sh" 2>/dev/null | cut -c1-64)" = "$WSF_KIT" ] || { echo "wasm-shim-fleet: error: no node kit in $k matches its sha256 (selected: $WSF_KIT); deliver it: pulumi up" >&2; exit 1; }
. "$k/$WSF_KIT/wsf.sh"
wsf 1 containerd-1 apply-table \
    'slight=io.containerd.slight-v1-3-0.v1' \
    'slight-v1=io.containerd.slight-v1-3-0.v1' \
    'slight-v1-2=io.containerd.slight-v1-2-3.v1' \
    'slight-v1-2-3=io.containerd.slight-v1-2-3.v1' \
    'slight-v1-3=io.containerd.slight-v1-3-0.v1' \
    'slight-v1-3-0=io.containerd.slight-v1-3-0.v1' \
    'spin=io.containerd.spin-v0-3-0.v1' \
    'spin-v0-3=io.containerd.spin-v0-3-0.v1' \
    'spin-v0-3-0=io.containerd.spin-v0-3-0.v1'
