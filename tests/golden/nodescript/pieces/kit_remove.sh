#!/bin/sh
# wasm-shim-fleet: remove the node kit 0000000000000000000000000000000000000000000000000000000000000000 once nothing of ours is left on node node-a
set -eu
if [ -z "${WSF_NODE_ROOT:-}" ]; then WSF_NODE_ROOT='/'; fi
wsf_state=${WSF_NODE_ROOT%/}/var/lib/wasm-shim-fleet
for wsf_f in "$wsf_state"/binaries/*.sha256 "$wsf_state"/table.sha256 "$wsf_state"/config.prev*; do
    if [ -e "$wsf_f" ]; then
        echo "wasm-shim-fleet: keeping the node kit: $wsf_f is still there"; echo unchanged; exit 0
    fi
done
if [ ! -e "$wsf_state/kit" ]; then echo "wasm-shim-fleet: no node kit to remove"; echo unchanged; exit 0; fi
rm -rf "$wsf_state/kit"
echo "wasm-shim-fleet: removed $wsf_state/kit"
echo changed
