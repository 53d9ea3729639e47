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

CACHE=${WSF_CACHE:-/var/cache/wasm-shim-fleet}
# Go for the builds: any Go >= GO_MIN found on PATH or in /usr/local/go, else GO_VERSION, fetched as the module
# golang.org/toolchain (what `go` itself downloads for GOTOOLCHAIN) and checked against its go.sum hash (h1,
# from sum.golang.org).
GO_MIN=1.23
GO_VERSION=1.26.8
GO_H1_amd64="h1:ZOmGe1OnfREDMIdb1Qi4G9JSuDPBLGExZMQ4nis1RXM="
GO_H1_arm64="h1:sYL/O6MqS68ML0kjsQ36WoYIpJqkw60TxizWUYUKQMc="
GO_DIST="$CACHE/go-dist/go$GO_VERSION"

# ---- the steps: NAME | what it installs | command. One line adds one step. ----------------------------------
STEPS=(
  "packages|Debian packages: containerd 1.6, runc, openssh-server, ShellCheck, ... (integration tier)|step_packages"
  "go|Go $GO_VERSION from the Go module proxy (golang.org/toolchain), unless a Go >= $GO_MIN is installed|step_go"
  "venv|./venv with requirements-dev.txt (the program, and the test tools)|step_venv"
  "shim|a real containerd Wasm shim in three versions, built from crates.io with cargo (nodes tier)|tests/nodes/build-shim.sh|background"
  "toolchain|Pulumi CLI, its providers, etcd, Kubernetes control plane, kubelet, kwok, from Go modules (e2e, nodes, up)|toolchain/build.sh"
  "containerd2|containerd 2.2 from Go modules (integration and nodes tiers, flavor containerd-2)|tests/integration/build-containerd2.sh"
  "containerd23|containerd 2.3 from Go modules (integration tier, config version 4)|env CONTAINERD2_VERSION=v2.3.0 tests/integration/build-containerd2.sh"
)
# A step marked `background` starts when it is reached and runs beside the steps after it (the Rust and Go builds
# each leave a core idle much of the time); the run waits for it at the end and fails if it failed.

APT_PACKAGES="containerd runc openssh-server openssh-client shellcheck openssl curl iproute2 util-linux tar gzip"
# The nodes tier: its Wasm shim's build (protoc, libseccomp headers), the shim's runtime library, the WASI test
# module (wat2wasm), the pod network (CNI plugins) and the static C pause binary (gcc, libc6-dev).
APT_PACKAGES="$APT_PACKAGES protobuf-compiler libseccomp-dev libseccomp2 pkg-config wabt containernetworking-plugins gcc libc6-dev"

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

go_ok() {  # a go on PATH whose version is >= GO_MIN
  local v
  v=$(go env GOVERSION 2>/dev/null) || return 1
  v=${v#go}
  [ "$(printf '%s\n%s\n' "$GO_MIN" "$v" | sort -V | head -n1)" = "$GO_MIN" ]
}

find_go() {  # puts a usable go first on PATH, if there is one
  local dir
  go_ok && return 0
  for dir in /usr/local/go/bin "$GO_DIST/bin"; do
    if [ -x "$dir/go" ]; then
      PATH="$dir:$PATH"
      if go_ok; then export PATH; return 0; fi
      PATH=${PATH#"$dir:"}
    fi
  done
  return 1
}

step_go() {
  find_go && { echo "setup: using $(command -v go) ($(go env GOVERSION))" >&2; return 0; }
  local arch h1 proxy mod tmp
  arch=$(dpkg --print-architecture)
  case "$arch" in amd64) h1=$GO_H1_amd64 ;; arm64) h1=$GO_H1_arm64 ;;
    *) echo "setup: no pinned Go for $arch; install Go >= $GO_MIN and run again" >&2; return 1 ;; esac
  proxy=${GOPROXY:-https://proxy.golang.org}; proxy=${proxy%%,*}; proxy=${proxy%%|*}
  mod="v0.0.1-go$GO_VERSION.linux-$arch"
  tmp=$(mktemp -d "$CACHE/go-dist.XXXXXX")
  curl -fsSL --retry 3 -o "$tmp/go.zip" "$proxy/golang.org/toolchain/@v/$mod.zip"
  # Go's dirhash Hash1 of the module zip, then extraction with the exec bits the zip cannot carry.
  python3 - "$tmp/go.zip" "$h1" "golang.org/toolchain@$mod/" "$tmp/go" <<'PY'
import base64, hashlib, os, sys, zipfile
path, want, prefix, dest = sys.argv[1:]
z = zipfile.ZipFile(path)
names = sorted(i.filename for i in z.infolist() if not i.is_dir())
lines = "".join(f"{hashlib.sha256(z.read(n)).hexdigest()}  {n}\n" for n in names)
got = "h1:" + base64.b64encode(hashlib.sha256(lines.encode()).digest()).decode()
if got != want:
    sys.exit(f"setup: {path}: hash {got}, expected {want}; not installed")
for n in names:
    out = os.path.join(dest, n[len(prefix):])
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "wb") as f:
        f.write(z.read(n))
    rel = n[len(prefix):]
    if rel.startswith("bin/") or rel.startswith("pkg/tool/"):
        os.chmod(out, 0o755)
PY
  mkdir -p "$(dirname "$GO_DIST")"
  rm -rf "$GO_DIST"
  mv "$tmp/go" "$GO_DIST"
  rm -rf "$tmp"
  find_go
  echo "setup: Go $GO_VERSION in $GO_DIST/bin (the builds here use it; put it on PATH for your own)" >&2
}

step_venv() {
  [ -x venv/bin/python ] || python3 -m venv venv
  venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
}

# ---- running them ---------------------------------------------------------------------------------------------

names() { local s; for s in "${STEPS[@]}"; do echo "${s%%|*}"; done; }

wanted=()
for arg in "$@"; do
  case "$arg" in
    --list) for s in "${STEPS[@]}"; do IFS='|' read -r n what _ _ <<<"$s"; printf '%-12s %s\n' "$n" "$what"; done
            exit 0 ;;
    --toolchain) ;;   # older spelling: the toolchain is a step of every full run now
    -*) echo "setup: unknown option $arg (steps: $(names | tr '\n' ' '))" >&2; exit 2 ;;
    *) names | grep -qx -- "$arg" || { echo "setup: no step '$arg' (steps: $(names | tr '\n' ' '))" >&2; exit 2; }
       wanted+=("$arg") ;;
  esac
done

total=$SECONDS
i=0
bg_pids=() bg_names=() bg_logs=() bg_starts=()
for s in "${STEPS[@]}"; do
  IFS='|' read -r name what cmd mode <<<"$s"
  i=$((i + 1))
  if [ ${#wanted[@]} -gt 0 ] && ! printf '%s\n' "${wanted[@]}" | grep -qx -- "$name"; then
    continue
  fi
  echo "setup: [$i/${#STEPS[@]}] $name: $what" >&2
  start=$SECONDS
  find_go || true  # every step after `go` builds with it
  if [ "${mode:-}" = background ] && [ ${#wanted[@]} -ne 1 ]; then
    mkdir -p "$CACHE"
    log=$(mktemp "$CACHE/setup-$name.XXXXXX.log")
    ( set -e; $cmd ) >"$log" 2>&1 &
    bg_pids+=($!) bg_names+=("$name") bg_logs+=("$log") bg_starts+=("$start")
    echo "setup: [$i/${#STEPS[@]}] $name runs in the background (log: $log)" >&2
    continue
  fi
  # A step's stdout (build.sh prints its bin dir) is progress, not this script's result: it goes to stderr.
  # (in a subshell with errexit of its own: `if ! step` would switch errexit off inside the step)
  set +e
  ( set -e; $cmd ) >&2
  rc=$?
  set -e
  if [ $rc != 0 ]; then
    echo "setup: step $name failed (exit $rc) after $((SECONDS - start))s; fix what it says above and run" \
      "scripts/setup.sh $name again" >&2
    [ ${#bg_pids[@]} -eq 0 ] || kill "${bg_pids[@]}" 2>/dev/null || true
    exit 1
  fi
  echo "setup: [$i/${#STEPS[@]}] $name done in $((SECONDS - start))s" >&2
done
for j in "${!bg_pids[@]}"; do
  set +e
  wait "${bg_pids[$j]}"
  rc=$?
  set -e
  name=${bg_names[$j]}
  if [ $rc != 0 ]; then
    tail -n 30 "${bg_logs[$j]}" >&2
    echo "setup: step $name failed (exit $rc) after $((SECONDS - bg_starts[j]))s; its log: ${bg_logs[$j]};" \
      "fix what it says and run scripts/setup.sh $name again" >&2
    exit 1
  fi
  rm -f "${bg_logs[$j]}"
  echo "setup: $name (background) done in $((SECONDS - bg_starts[j]))s" >&2
done
echo "setup: done in $((SECONDS - total))s" >&2
