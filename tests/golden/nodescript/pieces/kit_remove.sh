# wasm-shim-fleet: remove the node kit from node node-a when nothing of ours is left
set -eu; WSF_NODE_ROOT=${WSF_NODE_ROOT:-'/'}
d=${WSF_NODE_ROOT%/}/var/lib/wasm-shim-fleet
for f in "$d"/binaries/*.sha256 "$d"/table.sha256 "$d"/config.prev*; do
    [ ! -e "$f" ] || { echo "wasm-shim-fleet: keeping the node kit: $f is still there"; echo unchanged; exit 0; }
done
[ -e "$d/kit" ] || { echo unchanged; exit 0; }
rm -rf "$d/kit"; echo "wasm-shim-fleet: removed $d/kit"; echo changed
