"""The node scripts against real containerd: Debian's 1.6 (config versions 1 and 2) and 2.2 and 2.3 built from the
Go module proxy (config versions 3 and 4). Each node root starts from `containerd config default` with a daemon
running on it, like a real node; the scripts restart that daemon through WSF_RESTART."""

from __future__ import annotations

import pytest

from components.core import containerd
from components.core.flavors import FLAVORS
from components.core.nodescript import install_script, uninstall_script
from tests.conftest import assert_kit_block

from .helpers import last_line, sample_node, snapshot

pytestmark = pytest.mark.integration

#: Paths that containerd itself changes while it runs (its own root, state, log, pid): not the scripts' files.
DAEMON_PATHS = ("var/lib/containerd", "run", "var/log", "opt")


@pytest.fixture(params=["containerd-legacy", "containerd-1", "containerd-2", "containerd-2@2.3"])
def flavor_node(request, make_node, containerd1):
    flavor, _, release = request.param.partition("@")
    binary = containerd1
    if flavor == "containerd-2":
        binary = request.getfixturevalue("containerd23" if release == "2.3" else "containerd2")
    return make_node(flavor, binary)


def test_install_registers_every_handler_keeps_runc_and_uninstall_restores_the_bytes(flavor_node) -> None:
    node = flavor_node
    plan = sample_node(node.flavor)
    original = node.seed()
    assert node.cri_ok()
    runtimes_before = node.dump_runtimes()
    assert "runc" in runtimes_before
    restarts = node.restarts()

    result = node.run(install_script(plan))
    assert result.returncode == 0, result.stderr
    assert last_line(result.stdout) == "changed"
    assert node.restarts() == restarts + 1
    assert "containerd reads the new config (config dump)" in result.stdout
    # what containerd reads from the file: every handler with its runtime_type, runc intact
    dumped = node.dump_runtimes()
    for handler, rtype in plan.handlers.items():
        assert dumped[handler] == rtype
    assert dumped["runc"] == runtimes_before["runc"]
    # what the restarted daemon's CRI plugin really loaded
    assert node.cri_ok()
    loaded = node.loaded_runtimes()
    assert {h: loaded.get(h) for h in plan.handlers} == plan.handlers
    assert loaded["runc"] == "io.containerd.runc.v2"
    # the file: the original bytes, then the kit's one block (its tables as containerd parsed them, above)
    assert_kit_block(node.config.read_text(), original.decode(), plan.handlers, FLAVORS[node.flavor].config_version)

    # idempotent: nothing to do changes no byte and restarts nothing
    snap = snapshot(node.root, ignore=DAEMON_PATHS)
    pid = node.pid()
    again = node.run(install_script(plan))
    assert again.returncode == 0, again.stderr
    assert last_line(again.stdout) == "unchanged"
    assert snapshot(node.root, ignore=DAEMON_PATHS) == snap
    assert (node.restarts(), node.pid()) == (restarts + 1, pid)

    gone = node.run(uninstall_script(plan))
    assert gone.returncode == 0, gone.stderr
    assert last_line(gone.stdout) == "changed"
    assert node.config.read_bytes() == original
    assert node.restarts() == restarts + 2, "uninstall restarts once"
    assert node.cri_ok()
    assert set(node.loaded_runtimes()) == set(runtimes_before)
    assert not list((node.root / "usr/local/bin").iterdir())


def test_a_release_change_rewrites_only_the_block_and_restarts_once(make_node, containerd1) -> None:
    node = make_node("containerd-1", containerd1)
    original = node.seed()
    first = sample_node("containerd-1", releases=("slight@1.2.3",))
    second = sample_node("containerd-1", releases=("slight@1.2.3", "slight@1.3.0"))
    assert node.run(install_script(first)).returncode == 0
    restarts = node.restarts()
    result = node.run(install_script(second))
    assert result.returncode == 0, result.stderr
    assert node.restarts() == restarts + 1
    assert node.loaded_runtimes()["slight"] == "io.containerd.slight-v1-3-0.v1"
    dumped = node.dump_runtimes()  # containerd's own parse of the file
    assert {h: dumped.get(h) for h in second.handlers} == second.handlers
    assert dumped["runc"] == "io.containerd.runc.v2"
    assert_kit_block(node.config.read_text(), original.decode(), second.handlers, 2)


def test_a_config_of_the_wrong_version_is_refused_before_anything_changes(make_node, containerd1) -> None:
    node = make_node("containerd-legacy", containerd1)
    node.seed()  # containerd-legacy seeds a version 1 file ...
    plan = sample_node("containerd-1")  # ... that a containerd-1 (version 2) pool must not touch
    snap = snapshot(node.root, ignore=DAEMON_PATHS)
    result = node.run(install_script(plan))
    assert result.returncode == 1
    assert "config version 1" in result.stderr and "containerd-legacy" in result.stderr
    after = snapshot(node.root, ignore=DAEMON_PATHS)
    assert {k: v for k, v in after.items() if not k.startswith(("usr", "var/lib/wasm-shim-fleet"))} == \
        {k: v for k, v in snap.items() if not k.startswith(("usr", "var/lib/wasm-shim-fleet"))}
    assert node.config.read_text().count(containerd.BEGIN) == 0
