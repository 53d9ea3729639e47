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
import math
import os
import subprocess
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
def _run_under_mocks(build: Callable[[], object], short_traces: bool = True) -> int:
    """Run `build` (returns an Output or resource URN to wait for) as a Pulumi program under mocks that answer
    every registration at once; returns how many resources it registered. `short_traces`: with the program's
    own stack traces, as __main__.py sets it (components/stack_traces.py), else the SDK's whole-stack ones."""
    import pulumi

    from components.stack_traces import keep_program_frames, keep_whole_stacks

    class Counter(pulumi.runtime.Mocks):
        count = 0

        def new_resource(self, args):
            Counter.count += 1
            return [f"{args.name}-id", {}]

        def call(self, args):
            return {}

    pulumi.runtime.set_mocks(Counter(), preview=False)
    if short_traces:
        keep_program_frames()
    try:
        pulumi.runtime.test(build)()
    finally:
        keep_whole_stacks()
        pulumi.runtime.settings.reset_options()
    return Counter.count


def _program_under_mocks(raw: dict, short_traces: bool = True) -> int:
    """The fleet under mocks (see _run_under_mocks)."""
    from components.fleet import ShimFleet, ShimFleetArgs
    from components.nodepool import SshConnection

    def program():
        _, plan = plan_from_config(raw)
        return ShimFleet("fleet", ShimFleetArgs(plan=plan, ssh=SshConnection("root", 22, "k"))).urn

    return _run_under_mocks(program, short_traces)


def _sdk_floor_seconds(resources: int) -> float:
    """Seconds for the Pulumi SDK alone to register `resources` pulumi-command `local.Command`s with two 500-byte
    scripts each, under the same mocks, in groups of 5 chained by depends_on like a node's resources: the cost
    of a resource that no code of the project can lower (no plan, no scripts, no components but one parent)."""
    import pulumi
    import pulumi_command as command

    create, delete = "echo " + "c" * 495, "echo " + "d" * 495

    def program():
        parent = pulumi.ComponentResource("bench:index:Floor", "floor")
        last = None
        for i in range(resources):
            deps = [last] if last is not None and i % 5 else None
            last = command.local.Command(f"r{i}", create=create, delete=delete, interpreter=["/bin/sh", "-c"],
                                         opts=pulumi.ResourceOptions(parent=parent, depends_on=deps))
        return parent.urn

    t0 = time.perf_counter()
    _run_under_mocks(program)
    return time.perf_counter() - t0


def _peak_rss_mib(nodes: int) -> float:
    """Peak resident memory of a fresh interpreter that evaluates the program under mocks for `nodes` nodes."""
    code = ("import gc, resource, sys; gc.disable(); sys.path.insert(0, sys.argv[1]); import run; "
            "run._program_under_mocks(run.fleet_config(int(sys.argv[2]))); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent), str(nodes)],
                         capture_output=True, text=True, check=True).stdout
    return round(int(out.split()[-1]) / 1024, 1)  # ru_maxrss is in KiB on Linux


def bench_program(r: Results, quick: bool) -> None:
    """The program as __main__.py runs it: with Python's cyclic GC off and the program's own stack traces (see
    there). The same figures with the GC on, and with the SDK's whole-stack traces, are printed for comparison:
    full collections walking the SDK's ~900 000 live objects at 1000 nodes are what made the program slower
    than linear, and capturing whole stacks was the SDK's largest single per-resource cost."""
    _program_under_mocks(fleet_config(10))  # imports and first-use costs out of the 100-node figure
    for label, suffix in ((False, ""), (True, "_gc_on")):
        seconds = {}
        counts: dict[str, int] = {}
        if not label:
            gc.disable()
        try:
            for n in (100, 1000):
                raw = fleet_config(n)
                seconds[n] = timed(lambda raw=raw, counts=counts: counts.update(n=_program_under_mocks(raw)),
                                   repeat=3 if n == 100 else (1 if quick else 2))
                r.add(f"program_seconds_{n}_nodes{suffix}", seconds[n], "s" + (" (gc on)" if label else ""))
                if not label:
                    r.add(f"program_resources_{n}_nodes", counts["n"], "resources")
        finally:
            gc.enable()
        r.add(f"scaling_ratio_1000_over_100{suffix}", round(seconds[1000] / seconds[100], 2),
              "x (linear = 10)" + (" (gc on)" if label else ""))
    gc.disable()
    try:
        full = timed(lambda: _program_under_mocks(fleet_config(1000), short_traces=False), repeat=1)
    finally:
        gc.enable()
    r.add("program_seconds_1000_nodes_full_traces", full,
          "s (gc off, the SDK's whole-stack trace per resource: before components/stack_traces.py)")
    gc.disable()
    try:
        floor = min(_sdk_floor_seconds(5000) for _ in range(1 if quick else 2))
    finally:
        gc.enable()
    r.add("sdk_floor_ms_per_command_resource", round(floor / 5, 3),
          "ms (gc off): the SDK alone, 5 000 pulumi-command Commands under the same mocks, no project code")
    r.add("program_peak_mib_1000_nodes", _peak_rss_mib(1000), "MiB (peak RSS of a fresh process, gc off)")
    if not quick:
        tracemalloc.start()
        _program_under_mocks(fleet_config(1000))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        r.add("program_peak_heap_mib_1000_nodes", round(peak / 2**20, 1), "MiB (Python heap, tracemalloc)")


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


def class_replacements(before: dict, after: dict) -> tuple[int, int]:
    """RuntimeClasses whose handler a step changes, i.e. that must be deleted and re-created (a handler is
    immutable): (under the proposal's literal scheme, where each series class points at the newest exact
    handler in the fleet; under node-local aliases, as planned)."""
    from components.core.plan import select_aliases

    def handlers(raw):
        cfg, plan = plan_from_config(raw)
        installed = [cfg.releases[k] for pool in cfg.pools for k in pool.releases]
        literal = {alias: rel.handler for alias, rel in select_aliases(installed).items()}
        ours = {rc.name: rc.handler for rc in plan.runtime_classes}
        return literal, ours

    old_literal, old_ours = handlers(before)
    new_literal, new_ours = handlers(after)
    return (sum(1 for a in old_literal if a in new_literal and old_literal[a] != new_literal[a]),
            sum(1 for k in old_ours if k in new_ours and old_ours[k] != new_ours[k]))


def bench_literal_scheme(r: Results, quick: bool) -> None:
    """The bump of `bump_configs` (100 nodes): literal scheme versus node-local aliases."""
    literal, ours = class_replacements(*bump_configs(100))
    r.add("literal_scheme_class_replacements_on_bump", literal, "RuntimeClasses")
    r.add("alias_scheme_class_replacements_on_bump", ours, "RuntimeClasses")


# ------------------------------------------------------------------------------- real engine, kwok nodes
ENGINE_METRICS = ("engine_preview_seconds_100_nodes", "engine_resources_per_node")


def _skip_all(r: Results, metrics, reason: str) -> None:
    for m in metrics:
        r.skip(m, reason)


def bench_engine(r: Results, quick: bool) -> None:
    """`pulumi preview` of a fresh 100-node stack under the real engine (local backend), against a real
    kube-apiserver with 100 kwok Nodes. Commands do not run in a preview, so no SSH host is needed.

    The preview runs as `python -m components preview` runs it (components/run.py PREVIEW_ENV:
    PULUMI_SKIP_CHECKPOINTS=true) and the program drops the SDK's debug messages (components/sdk_debug.py).
    WSF_BENCH_ENGINE_CHECKPOINTS=1 runs it with the engine's default checkpoints instead, WSF_SDK_DEBUG=1 with
    the SDK's debug messages (both: as before these settings)."""
    from bench import worlds
    from components.run import PREVIEW_ENV

    n = int(os.environ.get("WSF_BENCH_ENGINE_NODES", "100"))
    default_checkpoints = os.environ.get("WSF_BENCH_ENGINE_CHECKPOINTS", "") not in ("", "0")
    names = [f"node-{i}" for i in range(n)]
    try:
        bin_dir = worlds.toolchain()
        with worlds.world(bin_dir, names, ssh_hosts=False) as w:
            pins = ["slight@1.2.3", "slight@1.2.4", "slight@1.3.0", "spin@0.3.0"]
            pools = []
            for k in range(0, n, 10):
                pool = {"name": f"pool-{k // 10}", "containerd": "containerd-1", "restart": ":",
                        "releases": [pins[(k // 10) % 3], pins[3]],
                        "nodes": [{"name": name, "host": "127.0.0.1", "port": 22,
                                   "hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBench"}
                                  for name in names[k:k + 10]]}
                pools.append(pool)
            w.set_config(w.config(pools))
            if not default_checkpoints:
                w.stack.workspace.env_vars.update(PREVIEW_ENV)
            best, clock = float("inf"), None
            for _ in range(1 if quick else 2):
                clock = worlds.EventClock()
                t0 = time.perf_counter()
                preview = w.stack.preview(color="never", on_event=clock)
                best = min(best, time.perf_counter() - t0)
            r.add(f"engine_preview_seconds_{n}_nodes", best, f"s ({preview.change_summary.get('create', 0)} creates)")
            per_node = [sum(1 for u in clock.urns if u.split("::")[-1].startswith(f"fleet-{p['name']}-{nd['name']}-"))
                        for p in pools for nd in p["nodes"]]
            r.add("engine_resources_per_node", round(sum(per_node) / len(per_node), 2),
                  "resources (kit + 2 binaries + handler table + runtimeHandlers check + label patch)")
    except worlds.Unavailable as exc:
        _skip_all(r, ENGINE_METRICS, str(exc))


# ------------------------------------------------------------------------------- real engine, SSH hosts
HOST_METRICS = ("rollout_seconds_1_host", "rollout_seconds_16_hosts", "rollout_seconds_16_hosts_all_at_once",
                "rollout_ratio_16_over_1", "restarts_on_noop", "replaced_resources_on_bump",
                "literal_scheme_class_replacements_on_engine_bump", "restarts_per_changed_node")
#: A pool whose change reaches every node at once (up to pulumi's --parallel): how pools rolled before rollouts.
ALL_AT_ONCE = {"maxUnavailable": "100%", "canary": 0}


def _restarts(w) -> dict[str, int]:
    return w.restarts()


def _restart_spans(w, since: dict[str, int]) -> list[tuple[float, float]]:
    """(start, end) of each containerd restart of every host since `since` (restart counts per host)."""
    return [span for name, node in w.nodes.items() for span in node.restart_times()[since[name]:]]


def max_overlap(spans: list[tuple[float, float]]) -> int:
    """The most intervals that hold at the same moment: how many containerds were away at once."""
    points = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    most = cur = 0
    for _, d in points:
        cur += d
        most = max(most, cur)
    return most


def bench_hosts(r: Results, quick: bool) -> None:
    """`pulumi up` under the real engine against sshd test hosts with real containerd daemons (one per host,
    this machine), artifacts from a local https server the hosts trust (CURL_CA_BUNDLE)."""
    from bench import worlds

    n = 16
    names = [f"h{i:02d}" for i in range(n)]
    try:
        bin_dir = worlds.toolchain()
        with worlds.https_artifacts() as (base, cert), \
                worlds.world(bin_dir, names, ssh_hosts=True, host_env={"CURL_CA_BUNDLE": str(cert)}) as w:
            def config(pools):
                return worlds.served(w.config(pools), base)

            def up(raw, what, **kw):
                w.set_config(raw)
                clock = worlds.EventClock()
                busy0, total0 = worlds.cpu_ticks()
                t0 = time.perf_counter()
                w.stack.up(color="never", on_event=clock, **kw)
                seconds = time.perf_counter() - t0
                busy1, total1 = worlds.cpu_ticks()
                clock.cpu_busy = (busy1 - busy0) / max(1, total1 - total0)
                clock.cpu_seconds = (busy1 - busy0) / os.sysconf("SC_CLK_TCK")
                return seconds, clock

            # 1 host, then (after a destroy that restores it) 16 hosts: the same work per host
            one = [w.pool("p0", ["slight@1.2.3", "spin@0.3.0"], names[:1])]
            t1, c1 = up(config(one), "1 host")
            w.stack.destroy(color="never")
            pools = [w.pool(f"p{k}", ["slight@1.2.3", "spin@0.3.0"], names[4 * k:4 * k + 4]) for k in range(4)]
            before_raw = config(pools)
            # every table at once (how pools rolled before rollouts); then the default rollout (a canary, then
            # ceil(25 %) of each pool's nodes at a time) with room for every command of every host, and with
            # pulumi's default --parallel
            at_once = config([dict(p, rollout=ALL_AT_ONCE) for p in pools])
            t16a, c16a = up(at_once, "16 hosts, every table at once")
            w.stack.destroy(color="never")
            t16p, c16p = up(before_raw, "16 hosts, --parallel 64", parallel=64)
            w.stack.destroy(color="never")
            t16, c16 = up(before_raw, "16 hosts")
            r.add("rollout_seconds_1_host", t1, "s (pulumi up, 4 resources on the host)")
            r.add("rollout_seconds_16_hosts", t16, "s (pulumi up, 4 pools of 4 hosts, default rollout: 1 + 1 + 1 + 1 "
                  "per pool, pools in parallel)")
            r.add("rollout_seconds_16_hosts_all_at_once", t16a, "s (the same with every table at once: how pools "
                  f"rolled before rollouts; {c16a.max_in_flight} node commands at once)")
            r.add("rollout_ratio_16_over_1", round(t16 / t1, 2), "x (parallel <= 2, serial = 16)")
            if c1.command_span and c16.command_span:
                r.add("rollout_command_span_1_host", c1.command_span, "s (first node command started .. last done)")
                r.add("rollout_command_span_16_hosts", c16.command_span, "s")
                r.add("rollout_command_span_ratio", round(c16.command_span / c1.command_span, 2), "x")
            r.add("rollout_max_commands_in_flight_16_hosts", c16.max_in_flight,
                  "node commands at once (pulumi's default --parallel is 8)")
            r.add("rollout_seconds_16_hosts_parallel_64", t16p, f"s (pulumi up --parallel 64; "
                  f"{c16p.max_in_flight} node commands at once)")
            r.add("rollout_ratio_16_over_1_parallel_64", round(t16p / t1, 2), "x")
            # the best ratio this machine allows: the 16-host rollout's CPU work spread over every core
            r.add("rollout_ratio_cpu_floor", round(c16.cpu_seconds / os.cpu_count() / t1, 2),
                  "x (16-host cpu-s / cpus / 1-host seconds)")
            r.add("rollout_cpu_busy_1_host", round(100 * c1.cpu_busy, 1), f"% of {os.cpu_count()} cpus "
                  f"({c1.cpu_seconds:.1f} cpu-s)")
            r.add("rollout_cpu_busy_16_hosts", round(100 * c16.cpu_busy, 1), f"% of {os.cpu_count()} cpus "
                  f"({c16.cpu_seconds:.1f} cpu-s)")

            # no-op up: nothing changes, nothing restarts
            before = _restarts(w)
            t0 = time.perf_counter()
            w.stack.up(color="never", expect_no_changes=True)
            r.add("noop_up_seconds_16_hosts", time.perf_counter() - t0, "s")
            r.add("restarts_on_noop", sum(_restarts(w)[k] - before[k] for k in names), "restarts (16 hosts)")

            # bump: pool p0 (4 hosts) adds slight@1.2.4 beside 1.2.3
            bumped = [dict(pools[0], releases=["slight@1.2.3", "slight@1.2.4", "spin@0.3.0"]), *pools[1:]]
            after_raw = config(bumped)
            w.set_config(after_raw)
            preview = w.stack.preview(color="never")
            summary = preview.change_summary
            replaced = sum(summary.get(op, 0) for op in ("replace", "create-replacement", "delete-replaced"))
            r.add("replaced_resources_on_bump", replaced,
                  "resources (" + ", ".join(f"{k} {v}" for k, v in sorted(summary.items()) if k != "same") + ")")
            literal, _ = class_replacements(before_raw, after_raw)
            r.add("literal_scheme_class_replacements_on_engine_bump", literal,
                  "RuntimeClasses (same bump, series classes -> exact handlers; from the plan)")
            _, old_plan = plan_from_config(before_raw)
            _, new_plan = plan_from_config(after_raw)
            changed = {nd.name for nd in new_plan.nodes if nd.handlers != old_plan.node(nd.name).handlers}
            before = _restarts(w)
            w.stack.up(color="never")
            delta = {k: _restarts(w)[k] - before[k] for k in names}
            r.add("restarts_per_changed_node", round(sum(delta[k] for k in changed) / len(changed), 2),
                  f"restarts ({len(changed)} changed nodes; max {max(delta[k] for k in changed)})")
            r.add("restarts_on_unchanged_nodes_during_bump", sum(v for k, v in delta.items() if k not in changed),
                  f"restarts ({n - len(changed)} unchanged nodes)")

    except worlds.Unavailable as exc:
        _skip_all(r, HOST_METRICS, str(exc))


# ------------------------------------------------------------------------------- the node kit, local nodes
KIT_METRICS = ("state_bytes_per_node", "checkpoint_bytes_per_node", "up_seconds_100_local_nodes",
               "noop_up_seconds_100_local_nodes", "resources_changed_on_kit_change_per_node",
               "table_resources_changed_on_kit_change", "up_seconds_1000_local_nodes",
               "noop_up_seconds_1000_local_nodes", "up_ratio_1000_over_100")


#: Sizes of the real-engine local-node runs (WSF_BENCH_KIT_NODES=100,300 to change them).
KIT_NODES = tuple(int(n) for n in os.environ.get("WSF_BENCH_KIT_NODES", "100,1000").split(","))
#: WSF_BENCH_SKIP_CHECKPOINTS=1: run the kit group's engine operations with PULUMI_SKIP_CHECKPOINTS=true.
SKIP_CHECKPOINTS = os.environ.get("WSF_BENCH_SKIP_CHECKPOINTS", "") not in ("", "0")
#: WSF_BENCH_KIT_STEPS=up,noop,kit,destroy: which operations after the first `up` run (the nodes are folders in a
#: temporary directory, removed at the end either way).
KIT_STEPS = set(os.environ.get("WSF_BENCH_KIT_STEPS", "up,noop,kit,destroy").split(","))


def max_resource_script_lines() -> tuple[int, str]:
    """The longest create/update/delete text of any node resource, over a 100-node fleet of both transports."""
    from components.core.kit_graph import node_resources

    worst, name = 0, ""
    for transport in ("ssh", "local"):
        raw = fleet_config(100)
        for p in raw["nodePools"]:
            p["transport"] = transport
        _, plan = plan_from_config(raw, "/srv/project")
        for node in plan.nodes:
            for res in node_resources(f"fleet-{node.pool}", node, "/srv/project"):
                for text in (res.create, res.update, res.delete):
                    if text is not None and len(text.splitlines()) > worst:
                        worst, name = len(text.splitlines()), f"{res.name} ({transport})"
    return worst, name


def local_stack_config(nodes: int, artifacts: Path) -> dict:
    """`nodes` local-transport nodes in pools of 10, one 1-binary release each (the dev stack's shape)."""
    from tests.harness.artifacts import sums

    fname = "slight-v1.2.3-linux-amd64.tar.gz"
    return {
        "runtime": "wasmtime",
        "shims": {"slight": [{"version": "1.2.3", "url": f"file://{artifacts / fname}", "sha256": sums()[fname],
                              "binary": "containerd-shim-slight-v1"}]},
        "nodePools": [{"name": f"pool-{k}", "containerd": "containerd-1", "transport": "local",
                       "seedConfig": "config.toml", "releases": ["slight@1.2.3"],
                       "nodes": [{"name": f"node-{i}"} for i in range(k * 10, min(k * 10 + 10, nodes))]}
                      for k in range((nodes + 9) // 10)],
        "kubernetes": {"renderDir": "rendered"},
    }


def _local_world(bin_dir: Path, nodes: int, work: Path):
    """A project folder in `work` with `nodes` local nodes and an Automation API stack of the program."""
    import pulumi.automation as auto

    from tests.e2e.conftest import ARTIFACTS, PROJECT, run_program
    from tests.e2e.engine import offline_stack

    project = work / f"project-{nodes}"
    project.mkdir()
    (project / "config.toml").write_bytes((ROOT / "examples/containerd/config.toml").read_bytes())
    stack = offline_stack(bin_dir, project, PROJECT, f"bench{nodes}", lambda: run_program(ROOT / "__main__.py"))
    raw = local_stack_config(nodes, ARTIFACTS)
    stack.set_all_config({f"{PROJECT}:{k}": auto.ConfigValue(json.dumps(v)) for k, v in raw.items()})
    return project, stack


def node_state_bytes(deployment: dict) -> tuple[dict[str, int], dict[str, int]]:
    """Bytes of each node's resources in an exported checkpoint (compact JSON, as `len(json.dumps(...))`
    counts them), and the same bytes by field: `<role>.<key>` for each top-level key of a resource, with
    `inputs`/`outputs` split into their properties (`kit.outputs.stdout`, ...)."""
    per_node: dict[str, int] = {}
    fields: dict[str, int] = {}
    for res in deployment.get("resources", []):
        name = res["urn"].split("::")[-1]
        parts = name.split("-")
        if not name.startswith("fleet-pool-") or len(parts) < 5:
            continue
        node = "-".join(parts[3:5])
        role = "bin" if parts[5:6] == ["bin"] else "-".join(parts[5:])
        per_node[node] = per_node.get(node, 0) + len(json.dumps(res))
        for key, value in res.items():
            if key in ("inputs", "outputs") and isinstance(value, dict):
                for prop, v in value.items():
                    k = f"{role}.{key}.{prop}"
                    fields[k] = fields.get(k, 0) + len(json.dumps({prop: v})) - 1
            else:
                k = f"{role}.{key}"
                fields[k] = fields.get(k, 0) + len(json.dumps({key: value})) - 1
    return per_node, fields


def bench_kit(r: Results, quick: bool) -> None:
    """The node kit: script sizes; and under the real engine, `up` of 100 and 1000 local-transport nodes (each a
    folder with a containerd config, one binary, restart ':', manifests rendered to files), the checkpoint it
    leaves (`pulumi stack export`), a no-op `up`, and an `up` after a change to the kit only."""
    import shutil
    import tempfile

    from bench import worlds
    from components.core import nodescript

    lines, name = max_resource_script_lines()
    r.add("max_resource_script_lines", lines, f"lines ({name})")
    try:
        bin_dir = worlds.toolchain()
    except worlds.Unavailable as exc:
        _skip_all(r, KIT_METRICS, str(exc))
        return
    work = Path(tempfile.mkdtemp(prefix="wsf-bench-kit-"))
    old_cwd, old_cache = os.getcwd(), os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(work / "cache")
    up_seconds: dict[int, float] = {}
    try:
        with worlds.on_path(bin_dir):
            for n in (100,) if quick else KIT_NODES:
                project, stack = _local_world(bin_dir, n, work)
                if SKIP_CHECKPOINTS:
                    # the engine's opt-in: no checkpoint after each step, only the final state (docs/testing.md)
                    stack.workspace.env_vars.update(PULUMI_SKIP_CHECKPOINTS="true", PULUMI_EXPERIMENTAL="true")
                os.chdir(project)  # the program resolves node roots and file: paths against its cwd
                t0 = time.perf_counter()
                progress = {"on_event": worlds.EventClock()} if os.environ.get("WSF_BENCH_PROGRESS") else {}
                result = stack.up(color="never", **progress)
                up_seconds[n] = time.perf_counter() - t0
                assert result.summary.result == "succeeded"
                r.add(f"up_seconds_{n}_local_nodes", up_seconds[n], f"s ({n * 4} resources)")
                deployment = stack.export_stack().deployment
                per_node, fields = node_state_bytes(deployment)
                if n == 100:
                    r.add("state_bytes_per_node", round(sum(per_node.values()) / len(per_node)),
                          "bytes (the node's 4 resources in the checkpoint)")
                    for field, size in sorted(fields.items(), key=lambda kv: -kv[1]):
                        r.add(f"state_bytes_per_node_{field}", round(size / len(per_node)),
                              "bytes of it (a field of the node's resources; kind.field)")
                    r.add("checkpoint_bytes_per_node", round(len(json.dumps(deployment)) / n),
                          "bytes (whole checkpoint / nodes)")
                if "noop" in KIT_STEPS:
                    t0 = time.perf_counter()
                    noop = stack.up(color="never")
                    r.add(f"noop_up_seconds_{n}_local_nodes", time.perf_counter() - t0,
                          f"s ({sum(v for k, v in noop.summary.resource_changes.items() if k != 'same')} changes)")
                if n == 100 and "kit" in KIT_STEPS:
                    other = nodescript.kit_text() + "# the same kit, one comment longer\n"
                    real = nodescript.kit_text
                    nodescript.kit_text = lambda: other  # noqa: B023 (restored below)
                    try:
                        changed = stack.preview(color="never", diff=True)
                        result = stack.up(color="never")
                    finally:
                        nodescript.kit_text = real
                    updates = result.summary.resource_changes.get("update", 0)
                    r.add("resources_changed_on_kit_change_per_node",
                          round((sum(v for k, v in result.summary.resource_changes.items() if k != "same")) / n, 2),
                          f"resources ({updates} updates for {n} nodes)")
                    r.add("table_resources_changed_on_kit_change",
                          sum(1 for ln in changed.stdout.splitlines() if "-handlers" in ln and "update" in ln),
                          "handler tables (so 0 containerd restarts)")
                if "destroy" in KIT_STEPS:
                    t0 = time.perf_counter()
                    stack.destroy(color="never")
                    r.add(f"destroy_seconds_{n}_local_nodes", time.perf_counter() - t0, "s")
                os.chdir(old_cwd)
            for n in up_seconds:
                if n != 100 and 100 in up_seconds:
                    r.add(f"up_ratio_{n}_over_100", round(up_seconds[n] / up_seconds[100], 2),
                          f"x (linear = {n / 100:g})")
    finally:
        os.chdir(old_cwd)
        if old_cache is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = old_cache
        shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------------------------------ agent pools (kwok)
AGENT_METRICS = ("agent_pool_resources", "agent_preview_seconds", "agent_up_seconds")


def bench_agents(r: Results, quick: bool) -> None:
    """One agent pool over 10 and 1 000 kwok Nodes (WSF_BENCH_AGENT_NODES, comma-separated) under the real engine
    and API server, kwok playing the nodes' agents (it makes their DaemonSet pods Running and Ready; no agent runs):
    the Pulumi resources of the stack after `up` (the same whatever the number of nodes), a preview of a bump
    (one release added), and the `up` of that bump, which rolls the DaemonSet over every node and waits for it
    (maxUnavailable 10 % here: with 1, 1 000 nodes roll one at a time)."""
    from bench import worlds
    from components.run import PREVIEW_ENV

    sizes = [int(x) for x in os.environ.get("WSF_BENCH_AGENT_NODES", "10,1000").split(",") if x]
    image = "registry.invalid/wasm-shim-fleet/node@sha256:" + "be" * 32
    try:
        bin_dir = worlds.toolchain()
        for n in sizes:
            names = [f"node-{i}" for i in range(n)]
            with worlds.world(bin_dir, names, ssh_hosts=False) as w:
                def config(releases: list[str]) -> dict:
                    raw = w.config([{"name": "spin", "containerd": "containerd-2", "releases": releases,
                                     "nodeSelector": {"type": "kwok"},
                                     "rollout": {"maxUnavailable": "10%", "timeoutSeconds": 3600}}])
                    del raw["ssh"]
                    raw["kubernetes"]["agentImage"] = image
                    return raw

                w.set_config(config(["slight@1.2.3"]))
                t0 = time.perf_counter()
                w.stack.up(color="never")
                r.add(f"agent_first_up_seconds_{n}_nodes", time.perf_counter() - t0,
                      "s (the pool's objects, and its DaemonSet Ready on every node)")
                resources = [res for res in w.stack.export_stack().deployment["resources"]
                             if not res["type"].startswith(("pulumi:", "wasm-shim-fleet:index:RuntimeClassSet"))
                             and "RuntimeClass" not in res["type"]]
                r.add(f"agent_pool_resources_{n}_nodes", len(resources),
                      "resources (stack objects of the agents, the pool's, and their components)")
                w.set_config(config(["slight@1.2.3", "slight@1.2.4"]))
                old_env = dict(w.stack.workspace.env_vars)
                w.stack.workspace.env_vars.update(PREVIEW_ENV)
                best = float("inf")
                for _ in range(1 if quick else 2):
                    t0 = time.perf_counter()
                    w.stack.preview(color="never")
                    best = min(best, time.perf_counter() - t0)
                r.add(f"agent_preview_seconds_{n}_nodes", best, "s (a bump of the pool: one release added)")
                w.stack.workspace.env_vars.clear()
                w.stack.workspace.env_vars.update(old_env)
                t0 = time.perf_counter()
                w.stack.up(color="never")
                r.add(f"agent_up_seconds_{n}_nodes", time.perf_counter() - t0,
                      "s (that bump: every node's agent pod replaced, 10 % at a time, and awaited)")
    except worlds.Unavailable as exc:
        _skip_all(r, AGENT_METRICS, str(exc))


# ------------------------------------------------------------------ rollouts: containerd restarts at once
ROLLOUT_METRICS = ("max_concurrent_containerd_restarts", "max_concurrent_containerd_restarts_parallel_64",
                   "max_concurrent_containerd_restarts_all_at_once",
                   "max_concurrent_containerd_restarts_all_at_once_parallel_64", "bump_seconds_16_hosts",
                   "bump_seconds_16_hosts_all_at_once", "rollout_seconds_16_hosts_rendered",
                   "rollout_seconds_16_hosts_rendered_all_at_once")


#: How long each host's containerd stays stopped in a restart during the bump of bench_rollout (seconds).
HOLD = 2


def bench_rollout(r: Results, quick: bool) -> None:
    """How many of 16 SSH hosts' containerds restart at the same moment during a bump of one 16-host pool, each
    restart's start and end recorded on its host (tests/integration/restart-containerd.sh), with the default
    rollout and with every table at once (how pools rolled before rollouts), under pulumi's default --parallel
    and --parallel 64; and what batching costs in time. Real engine, sshd hosts with their own containerd,
    artifacts over https; no control plane (manifests rendered), so it runs beside other work."""
    from bench import worlds

    n = 16
    names = [f"h{i:02d}" for i in range(n)]
    limit = math.ceil(0.25 * n)
    try:
        bin_dir = worlds.toolchain()
        with worlds.https_artifacts() as (base, cert), \
                worlds.hosts_world(bin_dir, names, host_env={"CURL_CA_BUNDLE": str(cert)}) as w:
            def config(pools):
                return worlds.served(w.config(pools), base)

            def timed(raw, **kw) -> float:
                w.set_config(raw)
                t0 = time.perf_counter()
                w.stack.up(color="never", **kw)
                return time.perf_counter() - t0

            # the first rollout of 4 pools of 4 hosts (the `hosts` group's shape), every table at once, then the
            # default rollout (pools in parallel, each 1 + 1 + 1 + 1)
            pools = [w.pool(f"p{k}", ["slight@1.2.3", "spin@0.3.0"], names[4 * k:4 * k + 4]) for k in range(4)]
            t_at_once = timed(config([dict(p, rollout=ALL_AT_ONCE) for p in pools]))
            w.stack.destroy(color="never")
            t_default = timed(config(pools))
            w.stack.destroy(color="never")
            r.add("rollout_seconds_16_hosts_rendered_all_at_once", t_at_once, "s (pulumi up, 4 pools of 4 hosts, "
                  "every table at once: before rollouts)")
            r.add("rollout_seconds_16_hosts_rendered", t_default, "s (the same, default rollout: a canary, then "
                  "1 node at a time in each pool of 4; pools in parallel)")

            # a restart as long as a real node's (containerd stopped for HOLD s): with the stand-in's own ~0.1 s
            # restarts, 2 shared cores rarely let two of them overlap, whatever the order
            whole = dict(w.pool("all", ["slight@1.2.3"], names), restart=f"RESTART_HOLD={HOLD} {w.restart}")
            bumped = dict(whole, releases=["slight@1.2.3", "slight@1.2.4"])
            for suffix, rollout, kw in (("_all_at_once", ALL_AT_ONCE, {}),
                                        ("_all_at_once_parallel_64", ALL_AT_ONCE, {"parallel": 64}),
                                        ("", None, {}), ("_parallel_64", None, {"parallel": 64})):
                def pool(p, rollout=rollout):
                    return dict(p, rollout=rollout) if rollout else p

                timed(config([pool(whole)]), **kw)
                since = {k: len(w.nodes[k].restart_times()) for k in names}
                seconds = timed(config([pool(bumped)]), **kw)
                spans = _restart_spans(w, since)
                par = f"--parallel {kw['parallel']}" if kw else "default --parallel"
                r.add(f"max_concurrent_containerd_restarts{suffix}", max_overlap(spans),
                      f"containerds away at once, bump of one pool of 16 hosts ({len(spans)} restarts of {HOLD} s+, "
                      f"{par}; "
                      + ("every table at once)" if rollout else f"default rollout; target <= ceil(25 % of 16) = "
                                                               f"{limit})"))
                if suffix in ("", "_all_at_once"):
                    r.add(f"bump_seconds_16_hosts{suffix}", seconds, f"s (pulumi up of that bump, {par})")
                w.stack.destroy(color="never")
    except worlds.Unavailable as exc:
        _skip_all(r, ROLLOUT_METRICS, str(exc))


BENCHES: dict[str, Callable[[Results, bool], None]] = {
    "plan": bench_plan,
    "program": bench_program,
    "literal": bench_literal_scheme,
    "engine": bench_engine,
    "hosts": bench_hosts,
    "rollout": bench_rollout,
    "kit": bench_kit,
    "agents": bench_agents,
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
