"""`transport: kubernetes` pieces that run on a node, checked on this machine: ShellCheck of the host script and
the in-cluster kit delivery, and a node whose /usr/local/bin is read-only (as on GKE's Container-Optimized OS)
refusing a shim binary with one clear line before anything changes."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from components.core import incluster, nodescript
from tests.harness.nodes import require

from .helpers import sample_node

pytestmark = pytest.mark.integration


def test_the_host_script_and_the_kit_delivery_pass_shellcheck(tmp_path: Path) -> None:
    shellcheck = require("shellcheck", "shellcheck")
    host = tmp_path / "run-on-host.sh"
    host.write_text(incluster.HOST_SCRIPT)
    kit = tmp_path / "kit-payload.sh"
    kit.write_text(nodescript.kit_payload_script(sample_node("containerd-1", urls="https")))
    result = subprocess.run([shellcheck, "-s", "sh", str(host), str(kit)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_a_read_only_usr_local_bin_refuses_the_binary_and_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    bin_dir = root / "usr/local/bin"
    bin_dir.mkdir(parents=True)
    (root / "etc/containerd").mkdir(parents=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("shim")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"shim"))
    artifact = tmp_path / "a.tar.gz"
    artifact.write_bytes(buf.getvalue())
    sha = hashlib.sha256(artifact.read_bytes()).hexdigest()
    subprocess.run(["mount", "--bind", str(bin_dir), str(bin_dir)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(bin_dir)], check=True)
        p = subprocess.run(["sh", "-c", f'. {nodescript.shq(str(nodescript.KIT_FILE))}; wsf 1 containerd-1 '
                            f'install-binary containerd-shim-x-v1-0-0-v1 file://{artifact} {sha} shim none'],
                           env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "WSF_NODE_ROOT": str(root)},
                           capture_output=True, text=True, timeout=60)
    finally:
        subprocess.run(["umount", str(bin_dir)], check=True)
    assert p.returncode != 0
    assert p.stderr.strip().splitlines()[-1] == (
        f"wasm-shim-fleet: error: {bin_dir} is not writable on this node (Read-only file system): shim binaries "
        "cannot be installed here (a read-only node image such as Container-Optimized OS or Bottlerocket); "
        "nothing was changed")
    assert "downloaded" not in p.stdout + p.stderr
    assert sorted(p.name for p in bin_dir.iterdir()) == []
    assert not (root / "var/lib/wasm-shim-fleet/binaries").exists() or \
        not list((root / "var/lib/wasm-shim-fleet/binaries").iterdir())
