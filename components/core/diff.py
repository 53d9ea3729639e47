"""What a change to a stack file will do, in the words a reviewer reads in a pull request.

Compares two plans: fleet settings (labelPrefix, kubernetes.forceLabels); RuntimeClasses; per pool its
containerd flavor, transport and restart command; per node how it is reached (host, port, hostKey, ssh
user, bastion), its labels, handler table and binaries (url, sha256, archive member). Output is grouped
by pool, nodes in natural order (node-2 before node-10), nodes with the same changes listed together,
each note once, and the resources the engine will touch counted in Pulumi's terms.

A transition is unsafe (refused, with the fix) when
  (a) a RuntimeClass's handler would change (the field is immutable; the class would have to be deleted
      and re-created, and new pods are rejected while it is gone);
  (b) a handler leaves a node in the same step as a label that promised it: the engine updates the
      handler table before the labels, so for a moment the node would advertise a handler it no longer
      has. Retire first (move the release to the pool's `retiring` list: labels go, handlers stay), apply,
      then remove it;
  (c) the bytes of an installed version would change (its sha256 or its archive member): versioned file
      names promise that a version's bytes never change; publish a new version instead;
  (d) a node's handler table would move: a pool's containerd flavor or transport changes, or a node moves
      to another pool. An in-place update writes the new table but leaves the old one, and a move between
      pools replaces the node's resources, create before delete, so the old delete would undo the new
      table and labels. Take the nodes out in one step and put them back in the next.

Removing a whole node or pool is safe in one step: its resources are deleted, and the engine deletes in
reverse dependency order, labels before the handler table they depend on (tests/e2e/test_safe_order.py
watches it happen).

Agent pools (nodes chosen by label) are compared as a whole: what every node they select runs (releases in
words, labels, handlers, binaries), their selector and rollout settings. The same steps are refused (a
release's handler removed with its label, an installed version's bytes, a flavor change); their nodes are not
listed, since the cluster decides them.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from .plan import AgentPoolPlan, FleetPlan, NodePlan

#: Pool settings every node of a pool shares: (NodePlan attribute, name shown).
POOL_SETTINGS = (("flavor", "containerd"), ("transport", "transport"), ("restart", "restart"))
#: How a node is reached: (NodePlan attribute, name shown).
CONNECTION = (("host", "host"), ("port", "port"), ("host_key", "hostKey"), ("user", "ssh.user"),
              ("proxy", "ssh.proxy"))

_DIGITS = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple:
    """`node-2` before `node-10`."""
    return tuple(int(p) if p.isdigit() else p for p in _DIGITS.split(text))


@dataclass(frozen=True)
class Change:
    kind: str  # added | removed | changed
    subject: str  # setting | runtimeClass | pool | node | connection | label | handler | binary
    node: str | None  # None for cluster-wide and pool-wide subjects
    name: str
    old: Any = None
    new: Any = None
    pool: str | None = None

    def line(self) -> str:
        """The change without its node."""
        if self.kind == "added":
            return f"+ {self.subject} {self.name}{_value(self.new)}"
        if self.kind == "removed":
            return f"- {self.subject} {self.name}{_value(self.old)}"
        return f"~ {self.subject} {self.name}: {_short(self.old)} -> {_short(self.new)}"

    def words(self) -> str:
        where = f"node {self.node}: " if self.node else ""
        return where + self.line()

    def to_json(self) -> dict[str, Any]:
        out = {"kind": self.kind, "subject": self.subject, "name": self.name}
        for key in ("node", "pool", "old", "new"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


#: Kinds of unsafe step (Unsafe.kind).
CLASS_HANDLER = "class-handler"  # (a) a RuntimeClass's handler would change
PROMISED_HANDLER = "promised-handler"  # (b) a handler leaves with the label that promised it
BYTES = "bytes"  # (c) an installed version's bytes would change
MOVES_TABLE = "moves-table"  # (d) a pool's flavor or transport changes
MOVES_POOL = "moves-pool"  # (d) a node changes pool


@dataclass(frozen=True)
class Unsafe:
    node: str | None
    name: str
    reason: str
    pool: str | None = None
    kind: str = ""

    def words(self) -> str:
        where = f"node {self.node}: " if self.node else ""
        return f"UNSAFE {where}{self.name}: {self.reason}"

    def to_json(self) -> dict[str, Any]:
        out = {"name": self.name, "reason": self.reason}
        if self.node:
            out["node"] = self.node
        if self.pool:
            out["pool"] = self.pool
        return out


@dataclass(frozen=True)
class Note:
    """Worth a reviewer's look, not refused. Said once, for all the nodes it concerns."""

    pool: str | None
    text: str
    nodes: tuple[str, ...] = ()

    def words(self) -> str:
        where = f"pool {self.pool}: " if self.pool else ""
        return f"NOTE {where}{self.text}{_nodes_suffix(self.nodes)}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text}
        if self.pool:
            out["pool"] = self.pool
        if self.nodes:
            out["nodes"] = list(self.nodes)
        return out


@dataclass
class PlanDiff:
    changes: list[Change] = field(default_factory=list)
    unsafe: list[Unsafe] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    #: Resources as `pulumi preview` counts them: create | update | replace | delete | same.
    resources: dict[str, int] = field(default_factory=dict)
    #: pool -> release -> "labelled" | "retiring", before and after.
    before: dict[str, dict[str, str]] = field(default_factory=dict)
    after: dict[str, dict[str, str]] = field(default_factory=dict)
    #: agent pool -> its nodeSelector in words (after the change, else before)
    agent_pools: dict[str, str] = field(default_factory=dict)
    #: pool -> the batches of the nodes whose handler table changes (containerd restarts), in the order the
    #: rollout takes them (components/core/rollout.py); pools with no such node are left out
    rollouts: dict[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)
    #: pool -> (its rollout rule in words, the label of each batch above)
    rollout_words: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.changes

    @property
    def safe(self) -> bool:
        return not self.unsafe

    def to_json(self) -> dict[str, Any]:
        return {"changes": [c.to_json() for c in self.changes], "unsafe": [u.to_json() for u in self.unsafe],
                "notes": [n.to_json() for n in self.notes], "resources": dict(self.resources),
                "matrix": {"before": self.before, "after": self.after}, "safe": self.safe,
                "rollouts": {p: [list(b) for b in bs] for p, bs in self.rollouts.items()}}

    def rollout_lines(self) -> list[str]:
        """Per pool whose tables change: which nodes go first, e.g. `Rollout of pool p (...): canary node-1; ...`."""
        out = []
        for pool in sorted(self.rollouts, key=natural_key):
            rule, labels = self.rollout_words[pool]
            steps = "; ".join(f"{label} {', '.join(b)}" for label, b in zip(labels, self.rollouts[pool], strict=True))
            out.append(f"Rollout of pool {pool} ({rule}): {steps}")
        return out

    # ------------------------------------------------------------------------------------- text
    def resource_line(self) -> str:
        r = self.resources
        parts = [f"{r[k]} to {k}" for k in ("create", "update", "replace", "delete") if r.get(k)]
        return (f"Resources: {', '.join(parts) or 'no change'}, {r.get('same', 0)} unchanged "
                "(commands, node label patches and RuntimeClasses; the preview adds its components)")

    def unsafe_groups(self, kinds: Collection[str] | None = None) -> list[tuple[str, str, list[str], str | None]]:
        """(name, reason, nodes, pool) with every node that shares one reason, in natural order; only the
        given kinds when `kinds` is set."""
        groups: dict[tuple[str, str, str | None], list[str]] = {}
        for u in self.unsafe:
            if kinds is not None and u.kind not in kinds:
                continue
            groups.setdefault((u.name, u.reason, u.pool), [])
            if u.node:
                groups[(u.name, u.reason, u.pool)].append(u.node)
        return [(name, reason, sorted(nodes, key=natural_key), pool)
                for (name, reason, pool), nodes in groups.items()]

    def body(self) -> list[str]:
        """The changes, grouped: RuntimeClasses, then each pool in natural order."""
        lines: list[str] = []
        settings = [c for c in self.changes if c.subject == "setting"]
        if settings:
            lines.append("Fleet:")
            lines += [f"  {c.line()}" for c in settings]
        classes = [c for c in self.changes if c.subject == "runtimeClass"]
        if classes:
            lines.append("RuntimeClasses:")
            lines += [f"  {c.line()}" for c in classes]
        pools = sorted({c.pool for c in self.changes if c.pool is not None}, key=natural_key)
        for pool in pools:
            mine = [c for c in self.changes if c.pool == pool]
            selects = self.agent_pools.get(pool)
            lines.append(f"Pool {pool}" + (f" (agent pool: every node with {selects}):" if selects else ":"))
            lines += [f"  {c.line()}" for c in mine if c.node is None]
            per_node: dict[str, list[str]] = {}
            for c in mine:
                if c.node is not None:
                    per_node.setdefault(c.node, []).append(c.line())
            same: dict[tuple[str, ...], list[str]] = {}
            for node, node_lines in per_node.items():
                same.setdefault(tuple(node_lines), []).append(node)
            for shared, group in sorted(same.items(), key=lambda kv: natural_key(min(kv[1], key=natural_key))):
                nodes = sorted(group, key=natural_key)
                lines.append(f"  {'node' if len(nodes) == 1 else 'nodes'} {_node_list(nodes)}:")
                lines += [f"    {line}" for line in shared]
        return lines

    def words(self) -> str:
        if self.empty:
            return "No changes: the plan is the same.\n"
        lines = self.body()
        lines.append(self.resource_line() + ".")
        lines += self.rollout_lines()
        lines += [n.words() for n in self.notes]
        for name, reason, nodes, pool in self.unsafe_groups():
            where = f"{'node' if len(nodes) == 1 else 'nodes'} {_node_list(nodes)}" if nodes else ""
            where = f"{where} (pool {pool}): " if where and pool else f"pool {pool}: " if pool else where
            lines.append(f"UNSAFE {where}{name}: {reason}")
        return "\n".join(lines) + "\n"

    def markdown(self, title: str) -> str:
        """The pull-request comment: verdict, pool x release matrix before -> after, counts, details."""
        verdict = ("**No changes.**" if self.empty else
                   "**Safe to apply.**" if self.safe else
                   f"**Refused: {len(self.unsafe_groups())} unsafe step(s).** Split the change as each one says.")
        out = [f"### {title}", "", verdict, ""]
        releases = sorted({r for m in (self.before, self.after) for rs in m.values() for r in rs},
                          key=natural_key)
        pools = sorted(set(self.before) | set(self.after), key=natural_key)
        if releases and pools:
            out.append("Pools x releases, before → after (labelled: selectable by workloads; retiring: installed, "
                       "no longer labelled):")
            out.append("")
            out.append("| pool | " + " | ".join(f"`{r}`" for r in releases) + " |")
            out.append("| --- |" + " --- |" * len(releases))
            for pool in pools:
                b, a = self.before.get(pool), self.after.get(pool)
                name = pool + (" (new)" if b is None else " (removed)" if a is None else "")
                cells = []
                for r in releases:
                    was, now = (b or {}).get(r, "·"), (a or {}).get(r, "·")
                    cells.append(was if was == now else f"**{was} → {now}**")
                out.append(f"| {name} | " + " | ".join(cells) + " |")
            out.append("")
        if not self.empty:
            out.append(self.resource_line() + ".")
            out.append("")
        for line in self.rollout_lines():
            pool, rest = line[len("Rollout of pool "):].split(" ", 1)
            out.append(f"- **Rollout** of pool `{pool}` {rest}")
        if self.rollouts:
            out.append("")
        for name, reason, nodes, in_pool in self.unsafe_groups():
            where = " ".join(x for x in (f"pool `{in_pool}`" if in_pool else "",
                                         f"nodes {_node_list(nodes)}" if nodes else "") if x)
            out.append(f"- :no_entry: **{name}**{' (' + where + ')' if where else ''}: {reason}")
        out += [f"- :warning: {n.words()[len('NOTE '):]}" for n in self.notes]
        if self.unsafe or self.notes:
            out.append("")
        if not self.empty:
            out += ["<details><summary>Every change</summary>", "", "```", *self.body(), "```", "", "</details>"]
        return "\n".join(out) + "\n"


def _node_list(nodes: list[str] | tuple[str, ...], limit: int = 8) -> str:
    if len(nodes) <= limit:
        return ", ".join(nodes)
    return f"{', '.join(nodes[:limit - 2])}, … {nodes[-1]} ({len(nodes)} nodes)"


def _nodes_suffix(nodes: tuple[str, ...]) -> str:
    return f" (nodes {_node_list(sorted(nodes, key=natural_key))})" if nodes else ""


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
        member = f", member {v['member']}" if v.get("member") else ""
        probe = f", probe {v['probe']}" if v.get("probe", "version") != "version" else ""
        return f"{v['release']}, sha256 {v['sha256'][:12]}…, {v['url']}{member}{probe}"
    if v is None:
        return "(none)"
    return str(v)


def _compare(out: list[Change], subject: str, node: str | None, old: dict, new: dict, pool: str | None) -> None:
    for name in sorted(set(old) | set(new), key=natural_key):
        if name not in old:
            out.append(Change("added", subject, node, name, new=new[name], pool=pool))
        elif name not in new:
            out.append(Change("removed", subject, node, name, old=old[name], pool=pool))
        elif old[name] != new[name]:
            out.append(Change("changed", subject, node, name, old=old[name], new=new[name], pool=pool))


def _binaries(node: NodePlan) -> dict[str, dict[str, Any]]:
    return {k: {"release": b.release, "sha256": b.sha256, "url": b.url, "member": b.member, "probe": b.probe}
            for k, b in node.binaries.items()}


def _settings(node: NodePlan, which: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    return {shown: getattr(node, attr) for attr, shown in which}


def pool_matrix(plan: FleetPlan) -> dict[str, dict[str, str]]:
    """pool -> release -> labelled | retiring (pools with nodes, and agent pools)."""
    out: dict[str, dict[str, str]] = {}
    for n in (*plan.nodes, *(a.node for a in plan.agent_pools)):
        if n.pool not in out:
            out[n.pool] = {**{r: "labelled" for r in n.releases}, **{r: "retiring" for r in n.retiring}}
    return out


def selector_words(selector: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(selector.items()))


def resources(plan: FleetPlan) -> dict[tuple[str, ...], tuple[str, Any]]:
    """The custom resources the components create, by identity, with what their inputs depend on.
    Node resources are named after their pool (`fleet-<pool>-<node>-...`), so a node that changes pool
    gets new ones."""
    out: dict[tuple[str, ...], tuple[str, Any]] = {}
    for rc in plan.runtime_classes:
        out[("RuntimeClass", rc.name)] = ("replace-on", (rc.handler, tuple(rc.node_selector.items())))
    for n in plan.nodes:
        conn = (n.transport, n.host, n.port, n.host_key, n.user, n.proxy)
        for b in n.binaries.values():
            out[("Command", n.pool, n.name, "bin", b.name)] = ("", (b.url, b.sha256, b.member, b.probe, n.flavor, conn))
        out[("Command", n.pool, n.name, "handlers")] = (
            "", (tuple(n.handlers.items()), tuple(n.aliases.items()), n.flavor, n.restart, n.local_root,
                 n.seed_config, conn))
        out[("NodePatch", n.pool, n.name, "labels")] = ("", (tuple(n.labels.items()), n.force_labels))
    for a in plan.agent_pools:
        # The ConfigMap is named after the state's hash (a new state replaces it); the DaemonSet and the two
        # commands are updated in place; the ServiceAccount changes with nothing of the plan.
        state = (a.node.to_json(full=True), a.check_seconds)
        out[("ConfigMap", a.name)] = ("replace-always", state)
        out[("DaemonSet", a.name)] = ("", (state, tuple(a.node_selector.items()), a.rollout))
        out[("Command", a.name, "rollout")] = ("", (state, a.rollout))
        out[("Command", a.name, "cleanup")] = ("", state)
        out[("ServiceAccount", a.name)] = ("", ())
    if plan.agent_pools:
        for kind in ("Namespace", "ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding",
                     "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"):
            out[(kind, "agents")] = ("", (plan.runtime, plan.label_prefix))
    return out


def count_resources(old: FleetPlan, new: FleetPlan) -> dict[str, int]:
    o, n = resources(old), resources(new)
    counts = dict.fromkeys(("create", "update", "replace", "delete", "same"), 0)
    for key in o.keys() | n.keys():
        if key not in o:
            counts["create"] += 1
        elif key not in n:
            counts["delete"] += 1
        elif o[key] == n[key]:
            counts["same"] += 1
        elif key[0] == "RuntimeClass" and o[key][1][0] != n[key][1][0]:
            counts["replace"] += 1  # handler: replace_on_changes
        elif n[key][0] == "replace-always":
            counts["replace"] += 1
        else:
            counts["update"] += 1
    return counts


def diff_plans(old: FleetPlan, new: FleetPlan) -> PlanDiff:
    d = PlanDiff()
    d.resources = count_resources(old, new)
    d.before, d.after = pool_matrix(old), pool_matrix(new)
    old_rc = {rc.name: {"handler": rc.handler, "nodeSelector": rc.node_selector} for rc in old.runtime_classes}
    new_rc = {rc.name: {"handler": rc.handler, "nodeSelector": rc.node_selector} for rc in new.runtime_classes}
    _compare(d.changes, "runtimeClass", None, old_rc, new_rc, None)
    for name in sorted(set(old_rc) & set(new_rc), key=natural_key):
        if old_rc[name]["handler"] != new_rc[name]["handler"]:
            d.unsafe.append(Unsafe(None, f"runtimeClass {name}",
                                   f"handler would change from {old_rc[name]['handler']!r} to "
                                   f"{new_rc[name]['handler']!r}; RuntimeClass handlers are immutable and the "
                                   "class would be deleted and re-created, rejecting new pods meanwhile: add a new "
                                   "class instead", kind=CLASS_HANDLER))

    _compare_fleet(d, old, new)
    _compare_pools(d, old, new)
    notes: dict[tuple[str | None, str], list[str]] = {}
    old_nodes = {n.name: n for n in old.nodes}
    new_nodes = {n.name: n for n in new.nodes}
    for name in sorted(set(old_nodes) | set(new_nodes), key=natural_key):
        _compare_node(d, old, old_nodes.get(name), new_nodes.get(name), notes)
    d.notes += [Note(pool, text, tuple(nodes)) for (pool, text), nodes in notes.items()]
    _rollouts(d, old_nodes, new)
    old_agents = {a.name: a for a in old.agent_pools}
    new_agents = {a.name: a for a in new.agent_pools}
    for name in sorted(set(old_agents) | set(new_agents), key=natural_key):
        a = new_agents.get(name) or old_agents[name]
        d.agent_pools[name] = selector_words(a.node_selector)
        _compare_agent_pool(d, old, old_agents.get(name), new_agents.get(name))
    return d


def _rollouts(d: PlanDiff, old_nodes: dict[str, NodePlan], new: FleetPlan) -> None:
    """The batches of the nodes whose handler table changes (added, or a table that differs): those restart."""
    from .rollout import fleet_batches

    for pool, batches in fleet_batches(new).items():
        changing = [n.name for n in new.nodes if n.pool == pool
                    and (n.name not in old_nodes or old_nodes[n.name].handlers != n.handlers
                         or old_nodes[n.name].pool != n.pool)]
        if not changing:
            continue
        labels = tuple(batches.label(i) for i, b in enumerate(batches.batches) if set(b) & set(changing))
        d.rollouts[pool] = batches.only(changing)
        d.rollout_words[pool] = (batches.summary(), labels)


def _agent_settings(a: AgentPoolPlan) -> dict[str, Any]:
    r = a.rollout
    return {"nodeSelector": selector_words(a.node_selector), "containerd": a.node.flavor,
            "restart": a.node.restart,
            "rollout": f"maxUnavailable {r.max_unavailable}, minReadySeconds {r.min_ready_seconds}, "
                       f"timeoutSeconds {r.timeout_seconds}" + (f", canary {r.canary}" if r.canary is not None else ""),
            "checkSeconds": a.check_seconds}


def _release_states(n: NodePlan) -> dict[str, str]:
    return {**{r: "labelled" for r in n.releases}, **{r: "retiring" for r in n.retiring}}


def _compare_agent_pool(d: PlanDiff, old: FleetPlan, o: AgentPoolPlan | None, n: AgentPoolPlan | None) -> None:
    """An agent pool as a whole: what every node it selects runs, and how it rolls."""
    either = n if n is not None else o
    assert either is not None
    pool = either.name
    if o is None:
        assert n is not None
        d.changes.append(Change("added", "agentPool", None, pool, new=_contents(n.node), pool=pool))
        return
    if n is None:
        d.changes.append(Change("removed", "agentPool", None, pool, old=_contents(o.node), pool=pool))
        d.notes.append(Note(pool, "removed whole: safe in one step, the program deletes its DaemonSet, then "
                                  "uninstalls it from every node it selects (labels first, then the handler table, "
                                  "restoring the original containerd config, then the binaries and the kit)"))
        return
    so, sn = _agent_settings(o), _agent_settings(n)
    _compare(d.changes, "pool", None, so, sn, pool)
    _compare(d.changes, "release", None, _release_states(o.node), _release_states(n.node), pool)
    if so["containerd"] != sn["containerd"]:
        d.unsafe.append(Unsafe(None, "containerd", f"changes from {so['containerd']} to {sn['containerd']}, which "
                                                   "moves every node's handler table to another file; the agents "
                                                   "would write the new table and leave the old one. Remove the "
                                                   "pool in one step (up), then add it back with the new "
                                                   "containerd in the next", pool, MOVES_TABLE))
    if so["nodeSelector"] != sn["nodeSelector"]:
        d.notes.append(Note(pool, f"the pool now selects every node with {sn['nodeSelector']}: a node that no "
                                  "longer matches is uninstalled by its agent as it leaves, a node that matches "
                                  "gets the pool's releases"))
    if so["restart"] != sn["restart"]:
        d.notes.append(Note(pool, f"the restart command changes to {_short(sn['restart'])}; it runs as root on "
                                  "every node of the pool the next time its handler table changes"))
    changed = [c for c in d.changes if c.pool == pool and c.subject == "release"]
    if changed:
        r = n.rollout
        d.notes.append(Note(pool, f"rolls node by node: at most {r.max_unavailable} node(s) at a time, each Ready "
                                  f"for {r.min_ready_seconds}s before the next; `pulumi up` fails at the first node "
                                  "whose agent cannot converge, and the nodes not yet reached keep what they run"))
    for _name, was, now in _compare_contents(d, old, o.node, n.node, None, pool):
        if was["url"] != now["url"]:
            d.notes.append(Note(pool, f"{was['release']} is downloaded from a new url ({now['url']}); its sha256 is "
                                      "the same, so installed bytes do not change"))


def _compare_fleet(d: PlanDiff, old: FleetPlan, new: FleetPlan) -> None:
    """Fleet-wide settings that change every node's labels or how they are applied."""
    def force(plan: FleetPlan) -> bool | None:
        return plan.nodes[0].force_labels if plan.nodes else None

    o = {"labelPrefix": old.label_prefix or None, "kubernetes.forceLabels": force(old)}
    n = {"labelPrefix": new.label_prefix or None, "kubernetes.forceLabels": force(new)}
    if not old.nodes or not new.nodes:
        o.pop("kubernetes.forceLabels")
        n.pop("kubernetes.forceLabels")
    _compare(d.changes, "setting", None, o, n, None)
    if o["labelPrefix"] != n["labelPrefix"] and old.nodes and new.nodes:
        d.notes.append(Note(None, "labelPrefix changes: every fleet label and every RuntimeClass nodeSelector is "
                                  "replaced; pods scheduled meanwhile may wait (Pending) until the new labels are "
                                  "on their nodes, running pods are not affected"))
    if n.get("kubernetes.forceLabels") and not o.get("kubernetes.forceLabels"):
        d.notes.append(Note(None, "kubernetes.forceLabels turns on: labels of the same name that another field "
                                  "manager set are taken over"))


def _compare_pools(d: PlanDiff, old: FleetPlan, new: FleetPlan) -> None:
    """Pool-wide settings, said once per pool; a flavor or transport change moves every node's table."""
    first_old: dict[str, NodePlan] = {}
    first_new: dict[str, NodePlan] = {}
    for n in old.nodes:
        first_old.setdefault(n.pool, n)
    for n in new.nodes:
        first_new.setdefault(n.pool, n)
    for pool in sorted(set(first_old) & set(first_new), key=natural_key):
        was, now = _settings(first_old[pool], POOL_SETTINGS), _settings(first_new[pool], POOL_SETTINGS)
        _compare(d.changes, "pool", None, was, now, pool)
        for key in ("containerd", "transport"):
            if was[key] != now[key]:
                d.unsafe.append(Unsafe(None, key, f"changes from {was[key]} to {now[key]}, which moves every node's "
                                                  "handler table to another file or machine; an update in place "
                                                  "would write the new table and leave the old one. Remove the "
                                                  "pool's nodes in one step (up), then add them back with the new "
                                                  f"{key} in the next", pool, MOVES_TABLE))
        if was["restart"] != now["restart"]:
            d.notes.append(Note(pool, f"the restart command changes to {_short(now['restart'])}; it runs as root "
                                      "on every node of the pool the next time its handler table changes"))


def _compare_node(d: PlanDiff, old: FleetPlan, o: NodePlan | None, n: NodePlan | None,
                  notes: dict[tuple[str | None, str], list[str]]) -> None:
    either = n if n is not None else o
    assert either is not None
    node, pool = either.name, either.pool

    def note(text: str, where: str | None = pool) -> None:
        notes.setdefault((where, text), []).append(node)

    if o is None:
        assert n is not None
        d.changes.append(Change("added", "node", node, node, new=_contents(n), pool=pool))
        return
    if n is None:
        d.changes.append(Change("removed", "node", node, node, old=_contents(o), pool=pool))
        note("removed whole: safe in one step, the engine deletes its labels first, then its handler table "
             "(restoring the original containerd config), then its binaries", o.pool)
        return
    if o.pool != n.pool:
        d.changes.append(Change("changed", "node", node, "pool", old=o.pool, new=n.pool, pool=pool))
        d.unsafe.append(Unsafe(node, "node moves between pools",
                               f"from {o.pool} to {n.pool}: its resources are named after the pool, so the engine "
                               "creates the new ones and then deletes the old, whose delete would take away the new "
                               f"handler table and labels. Remove it from {o.pool} in one step (up), then add it to "
                               f"{n.pool} in the next", pool, MOVES_POOL))
    _compare(d.changes, "connection", node, _settings(o, CONNECTION), _settings(n, CONNECTION), pool)
    if (o.host, o.port) != (n.host, n.port) and o.transport == n.transport == "ssh":
        note("new address: every command of the node runs again there (nothing changes if it is the same "
             "machine); to move to another machine, remove the node in one step and add it back in the next, "
             "or the old machine keeps its shims")
    if o.host_key != n.host_key and n.host_key:
        note("pins a new host key: compare it with `ssh-keyscan` from a trusted network; an unexpected change "
             "is what a machine in the middle looks like")
    if (o.user, o.proxy) != (n.user, n.proxy) and n.transport == "ssh":
        note("new ssh user or bastion: every command runs again over it; deletes use the connection recorded "
             "in the stack state, so apply this before removing anything reached the old way", None)
    for _name, was, now in _compare_contents(d, old, o, n, node, pool):
        if was["url"] != now["url"]:
            note(f"{was['release']} is downloaded from a new url ({now['url']}); its sha256 is the same, so "
                 "installed bytes do not change")


def _compare_contents(d: PlanDiff, old: FleetPlan, o: NodePlan, n: NodePlan, node: str | None,
                      pool: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """What a node runs (or every node of an agent pool, `node` None): labels, handlers, binaries, and the two
    refusals they can call for (a handler removed with the label that promises it; an installed version's bytes
    changing). Returns the binaries kept with the same bytes, (name, old, new), for the caller's notes."""
    _compare(d.changes, "label", node, o.labels, n.labels, pool)
    _compare(d.changes, "handler", node, o.handlers, n.handlers, pool)
    o_bins, n_bins = _binaries(o), _binaries(n)
    _compare(d.changes, "binary", node, o_bins, n_bins, pool)
    promised = _promised_handlers(old, o)
    for handler in sorted(set(o.handlers) - set(n.handlers), key=natural_key):
        if handler in promised:
            d.unsafe.append(Unsafe(node, f"handler {handler}",
                                   f"is removed in the same step as label {promised[handler]} that promises it; "
                                   "first move the release to the pool's retiring list (labels go, handler "
                                   "stays), apply, then remove it", pool, PROMISED_HANDLER))
    same = []
    for bname in sorted(set(o_bins) & set(n_bins), key=natural_key):
        was, now = o_bins[bname], n_bins[bname]
        if was["sha256"] != now["sha256"] or was["member"] != now["member"]:
            what = "sha256" if was["sha256"] != now["sha256"] else "archive member"
            d.unsafe.append(Unsafe(node, f"binary {bname}",
                                   f"{what} changes for {was['release']}, an installed version; a version's bytes "
                                   "must never change: publish and pin a new version", pool, BYTES))
        else:
            same.append((bname, was, now))
    return same


def _contents(n: NodePlan) -> str:
    return (f"{', '.join(n.releases) or 'no release'}"
            + (f", retiring {', '.join(n.retiring)}" if n.retiring else "")
            + f": {len(n.labels)} labels, {len(n.handlers)} handlers, {len(n.binaries)} binaries")


def _promised_handlers(plan: FleetPlan, node: NodePlan) -> dict[str, str]:
    """handler -> label on `node` whose RuntimeClass promises that handler."""
    out = {}
    for rc in plan.runtime_classes:
        for label in rc.node_selector:
            if node.labels.get(label) == rc.node_selector[label]:
                out[rc.handler] = label
    return out
