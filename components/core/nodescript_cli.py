"""`python -m components node-script STACK_FILE NODE [install|uninstall|kit]`: what a node is sent.

NODE may also name an agent pool (nodes chosen by label): then it prints what the pool's node agent runs on
each of its nodes (the scripts of its state, components/core/agent.py), and `install`/`uninstall` converge or
clean one such node by hand.

Without an action: the node's resources in the order `pulumi up` creates them, each with exactly the
create/update/delete text the program sends (the same function builds both:
components.core.kit_graph.node_resources).
`install` / `uninstall`: break-glass scripts that run those same resource scripts in order (the kit inline
first), to converge one node by hand. `kit`: the node kit itself. Relative `file:` URLs, local node roots and
seed configs resolve against the stack file's folder, as for the program run from that folder. Reads only the
stack file; needs no Pulumi engine.
"""

from __future__ import annotations

import sys
from typing import TextIO

from .config import StackFileError, project_dir, read_stack_file
from .kit_graph import node_resources
from .nodescript import agent_scripts, install_script, kit_text, uninstall_script
from .plan import NodePlan, plan_from_config

ACTIONS = ("resources", "install", "uninstall", "kit")


def _resources(node: NodePlan, base: str, plan=None) -> str:
    """The node's resources with their texts; `plan` (the FleetPlan) adds what the node waits for in its pool's
    rollout (components/core/rollout.py)."""
    out = []
    order = None
    if plan is not None:
        from .kit_graph import node_orders
        from .rollout import fleet_batches

        batches = fleet_batches(plan)[node.pool]
        pool_nodes = [n for n in plan.nodes if n.pool == node.pool]
        order = node_orders(f"fleet-{node.pool}", pool_nodes, batches)[node.name]
        i = batches.batch_of(node.name)
        out.append(f"# rollout of pool {node.pool}: {batches.summary()}; this node is in its {batches.label(i)}\n\n")
    for r in node_resources(f"fleet-{node.pool}", node, base, order=order):
        after = f", after {', '.join(r.depends_on)}" if r.depends_on else ""
        kind = {"copy": "command:remote:CopyToRemote", "patch": "kubernetes:core/v1:NodePatch",
                "verify": "command:local:Command",
                "command": "command:remote:Command" if node.transport == "ssh" else "command:local:Command"}
        out.append(f"##### {r.name} ({kind[r.kind]}{after})\n")
        if r.kind == "command" and node.transport == "kubernetes":
            out.append("# runs on the node in a runner pod (transport kubernetes: components/incluster_run.py)"
                       + (f"; the pod carries {r.payload} as \"$WSF_RUN_PAYLOAD\"" if r.payload else "") + "\n")
        if r.kind == "copy":
            out.append(f"# source: FileArchive {r.copy_source} (kit/<sha256>/wsf.sh and kit/selected; the kit is "
                       f"printed by `node-script STACK NODE kit`)\n# remotePath: {r.remote_path}\n")
        elif r.kind == "patch":
            out.append("# labels: " + ", ".join(f"{k}={v}" for k, v in node.labels.items()) + "\n")
        for verb in ("create", "update", "delete"):
            text = getattr(r, verb)
            if text is not None:
                out.append(f"#### {verb}\n{text}")
            elif verb == "update" and r.kind == "command":
                out.append("#### update: none (pulumi-command runs create again)\n")
        out.append("\n")
    return "".join(out)


def _agent(node: NodePlan) -> str:
    out = [f"# agent pool {node.pool}: what its node agent runs on each selected node, in this order: binaries "
           "(with the kit as the run's payload), then the table; status when a pass fails; uninstall when the "
           "pool goes. Each runs as root in the host's namespaces (deploy/agent, run-on-host.sh).\n\n"]
    for name, text in agent_scripts(node).items():
        out.append(f"##### {name}\n{text}\n")
    return "".join(out)


def node_script_main(stack_file: str, node: str, action: str = "resources", out: TextIO | None = None,
                     err: TextIO | None = None) -> int:
    """Print what NODE of STACK_FILE is sent. Returns 0, or 2 on any problem (said on stderr)."""
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
    base = str(project_dir(stack_file))
    _, plan = plan_from_config(raw, base)
    if plan.errors:
        for problem in plan.errors:
            print(f"{stack_file}: {problem}", file=err)
        print(f"node-script: {len(plan.errors)} error(s) in {stack_file}; fix them first", file=err)
        return 2
    try:
        node_plan = plan.node(node)
    except KeyError:
        agents = {a.name: a for a in plan.agent_pools}
        if node not in agents:
            known = ", ".join(n.name for n in plan.nodes) or "none"
            pools = ", ".join(agents)
            print(f"node-script: {stack_file} has no node {node!r}; its nodes are: {known}"
                  + (f"; its agent pools: {pools}" if pools else ""), file=err)
            return 2
        node_plan = agents[node].node
        if action == "resources":
            out.write(_agent(agents[node].node))
            return 0
    root = f"{base}/{node_plan.node_root}" if node_plan.transport == "local" else None
    if action == "resources":
        out.write(_resources(node_plan, base, plan))
    elif action == "kit":
        out.write(kit_text())
    elif action == "install":
        out.write(install_script(node_plan, root))
    else:
        out.write(uninstall_script(node_plan, root))
    return 0
