# wasm-shim-fleet: remove the containerd handler table on node node-a
set -eu; WSF_NODE_ROOT=${WSF_NODE_ROOT:-'/'} WSF_RESTART=${WSF_RESTART:-'systemctl restart containerd'}
d=${WSF_NODE_ROOT%/}/var/lib/wasm-shim-fleet; WSF_KIT=$(cat "$d/kit/selected" 2>/dev/null) || WSF_KIT=-
[ "$(sha256sum 2>/dev/null <"$d/kit/$WSF_KIT/wsf.sh")" = "$WSF_KIT  -" ] || {
    for f in "$d"/table.sha256 "$d"/config.orig "$d"/config.prev*; do
        [ ! -e "$f" ] || { echo "wasm-shim-fleet: error: no valid node kit in $d/kit (pulumi up delivers it)" >&2; exit 1; }; done
    echo "wasm-shim-fleet: nothing to remove (no node kit)"; echo unchanged; exit 0; }
. "$d/kit/$WSF_KIT/wsf.sh"
wsf 1 containerd-1 remove-table
