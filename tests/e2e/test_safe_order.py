"""The safe order under the real engine, watched while `pulumi up` runs, not only checked at the end.

A watcher samples each node at every engine event (a step starting or finishing) and, in between, as fast
as it can: first the handler table the node's containerd last loaded (from the daemon's start-up log),
then the node's labels from the API server. Reading the table first makes every reported violation real:
a label seen after a table that lacks its handler was also there when that table was loaded.

- Removing a labelled release in one step: the program reads the stack's deployed state and keeps the
  handler one more step (warning), so the label goes first; the next `up` removes the handler. Without
  that, the engine updates the handler table (restart, handler gone) before the label patch.
- Removing a whole pool in one step: the engine deletes the label patch before the handler table and the
  table before the binaries (reverse dependency order of the old graph), so it is safe as it is; the test
  records the order of the engine's delete steps.
- A label someone else set (another field manager) is a conflict error, not taken over, unless the stack
  says `kubernetes.forceLabels: true`.
- A step `diff` refuses (here a pool's containerd flavor) is refused by the program itself against the
  deployed plan, whatever the stack file's history.

Run: venv/bin/python -m pytest -m e2e tests/e2e/test_safe_order.py
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from components.core.plan import plan_from_config

from .conftest import Fleet

pytestmark = pytest.mark.e2e

X, X1 = "slight@1.2.3", "slight@1.2.4"


def last_loaded(node) -> dict[str, str] | None:
    """handler -> runtime_type of the last configuration the node's containerd finished loading (while a
    restart is under way, the one before it); None before the first start."""
    log = (node.root / "var/log/containerd.log").read_text()
    for section in reversed(log.split("=== restart-containerd.sh: starting")):
        for line in section.splitlines():
            if "Start cri plugin with config" in line:  # containerd 1.x
                return dict(re.findall(r"(?:^| )([A-Za-z0-9_.-]+):\{Type:(\S+) ", line.split("Runtimes:map[", 1)[1]))
            if 'msg="starting cri plugin"' in line:  # containerd 2.x
                raw = line.split(' config="', 1)[1].rsplit('"', 1)[0]
                cfg = json.loads(raw.encode().decode("unicode_escape"))
                return {name: r["runtimeType"] for name, r in cfg["containerd"]["runtimes"].items()}
    return None


@dataclass
class Watch:
    """Samples nodes during an engine run; `violations` lists (node, label, handler) seen unpromised."""

    fleet: Fleet
    nodes: list[str]
    promises: dict[str, str]  # label -> handler its RuntimeClass runs
    samples: int = 0
    violations: list[tuple[str, str, str]] = field(default_factory=list)
    steps: list[tuple[str, str]] = field(default_factory=list)  # (op, resource name) of finished steps
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def sample(self) -> None:
        with self._lock:
            for name in self.nodes:
                loaded = last_loaded(self.fleet.nodes[name]) or {}
                labels = self.fleet.node_labels(name)
                for label in labels:
                    handler = self.promises.get(label)
                    if handler is not None and handler not in loaded:
                        self.violations.append((name, label, handler))
            self.samples += 1

    def on_event(self, event: Any) -> None:
        out = getattr(event, "res_outputs_event", None)
        if out is not None:
            self.steps.append((str(out.metadata.op.value), out.metadata.urn.rsplit("::", 1)[-1]))
        if out is not None or getattr(event, "resource_pre_event", None) is not None:
            self.sample()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            time.sleep(0.02)

    def __enter__(self) -> Watch:
        self.sample()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def promises_of(raw: dict) -> dict[str, str]:
    _, plan = plan_from_config(raw)
    assert plan.ok, plan.errors
    return {label: rc.handler for rc in plan.runtime_classes for label in rc.node_selector}


def pools(f: Fleet, a: list[str], with_b: bool = True) -> list[dict]:
    out = [f.pool("a", a, ["node-a"])]
    if with_b:
        out.append(f.pool("b", [X], ["node-b"]))
    return out


def test_up_the_starting_fleet(fleet: Fleet):
    fleet.set_config(fleet.config(pools(fleet, [X, X1])))
    assert fleet.stack.up(color="never").summary.result == "succeeded"
    assert "wasmtime-slight-v1-2-3" in fleet.node_labels("node-a")


def test_a_one_step_removal_keeps_the_handler_until_its_label_is_gone(fleet: Fleet):
    before = fleet.config(pools(fleet, [X, X1]))
    fleet.set_config(fleet.config(pools(fleet, [X1])))  # X removed from pool a in one step, no retire
    preview = fleet.stack.preview(color="never")

    with Watch(fleet, ["node-a"], promises_of(before)) as watch:
        result = fleet.stack.up(color="never", on_event=watch.on_event)
    assert watch.violations == [], sorted(set(watch.violations))
    assert watch.samples > 10
    assert "handler slight-v1-2-3 stays on node node-a for this step" in preview.stdout
    assert "handler slight-v1-2-3 stays on node node-a for this step" in result.stdout
    node_a = fleet.nodes["node-a"]
    assert "wasmtime-slight-v1-2-3" not in fleet.node_labels("node-a")
    assert "slight-v1-2-3" in node_a.loaded_runtimes()  # kept for this step
    assert (node_a.root / "usr/local/bin/containerd-shim-slight-v1-2-3-v1").exists()

    # the next up, same stack config: the label is gone from the deployed state, so the handler goes
    with Watch(fleet, ["node-a"], promises_of(before)) as watch:
        result = fleet.stack.up(color="never", on_event=watch.on_event)
    assert "stays on node" not in result.stdout
    assert watch.violations == [], watch.violations
    assert "slight-v1-2-3" not in node_a.loaded_runtimes()
    assert not (node_a.root / "usr/local/bin/containerd-shim-slight-v1-2-3-v1").exists()
    assert fleet.node_labels("node-a") == plan_from_config(fleet.applied)[1].node("node-a").labels


def test_removing_a_whole_pool_deletes_labels_before_the_table_before_the_binaries(fleet: Fleet):
    before = fleet.applied
    fleet.set_config(fleet.config(pools(fleet, [X1], with_b=False)))
    preview = fleet.stack.preview(color="never")
    assert "stays on node" not in preview.stdout
    with Watch(fleet, ["node-b"], promises_of(before)) as watch:
        fleet.stack.up(color="never", on_event=watch.on_event)
    assert watch.violations == [], watch.violations
    deletes = [name for op, name in watch.steps if op == "delete" and "-node-b-" in name]
    order = [name.rsplit("-node-b-", 1)[1].split("-", 1)[0] for name in deletes]
    assert order == ["labels", "verify", "handlers", "bin", "kit"], deletes
    assert fleet.node_labels("node-b") == {}
    assert fleet.nodes["node-b"].config.read_bytes() == fleet.originals["node-b"]


def test_a_label_someone_else_set_is_a_conflict_error_not_taken_over(fleet: Fleet):
    import pulumi.automation as auto

    fleet.cluster.kubectl("label", "node", "node-c", "wasmtime-slight-v1-2-4=set-by-ops")
    raw = fleet.config([*pools(fleet, [X1], with_b=False), fleet.pool("c", [X1], ["node-c"])])
    fleet.set_config(raw)
    with pytest.raises(auto.CommandError) as err:
        fleet.stack.up(color="never")
    message = str(err.value)
    assert "conflict" in message.lower() and "wasmtime-slight-v1-2-4" in message and "kubectl" in message
    assert fleet.node_labels("node-c")["wasmtime-slight-v1-2-4"] == "set-by-ops"  # not taken over
    raw["kubernetes"]["forceLabels"] = True  # taking it over is a decision the stack config states
    fleet.set_config(raw)
    fleet.stack.up(color="never")
    assert fleet.node_labels("node-c")["wasmtime-slight-v1-2-4"] == "true"


def test_a_step_diff_refuses_is_refused_by_the_program_against_the_deployed_state(fleet: Fleet):
    """From a laptop too: the stack file's history does not matter, the deployed plan does."""
    import pulumi.automation as auto

    applied = fleet.applied
    moved = fleet.config([{**fleet.pool("a", [X1], ["node-a"]), "containerd": "containerd-2"},
                          fleet.pool("c", [X1], ["node-c"])])
    moved["kubernetes"] = applied["kubernetes"]
    fleet.set_config(moved)
    try:
        with pytest.raises(auto.CommandError) as err:
            fleet.stack.preview(color="never")
        assert "containerd (pool a): changes from containerd-1 to containerd-2" in str(err.value)
        assert "refused against the deployed state; nothing was changed" in str(err.value)
    finally:
        fleet.set_config(applied)


def test_destroy(fleet: Fleet):
    fleet.stack.destroy(color="never")
    assert fleet.runtime_classes() == {}
