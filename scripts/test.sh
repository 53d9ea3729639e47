#!/usr/bin/env bash
# Runs every test tier, in order of speed; stops at the first tier that fails or runs no test
# (pytest exits 5 when nothing was collected, which counts as a failure here).
#   unit         pure core, golden files, Pulumi mocks
#   integration  real containerd and sshd on loopback            (needs scripts/setup.sh)
#   e2e          real Pulumi engine + kube-apiserver + kwok      (needs scripts/setup.sh --toolchain)
#   nodes        real kubelets + containerd + a real Wasm shim   (needs scripts/setup.sh --toolchain)
# Extra arguments go to every pytest run, e.g. scripts/test.sh -x -q
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-venv/bin/python}
status=0
for tier in "not integration and not e2e and not nodes" "integration" "e2e" "nodes"; do
  echo "=== tier: $tier" >&2
  "$PY" -m pytest -m "$tier" "$@" || { status=$?; echo "=== tier '$tier' failed (exit $status)" >&2; break; }
done
exit $status
