"""The node kit against the containerd configs that distributions really ship (tests/corpus), each with the real
containerd that reads it: install, a re-run that changes no byte and restarts nothing, and an uninstall that gives
back the exact bytes; containerd's own `config dump` shows every handler with its runtime_type and every runtime
of the original unchanged (options included), and the restarted daemon's CRI plugin logs every handler."""

from __future__ import annotations

import pytest

from components.core.flavors import FLAVORS
from components.core.nodescript import install_script, uninstall_script
from tests.conftest import assert_kit_block

from .corpus import DAEMON_FIXTURE, ENTRIES, seed
from .helpers import last_line, sample_node, snapshot

pytestmark = pytest.mark.integration

#: Paths that containerd itself changes while it runs: not the scripts' files.
DAEMON_PATHS = ("var/lib/containerd", "run", "var/log", "opt", "var/lib/rancher/k3s/agent/containerd",
                "var/lib/rancher/rke2/agent/containerd", "var/lib/rancher/k3s/agent/etc/cni",
                "var/lib/rancher/rke2/agent/etc/cni", "var/snap/microk8s/current/args/containerd.toml",
                "var/snap/microk8s/common")

CASES = [pytest.param(e, d, id=f"{e.id}@{d}") for e in ENTRIES for d in e.daemons if e.refused is None]
REFUSED = [pytest.param(e, d, id=f"{e.id}@{d}") for e in ENTRIES for d in e.daemons if e.refused is not None]


def assert_served(entry, text: str, original: bytes | None, handlers: dict[str, str]) -> None:
    """The kit's block after the original bytes, holding exactly `handlers` as a TOML parser reads them."""
    flavor = FLAVORS[entry.flavor]
    assert_kit_block(text, None if original is None else original.decode(), handlers, entry.table,
                     flavor.base_for(entry.table) or "")


@pytest.mark.parametrize(("entry", "daemon"), CASES)
def test_a_real_config_is_served_re_run_unchanged_and_given_back_byte_for_byte(entry, daemon, request, make_node):
    node = make_node(entry.flavor, request.getfixturevalue(DAEMON_FIXTURE[daemon]))
    original = seed(node, entry, daemon)
    restart = "" if entry.layout == "k0s" else node.restart  # k0s restarts containerd itself
    loaded_before = node.loaded.read_bytes()
    assert node.cri_ok()
    before = node.dump_runtime_tables()
    restarts = node.restarts()
    plan = sample_node(entry.flavor)

    result = node.run(install_script(plan), restart=restart)
    assert result.returncode == 0, result.stderr
    assert last_line(result.stdout) == "changed"
    assert node.restarts() == restarts + 1, "one restart"
    if entry.layout == "k0s":
        assert "containerd restarted by k0s" in result.stdout
    else:
        assert "containerd reads the new config (config dump)" in result.stdout
    assert_served(entry, node.config.read_text(), original, plan.handlers)
    after = node.dump_runtime_tables()
    assert {h: after.get(h, {}).get("runtime_type") for h in plan.handlers} == plan.handlers
    assert {name: after.get(name) for name in before} == before, "a runtime of the original changed"
    assert node.cri_ok()
    loaded = node.loaded_runtimes()
    assert {h: loaded.get(h) for h in plan.handlers} == plan.handlers

    snap = snapshot(node.root, ignore=DAEMON_PATHS)
    again = node.run(install_script(plan), restart=restart)
    assert (again.returncode, last_line(again.stdout)) == (0, "unchanged"), again.stderr
    assert snapshot(node.root, ignore=DAEMON_PATHS) == snap
    assert node.restarts() == restarts + 1, "the re-run restarts nothing"

    gone = node.run(uninstall_script(plan), restart=restart)
    assert gone.returncode == 0, gone.stderr
    assert last_line(gone.stdout) == "changed"
    assert node.restarts() == restarts + 2, "uninstall restarts once"
    if original is None:
        assert not node.config.exists()
    else:
        assert node.config.read_bytes() == original
    assert node.loaded.read_bytes() == loaded_before
    assert node.dump_runtime_tables() == before
    assert node.cri_ok()


@pytest.mark.parametrize(("entry", "daemon"), REFUSED)
def test_a_real_config_the_kit_cannot_serve_is_refused_and_left_alone(entry, daemon, request, make_node):
    node = make_node(entry.flavor, request.getfixturevalue(DAEMON_FIXTURE[daemon]))
    seed(node, entry, daemon)
    plan = sample_node(entry.flavor)
    restarts = node.restarts()
    snap = snapshot(node.root, ignore=(*DAEMON_PATHS, "usr", "var/lib/wasm-shim-fleet"))
    result = node.run(install_script(plan))
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert entry.refused in result.stderr and "nothing was changed" in result.stderr
    assert snapshot(node.root, ignore=(*DAEMON_PATHS, "usr", "var/lib/wasm-shim-fleet")) == snap
    assert node.restarts() == restarts
    assert node.cri_ok()
