# wasm-shim-fleet: install slight@1.3.0 on node node-a
set -eu; WSF_NODE_ROOT=${WSF_NODE_ROOT:-'/'}
d=${WSF_NODE_ROOT%/}/var/lib/wasm-shim-fleet; WSF_KIT=$(cat "$d/kit/selected" 2>/dev/null) || WSF_KIT=-
[ "$(sha256sum 2>/dev/null <"$d/kit/$WSF_KIT/wsf.sh")" = "$WSF_KIT  -" ] || { echo "wasm-shim-fleet: error: no valid node kit in $d/kit (pulumi up delivers it)" >&2; exit 1; }
. "$d/kit/$WSF_KIT/wsf.sh"
wsf 1 containerd-1 install-binary \
    'containerd-shim-slight-v1-3-0-v1' \
    'https://artifacts.example.org/slight/1.3.0/slight-v1.3.0-linux-amd64.tar.gz' \
    'ff0a2ef78fa83e1943485dffef90c83dea89e33a0221f67af99268defe29bb7f' \
    'bin/containerd-shim-slight-v1' \
    'version'
