"""Workloads of the test plan, shared by the e2e and nodes tiers."""

from __future__ import annotations

from typing import Any


def spread_deployment(name: str, runtime_class: str, replicas: int, container: dict[str, Any],
                      **pod_spec: Any) -> dict:
    """A Deployment of `replicas` pods of one container asking for `runtime_class`, spread one per node.

    The anti-affinity is preferred, not required: the proposal's 3-pods-on-2-nodes with required anti-affinity
    leaves one pod Pending; replicas = eligible nodes makes the spread exact."""
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "runtimeClassName": runtime_class,
                    "containers": [{"name": "app", **container}],
                    "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                        "weight": 100,
                        "podAffinityTerm": {"labelSelector": {"matchLabels": labels},
                                            "topologyKey": "kubernetes.io/hostname"}}]}},
                    **pod_spec,
                },
            },
        },
    }
