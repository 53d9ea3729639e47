#!/usr/bin/env bash
# Runs every test tier, in order of speed; stops at the first tier that fails or runs no test
# (pytest exits 5 when nothing was collected, which counts as a failure here).
#   unit         pure core, golden files, Pulumi mocks, the engine-free commands of README.md and docs/
#   integration  real containerd and sshd on loopback
#   e2e          real Pulumi engine + kube-apiserver + kwok, and every command of README.md and docs/
#   nodes        real kubelets, each with its own containerd, running a real Wasm shim
# Needs what scripts/setup.sh installs; a tier whose prerequisite is missing fails and says what to run.
# Extra arguments go to every pytest run, e.g. scripts/test.sh -x -q
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-venv/bin/python}
if [ ! -x "$PY" ]; then
  echo "test: no $PY; run scripts/setup.sh first" >&2
  exit 1
fi
start=$SECONDS
for tier in "unit|not integration and not e2e and not nodes" "integration|integration" "e2e|e2e" "nodes|nodes"; do
  marker=${tier#*|}; tier=${tier%%|*}
  echo "=== tier: $tier (pytest -m '$marker')" >&2
  tier_start=$SECONDS
  status=0
  "$PY" -m pytest -m "$marker" "$@" || status=$?
  if [ $status != 0 ]; then
    echo "=== tier '$tier' failed (exit $status) after $((SECONDS - tier_start))s" >&2
    exit $status
  fi
  echo "=== tier '$tier' passed in $((SECONDS - tier_start))s" >&2
done
echo "test: every tier passed in $((SECONDS - start))s" >&2
