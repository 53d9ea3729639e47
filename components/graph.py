"""The resource graph of one node, as plain data: which resources exist and which depends on which.

The engine runs creates and updates in dependency order, then deletes in reverse dependency order of the
old graph. The graph below makes that the safe order on a node:

    bin-<binary> ...  ->  handlers  [->  verify]  ->  labels

- adding a release: the binary is installed, then the handler table names it and containerd is restarted
  and checked, then the labels that promise it appear (P1, P2);
- removing a release or a node: labels go first, then the handler table stops naming the binary (or is
  removed, restoring the original config), and only then is the binary deleted;
- with a cluster to label (not in render mode), `verify` checks between the table and the labels that the
  kubelet reports the node's handlers in node.status.runtimeHandlers (components/core/verify.py);
- the handler table is one command per node, updated in place when the table changes: at most one
  containerd restart per node per `pulumi up` (P3).

Kept free of pulumi so it can be tested purely; the components build exactly these resources.
"""

from __future__ import annotations

from dataclasses import dataclass

from .core.plan import NodePlan


@dataclass(frozen=True)
class GraphNode:
    name: str  # Pulumi resource name
    role: str  # binary | handlers | verify | labels
    depends_on: tuple[str, ...]


def node_prefix(pool_component: str, node: NodePlan) -> str:
    return f"{pool_component}-{node.name}"


def binary_resource(pool_component: str, node: NodePlan, binary: str) -> str:
    return f"{node_prefix(pool_component, node)}-bin-{binary}"


def handlers_resource(pool_component: str, node: NodePlan) -> str:
    return f"{node_prefix(pool_component, node)}-handlers"


def verify_resource(pool_component: str, node: NodePlan) -> str:
    return f"{node_prefix(pool_component, node)}-verify"


def labels_resource(pool_component: str, node: NodePlan) -> str:
    return f"{node_prefix(pool_component, node)}-labels"


def node_graph(pool_component: str, node: NodePlan, verify: bool = False) -> list[GraphNode]:
    bins = [GraphNode(binary_resource(pool_component, node, b), "binary", ()) for b in node.binaries]
    handlers = GraphNode(handlers_resource(pool_component, node), "handlers", tuple(b.name for b in bins))
    if not verify:
        return [*bins, handlers, GraphNode(labels_resource(pool_component, node), "labels", (handlers.name,))]
    check = GraphNode(verify_resource(pool_component, node), "verify", (handlers.name,))
    return [*bins, handlers, check, GraphNode(labels_resource(pool_component, node), "labels", (check.name,))]
