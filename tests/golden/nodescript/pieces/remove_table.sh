#!/bin/sh
# wasm-shim-fleet: remove the containerd handler table
# node node-a (pool pool-a, containerd flavor containerd-1); the work is done by the
# node kit that the node's kit resource delivered (README: The node kit).
set -eu
if [ -z "${WSF_NODE_ROOT:-}" ]; then WSF_NODE_ROOT='/'; fi
if [ -z "${WSF_RESTART:-}" ]; then WSF_RESTART='systemctl restart containerd'; fi
wsf_kits=${WSF_NODE_ROOT%/}/var/lib/wasm-shim-fleet/kit
WSF_KIT=$(cat "$wsf_kits/selected" 2>/dev/null) || WSF_KIT=none
wsf_sum=$(sha256sum < "$wsf_kits/$WSF_KIT/wsf.sh" 2>/dev/null) || wsf_sum=
if [ "${wsf_sum%% *}" != "$WSF_KIT" ]; then
    for wsf_f in '/var/lib/wasm-shim-fleet/table.sha256' '/var/lib/wasm-shim-fleet/config.orig' '/var/lib/wasm-shim-fleet/config.prev' '/var/lib/wasm-shim-fleet/config.prev.absent'; do
        if [ -e "${WSF_NODE_ROOT%/}$wsf_f" ]; then
            echo "wasm-shim-fleet: error: no node kit in $wsf_kits matches its sha256 (selected: $WSF_KIT), and $wsf_f is still there; deliver the kit again: pulumi up, or the node-script install script" >&2
            exit 1
        fi
    done
    echo "wasm-shim-fleet: no node kit, and nothing of this resource left on the node"
    echo unchanged; exit 0
fi
. "$wsf_kits/$WSF_KIT/wsf.sh"
wsf 1 containerd-1 remove-table
