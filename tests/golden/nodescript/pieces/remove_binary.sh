# wasm-shim-fleet: remove slight@1.3.0 on node node-a
set -eu; WSF_NODE_ROOT=${WSF_NODE_ROOT:-'/'}
d=${WSF_NODE_ROOT%/}/var/lib/wasm-shim-fleet; WSF_KIT=$(cat "$d/kit/selected" 2>/dev/null) || WSF_KIT=-
[ "$(sha256sum 2>/dev/null <"$d/kit/$WSF_KIT/wsf.sh")" = "$WSF_KIT  -" ] || {
    for f in "${WSF_NODE_ROOT%/}"'/usr/local/bin/containerd-shim-slight-v1-3-0-v1' "$d"/binaries/'containerd-shim-slight-v1-3-0-v1.sha256'; do
        [ ! -e "$f" ] || { echo "wasm-shim-fleet: error: no valid node kit in $d/kit (pulumi up delivers it)" >&2; exit 1; }; done
    echo "wasm-shim-fleet: nothing to remove (no node kit)"; echo unchanged; exit 0; }
. "$d/kit/$WSF_KIT/wsf.sh"
wsf 1 containerd-1 remove-binary 'containerd-shim-slight-v1-3-0-v1' 'io.containerd.slight-v1-3-0.v1'
