#!/usr/bin/env bash
# Installs what the program and every test tier need, idempotently:
#   - Debian packages: containerd and openssh-server for the integration tier (real daemons on loopback);
#   - the Python virtualenv ./venv with requirements-dev.txt;
#   - with --toolchain: the real-engine toolchain (Pulumi engine, providers, Kubernetes control plane,
#     kwok), built from Go modules into ${WSF_CACHE:-/var/cache/wasm-shim-fleet} (see toolchain/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="containerd runc openssh-server openssh-client shellcheck openssl curl iproute2 util-linux tar gzip"
# The nodes tier: its Wasm shim's build (protoc, libseccomp headers), the shim's runtime library, the WASI test
# module (wat2wasm), the pod network (CNI plugins) and the static C pause binary (gcc, libc6-dev).
APT_PACKAGES="$APT_PACKAGES protobuf-compiler libseccomp-dev libseccomp2 pkg-config wabt containernetworking-plugins gcc libc6-dev"

missing=""
for pkg in $APT_PACKAGES; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing Debian packages:$missing (run as root, or install them)" >&2
    exit 1
  fi
  echo "setup: installing$missing" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# Tests start their own containerd and sshd daemons on private sockets and loopback ports; the packages'
# system services (if any) are left as they are.

if [ ! -x venv/bin/python ]; then
  python3 -m venv venv
fi
venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt

if [ "${1:-}" = "--toolchain" ]; then
  # The nodes tier's Wasm shim (cargo; cached like the Go toolchain), built beside the toolchain: their
  # download phases overlap the other's compiling.
  tests/nodes/build-shim.sh >/dev/null &
  shim=$!
  toolchain/build.sh >/dev/null
  wait "$shim"
fi
echo "setup: done" >&2
