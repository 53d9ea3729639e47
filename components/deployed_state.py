"""The thin adapter that reads what the stack deployed last, for components.core.deployed.

The engine's built-in provider answers `pulumi:pulumi:readStackOutputs` with a stack's last outputs (the
call a StackReference makes). The program reads its own stack this way before it registers any resource,
in `pulumi up` and in `pulumi preview` alike, with no language-host or dynamic-provider machinery. (Reading
every resource's state instead, `readStackResourceOutputs`, would carry every node script through the call:
about 0.2 MB per node.)
"""

from __future__ import annotations

import pulumi

from .core.deployed import Deployed, from_outputs

READ_STACK = "pulumi:pulumi:readStackOutputs"


def stack_name() -> str:
    """The fully qualified name of the running stack (`organization/<project>/<stack>` on a DIY backend)."""
    return f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"


def read_deployed() -> tuple[Deployed, str | None]:
    """The running stack's last deployed state, or an empty one and the reason it could not be read."""
    try:
        result = pulumi.runtime.invoke(READ_STACK, {"name": stack_name()})
    except Exception as exc:  # noqa: BLE001 - any failure of the read is reported, the caller decides
        return Deployed(), f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    outputs = (result.value or {}).get("outputs") or {}
    return from_outputs(outputs if isinstance(outputs, dict) else {}), None
