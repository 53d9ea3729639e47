"""Benchmarks: program cost at scale, diff size, restarts and rollout time.

    python bench/run.py [--quick] [--json] [--only NAME,...]

Prints a table, or with --json one {"metric", "value", "unit"} object per line. Metrics that need the
real-engine toolchain or the SSH test hosts say why they were skipped (as a "skipped" line) instead of
printing a number.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from components.core.plan import plan_from_config  # noqa: E402

SHIMS = ("spin", "slight")
VERSIONS = ("1.2.3", "1.2.4", "1.3.0")


def fleet_config(nodes: int, pool_size: int = 10) -> dict:
    """`nodes` nodes in pools of `pool_size`, 2 shims x 3 releases, each pool running two of them."""
    catalog = {
        shim: [{"version": v, "url": f"https://artifacts.example.org/{shim}/{v}.tar.gz",
                "sha256": f"{i:x}" * 64 if i < 16 else "a" * 64, "binary": f"containerd-shim-{shim}-v1"}
               for i, v in enumerate(VERSIONS, start=1 + 3 * SHIMS.index(shim))]
        for shim in SHIMS
    }
    pins = [f"{s}@{v}" for s in SHIMS for v in VERSIONS]
    pools = []
    for p in range(0, nodes, pool_size):
        k = p // pool_size
        releases = [pins[k % len(pins)], pins[(k + 1) % len(pins)]]
        pools.append({"name": f"pool-{k}", "containerd": "containerd-1", "releases": releases,
                      "nodes": [{"name": f"node-{n}", "host": f"10.{n // 65536}.{n // 256 % 256}.{n % 256}",
                                 "hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBench"}
                                for n in range(p, min(p + pool_size, nodes))]})
    return {"shims": catalog, "nodePools": pools, "ssh": {"user": "root", "privateKey": "bench-key"}}


class Results:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.rows: list[tuple[str, object, str]] = []

    def add(self, metric: str, value: object, unit: str) -> None:
        self.rows.append((metric, value, unit))
        if self.as_json:
            print(json.dumps({"metric": metric, "value": value, "unit": unit}), flush=True)
        else:
            shown = f"{value:.3f}" if isinstance(value, float) else str(value)
            print(f"{metric:<44} {shown:>12} {unit}", flush=True)

    def skip(self, metric: str, reason: str) -> None:
        if self.as_json:
            print(json.dumps({"metric": metric, "value": None, "unit": "skipped", "reason": reason}), flush=True)
        else:
            print(f"{metric:<44} {'skipped':>12} {reason}", flush=True)


def timed(fn: Callable[[], object], repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


# ------------------------------------------------------------------------------------------ plan only
def bench_plan(r: Results, quick: bool) -> None:
    for n in (1000, 10000):
        raw = fleet_config(n)
        seconds = timed(lambda raw=raw: plan_from_config(raw), repeat=1 if quick else 3)
        r.add(f"plan_seconds_{n}_nodes", seconds, "s")


# --------------------------------------------------------------------------------------- program/mocks
def _program_under_mocks(raw: dict) -> int:
    import pulumi

    from components.fleet import ShimFleet, ShimFleetArgs
    from components.nodepool import SshConnection

    class Counter(pulumi.runtime.Mocks):
        count = 0

        def new_resource(self, args):
            Counter.count += 1
            return [f"{args.name}-id", {}]

        def call(self, args):
            return {}

    pulumi.runtime.set_mocks(Counter(), preview=False)

    @pulumi.runtime.test
    def program():
        _, plan = plan_from_config(raw)
        fleet = ShimFleet("fleet", ShimFleetArgs(plan=plan, ssh=SshConnection("root", 22, "k")))
        return fleet.urn

    program()
    pulumi.runtime.settings.reset_options()
    return Counter.count


def bench_program(r: Results, quick: bool) -> None:
    seconds = {}
    for n in (100, 1000):
        raw = fleet_config(n)
        counts = {}
        seconds[n] = timed(lambda raw=raw, counts=counts: counts.update(n=_program_under_mocks(raw)))
        r.add(f"program_seconds_{n}_nodes", seconds[n], "s")
        r.add(f"program_resources_{n}_nodes", counts["n"], "resources")
    tracemalloc.start()
    _program_under_mocks(fleet_config(1000))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    r.add("program_peak_mib_1000_nodes", round(peak / 2**20, 1), "MiB (Python heap, tracemalloc)")
    r.add("scaling_ratio_1000_over_100", round(seconds[1000] / seconds[100], 2), "x (linear = 10)")


# ------------------------------------------------------------------------------- proposal comparison
def bump_configs(nodes: int) -> tuple[dict, dict]:
    """Before: every pool runs spin and slight 1.2.3. After: one new pool of 10 nodes runs 1.2.4 of both."""
    before = fleet_config(nodes)
    for p in before["nodePools"]:
        p["releases"] = ["spin@1.2.3", "slight@1.2.3"]
    after = json.loads(json.dumps(before))
    extra = fleet_config(nodes + 10)["nodePools"][-1]
    extra.update(name="pool-bump", releases=["spin@1.2.4", "slight@1.2.4"])
    after["nodePools"].append(extra)
    return before, after


def bench_literal_scheme(r: Results, quick: bool) -> None:
    """The bump above under the proposal's literal scheme (each series class points at the newest exact
    handler in the fleet) versus node-local aliases: how many RuntimeClasses would change handler, i.e.
    be deleted and re-created (handler is immutable)."""
    from components.core.plan import select_aliases

    before, after = bump_configs(100)

    def handlers(raw):
        cfg, plan = plan_from_config(raw)
        installed = [cfg.releases[k] for pool in cfg.pools for k in pool.releases]
        literal = {alias: rel.handler for alias, rel in select_aliases(installed).items()}
        ours = {rc.name: rc.handler for rc in plan.runtime_classes}
        return literal, ours

    old_literal, old_ours = handlers(before)
    new_literal, new_ours = handlers(after)
    r.add("literal_scheme_class_replacements_on_bump",
          sum(1 for a in old_literal if a in new_literal and old_literal[a] != new_literal[a]), "RuntimeClasses")
    r.add("alias_scheme_class_replacements_on_bump",
          sum(1 for k in old_ours if k in new_ours and old_ours[k] != new_ours[k]), "RuntimeClasses")


BENCHES: dict[str, Callable[[Results, bool], None]] = {
    "plan": bench_plan,
    "program": bench_program,
    "literal": bench_literal_scheme,
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (finishes within 20 minutes)")
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    ap.add_argument("--only", default="", help="comma-separated benchmark groups: " + ",".join(BENCHES))
    args = ap.parse_args()
    chosen = [b for b in args.only.split(",") if b] or list(BENCHES)
    r = Results(args.json)
    if not args.json:
        print(f"# wasm-shim-fleet benchmarks  python {sys.version.split()[0]}  cpus {os.cpu_count()}")
    for name in chosen:
        BENCHES[name](r, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
