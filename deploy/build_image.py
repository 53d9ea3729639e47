#!/usr/bin/env python3
"""Build the node image of wasm-shim-fleet from this repository's sources: no base image, nothing pulled.

The image holds two static binaries and nothing else:

    /wsf-enter   deploy/runner/wsf-enter.c (C): joins the container runtime's namespaces and runs the host's sh
    /wsf-agent   deploy/agent (Go, standard library only): the node agent of agent pools (entrypoint)

It serves as `kubernetes.agentImage` (agent pools) and as `kubernetes.runnerImage` (transport kubernetes, whose
pods run `/wsf-enter` only). Usage:

    python3 deploy/build_image.py [--out FILE] [--repository REPO]

prints the image reference `REPO@sha256:<manifest digest>` and, on the next line, the OCI image archive
(`oci-archive`, an OCI image layout in a tar). Push it to your registry with any OCI tool, e.g.
`skopeo copy oci-archive:FILE docker://registry.example.org/wasm-shim-fleet/node:<tag>`, and pin the digest it
reports in the stack config. The build is reproducible (fixed file times and owners, `-trimpath`, no build id):
the same sources, compilers and architecture give the same digest. It is cached by that key under $WSF_CACHE/image
(default /var/cache/wasm-shim-fleet/image), one archive per repository name (the archive holds the name); a warm
build takes well under a second.

Needs gcc with a static libc (Debian: gcc, libc6-dev) and Go >= 1.23 (no module is downloaded).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent
ENTER_SOURCE = DEPLOY / "runner" / "wsf-enter.c"
AGENT_DIR = DEPLOY / "agent"
REPOSITORY = "localhost/wasm-shim-fleet/node"
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


class BuildError(Exception):
    """A build step failed; the message says which and why."""


def _layer(files: dict[str, tuple[bytes, int]]) -> bytes:
    """An uncompressed tar layer: path -> (content, mode), reproducible (fixed owner and times)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, (data, mode) in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime, info.uid, info.gid = len(data), mode, 0, 0, 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def oci_tarball(out: Path, ref: str, files: dict[str, tuple[bytes, int]], entrypoint: list[str],
                arch: str = ARCH) -> Path:
    """Write an OCI image layout tarball of a one-layer image holding `files`, named `ref`, and return its path."""
    blobs: dict[str, bytes] = {}

    def blob(data: bytes) -> dict:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"digest": digest, "size": len(data)}

    layer = _layer(files)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({
        "architecture": arch, "os": "linux",
        "config": {"Entrypoint": entrypoint, "Env": ["PATH=/"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }, sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **blob(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **blob(layer)}],
    }, sort_keys=True).encode()
    index = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", **blob(manifest),
            "platform": {"architecture": arch, "os": "linux"},
            "annotations": {"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": ref},
        }],
    }, sort_keys=True).encode()
    entries = {"oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(), "index.json": index}
    for digest, data in blobs.items():
        entries["blobs/sha256/" + digest.split(":", 1)[1]] = data
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    with tarfile.open(tmp, "w") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    tmp.replace(out)
    return out


def manifest_digest(tarball: Path) -> str:
    with tarfile.open(tarball) as tar:
        member = tar.extractfile("index.json")
        assert member is not None
        index = json.loads(member.read())
    return index["manifests"][0]["digest"]


def named_image(out: Path, repository: str, files: dict[str, tuple[bytes, int]], entrypoint: list[str]) -> str:
    """Pack `files` as an image named by its own digest (`repository@sha256:...`): the manifest's digest does not
    depend on the index that names it, so pack once to learn it, then name the image by it."""
    # Both packings go to a file of this process's own and only the final one replaces `out`: a reader (another
    # build sharing the cache, an import) never sees the interim name.
    tmp = out.with_name(f".{out.name}.{os.getpid()}.named")
    try:
        oci_tarball(tmp, f"{repository}:build", files, entrypoint)
        ref = f"{repository}@{manifest_digest(tmp)}"
        oci_tarball(tmp, ref, files, entrypoint)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return ref


def _tool(name: str, hint: str) -> str:
    found = shutil.which(name) or (str(Path("/usr/local/go/bin/go")) if name == "go" and
                                   Path("/usr/local/go/bin/go").is_file() else None)
    if not found:
        raise BuildError(f"{name} is not installed ({hint})")
    return found


def _version(argv: list[str]) -> str:
    p = subprocess.run(argv, capture_output=True, text=True)
    return (p.stdout or p.stderr).splitlines()[0] if p.returncode == 0 else "?"


def sources_key(gcc: str, go: str) -> str:
    """What the binaries are built from: every source file, the compilers' versions and the architecture."""
    h = hashlib.sha256()
    for path in [ENTER_SOURCE, *sorted(AGENT_DIR.glob("*.go")), AGENT_DIR / "go.mod"]:
        if path.name.endswith("_test.go"):
            continue
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    h.update(_version([gcc, "--version"]).encode() + _version([go, "version"]).encode() + ARCH.encode())
    return h.hexdigest()


def build_binaries(cache: Path) -> tuple[Path, Path, str]:
    """(wsf-enter, wsf-agent, key), built once per key into the cache."""
    gcc = _tool("gcc", "Debian: apt-get install gcc libc6-dev")
    go = _tool("go", "Go >= 1.23")
    key = sources_key(gcc, go)
    where = cache / key[:32]
    enter, agent_bin = where / "wsf-enter", where / "wsf-agent"
    if enter.is_file() and agent_bin.is_file():
        return enter, agent_bin, key
    tmp = cache / f".build.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        p = subprocess.run([gcc, "-static", "-Os", "-s", "-Wall", "-Werror", "-o", str(tmp / "wsf-enter"),
                            str(ENTER_SOURCE)], capture_output=True, text=True)
        if p.returncode != 0:
            raise BuildError(f"building wsf-enter failed (gcc, static libc6-dev):\n{p.stderr.strip()}")
        env = {**os.environ, "CGO_ENABLED": "0", "GOOS": "linux", "GOARCH": ARCH, "GOTOOLCHAIN": "local",
               "GOFLAGS": "", "GOCACHE": str(cache / "go-build"), "GOPATH": str(cache / "gopath")}
        p = subprocess.run([go, "build", "-trimpath", "-ldflags", f"-s -w -buildid= -X main.version={key[:12]}",
                            "-o", str(tmp / "wsf-agent"), "."], cwd=AGENT_DIR, env=env, capture_output=True,
                           text=True)
        if p.returncode != 0:
            raise BuildError(f"building wsf-agent failed (go build in {AGENT_DIR}):\n{p.stderr.strip()}")
        shutil.rmtree(where, ignore_errors=True)
        tmp.replace(where)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return enter, agent_bin, key


def archive_name(repository: str) -> str:
    """The cached archive's file name: one per repository, since the name is inside the archive (a build for
    another repository must never replace an archive that is being imported under its own name)."""
    readable = "".join(c if c.isalnum() or c in "._-" else "_" for c in repository)[:80]
    return f"{readable}-{hashlib.sha256(repository.encode()).hexdigest()[:8]}.oci.tar"


def build_image(out: Path | None = None, repository: str = REPOSITORY, cache: Path | None = None) -> tuple[str, Path]:
    """Build (or take from the cache) the node image; returns (reference by digest, OCI archive)."""
    cache = cache or Path(os.environ.get("WSF_CACHE", "/var/cache/wasm-shim-fleet")) / "image"
    cache.mkdir(parents=True, exist_ok=True)
    enter, agent_bin, key = build_binaries(cache)
    files = {"wsf-enter": (enter.read_bytes(), 0o755), "wsf-agent": (agent_bin.read_bytes(), 0o755)}
    target = out or cache / key[:32] / archive_name(repository)
    target.parent.mkdir(parents=True, exist_ok=True)
    ref = named_image(target, repository, files, ["/wsf-agent"])
    return ref, target


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="build_image.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, help="where to write the OCI archive (default: in the cache)")
    p.add_argument("--repository", default=REPOSITORY, help=f"the image's repository name (default {REPOSITORY})")
    args = p.parse_args(argv)
    try:
        ref, tarball = build_image(args.out, args.repository)
    except BuildError as exc:
        print(f"build_image: {exc}", file=sys.stderr)
        return 1
    print(ref)
    print(tarball)
    return 0


if __name__ == "__main__":
    sys.exit(main())
