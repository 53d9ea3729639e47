"""The thin adapter that reads what the stack deployed last, for components.core.deployed.

The engine's built-in provider answers `pulumi:pulumi:readStackResourceOutputs` with the outputs of every
resource in a stack's last snapshot (the same backend call a StackReference uses). The program reads its own
stack this way before it registers any resource, in `pulumi up` and in `pulumi preview` alike, with no
language-host or dynamic-provider machinery.
"""

from __future__ import annotations

import pulumi

from .core.deployed import Deployed, from_resources

READ_STACK = "pulumi:pulumi:readStackResourceOutputs"


def stack_name() -> str:
    """The fully qualified name of the running stack (`organization/<project>/<stack>` on a DIY backend)."""
    return f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"


def read_deployed() -> tuple[Deployed, str | None]:
    """The running stack's last deployed state, or an empty one and the reason it could not be read."""
    try:
        result = pulumi.runtime.invoke(READ_STACK, {"stackName": stack_name()})
    except Exception as exc:  # noqa: BLE001 - any failure of the read is reported, the caller decides
        return Deployed(), f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    value = result.value or {}
    outputs = value.get("outputs") or {}
    return from_resources((r.get("type", ""), r.get("outputs") or {}) for r in outputs.values()
                          if isinstance(r, dict)), None
