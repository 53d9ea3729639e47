#!/bin/sh
# wasm-shim-fleet: install shim binary containerd-shim-slight-v1-3-0-v1 (slight@1.3.0, member bin/containerd-shim-slight-v1 of the archive)
# node node-a (pool pool-a, containerd flavor containerd-1); the work is done by the
# node kit that the node's kit resource delivered (README: The node kit).
set -eu
if [ -z "${WSF_NODE_ROOT:-}" ]; then WSF_NODE_ROOT='/'; fi
wsf_kits=${WSF_NODE_ROOT%/}/var/lib/wasm-shim-fleet/kit
WSF_KIT=$(cat "$wsf_kits/selected" 2>/dev/null) || WSF_KIT=none
wsf_sum=$(sha256sum < "$wsf_kits/$WSF_KIT/wsf.sh" 2>/dev/null) || wsf_sum=
if [ "${wsf_sum%% *}" != "$WSF_KIT" ]; then
    echo "wasm-shim-fleet: error: no node kit in $wsf_kits matches its sha256 (selected: $WSF_KIT); deliver it again: pulumi up, or the node-script install script" >&2
    exit 1
fi
. "$wsf_kits/$WSF_KIT/wsf.sh"
wsf 1 containerd-1 install-binary \
    'containerd-shim-slight-v1-3-0-v1' \
    'https://artifacts.example.org/slight/1.3.0/slight-v1.3.0-linux-amd64.tar.gz' \
    'ff0a2ef78fa83e1943485dffef90c83dea89e33a0221f67af99268defe29bb7f' \
    'bin/containerd-shim-slight-v1' \
    'version'
