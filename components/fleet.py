"""ShimFleet: the whole fleet from a checked plan: one NodePool per pool and one RuntimeClassSet."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi

from .agent import AgentSettings, agent_pools
from .core import naming
from .core.plan import FleetPlan
from .incluster import InCluster
from .nodepool import NodePool, PlannedNodePoolArgs, RuntimeHandlerCheck, SshConnection
from .runtimeclasses import RuntimeClassSet, RuntimeClassSetArgs

TYPE = "wasm-shim-fleet:index:ShimFleet"


class PlanError(ValueError):
    """The plan has errors; nothing may be created from it."""


@dataclass(frozen=True)
class ShimFleetArgs:
    """Typed arguments of ShimFleet."""

    #: The desired state, from components.core.plan.plan_from_config. Must have no errors.
    plan: FleetPlan
    #: SSH settings for `transport: ssh` pools.
    ssh: SshConnection | None = None
    #: SSH settings of particular pools (pool name -> settings), instead of `ssh`.
    pool_ssh: Mapping[str, SshConnection] = field(default_factory=dict)
    #: Absolute folder that holds the node roots of `transport: local` pools.
    local_base: str | None = None
    #: Kubernetes provider for labels and RuntimeClasses (None: the default provider).
    k8s_provider: pulumi.ProviderResource | None = None
    #: Check each node's handlers in node.status.runtimeHandlers before labelling it (None: no check).
    runtime_handler_check: RuntimeHandlerCheck | None = None
    #: How `transport: kubernetes` pools reach their nodes (components.incluster.InCluster).
    in_cluster: InCluster | None = None
    #: How `transport: agent` pools run their node agents (components.agent.AgentSettings); required for them.
    agents: AgentSettings | None = None


class ShimFleet(pulumi.ComponentResource):
    """The fleet. Creates `<name>-<pool>` (NodePool) per pool with nodes, `<name>-<pool>` (AgentPool) per pool of
    transport agent with `<name>-agents` (AgentAccess, what they share), and `<name>-classes` (RuntimeClassSet).
    Outputs: `runtime_classes`, `nodes` (per node: releases, labels, handlers, binaries), `agent_pools` (per agent
    pool: its selector, releases, labels and desired-state hash) and `labels_applied` (per node: its labels as the
    API server answered the label patch). Attributes: `pools`, `agents` (pool -> AgentPool), `classes` (the
    RuntimeClassSet), `handlers` (node -> Output of its applied handler table)."""

    def __init__(self, name: str, args: ShimFleetArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if not args.plan.ok:
            raise PlanError("; ".join(str(p) for p in args.plan.errors))
        super().__init__(TYPE, name, {"runtime": args.plan.runtime}, opts)
        by_pool: dict[str, list] = {}
        for node in args.plan.nodes:
            by_pool.setdefault(node.pool, []).append(node)
        self.pools = {
            pool: NodePool(f"{name}-{pool}", PlannedNodePoolArgs(nodes=nodes, ssh=args.pool_ssh.get(pool, args.ssh),
                                                                  local_base=args.local_base,
                                                                  k8s_provider=args.k8s_provider,
                                                                  runtime_handler_check=args.runtime_handler_check,
                                                                  in_cluster=args.in_cluster,
                                                                  rollout=args.plan.rollouts.get(pool)),
                           opts=pulumi.ResourceOptions(parent=self))
            for pool, nodes in by_pool.items()
        }
        if args.plan.agent_pools and args.agents is None:
            raise PlanError("the plan has pools of transport agent: ShimFleetArgs.agents (AgentSettings) is required")
        _, self.agents = (agent_pools(name, args.plan, args.agents, args.k8s_provider, self)
                          if args.agents is not None else (None, {}))
        self.agent_pools = {p.name: {"nodeSelector": dict(p.node_selector), "releases": list(p.node.releases),
                                     "retiring": list(p.node.retiring), "labels": dict(p.node.labels),
                                     "desired": self.agents[p.name].desired} for p in args.plan.agent_pools}
        classes = RuntimeClassSet(f"{name}-classes",
                                  RuntimeClassSetArgs(args.plan.runtime_classes, args.k8s_provider),
                                  opts=pulumi.ResourceOptions(parent=self))
        self.runtime_classes = classes.runtime_classes
        #: the RuntimeClassSet (its `classes`: name -> RuntimeClass resource, `names`: Output of their names)
        self.classes = classes
        self.nodes = {node: info for pool in self.pools.values() for node, info in pool.nodes.items()}
        #: node -> its fleet labels as the API server answered the label patch (resolves when applied)
        runtime, prefix = args.plan.runtime, args.plan.label_prefix
        self.labels_applied = {
            node: labels.apply(lambda ls: {k: v for k, v in ls.items() if naming.is_fleet_label(k, runtime, prefix)})
            for pool in self.pools.values() for node, labels in pool.labels.items()}
        #: node -> Output of its handler table, known once applied
        self.handlers = {node: h for pool in self.pools.values() for node, h in pool.handlers.items()}
        outputs = {"runtime_classes": self.runtime_classes, "nodes": self.nodes,
                   "labels_applied": self.labels_applied}
        if self.agent_pools:  # only then: a fleet without agent pools registers what it always registered
            outputs["agent_pools"] = self.agent_pools
        self.register_outputs(outputs)
