"""The desired state of the fleet, computed from a checked stack config.

Per node: the binaries to install, the containerd handler table (exact handlers plus node-local aliases)
and the labels to set. For the cluster: the RuntimeClasses.

The handler contract (field notes trap 1): a RuntimeClass's handler must mean the same thing on every node
its selector matches. Series classes therefore use node-local alias handlers (`slight-v1-2` on a node
points at the highest 1.2.x installed *on that node*), so a class's handler never changes when releases
come and go. Prereleases get only their exact names.

Releases in a pool's `retiring` list keep their binary and exact handler but lose their labels. An alias
that only a retiring release provides is kept (without its label) until the release is removed, so that no
step removes a handler while a label that selects it may still be on the node.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import naming
from .config import FleetConfig, Node, Pool, Problem, Release, Rollout, check_config
from .flavors import FLAVORS, Flavor


@dataclass(frozen=True)
class Binary:
    """A shim binary to install under naming.BIN_DIR."""

    name: str
    release: str
    url: str
    sha256: str
    member: str | None
    probe: str = "version"  # config.PROBES
    #: The largest download the node accepts (None: the kit's default, config.DEFAULT_MAX_BYTES).
    max_bytes: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"release": self.release, "url": self.url, "sha256": self.sha256}
        if self.member:
            out["member"] = self.member
        if self.max_bytes is not None:
            out["maxBytes"] = self.max_bytes
        if self.probe != "version":
            out["probe"] = self.probe
        return out


@dataclass(frozen=True)
class NodePlan:
    name: str
    pool: str
    flavor: str
    transport: str
    host: str
    port: int | None
    host_key: str | None
    releases: tuple[str, ...]  # labelled
    retiring: tuple[str, ...]  # installed, not labelled
    handlers: dict[str, str]  # handler -> runtime_type, sorted by handler
    aliases: dict[str, str]  # alias handler -> exact handler it points at
    labels: dict[str, str]  # label key -> "true", sorted
    binaries: dict[str, Binary]  # binary name -> artifact, sorted
    local_root: str
    restart: str | None  # None: the flavor's restart command
    seed_config: str | None = None  # transport local: config copied into a node root that has none
    #: whether the node's label patch takes over labels another field manager owns (kubernetes.forceLabels)
    force_labels: bool = False
    user: str | None = None  # ssh login user (None for transport local)
    proxy: str | None = None  # ssh bastion as user@host:port plus its pinned host key, if any
    #: a caller's own containerd layout named `flavor` (None: `flavor` is a built-in one, flavors.FLAVORS)
    layout: Flavor | None = None

    @property
    def containerd(self) -> Flavor:
        """The node's containerd layout: its own, or the built-in flavor it names."""
        return self.layout if self.layout is not None else FLAVORS[self.flavor]

    @property
    def node_root(self) -> str:
        """Where the node's files live: / over SSH and through the cluster, <localRoot>/<node> for the local
        transport."""
        return f"{self.local_root.rstrip('/')}/{self.name}" if self.transport == "local" else "/"

    def to_json(self, full: bool = False) -> dict[str, Any]:
        """What the node runs; `full` adds how it is reached and its settings (the plan a stack records)."""
        out = {
            "name": self.name,
            "pool": self.pool,
            "containerd": self.flavor,
            "transport": self.transport,
            "releases": list(self.releases),
            "retiring": list(self.retiring),
            "handlers": dict(self.handlers),
            "aliases": dict(self.aliases),
            "labels": dict(self.labels),
            "binaries": {k: v.to_json() for k, v in self.binaries.items()},
        }
        if self.layout is not None:  # only then: a built-in flavor's node says what it always said
            out["layout"] = _layout_json(self.layout)
        if not full:
            return out
        return {
            **out,
            "host": self.host,
            "port": self.port,
            "hostKey": self.host_key,
            "localRoot": self.local_root,
            "restart": self.restart,
            "seedConfig": self.seed_config,
            "forceLabels": self.force_labels,
            "user": self.user,
            "proxy": self.proxy,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> NodePlan:
        """The inverse of to_json (a plan recorded in a stack output)."""
        return cls(
            name=d["name"], pool=d["pool"], flavor=d["containerd"], transport=d["transport"],
            host=d.get("host") or "", port=d.get("port"), host_key=d.get("hostKey"),
            releases=tuple(d.get("releases") or ()), retiring=tuple(d.get("retiring") or ()),
            handlers=dict(d.get("handlers") or {}), aliases=dict(d.get("aliases") or {}),
            labels=dict(d.get("labels") or {}),
            binaries={k: Binary(k, b["release"], b["url"], b["sha256"], b.get("member"),
                                       b.get("probe", "version"), b.get("maxBytes"))
                      for k, b in (d.get("binaries") or {}).items()},
            local_root=d.get("localRoot") or "nodes", restart=d.get("restart"), seed_config=d.get("seedConfig"),
            force_labels=bool(d.get("forceLabels")), user=d.get("user"), proxy=d.get("proxy"),
            layout=_layout_from_json(d["layout"]) if d.get("layout") else None,
        )


def _layout_json(f: Flavor) -> dict[str, Any]:
    return {"name": f.name, "configVersion": f.config_version, "configPath": f.config_path,
            "template": f.template, "restart": f.restart, "loadedConfigPath": f.loaded_config_path,
            "socket": f.socket, "createBase": f.create_base, "alsoAccepts": list(f.also_accepts),
            **({"alsoWrites": list(f.also_writes)} if f.also_writes else {})}


def _layout_from_json(d: Mapping[str, Any]) -> Flavor:
    return Flavor(name=d["name"], config_version=d["configVersion"], config_path=d["configPath"],
                  template=d["template"], restart=d["restart"], loaded_config_path=d["loadedConfigPath"],
                  socket=d["socket"], create_base=d.get("createBase"), also_accepts=tuple(d.get("alsoAccepts") or ()),
                  also_writes=tuple(d.get("alsoWrites") or ()))


@dataclass(frozen=True)
class AgentPoolPlan:
    """A pool of transport agent: its nodes are chosen by `node_selector` (now and later) and each is converged by
    the node agent of the pool's DaemonSet to what `node` describes (every node of the pool runs the same:
    `node.name` is the pool's name, `node.transport` is "agent")."""

    name: str
    node_selector: dict[str, str]
    rollout: Rollout
    check_seconds: int
    node: NodePlan

    @property
    def labels(self) -> dict[str, str]:
        return self.node.labels

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "nodeSelector": dict(self.node_selector), "rollout": self.rollout.to_json(),
                "checkSeconds": self.check_seconds, "node": self.node.to_json(full=True)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> AgentPoolPlan:
        r = d.get("rollout") or {}
        rollout = Rollout(r.get("maxUnavailable", 1), r.get("minReadySeconds", 0), r.get("timeoutSeconds", 600))
        return cls(d["name"], dict(d.get("nodeSelector") or {}), rollout, int(d.get("checkSeconds", 60)),
                   NodePlan.from_json(d["node"]))


@dataclass(frozen=True)
class RuntimeClassPlan:
    name: str
    handler: str
    node_selector: dict[str, str]
    shim: str
    scope: str  # exact | minor | major | any

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "handler": self.handler, "nodeSelector": dict(self.node_selector),
                "shim": self.shim, "scope": self.scope}


class HasProblems:
    """`errors` and `ok` of a plan that carries its `problems` (FleetPlan, pool.PoolPlan)."""

    problems: tuple[Problem, ...]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class FleetPlan(HasProblems):
    runtime: str
    runtime_classes: tuple[RuntimeClassPlan, ...]
    nodes: tuple[NodePlan, ...]
    problems: tuple[Problem, ...]
    label_prefix: str = ""  # the stack's labelPrefix
    #: pools of transport agent (their nodes are chosen by label: none of them is in `nodes`)
    agent_pools: tuple[AgentPoolPlan, ...] = ()

    def node(self, name: str) -> NodePlan:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def runtime_class(self, name: str) -> RuntimeClassPlan:
        for rc in self.runtime_classes:
            if rc.name == name:
                return rc
        raise KeyError(name)

    def agent_pool(self, name: str) -> AgentPoolPlan:
        for a in self.agent_pools:
            if a.name == name:
                return a
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        out = {
            "runtime": self.runtime,
            "labelPrefix": self.label_prefix,
            "runtimeClasses": [rc.to_json() for rc in self.runtime_classes],
            "nodes": [n.to_json(full=True) for n in self.nodes],
            "problems": [p.to_json() for p in self.problems],
        }
        if self.agent_pools:  # only then: a fleet without agent pools records what it always recorded
            out["agentPools"] = [a.to_json() for a in self.agent_pools]
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FleetPlan:
        """The inverse of to_json, problems left out (a plan recorded in a stack output was applied)."""
        classes = tuple(RuntimeClassPlan(rc["name"], rc["handler"], dict(rc["nodeSelector"]), rc.get("shim", ""),
                                         rc.get("scope", "")) for rc in d.get("runtimeClasses") or ())
        return cls(d.get("runtime", ""), classes, tuple(NodePlan.from_json(n) for n in d.get("nodes") or ()), (),
                   d.get("labelPrefix") or "", tuple(AgentPoolPlan.from_json(a) for a in d.get("agentPools") or ()))


# ------------------------------------------------------------------------------------------- series
@dataclass(frozen=True)
class _Series:
    handler: str  # alias handler name
    scope: str  # minor | major | any


def series_of(release: Release) -> list[_Series]:
    """The aliases a release can stand for: none for a prerelease (no compatibility promise)."""
    if not release.stable:
        return []
    out = [_Series(naming.minor_series(release.shim, release.version), "minor")]
    major = naming.major_series(release.shim, release.version)
    if major:
        out.append(_Series(major, "major"))
    out.append(_Series(naming.any_handler(release.shim), "any"))
    return out


def select_aliases(releases: Iterable[Release]) -> dict[str, Release]:
    """alias handler -> the highest release of that series among `releases`."""
    best: dict[str, Release] = {}
    for rel in releases:
        for s in series_of(rel):
            cur = best.get(s.handler)
            if cur is None or rel.version > cur.version:
                best[s.handler] = rel
    return best


# --------------------------------------------------------------------------------------------- plan
def plan_node(cfg: FleetConfig, pool: Pool, node: Node) -> NodePlan:
    active = [cfg.releases[k] for k in pool.releases]
    retiring = [cfg.releases[k] for k in pool.retiring]
    aliases = select_aliases(active)
    # An alias only a retiring release provides stays, unlabelled, until that release is removed.
    for handler, rel in select_aliases(retiring).items():
        aliases.setdefault(handler, rel)
    handlers = {r.handler: naming.runtime_type(r.handler) for r in (*active, *retiring)}
    handlers.update({a: naming.runtime_type(r.handler) for a, r in aliases.items()})
    labels: dict[str, str] = {}
    for rel in active:
        labels[naming.label_key(cfg.runtime, rel.handler, rel.shim, cfg.label_prefix)] = naming.LABEL_VALUE
    for alias in select_aliases(active):
        shim = aliases[alias].shim
        labels[naming.label_key(cfg.runtime, alias, shim, cfg.label_prefix)] = naming.LABEL_VALUE
    binaries = {r.binary: Binary(r.binary, r.key, r.url, r.sha256, r.member, r.probe, r.max_bytes)
                for r in (*active, *retiring)}
    return NodePlan(
        name=node.name,
        pool=pool.name,
        flavor=pool.flavor,
        transport=pool.transport,
        host=node.host,
        port=node.port if node.port is not None else (cfg.ssh.port if pool.transport == "ssh" else None),
        host_key=node.host_key,
        releases=tuple(pool.releases),
        retiring=tuple(pool.retiring),
        handlers=dict(sorted(handlers.items())),
        aliases={a: aliases[a].handler for a in sorted(aliases)},
        labels=dict(sorted(labels.items())),
        binaries=dict(sorted(binaries.items())),
        local_root=pool.local_root,
        # A local node is a folder on this machine: never restart this machine's containerd by default.
        restart=pool.restart if pool.restart is not None else (":" if pool.transport == "local" else None),
        seed_config=pool.seed_config,
        force_labels=cfg.kubernetes.force_labels,
        user=cfg.ssh.user if pool.transport == "ssh" else None,
        proxy=_proxy_text(cfg) if pool.transport == "ssh" else None,
    )


def _proxy_text(cfg: FleetConfig) -> str | None:
    """The bastion as one comparable string (what `diff` shows when it changes)."""
    p = cfg.ssh.proxy
    if p is None:
        return None
    text = f"{p.user or cfg.ssh.user}@{p.host}:{p.port or 22}"
    return text + (f" hostKey {p.host_key}" if p.host_key else " (host key not pinned)")


def plan_runtime_classes(cfg: FleetConfig, nodes: Iterable[NodePlan]) -> tuple[RuntimeClassPlan, ...]:
    """One class per label some node carries; its handler is the one that label promises."""
    classes: dict[str, RuntimeClassPlan] = {}
    by_label: dict[str, tuple[str, str, str]] = {}
    for rel in cfg.releases.values():
        by_label[naming.label_key(cfg.runtime, rel.handler, rel.shim, cfg.label_prefix)] = (rel.handler, rel.shim,
                                                                                          "exact")
        for s in series_of(rel):
            by_label[naming.label_key(cfg.runtime, s.handler, rel.shim, cfg.label_prefix)] = (s.handler, rel.shim,
                                                                                             s.scope)
    for node in nodes:
        for label in node.labels:
            handler, shim, scope = by_label[label]
            name = naming.class_name(cfg.runtime, handler)
            classes[name] = RuntimeClassPlan(name, handler, {label: naming.LABEL_VALUE}, shim, scope)
    return tuple(classes[k] for k in sorted(classes))


def selected_without_handler(classes: Iterable[Any], nodes: Iterable[Any]) -> list[tuple[Any, Any]]:
    """The handler contract (field notes trap 1): every (class, node) pair where the class's nodeSelector matches
    the node (an empty selector matches every node) and the node has no handler of the class's name.

    Shape-agnostic, so the plan and the policy pack share it: a class has `name`, `handler`, `node_selector`;
    a node has `name`, `labels`, `handlers`."""
    nodes = list(nodes)
    return [(rc, node) for rc in classes for node in nodes
            if all(node.labels.get(k) == v for k, v in rc.node_selector.items()) and rc.handler not in node.handlers]


def check_handler_contract(plan_classes: Iterable[RuntimeClassPlan], nodes: Iterable[NodePlan]) -> list[Problem]:
    """Every node a class's nodeSelector matches must have that class's handler (field notes trap 1)."""
    return [Problem("error", f"runtimeClasses.{rc.name}",
                    f"selects node {node.name} which has no handler {rc.handler!r}")
            for rc, node in selected_without_handler(plan_classes, nodes)]


def plan_agent_pool(cfg: FleetConfig, pool: Pool) -> AgentPoolPlan:
    """What every node of an agent pool runs: planned as a node named after the pool."""
    assert pool.node_selector is not None and pool.rollout is not None
    return AgentPoolPlan(pool.name, dict(pool.node_selector), pool.rollout, pool.check_seconds,
                         plan_node(cfg, pool, Node(pool.name, "", None, None, pool.path)))


def build_plan(cfg: FleetConfig, problems: Iterable[Problem] = ()) -> FleetPlan:
    nodes = tuple(plan_node(cfg, pool, node) for pool in cfg.pools if pool.transport != "agent"
                  for node in pool.nodes)
    agents = tuple(plan_agent_pool(cfg, pool) for pool in cfg.pools if pool.transport == "agent")
    labelled = (*nodes, *(a.node for a in agents))
    classes = plan_runtime_classes(cfg, labelled)
    all_problems = [*problems, *check_handler_contract(classes, labelled)]
    return FleetPlan(cfg.runtime, classes, nodes, tuple(all_problems), cfg.label_prefix, agents)


def plan_from_config(raw: Mapping[str, Any], base_dir: str | Path | None = None,
                     secret_keys: Collection[str] | None = None) -> tuple[FleetConfig, FleetPlan]:
    """Check the namespace-stripped stack config and plan what passed (see check_config for base_dir and
    secret_keys)."""
    cfg, problems = check_config(raw, base_dir, secret_keys)
    return cfg, build_plan(cfg, problems)
