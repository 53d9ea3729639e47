#!/bin/sh
# wasm-shim-fleet: install containerd-shim-slight-v1-3-0-v1 (slight@1.3.0) on node node-a (pool pool-a), by the node kit
set -eu
if [ -z "${WSF_NODE_ROOT:-}" ]; then WSF_NODE_ROOT='/'; fi
k=${WSF_NODE_ROOT%/}/var/lib/wasm-shim-fleet/kit; WSF_KIT=$(cat "$k/selected" 2>/dev/null) || WSF_KIT=none
[ "$(sha256sum < "$k/$WSF_KIT/wsf.sh" 2>/dev/null | cut -c1-64)" = "$WSF_KIT" ] || { echo "wasm-shim-fleet: error: no node kit in $k matches its sha256 (selected: $WSF_KIT); deliver it: pulumi up" >&2; exit 1; }
. "$k/$WSF_KIT/wsf.sh"
wsf 1 containerd-1 install-binary \
    'containerd-shim-slight-v1-3-0-v1' \
    'https://artifacts.example.org/slight/1.3.0/slight-v1.3.0-linux-amd64.tar.gz' \
    'ff0a2ef78fa83e1943485dffef90c83dea89e33a0221f67af99268defe29bb7f' \
    'bin/containerd-shim-slight-v1' \
    'version'
