#!/usr/bin/env bash
# Builds the real-nodes tier's Wasm shim (tests/nodes/shim: runwasi's containerd-shim-wasm + wasmtime, from
# crates.io) once per version, and packs each build as a release tarball with its sha256:
#
#   <dist>/containerd-shim-fleettest-v<version>-linux-<arch>.tar.gz         member: containerd-shim-fleettest-v1
#   <dist>/containerd-shim-fleettest-v<version>-linux-<arch>.tar.gz.sha256
#
# The version is fixed at build time (FLEETTEST_SHIM_VERSION, read with option_env!), so the builds after the
# first recompile only the shim crate: this script fails if one of them recompiles anything else.
# Everything is cached outside the repository under ${WSF_CACHE:-/var/cache/wasm-shim-fleet}/shim:
#   cargo/   CARGO_HOME (crates.io index and sources)      target/  cargo's build directory
#   dist/<key>/  the tarballs, keyed by the crate's sources, Cargo.lock and rustc version
# A version whose tarball is already there is not rebuilt. Progress and build times go to stderr (and to
# <dist>/build-times.txt); the last line on stdout is the dist directory.
#
#   tests/nodes/build-shim.sh [VERSION...]      (default: 1.4.0 1.4.1 1.4.2)
set -Eeuo pipefail

log() { printf '[shim] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CRATE="$HERE/shim"
BIN_NAME=containerd-shim-fleettest-v1
VERSIONS=("$@")
[ ${#VERSIONS[@]} -gt 0 ] || VERSIONS=(1.4.0 1.4.1 1.4.2)

CARGO=${CARGO:-$(command -v cargo || echo "$HOME/.cargo/bin/cargo")}
[ -x "$CARGO" ] || die "cargo not found: install Rust 1.95 with rustup (https://rustup.rs) or set CARGO"
RUSTC_VERSION=$("$(dirname "$CARGO")/rustc" -V 2>/dev/null || rustc -V)
command -v protoc >/dev/null || die "protoc not found (Debian package protobuf-compiler; scripts/setup.sh installs it)"
pkg-config --exists libseccomp 2>/dev/null || [ -e /usr/lib/x86_64-linux-gnu/libseccomp.so ] \
  || [ -e /usr/lib/aarch64-linux-gnu/libseccomp.so ] \
  || die "libseccomp's headers are missing (Debian package libseccomp-dev; scripts/setup.sh installs it)"

CACHE=${WSF_CACHE:-/var/cache/wasm-shim-fleet}/shim
export CARGO_HOME="$CACHE/cargo" CARGO_TARGET_DIR="$CACHE/target"
mkdir -p "$CARGO_HOME" "$CARGO_TARGET_DIR" "$CACHE/dist"

KEY=$( { cat "$CRATE/Cargo.toml" "$CRATE/Cargo.lock"; find "$CRATE/src" -type f | sort | xargs cat; \
         echo "$RUSTC_VERSION"; } | sha256sum | cut -c1-16)
DIST="$CACHE/dist/$KEY"
mkdir -p "$DIST"
ARCH=$(uname -m)
case "$ARCH" in x86_64) ARCH=x86_64 ;; aarch64) ARCH=aarch64 ;; *) die "unsupported architecture $ARCH" ;; esac

exec 9>"$CACHE/.lock"
flock 9   # one build at a time; a second caller waits, then finds the tarballs built

tarball() { echo "$DIST/containerd-shim-fleettest-v$1-linux-$ARCH.tar.gz"; }

first=1
for v in "${VERSIONS[@]}"; do
  [[ "$v" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "version $v is not X.Y.Z"
  out=$(tarball "$v")
  if [ -s "$out" ] && [ -s "$out.sha256" ]; then
    log "cached: $out"
    continue
  fi
  log "building $BIN_NAME $v ($RUSTC_VERSION) in $CARGO_TARGET_DIR ..."
  start=$SECONDS
  buildlog="$DIST/build-$v.log"
  (cd "$CRATE" && FLEETTEST_SHIM_VERSION="$v" FLEETTEST_SHIM_REVISION="fleettest-$KEY" \
     "$CARGO" build --release --locked) >"$buildlog" 2>&1 || { tail -n 40 "$buildlog" >&2; die "cargo build failed"; }
  took=$((SECONDS - start))
  compiled=$(grep -c '^ *Compiling ' "$buildlog" || true)
  others=$(grep '^ *Compiling ' "$buildlog" | grep -v 'Compiling containerd-shim-fleettest ' || true)
  if [ $first = 0 ] && [ -n "$others" ]; then
    die "the build of $v recompiled more than the shim crate (the version must only change option_env!):
$others"
  fi
  kind=$([ "$compiled" -gt 1 ] && echo cold || echo warm)
  log "built $v in ${took}s ($kind: $compiled crates compiled)"
  echo "$(date -u +%FT%TZ) $v ${took}s $kind $compiled-crates $RUSTC_VERSION" >> "$DIST/build-times.txt"

  built="$CARGO_TARGET_DIR/release/$BIN_NAME"
  stage="$DIST/.stage-$v"
  rm -rf "$stage"; mkdir -p "$stage"
  cp "$built" "$stage/$BIN_NAME"
  printed=$("$stage/$BIN_NAME" -v) || die "$BIN_NAME -v failed"
  grep -q "$v" <<<"$printed" || die "$BIN_NAME -v does not print $v: $printed"
  # Reproducible archive: fixed order, owner and times, no gzip timestamp.
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$stage" -cf - "$BIN_NAME" \
    | gzip -n -9 > "$out.tmp"
  mv "$out.tmp" "$out"
  (cd "$DIST" && sha256sum "$(basename "$out")" > "$(basename "$out").sha256")
  rm -rf "$stage"
  first=0
done
log "dist: $DIST"
echo "$DIST"
