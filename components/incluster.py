"""Node commands through the cluster (`transport: kubernetes`): the runner namespace and, per node resource, the
command:local:Command whose create, update and delete texts are the very resource scripts the SSH transport
sends, run on the node by components/incluster_run.py in a privileged pod (components/core/incluster.py).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

from .core import incluster
from .core.kit_graph import NodeResource
from .core.plan import NodePlan

#: The runner, run by the engine as each command's interpreter (stdlib only, plus kubectl).
RUNNER = str(Path(__file__).resolve().parent / "incluster_run.py")


@dataclass(frozen=True)
class InCluster:
    """How `transport: kubernetes` pools reach their nodes."""

    #: The runner pods' image, pinned by digest (kubernetes.runnerImage): /wsf-enter and nothing else (deploy/runner).
    runner_image: str
    #: The namespace of the runner pods (kubernetes.runnerNamespace), created by `runner_namespace`.
    namespace: str = incluster.DEFAULT_NAMESPACE
    #: A kubeconfig path or its contents (None: kubectl's usual lookup). Passed to the runner as a secret.
    kubeconfig: str | None = None
    #: kubeconfig context (None: the current one).
    context: str | None = None
    #: The Namespace resource every node command depends on (created before them, deleted after them).
    namespace_resource: pulumi.Resource | None = None
    #: The Python that runs the runner (default: this program's).
    python: str = sys.executable


def runner_namespace(name: str, namespace: str, provider: pulumi.ProviderResource | None = None,
                     opts: pulumi.ResourceOptions | None = None) -> k8s.core.v1.Namespace:
    """The namespace of the runner pods, the only one where Pod Security admits them (`privileged`)."""
    # Kept on delete: with deploy/rbac.yaml the namespace and the identity's Role in it are the cluster
    # administrator's (the program only declares its labels), and a delete would take that Role away.
    return k8s.core.v1.Namespace(
        name,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=namespace,
            labels={incluster.MANAGED_BY[0]: incluster.MANAGED_BY[1], **incluster.POD_SECURITY}),
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(provider=provider, retain_on_delete=True)))


def node_command(r: NodeResource, node: NodePlan, settings: InCluster,
                 opts: pulumi.ResourceOptions) -> command.local.Command:
    """One node resource (kit, binary or handler table) run on its node through the cluster."""
    interpreter = incluster.runner_interpreter(
        python=settings.python, runner=RUNNER, node=node.name, namespace=settings.namespace,
        image=settings.runner_image, resource=r.name, payload_file=r.payload)
    env: dict[str, pulumi.Input[str]] = {"WSF_KUBECONFIG": pulumi.Output.secret(settings.kubeconfig or ""),
           "WSF_KUBE_CONTEXT": settings.context or ""}
    extra = [settings.namespace_resource] if settings.namespace_resource is not None else []
    opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=extra))
    return command.local.Command(r.name, create=r.create, update=r.update, delete=r.delete,
                                 interpreter=interpreter, environment=env, opts=opts)
