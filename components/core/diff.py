"""What a change to a stack file will do, in the words a reviewer reads in a pull request.

Compares two plans: RuntimeClasses, and per node its labels, handler table and binaries. A transition is
unsafe when
  (a) a RuntimeClass's handler would change (the field is immutable; the class would have to be deleted
      and re-created, and new pods are rejected while it is gone), or
  (b) a handler leaves a node in the same step as a label that promised it: the engine updates the
      handler table before the labels, so for a moment the node would advertise a handler it no longer
      has. Retire first (move the release to the pool's `retiring` list: labels go, handlers stay), apply,
      then remove it.
A changed sha256 for a version already installed is unsafe too: versioned file names promise that a
version's bytes never change; publish a new version instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .plan import FleetPlan, NodePlan


@dataclass(frozen=True)
class Change:
    kind: str  # added | removed | changed
    subject: str  # runtimeClass | label | handler | binary | node
    node: str | None  # None for cluster-wide subjects
    name: str
    old: Any = None
    new: Any = None

    def words(self) -> str:
        where = f"node {self.node}: " if self.node else ""
        if self.kind == "added":
            return f"{where}+ {self.subject} {self.name}{_value(self.new)}"
        if self.kind == "removed":
            return f"{where}- {self.subject} {self.name}{_value(self.old)}"
        return f"{where}~ {self.subject} {self.name}: {_short(self.old)} -> {_short(self.new)}"

    def to_json(self) -> dict[str, Any]:
        out = {"kind": self.kind, "subject": self.subject, "name": self.name}
        if self.node:
            out["node"] = self.node
        if self.old is not None:
            out["old"] = self.old
        if self.new is not None:
            out["new"] = self.new
        return out


@dataclass(frozen=True)
class Unsafe:
    node: str | None
    name: str
    reason: str

    def words(self) -> str:
        where = f"node {self.node}: " if self.node else ""
        return f"UNSAFE {where}{self.name}: {self.reason}"

    def to_json(self) -> dict[str, Any]:
        out = {"name": self.name, "reason": self.reason}
        if self.node:
            out["node"] = self.node
        return out


@dataclass
class PlanDiff:
    changes: list[Change] = field(default_factory=list)
    unsafe: list[Unsafe] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.changes

    @property
    def safe(self) -> bool:
        return not self.unsafe

    def to_json(self) -> dict[str, Any]:
        return {"changes": [c.to_json() for c in self.changes], "unsafe": [u.to_json() for u in self.unsafe],
                "safe": self.safe}

    def words(self) -> str:
        if self.empty:
            return "No changes: the plan is the same.\n"
        lines = [c.words() for c in self.changes]
        counts = {k: sum(1 for c in self.changes if c.kind == k) for k in ("added", "changed", "removed")}
        lines.append(f"{counts['added']} to add, {counts['changed']} to change, {counts['removed']} to remove.")
        lines.extend(u.words() for u in self.unsafe)
        return "\n".join(lines) + "\n"


def _value(v: Any) -> str:
    if v is None or v == "true":
        return ""
    return f" ({_short(v)})"


def _short(v: Any) -> str:
    """One readable line for a compared value (RuntimeClass, binary or plain string)."""
    if isinstance(v, dict) and "handler" in v:
        selector = ", ".join(f"{k}={val}" for k, val in v["nodeSelector"].items())
        return f"handler {v['handler']}, selects {selector}"
    if isinstance(v, dict) and "sha256" in v:
        return f"{v['release']}, sha256 {v['sha256'][:12]}…, {v['url']}"
    return str(v)


def _compare(out: list[Change], subject: str, node: str | None, old: dict, new: dict) -> None:
    for name in sorted(set(old) | set(new)):
        if name not in old:
            out.append(Change("added", subject, node, name, new=new[name]))
        elif name not in new:
            out.append(Change("removed", subject, node, name, old=old[name]))
        elif old[name] != new[name]:
            out.append(Change("changed", subject, node, name, old=old[name], new=new[name]))


def _binaries(node: NodePlan) -> dict[str, dict[str, Any]]:
    return {k: {"release": b.release, "sha256": b.sha256, "url": b.url} for k, b in node.binaries.items()}


def diff_plans(old: FleetPlan, new: FleetPlan) -> PlanDiff:
    d = PlanDiff()
    old_rc = {rc.name: {"handler": rc.handler, "nodeSelector": rc.node_selector} for rc in old.runtime_classes}
    new_rc = {rc.name: {"handler": rc.handler, "nodeSelector": rc.node_selector} for rc in new.runtime_classes}
    _compare(d.changes, "runtimeClass", None, old_rc, new_rc)
    for name in sorted(set(old_rc) & set(new_rc)):
        if old_rc[name]["handler"] != new_rc[name]["handler"]:
            d.unsafe.append(Unsafe(None, f"runtimeClass {name}",
                                   f"handler would change from {old_rc[name]['handler']!r} to "
                                   f"{new_rc[name]['handler']!r}; RuntimeClass handlers are immutable and the "
                                   "class would be deleted and re-created, rejecting new pods meanwhile: add a new "
                                   "class instead"))

    old_nodes = {n.name: n for n in old.nodes}
    new_nodes = {n.name: n for n in new.nodes}
    for name in sorted(set(old_nodes) | set(new_nodes)):
        o, n = old_nodes.get(name), new_nodes.get(name)
        if o is None:
            d.changes.append(Change("added", "node", None, name, new=f"pool {n.pool}"))
        if n is None:
            # Removing a whole node is safe: the engine deletes its labels before its handler table.
            d.changes.append(Change("removed", "node", None, name, old=f"pool {o.pool}"))
        if o is not None and n is not None and o.pool != n.pool:
            d.changes.append(Change("changed", "node", None, name, old=f"pool {o.pool}", new=f"pool {n.pool}"))
        o_labels = o.labels if o else {}
        n_labels = n.labels if n else {}
        o_handlers = o.handlers if o else {}
        n_handlers = n.handlers if n else {}
        _compare(d.changes, "label", name, o_labels, n_labels)
        _compare(d.changes, "handler", name, o_handlers, n_handlers)
        o_bins = _binaries(o) if o else {}
        n_bins = _binaries(n) if n else {}
        _compare(d.changes, "binary", name, o_bins, n_bins)
        if o is None or n is None:
            continue
        promised = _promised_handlers(old, o)
        for handler in sorted(set(o_handlers) - set(n_handlers)):
            if handler in promised:
                d.unsafe.append(Unsafe(name, f"handler {handler}",
                                       f"is removed in the same step as label {promised[handler]} that promises it; "
                                       "first move the release to the pool's retiring list (labels go, handler "
                                       "stays), apply, then remove it"))
        for bname in sorted(set(o_bins) & set(n_bins)):
            if o_bins[bname]["sha256"] != n_bins[bname]["sha256"]:
                d.unsafe.append(Unsafe(name, f"binary {bname}",
                                       f"sha256 changes for {o_bins[bname]['release']}, an installed version; a "
                                       "version's bytes must never change: publish and pin a new version"))
    return d


def _promised_handlers(plan: FleetPlan, node: NodePlan) -> dict[str, str]:
    """handler -> label on `node` whose RuntimeClass promises that handler."""
    out = {}
    for rc in plan.runtime_classes:
        for label in rc.node_selector:
            if node.labels.get(label) == rc.node_selector[label]:
                out[rc.handler] = label
    return out
