"""The resource graph of one node, as plain data: which resources exist and which depends on which.

The engine runs creates and updates in dependency order, then deletes in reverse dependency order of the
old graph. The graph below makes that the safe order on a node:

    bin-<binary> ...  ->  handlers  ->  labels

- adding a release: the binary is installed, then the handler table names it and containerd is restarted
  and checked, then the labels that promise it appear (P1, P2);
- removing a release or a node: labels go first, then the handler table stops naming the binary (or is
  removed, restoring the original config), and only then is the binary deleted;
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
    role: str  # binary | handlers | labels
    depends_on: tuple[str, ...]


def node_prefix(pool_component: str, node: NodePlan) -> str:
    return f"{pool_component}-{node.name}"


def binary_resource(pool_component: str, node: NodePlan, binary: str) -> str:
    return f"{node_prefix(pool_component, node)}-bin-{binary}"


def handlers_resource(pool_component: str, node: NodePlan) -> str:
    return f"{node_prefix(pool_component, node)}-handlers"


def labels_resource(pool_component: str, node: NodePlan) -> str:
    return f"{node_prefix(pool_component, node)}-labels"


def node_graph(pool_component: str, node: NodePlan) -> list[GraphNode]:
    bins = [GraphNode(binary_resource(pool_component, node, b), "binary", ()) for b in node.binaries]
    handlers = GraphNode(handlers_resource(pool_component, node), "handlers", tuple(b.name for b in bins))
    labels = GraphNode(labels_resource(pool_component, node), "labels", (handlers.name,))
    return [*bins, handlers, labels]
