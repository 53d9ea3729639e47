"""Container images built on this machine, never pulled: a static C pause image for pod sandboxes and a WASI
module image for the Wasm workload, each packed as an OCI image layout tarball that `ctr images import` takes.

    pause = build_pause_image(work)           # (ref, tarball)
    hello = build_wasm_image(work)            # (ref, tarball)
    import_image(ctr, socket, tarball)
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

SOURCES = Path(__file__).resolve().parents[1] / "nodes" / "images"
PAUSE_REF = "localhost/wsf/pause:1"
HELLO_REF = "localhost/wsf/hello-wasm:1"
#: The line the WASI module prints (tests/nodes/images/hello.wat).
HELLO_LINE = "wsf-hello.wasm: hello from a WASI module"
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def _tool(name: str, package: str) -> str:
    found = shutil.which(name)
    if not found:
        pytest.fail(f"the nodes tier needs {name} (Debian package {package}; scripts/setup.sh installs it)")
    return found


def _layer(files: dict[str, tuple[bytes, int]]) -> bytes:
    """An uncompressed tar layer: path -> (content, mode), reproducible (fixed owner and times)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, (data, mode) in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime, info.uid, info.gid = len(data), mode, 0, 0, 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def oci_tarball(out: Path, ref: str, files: dict[str, tuple[bytes, int]], entrypoint: list[str]) -> Path:
    """Write an OCI image layout tarball of a one-layer image holding `files` and return its path."""
    blobs: dict[str, bytes] = {}

    def blob(data: bytes) -> dict:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"digest": digest, "size": len(data)}

    layer = _layer(files)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({
        "architecture": ARCH, "os": "linux",
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
            "platform": {"architecture": ARCH, "os": "linux"},
            "annotations": {"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": ref},
        }],
    }, sort_keys=True).encode()
    entries = {"oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(), "index.json": index}
    for digest, data in blobs.items():
        entries["blobs/sha256/" + digest.split(":", 1)[1]] = data
    with tarfile.open(out, "w") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return out


def build_pause_image(work: Path) -> tuple[str, Path]:
    """A static C `pause` (tests/nodes/images/pause.c) as image PAUSE_REF."""
    cc = _tool("gcc", "gcc and libc6-dev")
    binary = work / "pause"
    proc = subprocess.run([cc, "-static", "-Os", "-s", "-o", str(binary), str(SOURCES / "pause.c")],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"building the static pause binary failed (needs gcc and libc6-dev):\n{proc.stderr}")
    return PAUSE_REF, oci_tarball(work / "pause.oci.tar", PAUSE_REF, {"pause": (binary.read_bytes(), 0o755)},
                                  ["/pause"])


def build_wasm_image(work: Path) -> tuple[str, Path]:
    """The WASI module tests/nodes/images/hello.wat, compiled with wabt's wat2wasm, as image HELLO_REF: a
    classic single-layer image whose entrypoint is the module."""
    wat2wasm = _tool("wat2wasm", "wabt")
    module = work / "hello.wasm"
    proc = subprocess.run([wat2wasm, str(SOURCES / "hello.wat"), "-o", str(module)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"wat2wasm failed:\n{proc.stderr}")
    return HELLO_REF, oci_tarball(work / "hello.oci.tar", HELLO_REF, {"hello.wasm": (module.read_bytes(), 0o755)},
                                  ["/hello.wasm"])


def import_image(ctr: str, socket: Path, tarball: Path, namespace: str = "k8s.io") -> None:
    proc = subprocess.run([ctr, "--address", str(socket), "-n", namespace, "images", "import", str(tarball)],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"ctr images import {tarball.name} failed: {proc.stderr or proc.stdout}")
