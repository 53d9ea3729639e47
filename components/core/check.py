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

Agent pools are read from what their agents publish on each Node (no SSH, no pod): every node the pool's
nodeSelector matches is checked against the pool's state (its hash, components/core/agent.py), its labels and
its runtimeHandlers:
- `agent-missing`: no agent of the pool has reported on the node yet (its DaemonSet pod is not running there);
- `agent-outdated`: the node's agent runs an older state (a rollout in progress, or stopped at a failing node);
- `agent-failed` / `agent-refused`: the agent could not converge the node, or refused it, and says why;
- `label-missing` / `label-unexpected` / `runtime-handler-missing` as for listed nodes;
- `claim-left`: a node no longer selected by the pool still carries its claim (its agent did not uninstall).
A node whose agent repaired drift says what it repaired (`repaired: ...`), which is not drift.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import agent, naming
from .containerd import BEGIN, END
from .plan import AgentPoolPlan, FleetPlan, NodePlan


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
    #: node -> what is worth knowing and not drift (an agent's last repair), shown with the node
    info: Mapping[str, str] = field(default_factory=dict)

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
                lines.append(f"{node}: in sync" + (f" ({self.info[node]})" if node in self.info else ""))
                continue
            lines.append(f"{node}: {len(drifts)} drift(s)")
            lines += [f"  {d.kind}: {d.detail}" for d in drifts]
        summary = "no drift" if self.clean else f"{len(self.drift)} drift(s) on {len(self.drifted_nodes())} node(s)"
        return "\n".join([*lines, summary]) + "\n"

    def drifted_nodes(self) -> list[str]:
        return sorted({d.node for d in self.drift})

    def to_json(self) -> dict[str, Any]:
        return {"clean": self.clean, "drift": [d.to_json() for d in self.drift], "nodes": list(self.nodes),
                "info": dict(self.info)}


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


def check_agent_pool(plan: FleetPlan, pool: AgentPoolPlan, desired: str,
                     api_nodes: Mapping[str, Mapping[str, Any]]) -> tuple[list[Drift], list[str], dict[str, str]]:
    """The nodes of an agent pool as the cluster shows them: (drift, the nodes checked, info per node). `desired`
    is the hash of the pool's state as this plan would deploy it; `api_nodes` every Node object by name."""
    drift: list[Drift] = []
    info: dict[str, str] = {}
    key = naming.agent_status_annotation(pool.name)
    prefix = naming.fleet_label_prefix(plan.runtime, plan.label_prefix)
    checked = []
    for name in sorted(api_nodes):
        obj = api_nodes[name]
        meta = obj.get("metadata") or {}
        labels = meta.get("labels") or {}
        selected = agent.selects(pool.node_selector, labels)
        if not selected:
            if labels.get(naming.CLAIM_LABEL) == pool.name:
                checked.append(name)
                wanted = ", ".join(f"{k}={v}" for k, v in pool.node_selector.items())
                drift.append(Drift(name, "claim-left", f"no longer selected by pool {pool.name} ({wanted}) but "
                                                       "still claimed by it: its agent did not uninstall"))
            continue
        checked.append(name)

        def add(kind: str, detail: str, node: str = name) -> None:
            drift.append(Drift(node, kind, detail))

        status = agent.parse_status((meta.get("annotations") or {}).get(key))
        if status is None:
            add("agent-missing", f"no agent of pool {pool.name} has reported on this node (is its pod running?)")
            continue
        state = status.get("state")
        if state == "refused":
            add("agent-refused", str(status.get("reason") or "refused"))
            continue
        if status.get("desired") != desired:
            add("agent-outdated", f"its agent runs state {str(status.get('desired'))[:12]}, not {desired[:12]} "
                                  f"(a rollout of pool {pool.name} not finished, or stopped at a failing node)")
        if state == "failed":
            add("agent-failed", f"{status.get('reason') or 'failed'} ({status.get('attempts')} attempts since "
                                f"{status.get('since')})")
        elif state != "converged" and status.get("desired") == desired:
            add("agent-pending", f"its agent is {state} since {status.get('since')}")
        for label in pool.labels:
            if labels.get(label) != naming.LABEL_VALUE and state == "converged":
                add("label-missing", f"{label} (the agent will set it again on its next check)")
        for label in sorted(k for k in labels if k.startswith(prefix) and k not in pool.labels):
            add("label-unexpected", f"{label}={labels[label]}: pool {pool.name} does not promise it")
        reported = [h.get("name", "") for h in (obj.get("status") or {}).get("runtimeHandlers") or []]
        if reported and state == "converged" and status.get("desired") == desired:
            for handler in pool.node.handlers:
                if handler not in reported:
                    add("runtime-handler-missing", f"{handler} is in the pool's table but the kubelet does not "
                                                   "report it")
        if status.get("changed") and state == "converged":
            info[name] = f"last change by its agent, {status.get('since')}: {status.get('changed')}"
    return drift, checked, info

