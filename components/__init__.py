"""wasm-shim-fleet: Pulumi components that run several versions of containerd Wasm shims on Kubernetes.

The pure core (naming, config checks, plan, diff, node scripts) lives in `components.core` and never
imports pulumi. The ComponentResources are imported lazily so that `python -m components plan` stays fast
and works without the Pulumi SDK's runtime.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "ShimFleet": "components.fleet",
    "ShimFleetArgs": "components.fleet",
    "NodePool": "components.nodepool",
    "NodePoolArgs": "components.nodepool",
    "RuntimeClassSet": "components.runtimeclasses",
    "RuntimeClassSetArgs": "components.runtimeclasses",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
