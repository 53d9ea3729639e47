"""RuntimeClassSet: the fleet's RuntimeClasses, one per label some node carries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from .core.plan import RuntimeClassPlan

TYPE = "wasm-shim-fleet:index:RuntimeClassSet"


@dataclass(frozen=True)
class RuntimeClassSetArgs:
    """Typed arguments of RuntimeClassSet."""

    #: The planned classes (components.core.plan.RuntimeClassPlan).
    runtime_classes: Sequence[RuntimeClassPlan]
    #: Kubernetes provider (None: the default provider).
    k8s_provider: pulumi.ProviderResource | None = None

    @classmethod
    def for_pools(cls, pools: Iterable[Any], k8s_provider: pulumi.ProviderResource | None = None
                  ) -> RuntimeClassSetArgs:
        """The classes that the labels of these NodePools (built from NodePoolArgs) call for, each once. Pools
        that share a runtime and label prefix agree on every class: its name fixes its handler and selector."""
        merged: dict[str, RuntimeClassPlan] = {}
        for pool in pools:
            for rc in pool.runtime_classes:
                merged.setdefault(rc.name, rc)
        return cls(tuple(merged[k] for k in sorted(merged)), k8s_provider)


class RuntimeClassSet(pulumi.ComponentResource):
    """Creates `<name>-<class>` (kubernetes node.k8s.io/v1 RuntimeClass) for each planned class.

    A RuntimeClass's handler is immutable in Kubernetes and pulumi-kubernetes does not know it, so a
    handler change would preview as an update and fail at apply: `replace_on_changes=["handler"]` with
    `delete_before_replace` (the name is fixed) turns it into a replace. Class names determine their
    handler, so with node-local alias handlers this never triggers; `diff` also refuses it.
    Outputs: `runtime_classes`, a list of {name, handler, nodeSelector}. Attributes for a consumer: `classes`
    (class name -> its RuntimeClass resource; depend on it before creating workloads that name the class) and
    `names` (an Output of the class names, known once every class exists).
    """

    def __init__(self, name: str, args: RuntimeClassSetArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        # No props: the class list would change whenever a pool is added, and adding must leave every
        # existing resource's inputs as they were. Policies read the RuntimeClass resources themselves.
        super().__init__(TYPE, name, {}, opts)
        self.classes: dict[str, k8s.node.v1.RuntimeClass] = {}
        for rc in args.runtime_classes:
            self.classes[rc.name] = k8s.node.v1.RuntimeClass(
                f"{name}-{rc.name}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=rc.name,
                    labels={"app.kubernetes.io/managed-by": "wasm-shim-fleet",
                            "wasm-shim-fleet/shim": rc.shim, "wasm-shim-fleet/scope": rc.scope},
                ),
                handler=rc.handler,
                scheduling=k8s.node.v1.SchedulingArgs(node_selector=dict(rc.node_selector)),
                opts=pulumi.ResourceOptions(parent=self, provider=args.k8s_provider,
                                            replace_on_changes=["handler"], delete_before_replace=True),
            )
        self.names: pulumi.Output[list[str]] = pulumi.Output.all(
            *(c.metadata.apply(lambda m: m.name if m is not None else None) for c in self.classes.values()))
        self.runtime_classes = [{"name": rc.name, "handler": rc.handler, "nodeSelector": dict(rc.node_selector)}
                                for rc in args.runtime_classes]
        self.register_outputs({"runtime_classes": self.runtime_classes})
