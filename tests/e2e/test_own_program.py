"""examples/own-program under the real Pulumi engine: a program of its own makes two machines (sshd hosts on
127.0.0.1 started by `command:local:Command`s, each with its own host key and login key) and installs shims on
them with NodePool, connecting through the machines' outputs.

Real: the Pulumi engine, pulumi-kubernetes (rendering manifests: the example's default without a kubeconfig),
Debian's openssh-server and its SFTP, the node kit, `containerd config dump` (Debian's containerd on PATH). The
machines share this host: each one's sessions see their own folder as the node root (see machine.sh), so nothing
outside the test's folder is written. Stand-in: pulumi-command is the e2e tier's provider
(toolchain/command-provider).

Run: venv/bin/python -m pytest -m e2e tests/e2e/test_own_program.py
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest

import components  # noqa: F401  (in a checkout, makes the example's `wasm_shim_fleet` this package)
from tests.harness.nodes import require

from .conftest import run_program
from .engine import offline_stack

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "own-program"
NODES = ("node-a", "node-b")
HANDLERS = {"slight": "io.containerd.slight-v1-2-4.v1", "slight-v1": "io.containerd.slight-v1-2-4.v1",
            "slight-v1-2": "io.containerd.slight-v1-2-4.v1", "slight-v1-2-3": "io.containerd.slight-v1-2-3.v1",
            "slight-v1-2-4": "io.containerd.slight-v1-2-4.v1"}


def _sshd_pids(machines: Path) -> dict[str, int]:
    return {p.parent.name: int(p.read_text()) for p in machines.glob("*/sshd.pid")}


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def _gone(pids, timeout: float = 15) -> bool:
    end = time.monotonic() + timeout
    while any(_alive(p) for p in pids):
        if time.monotonic() > end:
            return False
        time.sleep(0.1)
    return True


def _changes(result) -> dict[str, int]:
    return {k: v for k, v in (result.summary.resource_changes or {}).items() if k != "same"}


def test_the_example_makes_its_machines_and_installs_shims_on_them_through_their_outputs(toolchain_bin: Path):
    import pulumi.automation as auto

    require("sshd", "openssh-server")
    require("containerd", "containerd")
    host_kit = Path("/var/lib/wasm-shim-fleet")
    host_kit_before = host_kit.exists()
    work = Path(tempfile.mkdtemp(prefix="wsf-own-", dir="/tmp"))
    machines = work / "machines"
    stack = offline_stack(toolchain_bin, work, "own-program", "e2e", lambda: run_program(EXAMPLE / "__main__.py"))
    stack.set_config("workdir", auto.ConfigValue(str(machines)))
    log: list[str] = []
    pids: dict[str, int] = {}
    try:
        up = stack.up(color="never", on_output=log.append)
        assert up.summary.result == "succeeded", "".join(log)
        assert _changes(up) == {"create": up.summary.resource_changes["create"]}
        pids = _sshd_pids(machines)
        assert sorted(pids) == list(NODES) and all(_alive(p) for p in pids.values())

        # what the example exports: its consumers' handles
        assert up.outputs["runtimeClassNames"].value == ["wasmtime-slight", "wasmtime-slight-v1",
                                                         "wasmtime-slight-v1-2", "wasmtime-slight-v1-2-4"]
        for node in NODES:
            assert up.outputs["handlers"].value[node] == HANDLERS
            assert up.outputs["labels"].value[node] == {"wasmtime-slight-enabled": "true",
                                                        "wasmtime-slight-v1": "true", "wasmtime-slight-v1-2": "true",
                                                        "wasmtime-slight-v1-2-4": "true"}
            # on the machine: both binaries, the handler table, the kit (delivered over its own SFTP)
            root = machines / node / "root"
            for version in ("1-2-3", "1-2-4"):
                assert os.access(root / f"usr/local/bin/containerd-shim-slight-v{version}-v1", os.X_OK)
            config = (root / "etc/containerd/config.toml").read_text()
            for handler, runtime_type in HANDLERS.items():
                assert f'runtimes.{handler}]' in config and f'runtime_type = "{runtime_type}"' in config
            assert (root / "var/lib/wasm-shim-fleet/kit/selected").is_file()
        assert host_kit.exists() == host_kit_before  # the machines' SFTP wrote into their own folders only
        rendered = "".join(p.read_text() for p in (machines / "rendered").rglob("*.yaml"))
        assert "kind: RuntimeClass" in rendered and "handler: slight-v1-2-4" in rendered

        # a second up changes nothing; the machines' outputs are stable
        again = stack.up(color="never")
        assert _changes(again) == {}, again.stdout

        destroyed = stack.destroy(color="never")
        assert destroyed.summary.result == "succeeded"
        assert _gone(pids.values())  # the machines' delete stopped their sshd
        assert not any((machines / n).exists() for n in NODES)
    finally:
        left = [p for p in [*pids.values(), *_sshd_pids(machines).values()] if _alive(p)]
        for pid in left:  # after a failure: stop what the run left
            os.kill(pid, signal.SIGTERM)
        _gone(left)
        shutil.rmtree(work, ignore_errors=True)
