"""One node pool planned from a caller's arguments (the components' `NodePoolArgs`), through the very checks
and plan of a stack file.

A platform engineer's own Pulumi program gives a catalog, the pool's releases, a containerd flavor (a built-in
name or a layout of their own, `flavors.Flavor`) and nodes. This module turns that into the stack config's
shape, runs `config.check_config` and `plan.build_plan` on it, and names every problem by the *argument* it
came from (`catalog[1].sha256`, `nodes[0].host_key`) instead of the stack config path: each rule stays in
config.py and plan.py.

How a node is reached may be unknown while the program runs (a host, port or host key that is the output of
another resource): such values are passed as `PENDING`; the plan never needs them (names, handlers, labels and
scripts do not depend on them), and `config.connection_problems` checks them when they resolve. Everything
else must be a plain value: it names resources or goes into the node scripts.

Pure: no pulumi, no I/O.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .config import DEFAULT_RUNTIME, Problem, check_config, connection_problems
from .flavors import FLAVORS, Flavor, flavor_problems
from .plan import HasProblems, NodePlan, RuntimeClassPlan, build_plan


class _Pending:
    """A value not known while planning (a pulumi Output of another resource)."""

    def __repr__(self) -> str:
        return "PENDING"


#: Stands for a value that is not known yet (the components pass it for a pulumi Output).
PENDING: Any = _Pending()


@dataclass(frozen=True)
class CatalogEntry:
    """One release of a shim and its artifact: the stack config's `shims.<shim>[i]`."""

    shim: str
    version: str
    url: str
    sha256: str
    binary: str | None = None
    probe: str = "version"
    #: The largest download a node accepts for it (None: 256 MiB).
    max_bytes: int | None = None


@dataclass(frozen=True)
class NodeSpec:
    """A node as planning sees it: `host`, `port`, `host_key` and `user` may be PENDING."""

    name: Any
    host: Any = None
    port: Any = None
    host_key: Any = None
    user: Any = None
    #: the node has credentials of its own (else the pool's apply)
    has_credentials: bool = False


@dataclass(frozen=True)
class PoolSpec:
    """The plain part of a NodePool's arguments."""

    pool: Any
    catalog: Sequence[CatalogEntry]
    releases: Sequence[Any]
    nodes: Sequence[NodeSpec]
    retiring: Sequence[Any] = ()
    containerd: Any = "containerd-1"  # a built-in flavor name, or a Flavor
    transport: str = "ssh"
    user: Any = "root"
    port: Any = 22
    has_credentials: bool = False
    restart: str | None = None
    runtime: str = DEFAULT_RUNTIME
    label_prefix: str = ""
    force_labels: bool = False
    local_root: str = "nodes"
    seed_config: str | None = None
    #: the bastion as one comparable string (NodePlan.proxy), if any
    proxy: str | None = None
    #: lab only: nodes may go without a pinned host key
    insecure_accept_any_host_key: bool = False


@dataclass(frozen=True)
class PoolPlan(HasProblems):
    nodes: tuple[NodePlan, ...]
    runtime_classes: tuple[RuntimeClassPlan, ...]
    problems: tuple[Problem, ...]


_PLACEHOLDER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPENDINGPENDINGPENDINGPENDINGPENDINGPENDINGPEND"
_KEY_NAMES = {"hostKey": "host_key", "localRoot": "local_root", "seedConfig": "seed_config",
              "privateKey": "private_key", "labelPrefix": "label_prefix"}


def plan_pool(spec: PoolSpec) -> PoolPlan:
    """Check and plan one pool; every problem is named by its argument (see the module docstring)."""
    problems: list[Problem] = []
    flavors: Mapping[str, Flavor] = FLAVORS
    layout: Flavor | None = None
    flavor_name: Any = spec.containerd
    if isinstance(spec.containerd, Flavor):
        layout = spec.containerd
        found = flavor_problems(layout)
        problems += [Problem("error", f"containerd.{field}", message) for field, message in found]
        flavor_name = layout.name
        if not found:
            flavors = {**FLAVORS, layout.name: layout}

    def plain(value: Any, path: str, why: str) -> Any:
        if value is PENDING:
            problems.append(Problem("error", path, f"is a pulumi Output; it {why}, so it must be a plain value "
                                                   "when the program runs: pass the value itself"))
            return None
        return value

    shims: dict[str, list[dict[str, Any]]] = {}
    catalog_index: dict[tuple[str, int], int] = {}
    for i, e in enumerate(spec.catalog):
        entry: dict[str, Any] = {"version": e.version, "url": e.url, "sha256": e.sha256, "probe": e.probe}
        if e.max_bytes is not None:
            entry["maxBytes"] = e.max_bytes
        if e.binary is not None:
            entry["binary"] = e.binary
        catalog_index[(e.shim, len(shims.setdefault(e.shim, [])))] = i
        shims[e.shim].append(entry)

    nodes: list[dict[str, Any]] = []
    for j, n in enumerate(spec.nodes):
        name = plain(n.name, f"nodes[{j}].name", "names the node's resources and its Kubernetes Node")
        raw: dict[str, Any] = {"name": name if n.name is not PENDING else f"pending-name-{j}"}
        if spec.transport == "ssh":
            raw["host"] = f"pending-{j}.invalid" if n.host is PENDING else n.host
            if n.port is not None and n.port is not PENDING:
                raw["port"] = n.port
            if n.host_key is not None:
                raw["hostKey"] = _PLACEHOLDER_KEY if n.host_key is PENDING else n.host_key
            if not (n.has_credentials or spec.has_credentials):
                problems.append(Problem("error", f"nodes[{j}].credentials",
                                        f"node {name!r} has no SSH credentials and the pool has none; give the "
                                        "pool's `credentials` (a private key or an SSH agent socket) or the "
                                        "node's own"))
            if n.user is not None and n.user is not PENDING:
                problems += connection_problems(f"nodes[{j}].credentials", user=n.user)
        nodes.append(raw)

    pool_raw: dict[str, Any] = {
        "name": plain(spec.pool, "pool", "names the pool in every node script"),
        "containerd": flavor_name, "transport": spec.transport,
        "releases": [plain(r, f"releases[{k}]", "selects what is installed") for k, r in enumerate(spec.releases)],
        "retiring": [plain(r, f"retiring[{k}]", "selects what is installed") for k, r in enumerate(spec.retiring)],
        "nodes": nodes,
    }
    if spec.restart is not None:
        pool_raw["restart"] = spec.restart
    if spec.transport == "local":
        pool_raw["localRoot"] = spec.local_root
        if spec.seed_config is not None:
            pool_raw["seedConfig"] = spec.seed_config
    raw_config: dict[str, Any] = {"runtime": spec.runtime, "shims": shims, "nodePools": [pool_raw],
                                  "kubernetes": {"forceLabels": spec.force_labels}}
    if spec.label_prefix:
        raw_config["labelPrefix"] = spec.label_prefix
    if spec.transport == "ssh":
        ssh: dict[str, Any] = {"privateKey": "<credentials>",  # presence only: checked per node above
                               "insecureAcceptAnyHostKey": spec.insecure_accept_any_host_key}
        if spec.user is not PENDING:
            ssh["user"] = spec.user
        if spec.port is not PENDING:
            ssh["port"] = spec.port
        raw_config["ssh"] = ssh
    cfg, config_problems = check_config(raw_config, None, None, flavors)
    if any(p.severity == "error" for p in problems):
        # Without a valid layout (or with an Output where a plain value belongs) the pool cannot be planned;
        # the config's own findings still come along.
        return PoolPlan((), (), tuple(problems + [_named(p, catalog_index) for p in config_problems]))
    plan = build_plan(cfg, config_problems)
    problems += [_named(p, catalog_index) for p in plan.problems]
    if any(p.severity == "error" for p in problems):
        return PoolPlan((), (), tuple(problems))
    planned = []
    for n, node in zip(spec.nodes, plan.nodes, strict=True):
        planned.append(dataclasses.replace(
            node,
            host="" if n.host is PENDING or node.transport != "ssh" else node.host,
            port=None if n.port is PENDING else node.port,
            host_key=None if n.host_key is PENDING else node.host_key,
            user=(n.user if n.user is not None and n.user is not PENDING else node.user)
            if node.transport == "ssh" else None,
            proxy=spec.proxy if node.transport == "ssh" else None,
            layout=layout))
    return PoolPlan(tuple(planned), plan.runtime_classes, tuple(problems))


def _named(problem: Problem, catalog_index: Mapping[tuple[str, int], int]) -> Problem:
    """A stack config problem named by the NodePool argument it came from."""
    path = problem.path
    m = re.match(r"^shims\.(.+?)\[(\d+)\](.*)$", path)
    if m and (m.group(1), int(m.group(2))) in catalog_index:
        path = f"catalog[{catalog_index[(m.group(1), int(m.group(2)))]}]{m.group(3)}"
    elif path.startswith("shims"):
        path = "catalog" + path[len("shims"):]
    elif path == "nodePools[0].name":
        path = "pool"
    elif path.startswith("nodePools[0]"):
        path = path[len("nodePools[0]"):].lstrip(".") or "pool"
    elif path in ("ssh.user", "ssh.privateKey", "ssh"):
        path = "credentials" + (".user" if path == "ssh.user" else "")
    elif path == "ssh.port":
        path = "port"
    elif path.startswith("kubernetes.forceLabels"):
        path = "force_labels"
    for old, new in _KEY_NAMES.items():
        path = re.sub(rf"(^|\.){old}\b", rf"\g<1>{new}", path)
    message = problem.message.replace("add hostKey (", "pass host_key (").replace(
        "set ssh.insecureAcceptAnyHostKey: true", "pass insecure_accept_any_host_key=True").replace(
        "(ssh.insecureAcceptAnyHostKey is true)", "(insecure_accept_any_host_key=True)")
    return Problem(problem.severity, path, message)
