"""The safe order against what is deployed: never remove a handler that a deployed label still promises.

`diff` checks one stack file against another; this module checks the desired plan against the stack's last
deployed state, so a `pulumi up` from a laptop, or two pull requests merged before one deploy, cannot skip
the retire step. The decision is pure (no pulumi): the program and `diff --deployed` feed it the state they
read (components' thin adapters: the engine's last snapshot of the stack, or `pulumi stack export`).

What is read, from the stack's outputs (and, with `pulumi stack export`, each resource's last state too):
- per node, its labels as the API server answered the label patch (output `deployedLabels`). A patch that
  fails gives no value, the program cannot record its outputs and the engine keeps the previous ones
  (checked under the engine), so a label removal that did not happen still counts as live. Under
  `--continue-on-error` the outputs are recorded with the intended plan; a handler that plan cannot
  describe is then refused with the fix rather than guessed;
- what a label promises: the RuntimeClasses of the applied plan (nodeSelector label -> handler);
- the node's handler table and binaries: the stack output `plan` (the plan the last update applied).

Rules (`against_deployed`):
- the steps `diff` refuses that the recorded plan can judge (a handler table that would move, a node
  changing pool) are refused against the deployed plan too, with the same fix;
- when a deployed label L on node N promises handler H (a deployed RuntimeClass selects L and runs H), N
  still has H in its deployed table, and the new plan drops H from N, then H (and the binary it runs)
  stays on N for this step, with a warning: this `up` removes L (labels are updated after the table,
  deleted before it), and the next `up` removes H. That is the retire step done for you, not a refusal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from . import naming
from .config import Problem
from .plan import Binary, FleetPlan, NodePlan

NODE_PATCH = "kubernetes:core/v1:NodePatch"
RUNTIME_CLASS = "kubernetes:node.k8s.io/v1:RuntimeClass"
STACK = "pulumi:pulumi:Stack"
#: The stack output holding the applied plan (FleetPlan.to_json()).
PLAN_OUTPUT = "plan"
#: The stack output holding, per node, its labels as the API server answered the label patch. It resolves
#: only when the patch succeeded; when it cannot, the engine keeps the stack's previous outputs.
LABELS_OUTPUT = "deployedLabels"


@dataclass(frozen=True)
class Deployed:
    """What the stack's last update left, as far as the safe order needs it."""

    #: node -> labels its label patch last applied
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    #: (label key, value) -> handler of each deployed RuntimeClass that selects it
    promises: dict[tuple[str, str], str] = field(default_factory=dict)
    #: node -> handler -> runtime_type of the applied plan
    handlers: dict[str, dict[str, str]] = field(default_factory=dict)
    #: node -> binary name -> artifact of the applied plan
    binaries: dict[str, dict[str, Binary]] = field(default_factory=dict)
    #: the applied plan itself, when the stack has one (None on a stack never deployed by this version)
    plan: FleetPlan | None = None

    @property
    def empty(self) -> bool:
        return not (self.labels or self.handlers)


def _get(value: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(k)
    return value


def from_outputs(outputs: Mapping[str, Any], resources: Iterable[tuple[str, Mapping[str, Any]]] = ()) -> Deployed:
    """From the stack's outputs (what the program reads each run: small, whatever the fleet's size), and,
    when available, (type, outputs) of every resource of its snapshot (`pulumi stack export`): a label
    patch's or RuntimeClass's own last state then counts too."""
    plan_json = outputs.get(PLAN_OUTPUT)
    plan = FleetPlan.from_json(plan_json) if isinstance(plan_json, Mapping) else None
    labels: dict[str, dict[str, str]] = {}
    promises: dict[tuple[str, str], str] = {}
    if plan is not None:
        for rc in plan.runtime_classes:
            promises.update({(k, v): rc.handler for k, v in rc.node_selector.items()})
    recorded = outputs.get(LABELS_OUTPUT)
    if isinstance(recorded, Mapping):
        for node, node_labels in recorded.items():
            if isinstance(node_labels, Mapping):
                labels.setdefault(str(node), {}).update({str(k): str(v) for k, v in node_labels.items()})
    elif plan is not None:  # recorded by an older version of the program: the labels it applied
        for n in plan.nodes:
            labels.setdefault(n.name, {}).update(n.labels)
    for typ, out in resources:
        if typ == NODE_PATCH:
            name = _get(out, "metadata", "name")
            node_labels = _get(out, "metadata", "labels") or {}
            if isinstance(name, str) and isinstance(node_labels, Mapping):
                labels.setdefault(name, {}).update({str(k): str(v) for k, v in node_labels.items()})
        elif typ == RUNTIME_CLASS:
            handler = _get(out, "handler")
            selector = _get(out, "scheduling", "nodeSelector") or {}
            if isinstance(handler, str) and isinstance(selector, Mapping):
                promises.update({(str(k), str(v)): handler for k, v in selector.items()})
    handlers = {n.name: dict(n.handlers) for n in plan.nodes} if plan else {}
    binaries = {n.name: dict(n.binaries) for n in plan.nodes} if plan else {}
    return Deployed(labels, promises, handlers, binaries, plan)


def from_stack_export(doc: Mapping[str, Any]) -> Deployed:
    """From the JSON of `pulumi stack export` (version 3 deployments): the stack's outputs and the last
    state of every resource."""
    resources = [r for r in (_get(doc, "deployment", "resources") or []) if isinstance(r, Mapping)]
    stack = next((r.get("outputs") or {} for r in resources if r.get("type") == STACK), {})
    return from_outputs(stack, ((r.get("type", ""), r.get("outputs") or {}) for r in resources))


def keep_promised(plan: FleetPlan, deployed: Deployed) -> tuple[FleetPlan, list[Problem]]:
    """The plan with every handler a deployed label still promises kept for one more step, and a warning
    per kept handler; an error when a kept handler's binary is not known (nothing to keep it with)."""
    problems: list[Problem] = []
    nodes = []
    for node in plan.nodes:
        kept, node_problems = _keep_on_node(node, deployed)
        nodes.append(kept)
        problems += node_problems
    if not problems:
        return plan, []
    return replace(plan, nodes=tuple(nodes), problems=(*plan.problems, *problems)), problems


def against_deployed(plan: FleetPlan, deployed: Deployed) -> tuple[FleetPlan, list[Problem]]:
    """The step from what is deployed to `plan`, as the program takes it: promised handlers kept one more
    step (keep_promised), and the steps `diff` refuses that the recorded plan can judge (a handler table
    that would move, a node changing pool, a class's handler) an error with its fix. Nothing to compare on a stack that
    has no recorded plan yet."""
    from .diff import CLASS_HANDLER, MOVES_POOL, MOVES_TABLE, PROMISED_HANDLER, diff_plans

    kept_plan, problems = keep_promised(plan, deployed)
    if deployed.plan is None:
        return kept_plan, problems
    refused = []
    # Not the bytes rule: after an update that failed, the recorded plan names binaries that never
    # installed, and a fixed sha256 for one of them is no change of installed bytes (`diff` between stack
    # files and the policy pack's checksum rules judge those).
    kinds = (CLASS_HANDLER, PROMISED_HANDLER, MOVES_TABLE, MOVES_POOL)
    for name, reason, nodes, pool in diff_plans(deployed.plan, kept_plan).unsafe_groups(kinds):
        where = ", ".join(x for x in (f"pool {pool}" if pool else "", f"nodes {', '.join(nodes)}" if nodes else "")
                          if x)
        refused.append(Problem("error", f"deployed.{pool or 'fleet'}",
                               f"{name}{' (' + where + ')' if where else ''}: {reason}"))
    if not refused:
        return kept_plan, problems
    return replace(kept_plan, problems=(*kept_plan.problems, *refused)), [*problems, *refused]


def _keep_on_node(node: NodePlan, deployed: Deployed) -> tuple[NodePlan, list[Problem]]:
    live = deployed.labels.get(node.name, {})
    table = deployed.handlers.get(node.name, {})
    bins = deployed.binaries.get(node.name, {})
    handlers = dict(node.handlers)
    binaries = dict(node.binaries)
    problems = []
    for label, value in sorted(live.items()):
        handler = deployed.promises.get((label, value))
        if handler is None or handler in handlers:
            continue
        if label in node.labels:
            continue  # the label stays, so does its class: the contract check covers it
        where = f"deployed.{node.name}"
        runtime_type = table.get(handler)
        binary = naming.binary_of_runtime_type(runtime_type) if runtime_type else None
        if runtime_type is None or (binary not in binaries and binary not in bins):
            problems.append(Problem("error", where, f"handler {handler} would leave node {node.name} while its "
                                                    f"deployed label {label} still promises it, and the deployed "
                                                    "state does not say how to keep it; put the release back in "
                                                    "the pool's retiring list for one `pulumi up`, then remove it"))
            continue
        handlers[handler] = runtime_type
        if binary not in binaries:
            binaries[binary] = bins[binary]
        problems.append(Problem("warning", where, f"handler {handler} stays on node {node.name} for this step: "
                                                  f"its deployed label {label} still promises it. This `up` "
                                                  "removes the label, the next `up` removes the handler (or move "
                                                  "the release to the pool's retiring list first)"))
    if not any(p.severity == "warning" for p in problems):
        return node, problems
    return replace(node, handlers=dict(sorted(handlers.items())), binaries=dict(sorted(binaries.items()))), problems
