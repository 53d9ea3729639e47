"""wasm-shim-fleet: Pulumi components that run several versions of containerd Wasm shims on Kubernetes.

Published under the import name `wasm_shim_fleet` (pyproject.toml maps it onto this folder); in a checkout
the folder is also importable as `components`, the name the project's own program, CLI and tests use. Here
the two names are one module: importing `components` makes `wasm_shim_fleet` and every
`wasm_shim_fleet.<sub>` the very same module objects (an alias, not a second copy), so isinstance checks hold
whichever name a caller used. An installed copy has only `wasm_shim_fleet`.

The pure core (naming, config checks, plan, diff, node scripts) lives in `.core` and never imports pulumi.
The ComponentResources are imported lazily so that `python -m components plan` stays fast and works without
the Pulumi SDK's runtime.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from typing import Any

#: The distribution's version (pyproject.toml reads it from here).
__version__ = "0.2.0"
#: The import name the package is published under.
IMPORT_NAME = "wasm_shim_fleet"

_LAZY = {
    "ShimFleet": ".fleet",
    "ShimFleetArgs": ".fleet",
    "PlanError": ".fleet",
    "NodePool": ".nodepool",
    "NodePoolArgs": ".nodepool",
    "NodePoolArgsError": ".nodepool",
    "PlannedNodePoolArgs": ".nodepool",
    "PoolNode": ".nodepool",
    "ShimRelease": ".nodepool",
    "ContainerdLayout": ".nodepool",
    "SshCredentials": ".nodepool",
    "Bastion": ".nodepool",
    "SshConnection": ".nodepool",
    "RuntimeHandlerCheck": ".nodepool",
    "RuntimeClassSet": ".runtimeclasses",
    "RuntimeClassSetArgs": ".runtimeclasses",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """`wasm_shim_fleet.<sub>` is `components.<sub>` in a checkout: the same module object under both names."""

    def __init__(self, alias: str, real: str) -> None:
        self.alias, self.real = alias, real
        self._specs: dict[str, Any] = {}

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname == self.alias or fullname.startswith(self.alias + "."):
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec: Any) -> Any:
        module = importlib.import_module(self.real + spec.name[len(self.alias):])
        self._specs[spec.name] = module.__spec__
        return module

    def exec_module(self, module: Any) -> None:
        # The import system set the alias's spec on the module: give it back its own (it is already executed).
        module.__spec__ = self._specs.pop(module.__spec__.name, module.__spec__)


if __name__ != IMPORT_NAME:
    _other = sys.modules.get(IMPORT_NAME)
    if _other is None:
        sys.modules[IMPORT_NAME] = sys.modules[__name__]
        sys.meta_path.insert(0, _Alias(IMPORT_NAME, __name__))
    elif _other is not sys.modules[__name__]:
        warnings.warn(f"{IMPORT_NAME} was imported from {getattr(_other, '__file__', '?')} before this checkout's "
                      f"{__name__} package: the two are different copies (isinstance across them fails); run the "
                      "checkout with a virtualenv that does not have the package installed", stacklevel=2)
