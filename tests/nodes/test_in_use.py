"""In use means kept, on real kubelets with real Wasm pods.

Node a (containerd 1.6) and node c (containerd 2.2) run fleettest 1.4.0. A Deployment of the exact class
`wasmtime-fleettest-v1-4-0` runs on c; one of the series class `wasmtime-fleettest-v1-4` runs on a. Then:

- 1.4.1 is added beside 1.4.0 on a: the series alias moves to 1.4.1, the running pod stays on 1.4.0's binary;
- 1.4.0 is retired, then removed: each node refuses (its handler table is in use), naming its pods; nothing
  changes there (config bytes, binaries, labels), the pods keep running, never restarted;
- the exact Deployment is deleted: the same `up` removes 1.4.0 from c, while a still keeps 1.4.0's binary and
  handler for the series pod, which still runs on it;
- that pod goes too: the same `up` removes 1.4.0 from a.

Tests run in order on one module-scoped world. Run: flock /var/tmp/wsf-heavy.lock venv/bin/python -m pytest -m
nodes tests/nodes/test_in_use.py
"""

from __future__ import annotations

import re

import pytest

from tests.e2e.cluster import api_path
from tests.harness.workloads import spread_deployment

from .conftest import World, shim_that_ran

pytestmark = pytest.mark.nodes

X, X1 = "fleettest@1.4.0", "fleettest@1.4.1"
OLD_BINARY = "containerd-shim-fleettest-v1-4-0-v1"
OLD_RUNTIME = "io.containerd.fleettest-v1-4-0.v1"
#: Deployment -> (its RuntimeClass, the node label it runs on)
APPS = {"keep-exact": ("wasmtime-fleettest-v1-4-0", "c"), "keep-series": ("wasmtime-fleettest-v1-4", "a")}
#: pod name -> (uid, node label), seen Running before the removal
PODS: dict[str, tuple[str, str]] = {}


def pools(w: World, a: list[str], c: list[str], a_retiring=(), c_retiring=()) -> list[dict]:
    return [w.pool("a", a, list(a_retiring)), w.pool("c", c, list(c_retiring))]


def app_pods(w: World, app: str, count: int = 1) -> list[dict]:
    def probe():
        pods = [p for p in w.cluster.pods("default", f"app={app}") if not p["metadata"].get("deletionTimestamp")]
        ok = [p for p in pods if p.get("status", {}).get("phase") == "Running"
              and all(cs.get("ready") for cs in p["status"].get("containerStatuses", []))]
        return ok if len(pods) == count and len(ok) == count else None

    return w.cluster.wait_for(probe, f"{count} Running pod(s) of {app}", timeout=240)


def gone(w: World, app: str) -> None:
    w.cluster.kubectl("delete", "deployment", app, "--wait=true")
    w.cluster.wait_for(lambda: not w.cluster.pods("default", f"app={app}") or None, f"the pods of {app} to go",
                       timeout=180)


def still_running(w: World, apps) -> None:
    pods = {p["metadata"]["name"]: p for p in w.cluster.pods("default")}
    for name, (uid, label) in PODS.items():
        if not any(name.startswith(a + "-") for a in apps):
            continue
        pod = pods.get(name)
        assert pod is not None, f"pod {name} on {label} is gone"
        status = pod["status"]["containerStatuses"][0]
        assert pod["metadata"]["uid"] == uid and pod["status"]["phase"] == "Running" and status.get("ready"), status
        assert status["restartCount"] == 0, status


def test_pods_run_on_1_4_0_on_both_nodes(world: World):
    world.set_config(world.config(pools(world, [X], [X])))
    assert world.stack.up(color="never").summary.result == "succeeded"
    for app, (runtime_class, label) in APPS.items():
        d = spread_deployment(app, runtime_class, 1, {"image": world.nodes.hello_ref, "imagePullPolicy": "Never"},
                              automountServiceAccountToken=False, terminationGracePeriodSeconds=1,
                              nodeName=world.node(label).name)
        world.cluster.create(api_path("apps/v1", "deployments", "default"), d)
    for app, (_, label) in APPS.items():
        (pod,) = app_pods(world, app)
        runtime, _, printed = shim_that_ran(world, pod)
        assert runtime == OLD_RUNTIME and "1.4.0" in printed
        PODS[pod["metadata"]["name"]] = (pod["metadata"]["uid"], label)


def test_an_alias_that_moves_leaves_the_running_pod_on_the_old_binary(world: World):
    world.set_config(world.config(pools(world, [X, X1], [X])))
    assert world.stack.up(color="never").summary.result == "succeeded"
    a = world.node("a")
    assert "fleettest-v1-4-1.v1" in re.search(r"\.fleettest-v1-4\]\n\s*runtime_type = \"([^\"]+)\"",
                                             a.config.read_text()).group(1)
    (pod,) = app_pods(world, "keep-series")
    runtime, exe, _ = shim_that_ran(world, pod)
    assert runtime == OLD_RUNTIME and exe.endswith(OLD_BINARY)
    # retire 1.4.0 everywhere: its labels go, handlers and binaries stay, the pods run on
    world.set_config(world.config(pools(world, [X1], [], a_retiring=[X], c_retiring=[X])))
    assert world.stack.up(color="never").summary.result == "succeeded"
    assert "wasmtime-fleettest-v1-4-0" not in world.labels("a") and world.labels("c") == {}
    still_running(world, APPS)


def _remove_1_4_0(world: World):
    import pulumi.automation as auto

    world.set_config(world.config(pools(world, [X1], [])))
    try:
        world.stack.up(color="never", continue_on_error=True)
    except auto.CommandError as exc:
        return str(exc)
    return ""


def test_removing_1_4_0_under_running_pods_is_refused_on_each_node_naming_the_pods(world: World):
    before = {label: (world.node(label).config.read_bytes(), world.labels(label)) for label in "ac"}
    text = _remove_1_4_0(world)
    names = {label: name for name, (_, label) in PODS.items()}
    for label in "ac":
        match = re.search(rf"refusing to (?:change|remove) the handler table on this node: (\d+) running "
                          rf"container\(s\) use runtime {re.escape(OLD_RUNTIME)} \(pods default/{names[label]}\); "
                          r"drain the node or delete those pods, then re-run; nothing was changed", text)
        assert match, f"node {label}: {text[-3000:]}"
        assert int(match.group(1)) >= 1
        node = world.node(label)
        assert (node.bin_dir / OLD_BINARY).exists()
        assert (node.config.read_bytes(), world.labels(label)) == before[label], f"node {label} changed"
    still_running(world, APPS)


def test_once_the_exact_deployment_is_gone_the_same_up_removes_1_4_0_from_c_while_a_keeps_it(world: World):
    gone(world, "keep-exact")
    text = _remove_1_4_0(world)
    c, a = world.node("c"), world.node("a")
    assert not (c.bin_dir / OLD_BINARY).exists()
    assert "fleettest" not in c.config.read_text()
    # a still runs the series pod on 1.4.0: its binary and handler stay, the refusal names that pod alone
    assert "(pods default/keep-series-" in text and "keep-exact" not in text, text[-2000:]
    assert (a.bin_dir / OLD_BINARY).exists()
    assert OLD_RUNTIME in a.config.read_text()
    still_running(world, ["keep-series"])


def test_once_the_series_pod_is_gone_the_same_up_removes_1_4_0_from_a(world: World):
    gone(world, "keep-series")
    assert _remove_1_4_0(world) == ""
    a = world.node("a")
    assert not (a.bin_dir / OLD_BINARY).exists()
    assert OLD_RUNTIME not in a.config.read_text()
    assert (a.bin_dir / "containerd-shim-fleettest-v1-4-1-v1").exists()
