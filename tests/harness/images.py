"""Container images built on this machine, never pulled: a static C pause image for pod sandboxes and a WASI
module image for the Wasm workload, each packed as an OCI image layout tarball that `ctr images import` takes.

    pause = build_pause_image(work)           # (ref, tarball)
    hello = build_wasm_image(work)            # (ref, tarball)
    import_image(ctr, socket, tarball)
"""

from __future__ import annotations

import platform
import shutil
import subprocess
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


def builder():
    """deploy/build_image.py as a module: the one place images are packed (OCI layout) and the node image is built."""
    import importlib.util
    import sys

    name = "wsf_build_image"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SOURCES.parents[2] / "deploy" / "build_image.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


def oci_tarball(out: Path, ref: str, files: dict[str, tuple[bytes, int]], entrypoint: list[str]) -> Path:
    """An OCI image layout tarball of a one-layer image holding `files` (deploy/build_image.py packs it)."""
    return builder().oci_tarball(out, ref, files, entrypoint, ARCH)


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
