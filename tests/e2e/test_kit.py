"""The node kit under the real engine, over SSH (CopyToRemote through each test host's SFTP): an `up` with kit A,
a change to the kit, an `up`, then `destroy`. The kit change updates one resource per node and restarts
nothing; the deletes recorded while kit A was in use run on kit B; every containerd config comes back byte for
byte."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from components.core import nodescript

from .conftest import Fleet, env_var, open_fleet

pytestmark = pytest.mark.e2e

NODES = ("kit-a", "kit-b", "kit-c")


@pytest.fixture(scope="module")
def world(toolchain_bin: Path, tmp_path_factory) -> Iterator[Fleet]:
    # XDG_CACHE_HOME: where the program stages the kit
    with env_var("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache"))), \
            open_fleet(toolchain_bin, NODES, stack_name="kit", prefix="wsf-kit-") as w:
        yield w


def selected_kit(fleet: Fleet, node: str) -> str:
    return (fleet.nodes[node].root / "var/lib/wasm-shim-fleet/kit/selected").read_text().strip()


def test_a_kit_change_updates_one_resource_per_node_and_destroy_restores_every_config(world: Fleet, monkeypatch):
    fleet = world
    fleet.set_config(fleet.config([fleet.pool("a", ["slight@1.2.3", "spin@0.3.0"], ["kit-a", "kit-b"]),
                                   fleet.pool("b", ["slight@1.2.4"], ["kit-c"])]))
    first = fleet.stack.up(color="never")
    assert first.summary.result == "succeeded"
    kit_a = nodescript.kit_sha256()
    for name in NODES:
        assert selected_kit(fleet, name) == kit_a
        assert (fleet.nodes[name].root / f"var/lib/wasm-shim-fleet/kit/{kit_a}/wsf.sh").read_text() == \
            nodescript.kit_text()
    restarts = fleet.restarts()

    other = nodescript.kit_text() + "# kit B: the same logic, one comment longer\n"
    monkeypatch.setattr(nodescript, "kit_text", lambda: other)
    kit_b = nodescript.kit_sha256()
    preview = fleet.stack.preview(color="never", diff=True)
    assert {k: v for k, v in preview.change_summary.items() if k != "same"} == {"update": len(NODES)}
    second = fleet.stack.up(color="never")
    assert {k: v for k, v in second.summary.resource_changes.items() if k != "same"} == {"update": len(NODES)}
    assert fleet.restarts() == restarts, "a kit change alone restarts no containerd"
    for name in NODES:
        assert selected_kit(fleet, name) == kit_b

    # the deletes recorded with kit A run on kit B, which every node now has selected
    gone = fleet.stack.destroy(color="never")
    assert gone.summary.result == "succeeded"
    for name, node in fleet.nodes.items():
        assert node.config.read_bytes() == fleet.originals[name], name
        assert not list((node.root / "usr/local/bin").iterdir())
        assert node.cri_ok()
        assert set(node.loaded_runtimes()) == {"runc"}
