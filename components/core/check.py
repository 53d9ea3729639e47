"""Drift: what the cluster and the nodes really have, compared with the plan. Pure: the observed state comes in
as data (components/check_live.py reads it, read-only), the drift goes out as data and words.

What counts as drift, per node:
- `node-missing`: the Node object is gone from the API (deleted, or renamed by a reimage);
- `unreachable`: the node's transport failed, so its files could not be read (not "fine");
- `label-missing` / `label-unexpected`: a planned label is absent (a reimaged node loses them), or a label of
  the fleet's RuntimeClasses is there that the plan does not set;
- `label-without-handler`: a label promises a class whose handler is not in the node's handler table, or not in
  `node.status.runtimeHandlers` where the kubelet reports them (pods would be scheduled there and fail);
- `handler-missing` / `handler-changed` / `handler-unexpected`: the managed handler table differs from the plan
  (`config-missing`: no managed table at all, e.g. a reimaged node's fresh containerd config);
- `runtime-handler-missing`: the kubelet reports runtimeHandlers and a planned handler is not among them
  (containerd has not loaded the table);
- `binary-missing` / `binary-sha256` / `binary-unrecorded`: a planned shim binary is gone; or its bytes are not
  the catalog's (a bare binary), not those it had when installed from the catalog's archive (the node scripts
  record both sums in /var/lib/wasm-shim-fleet/binaries), or it came from another artifact; or an archive's
  binary has no such record.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .containerd import BEGIN, END
from .plan import FleetPlan, NodePlan


@dataclass(frozen=True)
class NodeState:
    """What was observed on one node. None means "could not be read" (see `error`)."""

    name: str
    #: The Node object's labels; None when the Node does not exist in the API.
    labels: Mapping[str, str] | None
    #: node.status.runtimeHandlers names; None when the kubelet does not report them (containerd 1.x).
    runtime_handlers: Sequence[str] | None = None
    #: shim binary name -> sha256 of the file on the node (only files that exist).
    binaries: Mapping[str, str] | None = None
    #: shim binary name -> (sha256 of the artifact it came from, sha256 of the file as installed), as the node
    #: scripts record them at install (needed for binaries extracted from an archive).
    records: Mapping[str, tuple[str, str]] | None = None
    #: The text of the containerd config file the program edits; None when the file does not exist.
    config_text: str | None = None
    #: Why the node's files could not be read (transport failure); None when they were.
    error: str | None = None


@dataclass(frozen=True)
class Drift:
    node: str
    kind: str
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"node": self.node, "kind": self.kind, "detail": self.detail}


@dataclass(frozen=True)
class Report:
    drift: tuple[Drift, ...]
    nodes: tuple[str, ...] = field(default=())

    @property
    def clean(self) -> bool:
        return not self.drift

    def by_node(self) -> dict[str, list[Drift]]:
        out: dict[str, list[Drift]] = {n: [] for n in self.nodes}
        for d in self.drift:
            out.setdefault(d.node, []).append(d)
        return out

    def words(self) -> str:
        lines = []
        for node, drifts in self.by_node().items():
            if not drifts:
                lines.append(f"{node}: in sync")
                continue
            lines.append(f"{node}: {len(drifts)} drift(s)")
            lines += [f"  {d.kind}: {d.detail}" for d in drifts]
        summary = "no drift" if self.clean else f"{len(self.drift)} drift(s) on {len(self.drifted_nodes())} node(s)"
        return "\n".join([*lines, summary]) + "\n"

    def drifted_nodes(self) -> list[str]:
        return sorted({d.node for d in self.drift})

    def to_json(self) -> dict[str, Any]:
        return {"clean": self.clean, "drift": [d.to_json() for d in self.drift], "nodes": list(self.nodes)}


_TABLE = re.compile(r"^\s*\[(.+)\]\s*$")
_RUNTIME_TYPE = re.compile(r"""^\s*runtime_type\s*=\s*["']([^"']*)["']\s*$""")


def _last_key(dotted: str) -> str:
    """The last part of a dotted TOML table name (bare or quoted)."""
    m = re.search(r'(?:\.|^)(?:"((?:[^"\\]|\\.)*)"|([A-Za-z0-9_-]+))\s*$', dotted.strip())
    if not m:
        return dotted
    return m.group(1).replace('\\"', '"').replace("\\\\", "\\") if m.group(1) is not None else m.group(2)


def managed_handlers(config_text: str | None) -> dict[str, str] | None:
    """handler -> runtime_type of the program's managed block in a containerd config; None if there is none."""
    if config_text is None or BEGIN not in config_text:
        return None
    block = config_text.split(BEGIN, 1)[1].split(END, 1)[0]
    out: dict[str, str] = {}
    current = None
    for line in block.splitlines():
        if line.lstrip().startswith("#"):
            continue
        m = _TABLE.match(line)
        if m:
            current = _last_key(m.group(1))
            continue
        m = _RUNTIME_TYPE.match(line)
        if m and current is not None:
            out[current] = m.group(1)
    return out


def _managed_label_keys(plan: FleetPlan) -> set[str]:
    """Every label key the fleet's RuntimeClasses use (those the plan would set somewhere)."""
    return {k for rc in plan.runtime_classes for k in rc.node_selector}


def check_node(plan: FleetPlan, node: NodePlan, state: NodeState) -> list[Drift]:
    out: list[Drift] = []

    def add(kind: str, detail: str) -> None:
        out.append(Drift(node.name, kind, detail))

    label_handler = {k: rc.handler for rc in plan.runtime_classes for k in rc.node_selector}
    if state.labels is None:
        add("node-missing", f"no Node {node.name!r} in the cluster (deleted, or renamed by a reimage)")
    else:
        for key in node.labels:
            if state.labels.get(key) != node.labels[key]:
                add("label-missing", f"{key}={node.labels[key]} is not on the node")
        for key in sorted(_managed_label_keys(plan) - set(node.labels)):
            if key in state.labels:
                add("label-unexpected", f"{key}={state.labels[key]} is on the node but not in the plan")
    table = None
    if state.error is not None:
        add("unreachable", f"could not read the node's files: {state.error}")
    else:
        table = managed_handlers(state.config_text)
        if table is None:
            where = "no containerd config" if state.config_text is None else "no managed handler table"
            if node.handlers:
                add("config-missing", f"{where}: the node has none of its {len(node.handlers)} planned handlers")
            table = {}
        else:
            for h, rtype in node.handlers.items():
                if h not in table:
                    add("handler-missing", f"handler {h} ({rtype}) is not in the containerd config")
                elif table[h] != rtype:
                    add("handler-changed", f"handler {h} runs {table[h]}, the plan says {rtype}")
            for h in sorted(set(table) - set(node.handlers)):
                add("handler-unexpected", f"handler {h} ({table[h]}) is in the table but not in the plan")
        found = state.binaries or {}
        records = state.records or {}
        for name, binary in node.binaries.items():
            if name not in found:
                add("binary-missing", f"{name} ({binary.release}) is not installed")
                continue
            if binary.member is None:  # a bare binary: its bytes are the artifact's
                expected, source = binary.sha256, "the catalog says"
            elif name in records and records[name][0] == binary.sha256:
                expected, source = records[name][1], f"it had when installed from {binary.sha256[:12]}… as"
            elif name in records:
                add("binary-sha256", f"{name} was installed from an artifact with sha256 {records[name][0]}, "
                                     f"the catalog says {binary.sha256} ({binary.release})")
                continue
            else:
                add("binary-unrecorded", f"{name} ({binary.release}) has no install record: its bytes cannot be "
                                         "traced to the catalog's artifact")
                continue
            if found[name] != expected:
                add("binary-sha256", f"{name} has sha256 {found[name]}, {source} {expected} ({binary.release})")
    reported = set(state.runtime_handlers) if state.runtime_handlers is not None else None
    if reported is not None:
        for h in node.handlers:
            if h not in reported:
                add("runtime-handler-missing", f"the kubelet does not report handler {h} in runtimeHandlers")
    if state.labels is not None:
        for key, value in sorted(state.labels.items()):
            handler = label_handler.get(key)
            if handler is None or value != "true":
                continue
            if table is not None and handler not in table:
                add("label-without-handler", f"label {key} promises handler {handler}, which the node's "
                                             "containerd config does not have")
            elif reported is not None and handler not in reported:
                add("label-without-handler", f"label {key} promises handler {handler}, which the kubelet does "
                                             "not report")
    return out


def check_fleet(plan: FleetPlan, states: Mapping[str, NodeState]) -> Report:
    """Compare every planned node with its observed state (a node without a state counts as unreachable)."""
    drift: list[Drift] = []
    for node in plan.nodes:
        state = states.get(node.name) or NodeState(node.name, labels=None, error="not observed")
        drift += check_node(plan, node, state)
    return Report(tuple(drift), tuple(n.name for n in plan.nodes))
