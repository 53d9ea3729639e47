"""`python -m components <command>`: plan, diff, node-script and promote, with no engine, cluster or network.

Exit codes: 0 success (warnings allowed), 2 for any error in the input or an unsafe transition, 1 for
an unexpected failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from .config import StackFileError, read_stack_file
from .deprecation import deprecation_problems
from .diff import diff_plans
from .plan import FleetPlan, plan_from_config


def load_plan(path: str) -> FleetPlan:
    """Plan a stack file; relative file: URLs resolve against its folder (the project folder)."""
    _, plan = plan_from_config(read_stack_file(path), Path(path).resolve().parent)
    return plan


def _report_problems(plan: FleetPlan, source: str) -> None:
    for p in plan.problems:
        print(f"{source}: {p}", file=sys.stderr)


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def format_plan(plan: FleetPlan) -> str:
    lines = [f"RuntimeClasses ({len(plan.runtime_classes)})"]
    rows = [["NAME", "HANDLER", "SCOPE", "NODE SELECTOR"]]
    rows += [[rc.name, rc.handler, rc.scope, ", ".join(f"{k}={v}" for k, v in rc.node_selector.items())]
             for rc in plan.runtime_classes]
    lines += _table(rows)
    lines += ["", f"Nodes ({len(plan.nodes)})"]
    for n in plan.nodes:
        where = f"{n.host}:{n.port}" if n.transport == "ssh" else f"local {n.node_root}"
        lines.append(f"  {n.name}  pool {n.pool}  {n.flavor}  {where}")
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
    plan = load_plan(args.stack_file)
    _report_problems(plan, args.stack_file)
    if args.json:
        print(json.dumps(plan.to_json(), indent=2))
    else:
        print(format_plan(plan), end="")
    return 0 if plan.ok else 2


def cmd_diff(args: argparse.Namespace) -> int:
    old_cfg, old = plan_from_config(read_stack_file(args.old))
    new_cfg, new = plan_from_config(read_stack_file(args.new))
    _report_problems(old, args.old)
    _report_problems(new, args.new)
    if not (old.ok and new.ok):
        print("diff: fix the errors above first", file=sys.stderr)
        return 2
    d = diff_plans(old, new)
    # The deprecation policy of the stack being changed into decides how loud a dropped N-1 is.
    deprecation = deprecation_problems(old_cfg, new_cfg)
    if args.json:
        print(json.dumps({**d.to_json(), "deprecation": [p.to_json() for p in deprecation]}, indent=2))
    else:
        print(d.words(), end="")
    for p in deprecation:
        print(f"{args.new}: {p}", file=sys.stderr)
    refused = [p for p in deprecation if p.severity == "error"]
    if d.unsafe:
        print(f"diff: {len(d.unsafe)} unsafe transition(s); see the UNSAFE lines", file=sys.stderr)
    if refused:
        print(f"diff: {len(refused)} deprecation error(s) (deprecation.mode is error)", file=sys.stderr)
    return 0 if d.safe and not refused else 2


def cmd_node_script(args: argparse.Namespace) -> int:
    from .nodescript_cli import node_script_main

    return node_script_main(args.stack_file, args.node, args.action)


def cmd_promote(args: argparse.Namespace) -> int:
    from .promote import promote_main

    return promote_main(args.src, args.dst, write=args.write)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m components", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plan", help="print the desired state of the fleet and every problem in the stack file")
    p.add_argument("stack_file")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_plan)
    p = sub.add_parser("diff", help="what changing OLD into NEW does; exit 2 if the transition is unsafe")
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--json", action="store_true")
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except StackFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
