#!/usr/bin/env bash
# Builds the real-engine toolchain of the e2e test tier from Go modules:
#   pulumi (CLI), pulumi-resource-kubernetes, etcd, kube-apiserver,
#   kube-controller-manager, kube-scheduler, kubectl, kubelet, kwok, and a stand-in
#   pulumi-resource-command (toolchain/command-provider).
# Everything lands in ${WSF_CACHE:-/var/cache/wasm-shim-fleet}/toolchain/<key>/bin,
# where <key> encodes every version below; tools already built are skipped.
# Progress goes to stderr; the last line on stdout is the bin dir.
#
#   BIN=$(toolchain/build.sh | tail -n1); export PATH="$BIN:$PATH"
set -Eeuo pipefail

# ---- versions ---------------------------------------------------------------
# Pulumi engine. The Python SDK is pinned at 3.272.0, but the module proxy does
# not serve github.com/pulumi/pulumi/pkg/v3 at 3.272.0 or 3.273.0; 3.274.1 is
# the nearest served release (a newer CLI drives an older SDK fine).
PULUMI_VERSION=3.274.1
# pulumi-kubernetes provider. github.com/pulumi/pulumi-kubernetes/provider/v4 is
# untagged; the proxy serves a single pseudo-version, commit f47bc2d6 of
# 2026-01-15. It is built with the version the pinned Python SDK asks for, so
# that the engine pairs the two.
PULUMI_K8S_VERSION=4.34.2
PULUMI_K8S_MODULE=v4.0.0-20260115033456-f47bc2d6f199
# provider/v4 replaces sdk/v4 by ../sdk; v4.24.0, the version it names, is not
# served: v4.29.0 is the nearest served one after it.
PULUMI_K8S_GO_SDK=v4.22.2
# Kubernetes control plane: every staging module of 1.35.4 is served (1.36.3
# lacks k8s.io/sample-cli-plugin). etcd 3.6 is what Kubernetes 1.35 is tested with
# (Debian bookworm ships 3.4).
K8S_VERSION=1.35.4
ETCD_VERSION=3.6.16
KWOK_VERSION=0.8.0
# github.com/pulumi/pulumi-command/provider is not served by the module proxy at
# any version: toolchain/command-provider/ is a stand-in implementing
# command:local:Command and command:remote:Command (over SSH, golang.org/x/crypto/ssh)
# as upstream documents them, reporting the version of the pinned Python SDK.
PULUMI_COMMAND_VERSION=1.2.1
# Bump when the recipe below changes in a way that changes the binaries.
RECIPE=1

# ---- helpers ----------------------------------------------------------------
log() { printf '[toolchain] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
CURRENT="setup"
trap 'rc=$?; log "ERROR: step \"$CURRENT\" failed (exit $rc); see the output above"; exit $rc' ERR

GO=${GO:-$(command -v go || true)}
[ -n "$GO" ] || GO=/usr/local/go/bin/go
[ -x "$GO" ] || die "no go toolchain found (set GO=/path/to/go or put go on PATH)"
command -v python3 >/dev/null || die "python3 is needed to read go.mod files"
command -v flock >/dev/null || die "flock (util-linux) is needed"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}   # the key names the Go that really compiles
GOVERSION=$("$GO" env GOVERSION)
CACHE=${WSF_CACHE:-/var/cache/wasm-shim-fleet}
KEY="${GOVERSION}-pulumi${PULUMI_VERSION}-pk8s${PULUMI_K8S_VERSION}-k8s${K8S_VERSION}-etcd${ETCD_VERSION}-kwok${KWOK_VERSION}-r${RECIPE}"
ROOT="$CACHE/toolchain/$KEY"
BIN="$ROOT/bin"
SRC="$ROOT/src"          # generated wrapper modules
mkdir -p "$BIN" "$SRC" "$CACHE/go/mod" "$CACHE/go/build" "$ROOT/tmp"

export GOMODCACHE="$CACHE/go/mod"
export GOCACHE="$CACHE/go/build"
export GOFLAGS="-trimpath -mod=mod"
export CGO_ENABLED=0
export GOTMPDIR="$ROOT/tmp"
export GOPATH="$CACHE/go/path"

exec 9>"$ROOT/.lock"
flock 9   # one build per key at a time; a second caller waits, then finds all built

# mkwrap DIR MODULE: a fresh wrapper module in DIR.
mkwrap() {
  rm -rf "$1"; mkdir -p "$1"
  printf 'module %s\n\ngo %s\n' "$2" "$("$GO" env GOVERSION | sed 's/^go//')" > "$1/go.mod"
}

# copy_replaces MOD@VER REL_VERSION: inside a wrapper module (cwd), adds the
# replace directives of MOD@VER's go.mod, which Go ignores outside its own
# module: module-path replaces are copied as they are; replaces by a relative
# path (monorepo siblings) become "same module at REL_VERSION".
copy_replaces() {
  local gomod
  gomod=$("$GO" mod download -json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  "$GO" mod edit -json "$gomod" | python3 -c '
import json, sys
rel = sys.argv[1]
for r in json.load(sys.stdin).get("Replace") or []:
    old, new = r["Old"], r["New"]
    if "Version" in old:
        continue
    if new.get("Version"):
        print("%s=%s@%s" % (old["Path"], new["Path"], new["Version"]))
    elif "FORBIDDEN" not in new["Path"]:
        print("%s=%s@%s" % (old["Path"], old["Path"], rel))
' "$2" | while read -r rep; do "$GO" mod edit -replace="$rep"; done
}

# step NAME FUNC [STAMP]: runs FUNC (in a subshell) unless $BIN/NAME exists
# (and, given STAMP, $BIN/.NAME.stamp holds STAMP).
step() {
  local name=$1 fn=$2 stamp=${3:-} start
  if [ -x "$BIN/$name" ] && { [ -z "$stamp" ] || [ "$(cat "$BIN/.$name.stamp" 2>/dev/null)" = "$stamp" ]; }; then
    log "up to date: $name"; return 0
  fi
  rm -f "$BIN/.$name.stamp"
  CURRENT="$name"
  log "building $name ..."
  start=$SECONDS
  ( set -Eeuo pipefail; "$fn" )
  [ -x "$BIN/$name" ] || die "building $name produced no $BIN/$name"
  [ -z "$stamp" ] || echo "$stamp" > "$BIN/.$name.stamp"
  log "built $name in $((SECONDS - start))s"
  CURRENT="-"
}

# install_bin FILE...: moves built files into $BIN (rename: never overwrites a running binary in place).
install_bin() { local f; for f in "$@"; do chmod 0755 "$f"; mv -f "$f" "$BIN/$(basename "$f")"; done; }

# ---- builds -----------------------------------------------------------------
build_etcd() {
  local w="$SRC/etcd" out="$ROOT/tmp/etcd.out"
  mkwrap "$w" wsf-toolchain/etcd; cd "$w"
  copy_replaces "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" "v$ETCD_VERSION"
  "$GO" get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
  rm -rf "$out"; mkdir -p "$out"
  "$GO" build -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3
  install_bin "$out/etcd"
}

build_kwok() {
  local w="$SRC/kwok" out="$ROOT/tmp/kwok.out"
  mkwrap "$w" wsf-toolchain/kwok; cd "$w"
  copy_replaces "sigs.k8s.io/kwok@v$KWOK_VERSION" "v$KWOK_VERSION"
  "$GO" get "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION"
  rm -rf "$out"; mkdir -p "$out"
  "$GO" build -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" -o "$out/kwok" sigs.k8s.io/kwok/cmd/kwok
  # kwok 0.8 has no built-in stages: ship the module's "fast" node/pod stages
  # (nodes turn Ready and heartbeat; pods on kwok nodes turn Running) beside it.
  local d f
  d=$("$GO" list -m -f '{{.Dir}}' sigs.k8s.io/kwok)/kustomize/stage
  mkdir -p "$ROOT/share/kwok"
  for f in node/fast/node-initialize.yaml node/heartbeat/node-heartbeat.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    [ -f "$d/$f" ] || die "kwok stage $f not found in $d"
    printf -- '---\n'; cat "$d/$f"
  done > "$ROOT/share/kwok/stages.yaml"
  install_bin "$out/kwok"
}

# k8s_wrapper: cd into the wrapper module of k8s.io/kubernetes (made once; reused by every Kubernetes binary).
k8s_wrapper() {
  local w="$SRC/kubernetes"
  if [ ! -f "$w/.complete" ]; then
    mkwrap "$w" wsf-toolchain/kubernetes; cd "$w"
    # staging modules k8s.io/<x> => k8s.io/<x> v0.<minor>.<patch>
    copy_replaces "k8s.io/kubernetes@v$K8S_VERSION" "v0.${K8S_VERSION#1.}"
    "$GO" get "k8s.io/kubernetes@v$K8S_VERSION"
    touch .complete
  fi
  cd "$w"
}

k8s_ldflags() {
  local minor v ld="-s -w"
  minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  for v in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $v.gitVersion=v$K8S_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor"
    ld="$ld -X $v.gitTreeState=clean -X $v.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$ld"
}

build_kubernetes() {
  local out="$ROOT/tmp/kubernetes.out"
  k8s_wrapper
  rm -rf "$out"; mkdir -p "$out"
  "$GO" build -ldflags "$(k8s_ldflags)" -o "$out/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubectl
  # kubectl last: its presence marks the set as complete
  install_bin "$out/kube-apiserver" "$out/kube-controller-manager" "$out/kube-scheduler" "$out/kubectl"
}

# The kubelet of the real-nodes tier (tests/nodes): same module and flags as the control plane, CGO off.
build_kubelet() {
  local out="$ROOT/tmp/kubelet.out"
  k8s_wrapper
  rm -rf "$out"; mkdir -p "$out"
  "$GO" build -ldflags "$(k8s_ldflags)" -o "$out/" k8s.io/kubernetes/cmd/kubelet
  install_bin "$out/kubelet"
}

build_pulumi() {
  local w="$SRC/pulumi" out="$ROOT/tmp/pulumi.out" exec
  mkwrap "$w" wsf-toolchain/pulumi; cd "$w"
  copy_replaces "github.com/pulumi/pulumi/pkg/v3@v$PULUMI_VERSION" "v$PULUMI_VERSION"
  copy_replaces "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION" "v$PULUMI_VERSION"
  "$GO" get "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@v$PULUMI_VERSION" "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION"
  rm -rf "$out"; mkdir -p "$out"
  "$GO" build -tags osusergo,grpcnotrace \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
    -o "$out/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
  # The Python language host's exec shim lives in the sdk module; ship it beside
  # the CLI (the host itself, module .../sdk/python/cmd/pulumi-language-python/v3,
  # is not served by the module proxy; Automation API inline programs do not need it).
  exec=$("$GO" list -m -f '{{.Dir}}' "github.com/pulumi/pulumi/sdk/v3")/python/cmd/pulumi-language-python-exec
  [ -f "$exec" ] || die "pulumi-language-python-exec not found in the sdk module ($exec)"
  cp "$exec" "$out/pulumi-language-python-exec"
  install_bin "$out/pulumi-language-python-exec" "$out/pulumi"
}

build_pulumi_kubernetes() {
  local w="$SRC/pulumi-kubernetes" out="$ROOT/tmp/pulumi-kubernetes.out" mod d
  mod=github.com/pulumi/pulumi-kubernetes/provider/v4
  mkwrap "$w" wsf-toolchain/pulumi-resource-kubernetes; cd "$w"
  copy_replaces "$mod@$PULUMI_K8S_MODULE" "$PULUMI_K8S_GO_SDK"
  "$GO" get "$mod@$PULUMI_K8S_MODULE"
  # The main package embeds schema-embed.json and terraform-mapping-embed.json,
  # which `go generate` makes from schema.json / terraform-mapping.json and which
  # the module zip lacks: build a copy of the main package in the wrapper and run
  # its generator (generate.go, stamps VERSION into the schema) there.
  d=$("$GO" list -m -f '{{.Dir}}' "$mod")/cmd/pulumi-resource-kubernetes
  cp "$d/main.go" "$d/generate.go" "$d/schema.json" "$d/terraform-mapping.json" .
  chmod u+w ./*
  sed -i '/^\/\/go:generate/d' main.go
  "$GO" mod tidy
  VERSION="$PULUMI_K8S_VERSION" "$GO" run generate.go
  rm -f schema.json terraform-mapping.json
  rm -rf "$out"; mkdir -p "$out"
  "$GO" build \
    -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$PULUMI_K8S_VERSION" \
    -o "$out/pulumi-resource-kubernetes" .
  install_bin "$out/pulumi-resource-kubernetes"
}

build_command_standin() {
  local w="$SRC/pulumi-command" out="$ROOT/tmp/pulumi-command.out"
  mkwrap "$w" wsf-toolchain/pulumi-resource-command; cd "$w"
  cp "$HERE"/command-provider/*.go .
  copy_replaces "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION" "v$PULUMI_VERSION"
  "$GO" get "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION"
  "$GO" mod tidy
  rm -rf "$out"; mkdir -p "$out"
  "$GO" build -ldflags "-s -w -X main.version=$PULUMI_COMMAND_VERSION" -o "$out/pulumi-resource-command" .
  install_bin "$out/pulumi-resource-command"
}

# ---- main ---------------------------------------------------------------------
# (a function, parsed whole before it runs: editing this file mid-run is harmless)
main() {
  log "cache: $ROOT"
  log "go: $GOVERSION ($GO); GOMODCACHE=$GOMODCACHE GOCACHE=$GOCACHE"
  TOTAL=$SECONDS
  step etcd build_etcd
  step kwok build_kwok stages-1
  step kubectl build_kubernetes
  step kubelet build_kubelet
  step pulumi build_pulumi
  step pulumi-resource-kubernetes build_pulumi_kubernetes
  step pulumi-resource-command build_command_standin \
    "$(cat "$HERE"/command-provider/*.go | sha256sum | cut -c1-16)-$PULUMI_COMMAND_VERSION"
  rm -rf "$ROOT/tmp"
  if [ "${WSF_TOOLCHAIN_TRIM:-0}" = 1 ]; then
    # Drops Go's build cache (~10 GB) and the wrapper modules; the binaries stay,
    # but a version bump then recompiles from scratch.
    log "trimming $GOCACHE and $SRC"
    "$GO" clean -cache
    rm -rf "$SRC"
  fi

  cat > "$ROOT/versions.txt" <<VERS
key=$KEY
go=$GOVERSION
pulumi=v$PULUMI_VERSION (github.com/pulumi/pulumi/pkg/v3, sdk/v3)
pulumi-resource-kubernetes=$PULUMI_K8S_VERSION (reported; built from github.com/pulumi/pulumi-kubernetes/provider/v4@$PULUMI_K8S_MODULE, sdk/v4 go $PULUMI_K8S_GO_SDK)
kubernetes=v$K8S_VERSION (kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet)
etcd=v$ETCD_VERSION
kwok=v$KWOK_VERSION
pulumi-resource-command=$PULUMI_COMMAND_VERSION (reported; stand-in from toolchain/command-provider: command:local:Command and command:remote:Command)
VERS
  log "done in $((SECONDS - TOTAL))s; $(du -sh "$BIN" | cut -f1) in $BIN"
  echo "$BIN"
}

main "$@"; exit $?
