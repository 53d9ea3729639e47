"""`python -m components <command>`: plan, diff, node-script and promote, with no engine, cluster or network.
The commands that read or change the world (check, up, preview, ...) live outside the core and join the
parser through `extend` (components/__main__.py).

Exit codes: 0 success (warnings allowed), 2 for any error in the input or an unsafe transition, 1 for
an unexpected failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .config import StackFileError, project_dir, read_stack_file
from .deprecation import deprecation_problems
from .diff import diff_plans
from .plan import FleetPlan, plan_from_config


def load_plan(path: str) -> FleetPlan:
    """Plan a stack file; relative file: URLs resolve against the project folder (project_dir)."""
    _, plan = plan_from_config(read_stack_file(path), project_dir(path), secret_keys=())
    return plan


def _report_problems(plan: FleetPlan, source: str) -> None:
    for p in plan.problems:
        print(f"{source}: {p}", file=sys.stderr)


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def format_plan(plan: FleetPlan, selected: dict[str, list[str]] | None = None) -> str:
    """The plan in words; `selected`: agent pool -> the nodes its selector matches now (plan --cluster)."""
    lines = [f"RuntimeClasses ({len(plan.runtime_classes)})"]
    rows = [["NAME", "HANDLER", "SCOPE", "NODE SELECTOR"]]
    rows += [[rc.name, rc.handler, rc.scope, ", ".join(f"{k}={v}" for k, v in rc.node_selector.items())]
             for rc in plan.runtime_classes]
    lines += _table(rows)
    lines += ["", f"Nodes ({len(plan.nodes)})"]
    for n in plan.nodes:
        where = {"ssh": f"{n.host}:{n.port}", "kubernetes": "through the cluster"}.get(n.transport,
                                                                                   f"local {n.node_root}")
        lines.append(f"  {n.name}  pool {n.pool}  {n.flavor}  {where}")
        lines.append(f"    releases: {', '.join(n.releases) or '-'}")
        if n.retiring:
            lines.append(f"    retiring: {', '.join(n.retiring)} (installed, not labelled)")
        lines += _table([[h, "->", rt] for h, rt in n.handlers.items()], indent="    handler ")
        lines.append(f"    labels: {', '.join(n.labels) or '-'}")
        lines += [f"    binary  {name}  {b.release}  sha256:{b.sha256[:12]}…" for name, b in n.binaries.items()]
    from .rollout import fleet_batches

    rollouts = fleet_batches(plan)
    if rollouts:
        lines += ["", f"Rollouts ({len(rollouts)}): a batch's handler tables change (containerd restarts) only once "
                      "the batch before it is labelled"]
    for pool, b in rollouts.items():
        lines.append(f"  pool {pool}: {b.summary()}")
        lines += [f"    {b.label(i)}: {', '.join(batch)}" for i, batch in enumerate(b.batches)]
    if plan.agent_pools:
        lines += ["", f"Agent pools ({len(plan.agent_pools)}): every node with the selector's labels, now and later,"
                      " converged by the pool's node agent"]
    for a in plan.agent_pools:
        n, r = a.node, a.rollout
        selector = ", ".join(f"{k}={v}" for k, v in sorted(a.node_selector.items()))
        lines.append(f"  {a.name}  {n.flavor}  nodes with {selector}")
        if selected is not None:
            found = selected.get(a.name, [])
            lines.append(f"    selects now: {', '.join(found) if found else 'no node'}")
        lines.append(f"    rollout: at most {r.max_unavailable} node(s) at a time, each Ready {r.min_ready_seconds}s; "
                     f"up fails after {r.timeout_seconds}s; each agent checks its node every {a.check_seconds}s")
        lines.append(f"    releases: {', '.join(n.releases) or '-'}")
        if n.retiring:
            lines.append(f"    retiring: {', '.join(n.retiring)} (installed, not labelled)")
        lines += _table([[h, "->", rt] for h, rt in n.handlers.items()], indent="    handler ")
        lines.append(f"    labels: {', '.join(n.labels) or '-'}")
        lines += [f"    binary  {name}  {b.release}  sha256:{b.sha256[:12]}…" for name, b in n.binaries.items()]
    if plan.problems:
        lines += ["", f"Problems ({len(plan.problems)})"]
        lines += [f"  {p}" for p in plan.problems]
    return "\n".join(lines) + "\n"


def cmd_plan(args: argparse.Namespace) -> int:
    cfg, plan = plan_from_config(read_stack_file(args.stack_file), project_dir(args.stack_file),
                                 secret_keys=())
    _report_problems(plan, args.stack_file)
    selected = None
    if getattr(args, "cluster", False):
        reader = getattr(args, "read_nodes", None)
        if reader is None:
            print("plan: --cluster needs the cluster reader of `python -m components`", file=sys.stderr)
            return 2
        try:
            api_nodes = reader(cfg.kubernetes.kubeconfig, cfg.kubernetes.context)
        except (OSError, RuntimeError, ValueError) as exc:
            print(f"plan: cannot read the cluster's nodes: {exc}", file=sys.stderr)
            return 1
        from .agent import selects

        selected = {a.name: sorted(n for n, obj in api_nodes.items()
                                   if selects(a.node_selector, (obj.get("metadata") or {}).get("labels") or {}))
                    for a in plan.agent_pools}
    if args.json:
        doc = plan.to_json(batches=True)
        if selected is not None:
            doc["selected"] = selected
        print(json.dumps(doc, indent=2))
    else:
        print(format_plan(plan, selected), end="")
    return 0 if plan.ok else 2


def _read_deployed(path: str):
    """The deployed state from a `pulumi stack export` file (read with the stack-file bounds)."""
    from .config import MAX_FILE_BYTES
    from .deployed import from_stack_export

    p = Path(path)
    try:
        with open(p, "rb") as f:
            data = f.read(MAX_FILE_BYTES * 8 + 1)
    except OSError as exc:
        raise StackFileError(f"{p}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES * 8:
        raise StackFileError(f"{p}: larger than {MAX_FILE_BYTES * 8 // (1024 * 1024)} MiB; give the output of "
                             "`pulumi stack export`")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise StackFileError(f"{p}: not the JSON of `pulumi stack export` ({type(exc).__name__})") from None
    if not isinstance(doc, dict):
        raise StackFileError(f"{p}: not the JSON of `pulumi stack export`")
    return from_stack_export(doc)


def cmd_diff_deployed(args: argparse.Namespace) -> int:
    """NEW against what the stack deployed: the plan it applied, the labels its patches left."""
    from .deployed import keep_promised

    deployed = _read_deployed(args.deployed)
    _, new = plan_from_config(read_stack_file(args.new), project_dir(args.new), secret_keys=())
    _report_problems(new, args.new)
    if not new.ok:
        print("diff: fix the errors above first", file=sys.stderr)
        return 2
    if deployed.plan is None:
        print(f"{args.deployed}: no `plan` output in the deployed state (a stack never deployed, or deployed by an "
              "older version of the program); nothing to compare with, the next `pulumi up` applies the plan as "
              "it is", file=sys.stderr)
        old = FleetPlan(new.runtime, (), (), ())
    else:
        old = deployed.plan
    kept_plan, kept = keep_promised(new, deployed)
    for p in kept:
        print(f"{args.deployed}: {p}", file=sys.stderr)
    d = diff_plans(old, kept_plan)
    from .diff import BYTES, Note

    d.notes += [Note(None, p.message) for p in kept if p.severity == "warning"]
    # As the program does (core/deployed.py): the recorded plan of a failed update names binaries that never
    # installed, so a changed sha256 here is a note; `diff OLD NEW` and the policy pack refuse real ones.
    for u in [u for u in d.unsafe if u.kind == BYTES]:
        d.unsafe.remove(u)
        d.notes.append(Note(u.pool, f"{u.name}: {u.reason.split(';')[0]} as the stack recorded it; fine if that "
                                    "version never installed (a failed update), otherwise publish a new version",
                            (u.node,) if u.node else ()))
    errors = [p for p in kept if p.severity == "error"]
    if args.json:
        print(json.dumps({**d.to_json(), "deployed": [p.to_json() for p in kept]}, indent=2))
    elif args.markdown:
        print(d.markdown(f"wasm-shim-fleet: `{Path(args.new).name}` against the deployed stack"), end="")
    else:
        print(d.words(), end="")
    if d.unsafe:
        print(f"diff: {len(d.unsafe_groups())} unsafe step(s); see the UNSAFE lines", file=sys.stderr)
    return 0 if d.safe and not errors else 2


def cmd_diff(args: argparse.Namespace) -> int:
    if args.deployed:
        if args.old is not None:
            print("diff: give either OLD NEW or --deployed STATE NEW", file=sys.stderr)
            return 2
        return cmd_diff_deployed(args)
    if args.old is None:
        print("diff: give OLD NEW (two stack files), or --deployed STATE NEW", file=sys.stderr)
        return 2
    # Both files' relative file: URLs against one folder, the project's: the same URL is the same artifact.
    base = project_dir(args.new, args.old)
    old_cfg, old = plan_from_config(read_stack_file(args.old), base, secret_keys=())
    new_cfg, new = plan_from_config(read_stack_file(args.new), base, secret_keys=())
    # Errors of either file stop the diff; warnings are the new file's (the old one's are history), once.
    for p in old.errors:
        print(f"{args.old}: {p}", file=sys.stderr)
    _report_problems(new, args.new)
    if not (old.ok and new.ok):
        print("diff: fix the errors above first", file=sys.stderr)
        return 2
    d = diff_plans(old, new)
    # The deprecation policy of the stack being changed into decides how loud a dropped N-1 is.
    deprecation = deprecation_problems(old_cfg, new_cfg)
    if args.json:
        print(json.dumps({**d.to_json(), "deprecation": [p.to_json() for p in deprecation]}, indent=2))
    elif args.markdown:
        text = d.markdown(f"wasm-shim-fleet: `{Path(args.new).name}`")
        if deprecation:
            text += "\n" + "\n".join(f"- :warning: {p}" for p in deprecation) + "\n"
        print(text, end="")
    else:
        print(d.words(), end="")
    for p in deprecation:
        print(f"{args.new}: {p}", file=sys.stderr)
    refused = [p for p in deprecation if p.severity == "error"]
    if d.unsafe:
        print(f"diff: {len(d.unsafe_groups())} unsafe step(s); see the UNSAFE lines", file=sys.stderr)
    if refused:
        print(f"diff: {len(refused)} deprecation error(s) (deprecation.mode is error)", file=sys.stderr)
    return 0 if d.safe and not refused else 2


def cmd_node_script(args: argparse.Namespace) -> int:
    from .nodescript_cli import node_script_main

    return node_script_main(args.stack_file, args.node, args.action)


def cmd_promote(args: argparse.Namespace) -> int:
    from .promote import promote_main

    return promote_main(args.src, args.dst, write=args.write)


def build_parser(extend: Callable[[Any], None] | None = None) -> argparse.ArgumentParser:
    """The parser of every command; `extend(subparsers)` adds more (the engine commands, components.run)."""
    parser = argparse.ArgumentParser(
        prog="python -m components",
        description="wasm-shim-fleet: plan, diff, node-script and promote need no engine, cluster or network; "
                    "check reads the cluster and the nodes (read-only); up, preview, destroy, refresh and export "
                    "run the program under the Pulumi engine.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plan", help="print the desired state of the fleet and every problem in the stack file")
    p.add_argument("stack_file")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--cluster", action="store_true",
                   help="also list the nodes each agent pool selects now (reads the cluster's Nodes, read-only, "
                        "with the stack's kubeconfig)")
    p.set_defaults(func=cmd_plan)
    p = sub.add_parser("diff", help="what changing OLD into NEW does; exit 2 if the transition is unsafe")
    p.add_argument("old", nargs="?", help="the stack file before the change (omit with --deployed)")
    p.add_argument("new", help="the stack file after the change")
    p.add_argument("--deployed", metavar="STATE",
                   help="compare NEW with what the stack deployed: the JSON of `pulumi stack export`")
    form = p.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="machine-readable output")
    form.add_argument("--markdown", action="store_true",
                      help="a pull-request comment: verdict, pool x release matrix before -> after, details")
    p.set_defaults(func=cmd_diff)
    p = sub.add_parser("node-script", help="print NODE's resources with the exact text each sends, or a "
                                          "break-glass install/uninstall script, or the node kit")
    p.add_argument("stack_file")
    p.add_argument("node")
    p.add_argument("action", nargs="?", default="resources", choices=["resources", "install", "uninstall", "kit"])
    p.set_defaults(func=cmd_node_script)
    p = sub.add_parser("promote", help="move release pins from SRC's pools to DST's pools of the same name")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--write", action="store_true", help="edit DST in place (default: print what would change)")
    p.set_defaults(func=cmd_promote)
    if extend is not None:
        extend(sub)
    return parser


def main(argv: Sequence[str] | None = None, extend: Callable[[Any], None] | None = None) -> int:
    args = build_parser(extend).parse_args(argv)
    try:
        return args.func(args)
    except StackFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
