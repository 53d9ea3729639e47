#!/bin/sh
# Build containerd 2.x from the Go module proxy for the integration tier (flavor containerd-2, config version 3).
#
# Idempotent: if the pinned version is already built, this prints its path and does nothing else.
# Output lives outside the repository, in /var/cache/wasm-shim-fleet/containerd2 (override with
# CONTAINERD2_DIR); the Go module and build caches are the usual ones of the user.
# Prints the path of the built binary on its last line.
set -eu

version=${CONTAINERD2_VERSION:-v2.2.9}
dir=${CONTAINERD2_DIR:-/var/cache/wasm-shim-fleet/containerd2}
bin="$dir/$version/containerd"

if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q " $version "; then
    echo "$bin"
    exit 0
fi

command -v go >/dev/null 2>&1 || { echo "build-containerd2: go is not installed (needs Go >= 1.23)" >&2; exit 1; }

mkdir -p "$dir/$version"
tmp="$dir/$version/.build.$$"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"
# CGO off and no_btrfs: no C headers needed; the daemon only has to load its config and the CRI plugin.
# The version ldflag makes `containerd --version` report the pinned version (checked above).
CGO_ENABLED=0 GOBIN="$tmp" GOFLAGS=-buildvcs=false go install \
    -tags 'no_btrfs no_devmapper no_zfs' \
    -ldflags "-X github.com/containerd/containerd/v2/version.Version=$version" \
    "github.com/containerd/containerd/v2/cmd/containerd@$version" >&2
mv "$tmp/containerd" "$bin"
echo "$bin"
