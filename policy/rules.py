"""The rules of the wasm-shim-fleet policy pack, as plain functions over plain dicts.

Nothing here imports pulumi or pulumi_policy: `__main__.py` turns the engine's resources into dicts
(`{"type", "name", "urn", "props"}`) and these functions return violations, so the rules are unit-tested
directly from the project's test suite (constructing a PolicyPack starts a gRPC server and blocks).

The resource shapes they read:
  wasm-shim-fleet:index:NodePool         inputs  {pool, containerd, nodes: [{name, handlers, labels, binaries}]}
                                         outputs {nodes: {<node>: {releases, retiring, labels, handlers}}}
  wasm-shim-fleet:index:RuntimeClassSet  outputs {runtime_classes: [...]} (its inputs are empty)
  kubernetes:node.k8s.io/v1:RuntimeClass inputs metadata.name, handler, scheduling.nodeSelector
  kubernetes:core/v1:NodePatch           inputs metadata.name (the node), metadata.labels
  command:{remote,local}:Command         a binary install's `create` makes the node kit's install-binary call
                                         (nodescript.install_binary_call reads it back)
  wasm-shim-fleet:index:AgentPool        inputs  {pool, containerd, nodeSelector, releases, retiring}
                                         outputs also {labels, handlers, binaries}: what every node it selects
                                         runs (judged as one node, `agent pool <pool>`)
  kubernetes:core/v1:ConfigMap           an agent pool's state (label app.kubernetes.io/name=wasm-shim-fleet-agent):
                                         data["state.json"].scripts.binaries makes one install-binary call per
                                         binary

During a preview some inputs may still be unknown (absent or None): a rule checks what it can see and
never reports a value it cannot see.

A stack policy sees every resource's *outputs* (the engine's AnalyzeStack), and a component's outputs are what
it registered with register_outputs: for a NodePool, `nodes` keyed by node name without the pool, the binaries
or their digests. The rules read both shapes. From the output shape, a node's binaries are derived from its
handlers' runtime types by containerd's own rule (io.containerd.<name>.<vN> -> containerd-shim-<name>-<vN>), and
the pool is named by the NodePool's resource name (`<fleet>-<pool>`).

Each rule lives in the project's pure core, which this module calls: the handler contract
(plan.selected_without_handler), a class's handler fixed by its name (naming.class_name), the deprecation rule
(deprecation.step_findings), containerd's runtime-type-to-binary rule (naming.binary_of_runtime_type) and what a
binary install command is (nodescript.install_binary_call). The pack's virtualenv installs the project's package
(`wasm_shim_fleet`); in a checkout the folder `components/` is that package.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

try:
    import wasm_shim_fleet  # noqa: F401  (the installed package: the pack's own virtualenv)
except ModuleNotFoundError:  # a checkout: the folder components/ is the same package under its folder name
    import components  # noqa: F401  (makes wasm_shim_fleet an alias of it)
from wasm_shim_fleet.core import naming, nodescript
from wasm_shim_fleet.core.config import DEFAULT_RUNTIME
from wasm_shim_fleet.core.deprecation import step_findings
from wasm_shim_fleet.core.plan import selected_without_handler

NODE_POOL = "wasm-shim-fleet:index:NodePool"
AGENT_POOL = "wasm-shim-fleet:index:AgentPool"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
AGENT_APP = ("app.kubernetes.io/name", "wasm-shim-fleet-agent")
RUNTIME_CLASS_SET = "wasm-shim-fleet:index:RuntimeClassSet"
RUNTIME_CLASS = "kubernetes:node.k8s.io/v1:RuntimeClass"
NODE_PATCH = "kubernetes:core/v1:NodePatch"
COMMANDS = ("command:remote:Command", "command:local:Command")
#: What a command that writes a shim binary names (containerd looks shims up as containerd-shim-<name>-<vN>).
SHIM_PREFIX = "containerd-shim-"

_HEX64 = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{64}(?![0-9A-Fa-f])")

Resource = Mapping[str, Any]  # {"type": str, "name": str, "urn": str, "props": Mapping}


@dataclass(frozen=True)
class Violation:
    message: str
    urn: str | None = None


# ------------------------------------------------------------------------------------------- helpers
def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _of_type(resources: Iterable[Resource], *types: str) -> list[Resource]:
    return [r for r in resources if r.get("type") in types]


@dataclass(frozen=True)
class _Class:
    name: str
    handler: str | None
    node_selector: Mapping[str, str]
    urn: str | None


def runtime_classes(resources: Iterable[Resource]) -> list[_Class]:
    """Every RuntimeClass the stack declares: the Kubernetes resources, and the RuntimeClassSet's list for
    any class whose resource is not (yet) visible."""
    resources = list(resources)
    out: dict[str, _Class] = {}
    for r in _of_type(resources, RUNTIME_CLASS):
        props = r.get("props") or {}
        name = _get(props, "metadata", "name")
        if not isinstance(name, str):
            continue
        selector = _get(props, "scheduling", "nodeSelector") or {}
        out[name] = _Class(name, props.get("handler"), dict(selector), r.get("urn"))
    for r in _of_type(resources, RUNTIME_CLASS_SET):
        # its registered outputs name the list runtime_classes (what AnalyzeStack shows); runtimeClasses: as props
        for rc in _get(r, "props", "runtime_classes") or _get(r, "props", "runtimeClasses") or []:
            if isinstance(rc, Mapping) and isinstance(rc.get("name"), str) and rc["name"] not in out:
                out[rc["name"]] = _Class(rc["name"], rc.get("handler"), dict(rc.get("nodeSelector") or {}),
                                         r.get("urn"))
    return [out[k] for k in sorted(out)]


@dataclass
class _Node:
    name: str
    pool: str | None
    handlers: dict[str, str]
    labels: dict[str, str]
    binaries: dict[str, Mapping[str, Any]]  # binary -> {release, url, sha256} ({} from the output shape)
    component: str | None = None  # the NodePool's resource name: its commands are <component>-<node>-bin-<binary>
    releases: set[str] | None = None


def shim_binary(runtime_type: Any) -> str | None:
    """containerd's rule for the shim binary of a runtime type: io.containerd.<name>.<vN> ->
    containerd-shim-<name>-<vN>."""
    if not isinstance(runtime_type, str):
        return None
    parts = runtime_type.split(".")
    if len(parts) < 4 or parts[:2] != ["io", "containerd"] or not all(parts[2:]):
        return None
    return naming.binary_of_runtime_type(runtime_type)


def _pool_name(r: Resource) -> str | None:
    pool = _get(r, "props", "pool")
    if isinstance(pool, str):
        return pool
    name = r.get("name")
    return name if isinstance(name, str) else None


def pool_nodes(r: Resource) -> list[_Node]:
    """A NodePool's nodes, from its inputs (a list of planned nodes) or its registered outputs (a mapping
    node name -> releases, retiring, labels, handlers, binaries)."""
    nodes = _get(r, "props", "nodes")
    pool, component = _pool_name(r), r.get("name")
    out = []
    if isinstance(nodes, Mapping):
        for name in nodes:
            n = nodes[name]
            if not isinstance(name, str) or not isinstance(n, Mapping):
                continue
            handlers = dict(n.get("handlers") or {})
            binaries = {k: v for k, v in (n.get("binaries") or {}).items() if isinstance(v, Mapping)}
            if not binaries:  # outputs of a NodePool that does not report its binaries: derive the names
                binaries = {b: {} for b in sorted({shim_binary(t) for t in handlers.values()} - {None})}
            releases = {k for k in [*(n.get("releases") or []), *(n.get("retiring") or [])] if isinstance(k, str)}
            out.append(_Node(name, pool, handlers, dict(n.get("labels") or {}), binaries, component, releases))
    elif isinstance(nodes, Iterable) and not isinstance(nodes, str):
        for n in nodes:
            if not isinstance(n, Mapping) or not isinstance(n.get("name"), str):
                continue
            binaries = {k: v for k, v in (n.get("binaries") or {}).items() if isinstance(v, Mapping)}
            releases = {b["release"] for b in binaries.values() if isinstance(b.get("release"), str)}
            out.append(_Node(n["name"], pool, dict(n.get("handlers") or {}), dict(n.get("labels") or {}),
                             binaries, component, releases))
    return out


def fleet_nodes(resources: Iterable[Resource]) -> dict[str, _Node]:
    """Nodes by name: handlers and binaries from the NodePools, labels from NodePools and NodePatches."""
    resources = list(resources)
    nodes: dict[str, _Node] = {}
    for r in _of_type(resources, NODE_POOL):
        for n in pool_nodes(r):
            node = nodes.setdefault(n.name, _Node(n.name, n.pool, {}, {}, {}, n.component, set()))
            node.handlers.update(n.handlers)
            node.labels.update(n.labels)
            node.binaries.update(n.binaries)
            node.releases |= n.releases or set()
    for r in _of_type(resources, NODE_PATCH):
        name = _get(r, "props", "metadata", "name")
        if isinstance(name, str) and name in nodes:
            nodes[name].labels.update(_get(r, "props", "metadata", "labels") or {})
    for r in _of_type(resources, AGENT_POOL):
        node = agent_pool_node(r)
        if node is not None:
            nodes[node.name] = node
    return nodes


def agent_pool_node(r: Resource) -> _Node | None:
    """What every node an agent pool selects runs, as one node named `agent pool <pool>` (its outputs; during a
    preview only the releases may be known, and a rule then sees no handler or label to judge)."""
    pool = _pool_name(r)
    props = r.get("props") or {}
    if pool is None or not isinstance(props, Mapping):
        return None
    binaries = {k: v for k, v in (props.get("binaries") or {}).items() if isinstance(v, Mapping)}
    releases = {k for k in [*(props.get("releases") or []), *(props.get("retiring") or [])] if isinstance(k, str)}
    return _Node(f"agent pool {pool}", pool, dict(props.get("handlers") or {}), dict(props.get("labels") or {}),
                 binaries, r.get("name"), releases)


def agent_install_calls(resources: Iterable[Resource]) -> list[nodescript.InstallCall] | None:
    """The install-binary calls of every agent pool's state (None: some state is not known yet)."""
    import json

    out = []
    for r in _of_type(resources, CONFIG_MAP):
        if _get(r, "props", "metadata", "labels", AGENT_APP[0]) != AGENT_APP[1]:
            continue
        text = _get(r, "props", "data", "state.json")
        if not isinstance(text, str):
            return None
        try:
            script = json.loads(text)["scripts"]["binaries"]
        except (ValueError, KeyError, TypeError):
            continue
        pool = _get(r, "props", "metadata", "labels", "wasm-shim-fleet.io/agent-pool")
        out += [nodescript.InstallCall(c.name, c.url, c.sha256, c.member, c.probe, f"agent pool {pool}")
                for c in nodescript.install_binary_calls(script)]
    return out


# ---------------------------------------------------------------------------- handler on every node
def handler_on_selected_nodes(resources: Iterable[Resource]) -> list[Violation]:
    """Every node a RuntimeClass's nodeSelector matches has that class's handler configured.

    A pod scheduled by the class to a node without the handler fails with `no runtime for "<handler>" is
    configured` (field notes trap 1). An empty selector matches every node of the fleet."""
    resources = list(resources)
    nodes = fleet_nodes(resources).values()
    classes = [rc for rc in runtime_classes(resources) if isinstance(rc.handler, str)]
    out = []
    for rc, node in selected_without_handler(classes, nodes):
        where = ", ".join(f"{k}={v}" for k, v in rc.node_selector.items()) or "every node"
        out.append(Violation(
            f"RuntimeClass {rc.name} selects node {node.name} (pool {node.pool}, by {where}) which has no "
            f"containerd handler {rc.handler!r}; a pod scheduled there fails with 'no runtime for "
            f"\"{rc.handler}\" is configured'. Configure the handler on the node before labelling it, or "
            "select with a label only nodes that have the handler carry", rc.urn))
    return out


# ------------------------------------------------------------------------------- handler is fixed
def handler_fixed_by_name(name: Any, handler: Any, runtime: str = DEFAULT_RUNTIME) -> list[str]:
    """A RuntimeClass's handler is a pure function of its name: name == f"{runtime}-{handler}".

    The handler field is immutable in Kubernetes and pulumi-kubernetes previews a change of it as an update
    that fails at apply (field notes trap 2). A policy pack cannot see the previous state, so it enforces
    what makes a change impossible: a class named X always has the same handler, so a different handler
    means a different class (added beside the old one, never an in-place change)."""
    if not isinstance(handler, str):
        return []  # unknown during preview
    if not isinstance(name, str) or not name:
        return [f"RuntimeClass with handler {handler!r} has no fixed metadata.name; an auto-named class gets a "
                "random suffix and its name no longer fixes its handler: set metadata.name to "
                f"{runtime}-{handler}"]
    expected = naming.class_name(runtime, handler)
    if name != expected:
        return [f"RuntimeClass {name} has handler {handler!r}, but its handler must be its name without the "
                f"'{runtime}-' prefix ({name.removeprefix(runtime + '-')!r}), so that a name never changes handler "
                f"(handlers are immutable); name the class {expected} or point it at the handler its name says"]
    return []


def handler_unchanged(name: Any, handler: Any, previous: Mapping[str, str] | None) -> list[str]:
    """With the previous handlers by class name (from the policy config), a changed handler is reported
    directly."""
    if not previous or not isinstance(name, str) or not isinstance(handler, str) or name not in previous:
        return []
    if previous[name] == handler:
        return []
    return [f"RuntimeClass {name} would change handler from {previous[name]!r} to {handler!r}; the field is "
            "immutable: the class would be deleted and re-created, rejecting new pods meanwhile. Add a new class"]


def runtime_class_violations(resource: Resource, runtime: str = DEFAULT_RUNTIME,
                             previous: Mapping[str, str] | None = None) -> list[str]:
    if resource.get("type") != RUNTIME_CLASS:
        return []
    props = resource.get("props") or {}
    name = _get(props, "metadata", "name")
    return [*handler_fixed_by_name(name, props.get("handler"), runtime),
            *handler_unchanged(name, props.get("handler"), previous)]


# -------------------------------------------------------------------------------------- checksums
def is_binary_command(resource: Resource) -> bool:
    """A command that installs a shim binary: it makes the node kit's install-binary call, or its script writes
    a `containerd-shim-*` file some other way. Not known during preview (no script yet): not judged."""
    if resource.get("type") not in COMMANDS:
        return False
    create = _get(resource, "props", "create")
    return isinstance(create, str) and (nodescript.install_binary_call(create) is not None or SHIM_PREFIX in create)


def binary_command_violations(resource: Resource) -> list[str]:
    """A binary install pins the artifact's sha256 and has it checked before the binary is used: the kit's
    install-binary call does both (download, sha256 check, probe, rename); anything else is reported."""
    if not is_binary_command(resource):
        return []
    create = _get(resource, "props", "create")
    call = nodescript.install_binary_call(create)
    name = resource.get("name")
    if call is not None:
        if not _HEX64.fullmatch(call.sha256):
            return [f"command {name} installs {call.name} with {call.sha256[:16]!r} where the artifact's sha256 (64 "
                    "hex digits) belongs; pin the artifact's digest in the catalog"]
        return []
    out = []
    if not _HEX64.search(create):
        out.append(f"command {name} installs a shim binary but its create script carries no sha256 (64 hex "
                   "digits); pin the artifact's digest in the stack's catalog")
    out.append(f"command {name} installs a shim binary without the node kit's {nodescript.INSTALL_BINARY} call, "
               "the step that checks the download's sha256 before the binary is moved into place; install shims "
               "with the project's NodePool (or that call)")
    return out


def binaries_covered(resources: Iterable[Resource]) -> list[Violation]:
    """Every binary a NodePool plans is installed by a kit install-binary call carrying that binary's sha256 (or,
    from the outputs shape, which carries no digest: a call for that binary on that node)."""
    resources = list(resources)
    commands = [r for r in resources if r.get("type") in COMMANDS]
    scripts = [_get(c, "props", "create") for c in commands]
    agent_calls = agent_install_calls(resources)
    if any(not isinstance(s, str) for s in scripts) or agent_calls is None:
        return []  # some still unknown: nothing to compare
    if not any(is_binary_command(c) for c in commands) and not agent_calls:
        return []  # no binary install commands (rendered elsewhere): nothing to compare
    calls = [c for c in (nodescript.install_binary_call(s) for s in scripts) if c is not None] + agent_calls
    digests = {(c.name, c.sha256.lower()) for c in calls}
    on_node = {(c.node, c.name) for c in calls}
    out = []
    pool_urns = {_pool_name(r): r.get("urn") for r in _of_type(resources, NODE_POOL, AGENT_POOL)}
    for node in fleet_nodes(resources).values():
        for bname, b in sorted(node.binaries.items()):
            sha = str(b.get("sha256") or "").lower()
            if sha and (bname, sha) not in digests:
                out.append(Violation(f"binary {bname} ({b.get('release')}) on node {node.name} has no install "
                                     f"command that checks its sha256 {sha[:12]}…", pool_urns.get(node.pool)))
            elif not sha and (node.name, bname) not in on_node:
                out.append(Violation(f"binary {bname} on node {node.name} (a runtime type of its handlers) has no "
                                     f"install command ({nodescript.INSTALL_BINARY} of the node kit) that checks "
                                     "its sha256", pool_urns.get(node.pool)))
    return out


# ------------------------------------------------------------------------------------- deprecation
def pool_releases(resources: Iterable[Resource]) -> dict[str, set[str]]:
    """Release keys installed per pool (labelled or retiring: both have their binary). A pool seen only by its
    outputs is keyed by the NodePool's resource name (`<fleet>-<pool>`)."""
    out: dict[str, set[str]] = {}
    for r in _of_type(resources, NODE_POOL):
        pool = _pool_name(r)
        if pool is None:
            continue
        keys = out.setdefault(pool, set())
        for n in pool_nodes(r):
            keys |= n.releases or set()
    for r in _of_type(resources, AGENT_POOL):
        node = agent_pool_node(r)
        if node is not None and node.pool is not None:
            out.setdefault(node.pool, set()).update(node.releases or set())
    return out


def _previous_pool(key: str, previous: Mapping[str, Any]) -> str | None:
    """The pool of `previous` a pool key names: the same name, or the longest pool name that a NodePool
    resource name `<fleet>-<pool>` ends with."""
    if key in previous:
        return key
    matches = [p for p in previous if isinstance(p, str) and key.endswith(f"-{p}")]
    return max(matches, key=len) if matches else None


def deprecation_violations(resources: Iterable[Resource], previous: Mapping[str, Iterable[str]] | None,
                           keep: int = 2) -> list[Violation]:
    """The proposal's deprecation guidance, as a step rule: a pool that gains a release of a shim newer than
    every one it had keeps the `keep - 1` newest it had (N-1 with keep 2).

    `previous` (release keys per pool before the step) comes from the policy config, written from the base
    stack file by `policy/config.py`; without it there is no step to judge and nothing is reported."""
    if not previous:
        return []
    resources = list(resources)
    pool_urns = {_pool_name(r): r.get("urn") for r in _of_type(resources, NODE_POOL, AGENT_POOL)}
    now: dict[str, set[str]] = {}
    urns: dict[str, Any] = {}
    for pool_key, keys in sorted(pool_releases(resources).items()):
        pool = _previous_pool(pool_key, previous)
        if pool is not None:
            now[pool] = keys
            urns[pool] = pool_urns.get(pool_key)
    return [Violation(f.message(), urns.get(f.pool))
            for f in step_findings({k: list(v) for k, v in previous.items()}, now, keep)]
