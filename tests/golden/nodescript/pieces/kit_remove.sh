#!/bin/sh
# wasm-shim-fleet: remove the node kit from node node-a once nothing of ours is left there
set -eu
if [ -z "${WSF_NODE_ROOT:-}" ]; then WSF_NODE_ROOT='/'; fi
d=${WSF_NODE_ROOT%/}/var/lib/wasm-shim-fleet
for f in "$d"/binaries/*.sha256 "$d"/table.sha256 "$d"/config.prev*; do
    if [ -e "$f" ]; then echo "wasm-shim-fleet: keeping the node kit: $f is still there"; echo unchanged; exit 0; fi
done
if [ ! -e "$d/kit" ]; then echo unchanged; exit 0; fi
rm -rf "$d/kit"; echo "wasm-shim-fleet: removed $d/kit"; echo changed
