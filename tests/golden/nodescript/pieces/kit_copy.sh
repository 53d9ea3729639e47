#!/bin/sh
# wasm-shim-fleet: deliver the node kit 0000000000000000000000000000000000000000000000000000000000000000
# node node-a (pool pool-a): kit/<sha256>/wsf.sh, checked, then named in kit/selected
set -eu
if [ -z "${WSF_NODE_ROOT:-}" ]; then WSF_NODE_ROOT='/'; fi
wsf_kits=${WSF_NODE_ROOT%/}/var/lib/wasm-shim-fleet/kit
wsf_sha=0000000000000000000000000000000000000000000000000000000000000000
mkdir -p "$wsf_kits/$wsf_sha"
wsf_tmp=$wsf_kits/$wsf_sha/.wsf.sh.wsf-tmp
cp '/srv/project/components/core/kit/wsf.sh' "$wsf_tmp"
wsf_sum=$(sha256sum < "$wsf_tmp")
if [ "${wsf_sum%% *}" != "$wsf_sha" ]; then
    rm -f "$wsf_tmp"
    echo "wasm-shim-fleet: error: the kit has sha256 ${wsf_sum%% *}, expected $wsf_sha; nothing was changed" >&2
    exit 1
fi
mv -f "$wsf_tmp" "$wsf_kits/$wsf_sha/wsf.sh"
if [ "$(cat "$wsf_kits/selected" 2>/dev/null || true)" = "$wsf_sha" ]; then echo unchanged; exit 0; fi
printf '%s\n' "$wsf_sha" > "$wsf_kits/.selected.wsf-tmp"
mv -f "$wsf_kits/.selected.wsf-tmp" "$wsf_kits/selected"
echo "wasm-shim-fleet: selected node kit $wsf_sha"
echo changed
