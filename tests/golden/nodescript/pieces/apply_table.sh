# wasm-shim-fleet: write the containerd handler table on node node-a
set -eu; WSF_NODE_ROOT=${WSF_NODE_ROOT:-'/'} WSF_RESTART=${WSF_RESTART:-'systemctl restart containerd'}
d=${WSF_NODE_ROOT%/}/var/lib/wasm-shim-fleet; WSF_KIT=$(cat "$d/kit/selected" 2>/dev/null) || WSF_KIT=-
[ "$(sha256sum 2>/dev/null <"$d/kit/$WSF_KIT/wsf.sh")" = "$WSF_KIT  -" ] || { echo "wasm-shim-fleet: error: no valid node kit in $d/kit (pulumi up delivers it)" >&2; exit 1; }
. "$d/kit/$WSF_KIT/wsf.sh"
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
