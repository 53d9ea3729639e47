#!/bin/sh
# wasm-shim-fleet: write the containerd handler table
# node node-a (pool pool-a, containerd flavor containerd-1); the work is done by the
# node kit that the node's kit resource delivered (README: The node kit).
set -eu
if [ -z "${WSF_NODE_ROOT:-}" ]; then WSF_NODE_ROOT='/'; fi
if [ -z "${WSF_RESTART:-}" ]; then WSF_RESTART='systemctl restart containerd'; fi
wsf_kits=${WSF_NODE_ROOT%/}/var/lib/wasm-shim-fleet/kit
WSF_KIT=$(cat "$wsf_kits/selected" 2>/dev/null) || WSF_KIT=none
wsf_sum=$(sha256sum < "$wsf_kits/$WSF_KIT/wsf.sh" 2>/dev/null) || wsf_sum=
if [ "${wsf_sum%% *}" != "$WSF_KIT" ]; then
    echo "wasm-shim-fleet: error: no node kit in $wsf_kits matches its sha256 (selected: $WSF_KIT); deliver it again: pulumi up, or the node-script install script" >&2
    exit 1
fi
. "$wsf_kits/$WSF_KIT/wsf.sh"
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
