#!/usr/bin/env bash
# Installs everything the program and every test tier need, idempotently, one step after the other, and
# prints how long each step took. A step already done takes a second or so.
#
#   scripts/setup.sh            every step below, in order
#   scripts/setup.sh venv ...   only the named steps
#   scripts/setup.sh --list     the steps and what they do
#
# Heavy builds go to ${WSF_CACHE:-/var/cache/wasm-shim-fleet}, never into the repository. Needs root for the
# Debian packages (and the tiers need root for their daemons), Go >= 1.23 and the Go module proxy for builds.
set -euo pipefail
cd "$(dirname "$0")/.."

# ---- the steps: NAME | what it installs | command. One line adds one step. ----------------------------------
STEPS=(
  "packages|Debian packages: containerd 1.6, runc, openssh-server, ShellCheck, ... (integration tier)|step_packages"
  "venv|./venv with requirements-dev.txt (the program, and the test tools)|step_venv"
  "toolchain|Pulumi CLI, its providers, etcd, Kubernetes control plane, kwok, from Go modules (e2e tier, up)|toolchain/build.sh"
  "containerd2|containerd 2.x from Go modules (integration tier, flavor containerd-2)|tests/integration/build-containerd2.sh"
)

APT_PACKAGES="containerd runc openssh-server openssh-client shellcheck openssl curl iproute2 util-linux tar gzip"

step_packages() {
  local missing=() pkg
  for pkg in $APT_PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
    return 1
  fi
  echo "setup: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Tests start their own containerd and sshd daemons on private sockets and loopback ports; the packages'
  # system services (if any) are left as they are.
}

step_venv() {
  [ -x venv/bin/python ] || python3 -m venv venv
  venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
}

# ---- running them ---------------------------------------------------------------------------------------------
# Builds find Go on PATH or in its usual place.
command -v go >/dev/null 2>&1 || [ ! -x /usr/local/go/bin/go ] || export PATH="$PATH:/usr/local/go/bin"

names() { local s; for s in "${STEPS[@]}"; do echo "${s%%|*}"; done; }

wanted=()
for arg in "$@"; do
  case "$arg" in
    --list) for s in "${STEPS[@]}"; do IFS='|' read -r n what _ <<<"$s"; printf '%-12s %s\n' "$n" "$what"; done
            exit 0 ;;
    --toolchain) ;;   # older spelling: the toolchain is a step of every full run now
    -*) echo "setup: unknown option $arg (steps: $(names | tr '\n' ' '))" >&2; exit 2 ;;
    *) names | grep -qx -- "$arg" || { echo "setup: no step '$arg' (steps: $(names | tr '\n' ' '))" >&2; exit 2; }
       wanted+=("$arg") ;;
  esac
done

total=$SECONDS
i=0
for s in "${STEPS[@]}"; do
  IFS='|' read -r name what cmd <<<"$s"
  i=$((i + 1))
  if [ ${#wanted[@]} -gt 0 ] && ! printf '%s\n' "${wanted[@]}" | grep -qx -- "$name"; then
    continue
  fi
  echo "setup: [$i/${#STEPS[@]}] $name: $what" >&2
  start=$SECONDS
  # A step's stdout (build.sh prints its bin dir) is progress, not this script's result: it goes to stderr.
  # (in a subshell with errexit of its own: `if ! step` would switch errexit off inside the step)
  set +e
  ( set -e; $cmd ) >&2
  rc=$?
  set -e
  if [ $rc != 0 ]; then
    echo "setup: step $name failed (exit $rc) after $((SECONDS - start))s; fix what it says above and run" \
      "scripts/setup.sh $name again" >&2
    exit 1
  fi
  echo "setup: [$i/${#STEPS[@]}] $name done in $((SECONDS - start))s" >&2
done
echo "setup: done in $((SECONDS - total))s" >&2
