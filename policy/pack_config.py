"""Write the policy pack's config for one stack step: `python -m policy.pack_config [--previous OLD] NEW`.

Run from the repository root with the program's virtualenv (it reads stack files with components.core).
A policy pack cannot see the state before the step, so this passes it in:
  runtimeclass-handler-unchanged  runtime prefix and the previous handler of every RuntimeClass
  shim-deprecation                the previous release keys per pool, `keep`, and the enforcement level
                                  from NEW's `deprecation.mode` (off: disabled, warn: advisory,
                                  error: mandatory)
Without --previous (a new stack) the previous maps are empty and those checks have no step to judge.
Use the output with `pulumi preview --policy-pack policy --policy-pack-config <file>`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from components.core.config import StackFileError, read_stack_file
from components.core.plan import plan_from_config

LEVELS = {"off": "disabled", "warn": "advisory", "error": "mandatory"}


def pack_config(new_raw: dict[str, Any], old_raw: dict[str, Any] | None) -> dict[str, Any]:
    new_cfg, _ = plan_from_config(new_raw)
    previous_handlers: dict[str, str] = {}
    previous_pools: dict[str, list[str]] = {}
    if old_raw is not None:
        old_cfg, old_plan = plan_from_config(old_raw)
        previous_handlers = {rc.name: rc.handler for rc in old_plan.runtime_classes}
        previous_pools = {p.name: [*p.releases, *p.retiring] for p in old_cfg.pools}
    return {
        "runtimeclass-handler-unchanged": {"runtime": new_cfg.runtime, "previous": previous_handlers},
        "shim-deprecation": {"enforcementLevel": LEVELS[new_cfg.deprecation.mode],
                             "keep": new_cfg.deprecation.keep, "previous": previous_pools},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policy.pack_config", description=__doc__.splitlines()[0])
    parser.add_argument("stack_file", help="the stack file being deployed")
    parser.add_argument("--previous", help="the same stack file before the change (e.g. from the base branch)")
    args = parser.parse_args(argv)
    try:
        new_raw = read_stack_file(args.stack_file)
        old_raw = read_stack_file(args.previous) if args.previous else None
    except StackFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(pack_config(new_raw, old_raw), indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
