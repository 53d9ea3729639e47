"""Faults against real containerd nodes (Debian's 1.6, and 2.2 and 2.3 built from Go modules: config versions 2,
3 and 4): after each, the node's config is valid and loadable, containerd runs, and the original config is
recoverable (uninstall gives back its exact bytes)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from components.core import containerd, nodescript
from components.core.flavors import FLAVORS
from components.core.nodescript import install_script, uninstall_script
from tests.conftest import assert_kit_block

from .helpers import debug_kit, install_kit, last_line, sample_node, snapshot

pytestmark = pytest.mark.integration

DAEMON_PATHS = ("var/lib/containerd", "run", "var/log", "opt")
STATE = "var/lib/wasm-shim-fleet"


#: containerd release -> (flavor, the session fixture that provides its binary)
DAEMONS = {"1.6": ("containerd-1", "containerd1"), "2.2": ("containerd-2", "containerd2"),
           "2.3": ("containerd-2", "containerd23")}


@pytest.fixture(params=list(DAEMONS))
def node(request, make_node):
    flavor, binary = DAEMONS[request.param]
    n = make_node(flavor, request.getfixturevalue(binary))
    n.original = n.seed()
    return n


def assert_recoverable(node, plan) -> None:
    """The config loads, containerd restarts on it with the CRI plugin up, and uninstall restores the original."""
    node.dump_runtimes()
    node.start()
    assert node.cri_ok()
    result = node.run(uninstall_script(plan))
    assert result.returncode == 0, result.stderr
    assert node.config.read_bytes() == node.original
    assert node.cri_ok()
    assert "wasm-shim" not in "".join(node.loaded_runtimes().values())


def test_a_wrong_sha256_changes_nothing_at_all(node) -> None:
    plan = sample_node(node.flavor, sha_override={"slight@1.2.3": "0" * 64})
    before = snapshot(node.root, ignore=DAEMON_PATHS)
    pid, restarts = node.pid(), node.restarts()
    result = node.run(install_script(plan))
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "sha256 mismatch" in result.stderr and "nothing was changed" in result.stderr
    after = snapshot(node.root, ignore=DAEMON_PATHS)
    # Only the state folder with its lock file and the delivered kit appear; no byte of the node changes.
    assert {p for p in set(after) - set(before) if not p.startswith(f"{STATE}/kit")} == {STATE, f"{STATE}/lock"}
    assert {k: after[k] for k in before} == before
    assert (node.pid(), node.restarts()) == (pid, restarts)
    assert_recoverable(node, sample_node(node.flavor))


def test_a_failed_download_changes_nothing(node) -> None:
    plan = sample_node(node.flavor, url_override={"spin@0.3.0": "https://127.0.0.1:9/nothing-listens-here"})
    result = node.run(install_script(plan))
    assert result.returncode == 1
    assert "download of https://127.0.0.1:9/nothing-listens-here failed" in result.stderr
    assert node.config.read_bytes() == node.original
    assert not list((node.root / "usr/local/bin").glob(".*"))
    assert_recoverable(node, plan)


@pytest.mark.parametrize("step", [*nodescript.BINARY_STEPS, *nodescript.TABLE_STEPS])
def test_an_install_killed_at_each_step_converges_when_re_run(node, step: str) -> None:
    plan = sample_node(node.flavor)
    killed = node.run(install_script(plan, kit=debug_kit(step)))
    assert killed.returncode in (-9, 137), killed.stderr
    node.dump_runtimes()  # whatever the step, the file on disk is a valid config
    again = node.run(install_script(plan))
    assert again.returncode == 0, again.stderr
    assert last_line(again.stdout) == "changed"
    assert {h: node.loaded_runtimes().get(h) for h in plan.handlers} == plan.handlers
    assert_kit_block(node.config.read_text(), node.original.decode(), plan.handlers,
                     FLAVORS[node.flavor].config_version)
    third = node.run(install_script(plan))
    assert (third.returncode, last_line(third.stdout)) == (0, "unchanged")
    assert not list(node.root.rglob("*.wsf-tmp"))
    assert_recoverable(node, plan)


@pytest.mark.parametrize("step", nodescript.REMOVE_STEPS)
def test_an_uninstall_killed_at_each_step_converges_when_re_run(node, step: str) -> None:
    plan = sample_node(node.flavor)
    assert node.run(install_script(plan)).returncode == 0
    install_kit(node.root, debug_kit(step))  # a kit that dies at `step`, selected
    killed = node.run(uninstall_script(plan))
    assert killed.returncode in (-9, 137), killed.stderr
    node.dump_runtimes()
    install_kit(node.root)
    again = node.run(uninstall_script(plan))
    assert again.returncode == 0, again.stderr
    assert node.config.read_bytes() == node.original
    assert set(node.loaded_runtimes()) == {"runc"}
    assert not list((node.root / "usr/local/bin").iterdir())
    assert [p.name for p in (node.root / STATE).rglob("*") if p.is_file()] == ["lock"]


def test_a_restart_that_fails_on_the_new_config_is_rolled_back(node) -> None:
    plan = sample_node(node.flavor)
    node.refuse_if = containerd.BEGIN  # this "containerd" will not start on a config holding our block
    restarts = node.restarts()
    result = node.run(install_script(plan))
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "refusing to start" in result.stderr
    assert "restored the previous config and restarted containerd on it" in result.stderr
    assert node.restarts() == restarts + 2, "the failed restart, then the restart on the restored config"
    assert node.config.read_bytes() == node.original
    assert node.cri_ok() and set(node.loaded_runtimes()) == {"runc"}
    assert not (node.root / STATE / "table.sha256").exists()
    node.refuse_if = None
    assert_recoverable(node, plan)


def test_a_containerd_that_does_not_come_back_is_rolled_back_and_reported(node) -> None:
    plan = sample_node(node.flavor)
    # A restart command that stops containerd and starts nothing (a broken unit, say).
    stop_only = f"kill $(cat '{node.root}/run/containerd-test-daemon.pid')"
    result = node.run(install_script(plan), restart=stop_only, env={"WSF_CONTAINERD_WAIT": "3"})
    assert result.returncode == 1
    assert "did not answer" in result.stderr or "did not come back" in result.stderr
    assert "restored the previous config" in result.stderr
    assert node.config.read_bytes() == node.original
    assert_recoverable(node, plan)


@pytest.fixture
def tmpfs(make_node):
    """mount(point, size) a small tmpfs inside the node root; unmounted at teardown."""
    mounts: list[Path] = []

    def mount(point: Path, size: str) -> Path:
        point.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            pytest.fail(f"cannot mount a tmpfs to simulate a full disk (needs root): {result.stderr.strip()}")
        mounts.append(point)
        return point

    yield mount
    for point in reversed(mounts):
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def fill(folder: Path) -> Path:
    """Fill the file system of `folder` to the last byte."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for chunk in (65536, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_under_the_binaries_fails_cleanly(node, tmpfs) -> None:
    plan = sample_node(node.flavor)
    bindir = tmpfs(node.root / "usr/local/bin", "64k")
    filler = fill(bindir)
    result = node.run(install_script(plan))
    assert result.returncode == 1
    assert "No space left" in result.stderr or "disk full" in result.stderr
    assert [p.name for p in bindir.iterdir()] == ["filler"], "no partial binary, no temporary file"
    assert node.config.read_bytes() == node.original
    filler.unlink()
    again = node.run(install_script(plan))
    assert again.returncode == 0, again.stderr
    assert_recoverable(node, plan)


def test_a_full_disk_under_the_config_fails_cleanly_and_leaves_the_config_alone(make_node, containerd1, tmpfs):
    n = make_node("containerd-1", containerd1)
    plan = sample_node("containerd-1")
    etc = n.root / "etc/containerd"
    tmpfs(etc, "64k")
    n.original = n.seed()
    install_kit(n.root)
    for binary in plan.binaries.values():
        assert n.run(nodescript.install_binary_script(plan, binary)).returncode == 0
    filler = fill(etc)
    result = n.run(nodescript.apply_table_script(plan))
    assert result.returncode == 1
    assert "No space left" in result.stderr and "nothing was changed" in result.stderr
    assert n.config.read_bytes() == n.original
    assert sorted(p.name for p in etc.iterdir()) == ["config.toml", "filler"]
    assert not (n.root / STATE / "config.prev").exists()
    filler.unlink()
    again = n.run(nodescript.apply_table_script(plan))
    assert again.returncode == 0, again.stderr
    assert {h: n.loaded_runtimes().get(h) for h in plan.handlers} == plan.handlers
    assert_recoverable(n, plan)
