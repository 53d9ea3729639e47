"""`python -m components node-script STACK_FILE NODE {install|uninstall}`: print the script a node would run.

An operator audits exactly what an `up` would send: the components render node scripts with the same
functions (components.core.nodescript). Reads only the stack file; needs no Pulumi engine.
"""

from __future__ import annotations

import sys
from typing import TextIO

from .config import StackFileError, read_stack_file
from .nodescript import install_script, uninstall_script
from .plan import plan_from_config

ACTIONS = {"install": install_script, "uninstall": uninstall_script}


def node_script_main(stack_file: str, node: str, action: str, out: TextIO | None = None,
                     err: TextIO | None = None) -> int:
    """Print NODE's install or uninstall script for STACK_FILE. Returns 0, or 2 on any problem (said on stderr)."""
    out = out or sys.stdout
    err = err or sys.stderr
    if action not in ACTIONS:
        print(f"node-script: action {action!r} is not one of {', '.join(ACTIONS)}", file=err)
        return 2
    try:
        raw = read_stack_file(stack_file)
    except StackFileError as exc:
        print(f"node-script: {exc}", file=err)
        return 2
    _, plan = plan_from_config(raw)
    if plan.errors:
        for problem in plan.errors:
            print(f"{stack_file}: {problem}", file=err)
        print(f"node-script: {len(plan.errors)} error(s) in {stack_file}; fix them first", file=err)
        return 2
    try:
        node_plan = plan.node(node)
    except KeyError:
        known = ", ".join(n.name for n in plan.nodes) or "none"
        print(f"node-script: {stack_file} has no node {node!r}; its nodes are: {known}", file=err)
        return 2
    out.write(ACTIONS[action](node_plan))
    return 0
