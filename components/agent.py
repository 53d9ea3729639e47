"""Agent pools (`transport: agent`): nodes chosen by label, each converged by a node agent of the pool's DaemonSet.

`AgentAccess` is what a stack's agent pools share (namespace, RBAC, the admission policy); `AgentPool` is one
pool (ServiceAccount, desired-state ConfigMap, DaemonSet, and two local commands: the rollout wait and the
cleanup that uninstalls when the pool goes). What each object holds is plain data from components/core/agent.py;
this module only turns it into resources and wires their order:

    namespace, RBAC, policy  ->  ServiceAccount, ConfigMap  ->  cleanup  ->  DaemonSet  ->  rollout

The engine deletes in reverse order: the rollout command (nothing to do), the DaemonSet (its agents exit
without touching their nodes), then the cleanup command, whose delete runs the uninstall DaemonSet on the
pool's nodes, then the ConfigMap, ServiceAccount and shared objects. The number of resources does not depend on
the number of nodes.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

from .core import agent
from .core.config import DEFAULT_AGENT_NAMESPACE
from .core.plan import AgentPoolPlan, FleetPlan

POOL_TYPE = "wasm-shim-fleet:index:AgentPool"
ACCESS_TYPE = "wasm-shim-fleet:index:AgentAccess"
#: The runner of the rollout and cleanup commands (stdlib and kubectl), run by the engine as their interpreter.
RUNNER = str(Path(__file__).resolve().parent / "agent_run.py")


@dataclass(frozen=True)
class AgentSettings:
    """How a stack's agent pools run (kubernetes.agentImage, agentNamespace, agentApiServer, and the stack's
    kubeconfig for the rollout and cleanup commands, which run where pulumi runs with kubectl)."""

    #: The agent image (deploy/agent), pinned by digest.
    image: str
    #: The namespace of the agents' DaemonSets (created by AgentAccess).
    namespace: str = DEFAULT_AGENT_NAMESPACE
    #: host:port of the API server as the agents reach it (None: the in-cluster Service).
    api_server: str | None = None
    #: A kubeconfig path or its contents for the local commands (None: kubectl's usual lookup). A secret.
    kubeconfig: str | None = None
    #: kubeconfig context (None: the current one).
    context: str | None = None
    #: Take over labels another field manager set on a node (kubernetes.forceLabels).
    force_labels: bool = False
    #: The Python that runs the commands' runner (default: this program's).
    python: str = sys.executable


def _k8s(kind: str, name: str, manifest: dict[str, Any], opts: pulumi.ResourceOptions) -> pulumi.Resource:
    """A pulumi-kubernetes resource from a manifest dict (camelCase keys pass through as the API spells them)."""
    # Top-level fields are constructor arguments (snake_case); nested dicts keep the API's spelling.
    body = {re.sub(r"(?<!^)(?=[A-Z])", "_", k).lower(): v for k, v in manifest.items()
            if k not in ("apiVersion", "kind")}
    ctor = {
        "Namespace": k8s.core.v1.Namespace,
        "ServiceAccount": k8s.core.v1.ServiceAccount,
        "ConfigMap": k8s.core.v1.ConfigMap,
        "ClusterRole": k8s.rbac.v1.ClusterRole,
        "ClusterRoleBinding": k8s.rbac.v1.ClusterRoleBinding,
        "Role": k8s.rbac.v1.Role,
        "RoleBinding": k8s.rbac.v1.RoleBinding,
        "ValidatingAdmissionPolicy": k8s.admissionregistration.v1.ValidatingAdmissionPolicy,
        "ValidatingAdmissionPolicyBinding": k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding,
        "DaemonSet": k8s.apps.v1.DaemonSet,
    }[kind]
    return ctor(name, **body, opts=opts)


def _local(name: str, settings: AgentSettings, create: str, delete: str | None,
           opts: pulumi.ResourceOptions) -> command.local.Command:
    env: dict[str, pulumi.Input[str]] = {"WSF_KUBECONFIG": pulumi.Output.secret(settings.kubeconfig or ""),
           "WSF_KUBE_CONTEXT": settings.context or ""}
    return command.local.Command(name, create=create, delete=delete, environment=env,
                                 interpreter=[settings.python, RUNNER, "--job"], opts=opts)


class AgentAccess(pulumi.ComponentResource):
    """What a stack's agent pools share. Creates `<name>-namespace` (the agents' namespace, Pod Security
    privileged there only), `<name>-clusterrole` and `<name>-clusterrolebinding` (read and patch Nodes),
    `<name>-role` and `<name>-rolebinding` (Events, reading their DaemonSets, in that namespace only),
    `<name>-policy` and `<name>-policy-binding` (the ValidatingAdmissionPolicy that limits a patch to the agent's
    own Node and the fleet's keys). Attribute `ready`: the resources an agent's DaemonSet must follow."""

    def __init__(self, name: str, plan: FleetPlan, settings: AgentSettings,
                 provider: pulumi.ProviderResource | None = None, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(ACCESS_TYPE, name, {"namespace": settings.namespace}, opts)
        ns = settings.namespace

        def o(*after: pulumi.Resource) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self, provider=provider, depends_on=list(after))

        # Kept on delete: with deploy/rbac.yaml the namespace and the identity's Role in it are the cluster
        # administrator's (the program only declares its labels), and a delete would take that Role away.
        self.namespace = _k8s("Namespace", f"{name}-namespace", agent.namespace_manifest(ns),
                              pulumi.ResourceOptions.merge(o(), pulumi.ResourceOptions(retain_on_delete=True)))
        role = _k8s("ClusterRole", f"{name}-clusterrole", agent.cluster_role(ns), o())
        binding = _k8s("ClusterRoleBinding", f"{name}-clusterrolebinding", agent.cluster_role_binding(ns),
                       o(role))
        local_role = _k8s("Role", f"{name}-role", agent.role(ns), o(self.namespace))
        local_binding = _k8s("RoleBinding", f"{name}-rolebinding", agent.role_binding(ns),
                             o(local_role))
        policy = _k8s("ValidatingAdmissionPolicy", f"{name}-policy",
                      agent.admission_policy(ns, plan.runtime, plan.label_prefix), o())
        policy_binding = _k8s("ValidatingAdmissionPolicyBinding", f"{name}-policy-binding",
                              agent.admission_policy_binding(ns), o(policy))
        #: what every agent DaemonSet follows (and its cleanup, so that these outlive the uninstall)
        self.ready: list[pulumi.Resource] = [self.namespace, binding, local_binding, policy_binding]
        self.register_outputs({"namespace": ns})


class AgentPool(pulumi.ComponentResource):
    """One agent pool. Creates `<name>-serviceaccount`, `<name>-state` (ConfigMap `wsf-agent-<pool>-<hash>`:
    state.json, the kit, the host script), `<name>-cleanup` (command: its delete uninstalls the pool from its
    nodes), `<name>-daemonset` (the agents) and `<name>-rollout` (command: waits for the DaemonSet's rollout of
    this state and fails naming the node whose agent cannot converge, and why).
    Outputs: `pool`, `nodeSelector`, `releases`, `retiring`, `labels`, `handlers`, `binaries` (what every selected
    node runs) and `desired` (the state's hash). Attribute `daemonset`."""

    def __init__(self, name: str, plan: FleetPlan, pool: AgentPoolPlan, settings: AgentSettings,
                 access: AgentAccess, provider: pulumi.ProviderResource | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        node = pool.node
        props = {
            "pool": pool.name,
            "containerd": node.flavor,
            "nodeSelector": dict(pool.node_selector),
            "releases": list(node.releases),
            "retiring": list(node.retiring),
        }
        super().__init__(POOL_TYPE, name, props, opts)
        ns = settings.namespace
        state = agent.agent_state(plan, pool, settings.force_labels)
        desired = agent.desired_hash(state, image=settings.image, api_server=settings.api_server)
        self.desired = desired

        def o(*after: pulumi.Resource, k8s_provider: bool = True, **extra: Any) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self, provider=provider if k8s_provider else None,
                                          depends_on=[*after], **extra)

        sa = _k8s("ServiceAccount", f"{name}-serviceaccount", agent.service_account(pool.name, ns),
                  o(*access.ready))
        # Content-addressed name: a new state is a new ConfigMap (created before, deleted after, the DaemonSet's
        # update), so a pod of the old state never sees the new one's files.
        cm = _k8s("ConfigMap", f"{name}-state", agent.config_map(pool.name, ns, state, desired), o(*access.ready))
        cleanup = _local(f"{name}-cleanup", settings,
                         create=agent.job_text({"action": "none", "pool": pool.name,
                                                "note": "the delete of this command uninstalls the pool"}),
                         delete=agent.job_text(agent.uninstall_job(pool, namespace=ns, image=settings.image,
                                                                   desired=desired,
                                                                   api_server=settings.api_server)),
                         opts=o(sa, cm, *access.ready, k8s_provider=False))
        self.daemonset = _k8s("DaemonSet", f"{name}-daemonset",
                              agent.daemonset(pool, namespace=ns, image=settings.image, desired=desired,
                                              api_server=settings.api_server),
                              o(sa, cm, cleanup, *access.ready))
        self.rollout = _local(f"{name}-rollout", settings,
                              create=agent.job_text(agent.rollout_job(pool, namespace=ns, desired=desired)),
                              delete=None, opts=o(self.daemonset, k8s_provider=False))
        self.register_outputs({**props, "labels": dict(node.labels), "handlers": dict(node.handlers),
                               "binaries": {k: b.to_json() for k, b in node.binaries.items()},
                               "desired": desired})


def agent_pools(name: str, plan: FleetPlan, settings: AgentSettings, provider: pulumi.ProviderResource | None,
                parent: pulumi.Resource) -> tuple[AgentAccess | None, dict[str, AgentPool]]:
    """The shared access and one AgentPool per agent pool of the plan (none: no access either)."""
    if not plan.agent_pools:
        return None, {}
    access = AgentAccess(f"{name}-agents", plan, settings, provider, pulumi.ResourceOptions(parent=parent))
    pools: Sequence[AgentPoolPlan] = plan.agent_pools
    return access, {p.name: AgentPool(f"{name}-{p.name}", plan, p, settings, access, provider,
                                      pulumi.ResourceOptions(parent=parent)) for p in pools}
