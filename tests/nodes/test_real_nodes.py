"""The proposal's test plan on real kubelets, with a real Wasm shim in three versions.

Under the real Pulumi engine the program installs fleettest 1.4.0 (X.Y.Z) on node a, 1.4.1 (X.Y.Z+1) on b and
both on c, from the local https artifact server. Then, per RuntimeClass, a Deployment of the WASI module image
must run exactly on the nodes the class selects, every pod Running, `kubectl logs` showing the module's line,
and each container run by the expected versioned runtime: the runtime name containerd recorded for it, the
versioned shim binary its task runs from, and the version that binary reports with `-v`. A class for the next
major is rejected. Then 1.4.2 is added on a new pool (node d), 1.4.0 retired and removed; the pods whose class
still holds on their node keep running, untouched.

Tests run in order on one module-scoped world. Run: venv/bin/python -m pytest -m nodes
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from components.core.plan import plan_from_config
from tests.e2e.cluster import ApiError, api_path
from tests.harness.images import HELLO_LINE
from tests.harness.workloads import spread_deployment

from .conftest import REPO, World, dashed, shim_that_ran

pytestmark = pytest.mark.nodes

X, X1, X2 = "fleettest@1.4.0", "fleettest@1.4.1", "fleettest@1.4.2"

#: RuntimeClass -> {node label: the shim version that must run its pods there}. Series and "any" classes
#: resolve per node to the highest installed version in the series (node-local alias handlers).
PLAN = {
    "wasmtime-fleettest-v1-4-0": {"a": "1.4.0", "c": "1.4.0"},
    "wasmtime-fleettest-v1-4-1": {"b": "1.4.1", "c": "1.4.1"},
    "wasmtime-fleettest-v1-4": {"a": "1.4.0", "b": "1.4.1", "c": "1.4.1"},
    "wasmtime-fleettest-v1": {"a": "1.4.0", "b": "1.4.1", "c": "1.4.1"},
    "wasmtime-fleettest": {"a": "1.4.0", "b": "1.4.1", "c": "1.4.1"},
}
#: Pods seen Running by the test plan: pod name -> (uid, node label, class); later steps check they live on.
SEEN: dict[str, tuple[str, str, str]] = {}
RESULTS: list[dict] = []


def base_pools(w: World) -> list[dict]:
    return [w.pool("a", [X]), w.pool("b", [X1]), w.pool("c", [X, X1])]


def deployment(name: str, runtime_class: str, replicas: int, image: str) -> dict:
    return spread_deployment(name, runtime_class, replicas, {"image": image, "imagePullPolicy": "Never"},
                             automountServiceAccountToken=False, terminationGracePeriodSeconds=1)


def running_pods(w: World, app: str, count: int, timeout: float = 240) -> list[dict]:
    def probe():
        pods = w.cluster.pods("default", f"app={app}")
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        ok = [p for p in live if p.get("status", {}).get("phase") == "Running"
              and all(cs.get("ready") for cs in p["status"].get("containerStatuses", []))]
        return ok if len(live) == count and len(ok) == count else None

    try:
        return w.cluster.wait_for(probe, f"{count} Running pods of {app}", timeout=timeout)
    except TimeoutError:
        pods = w.cluster.pods("default", f"app={app}")
        events = w.cluster.kubectl("get", "events", "-A", "--sort-by=.lastTimestamp", check=False).stdout
        tails = "\n".join(f"--- kubelet {n.label}\n{n.log_tail(lines=15)}" for n in w.nodes.nodes.values())
        raise AssertionError(f"pods of {app}: {[(p['metadata']['name'], p.get('status')) for p in pods]}\n"
                             f"{events[-3000:]}\n{tails}") from None


def test_up_installs_the_real_shim_versions(world: World):
    raw = world.config(base_pools(world))
    world.set_config(raw)
    result = world.stack.up(color="never")
    assert result.summary.result == "succeeded"
    _, plan = plan_from_config(raw)
    for label in "abc":
        node = world.node(label)
        assert world.labels(label) == plan.node(node.name).labels
        for binary in plan.node(node.name).binaries:
            assert (node.bin_dir / binary).is_file()
    assert world.labels("d") == {}
    # the binaries came from the https artifact server
    assert any(r.endswith("v1.4.0-linux-x86_64.tar.gz") for r in world.server.requests)


@pytest.mark.parametrize("runtime_class", list(PLAN))
def test_each_class_runs_only_where_it_should_on_the_expected_shim(world: World, runtime_class: str):
    expected = PLAN[runtime_class]
    app = f"plan-{runtime_class}"[:50]
    world.cluster.create(api_path("apps/v1", "deployments", "default"),
                         deployment(app, runtime_class, len(expected), world.nodes.hello_ref))
    pods = running_pods(world, app, len(expected))
    on = {world.nodes.by_name(p["spec"]["nodeName"]).label for p in pods}
    assert on == set(expected), f"{runtime_class} landed on {sorted(on)}, expected {sorted(expected)}"
    for pod in pods:
        label = world.nodes.by_name(pod["spec"]["nodeName"]).label
        version = expected[label]
        logs = world.cluster.kubectl("logs", pod["metadata"]["name"]).stdout
        assert HELLO_LINE in logs
        assert f"containerd-shim-fleettest {version} runs _start" in logs
        runtime, exe, printed = shim_that_ran(world, pod)
        assert runtime == f"io.containerd.fleettest-{dashed(version)}.v1"
        assert exe == str(world.node(label).bin_dir / f"containerd-shim-fleettest-{dashed(version)}-v1")
        assert version in printed
        SEEN[pod["metadata"]["name"]] = (pod["metadata"]["uid"], label, runtime_class)
        RESULTS.append({"class": runtime_class, "node": label, "runtime": runtime, "shim": version,
                        "log": HELLO_LINE})


def test_a_pod_for_the_next_major_is_rejected(world: World):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "plan-x-plus-1"},
           "spec": {"runtimeClassName": "wasmtime-fleettest-v2",
                    "containers": [{"name": "app", "image": world.nodes.hello_ref, "imagePullPolicy": "Never"}]}}
    with pytest.raises(ApiError) as err:
        world.cluster.create(api_path("v1", "pods", "default"), pod)
    assert err.value.status == 403
    assert 'RuntimeClass "wasmtime-fleettest-v2" not found' in str(err.value)


def test_the_containerd2_node_reports_its_handlers_in_runtime_handlers(world: World):
    _, plan = plan_from_config(world.applied)
    node = world.node("c")
    status = world.cluster.get(api_path("v1", "nodes", name=node.name))["status"]
    reported = {h["name"] for h in status.get("runtimeHandlers", [])}
    assert set(plan.node(node.name).handlers) <= reported


#: What the run saw happen to running pods when a node's containerd restarted (printed with the results).
RESTARTS: list[str] = []


def _still_running(world: World, keep, containerd_restarted: frozenset[str] = frozenset()) -> None:
    """Every pod SEEN whose (node, class) satisfies keep() is still the same pod and Running. On nodes whose
    containerd did not restart, its container never restarted either. On a node whose containerd restarted
    (a changed handler table), a container may have been restarted once by the kubelet: recorded in RESTARTS
    with its last state, for the report (measured: containerd 2.2 loses runwasi 1.0.1 tasks on restart)."""
    pods = {p["metadata"]["name"]: p for p in world.cluster.pods("default")}
    if containerd_restarted:
        # A container whose task containerd lost is restarted by the kubelet at its next sync: wait (bounded)
        # until every kept pod on those nodes is Running and ready again before judging.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not all(
                _ready(pods.get(name)) for name, (_, label, rc) in SEEN.items()
                if label in containerd_restarted and keep(label, rc)):
            time.sleep(2)
            pods = {p["metadata"]["name"]: p for p in world.cluster.pods("default")}
    for name, (uid, label, runtime_class) in SEEN.items():
        if not keep(label, runtime_class):
            continue
        assert name in pods, f"pod {name} ({runtime_class} on {label}) is gone"
        pod = pods[name]
        status = pod["status"]["containerStatuses"][0]
        detail = f"pod {name} ({runtime_class} on {label}): {status}"
        assert pod["metadata"]["uid"] == uid, detail
        assert pod["status"]["phase"] == "Running" and status.get("ready"), detail
        if label in containerd_restarted:
            if status["restartCount"]:
                last = status.get("lastState", {}).get("terminated", {})
                RESTARTS.append(f"{runtime_class} on {label}: container restarted {status['restartCount']}x "
                                f"(exit {last.get('exitCode')}, {last.get('reason')}) when containerd restarted")
        else:
            assert status["restartCount"] == 0, detail


def _ready(pod: dict | None) -> bool:
    if not pod or pod["status"].get("phase") != "Running":
        return False
    statuses = pod["status"].get("containerStatuses") or [{}]
    return bool(statuses[0].get("ready"))


def test_a_node_whose_containerd_did_not_load_the_table_is_not_labelled(world: World):
    """Node d's "restart" does nothing: the table is written but containerd never loads it. The kubelet's
    runtimeHandlers lack the new handlers, so the verify step fails that node and its labels never appear."""
    import pulumi.automation as auto

    broken = {**world.pool("d", [X2]), "restart": ":"}
    world.set_config(world.config([*base_pools(world), broken]))
    with pytest.raises(auto.CommandError) as err:
        world.stack.up(color="never")
    assert "fleettest-v1-4-2 not in node.status.runtimeHandlers" in str(err.value)
    assert world.labels("d") == {}


def test_bump_to_x_y_z_plus_2_on_a_new_pool(world: World):
    # The operator's fix for the node above: restart its containerd (the table on disk is already right, so
    # the next up has nothing to rewrite and restarts nothing), and give the pool its real restart command.
    world.node("d").start_containerd()
    raw = world.config([*base_pools(world), world.pool("d", [X2])])
    world.set_config(raw)
    preview = world.stack.preview(color="never")
    assert preview.change_summary.get("delete", 0) == 0 and preview.change_summary.get("replace", 0) == 0
    assert world.stack.up(color="never").summary.result == "succeeded"
    assert world.labels("d")["wasmtime-fleettest-v1-4-2"] == "true"
    app = "plan-bump-v1-4-2"
    world.cluster.create(api_path("apps/v1", "deployments", "default"),
                         deployment(app, "wasmtime-fleettest-v1-4-2", 1, world.nodes.hello_ref))
    (pod,) = running_pods(world, app, 1)
    assert world.nodes.by_name(pod["spec"]["nodeName"]).label == "d"
    runtime, _, printed = shim_that_ran(world, pod)
    assert runtime == "io.containerd.fleettest-v1-4-2.v1" and "1.4.2" in printed
    RESULTS.append({"class": "wasmtime-fleettest-v1-4-2", "node": "d", "runtime": runtime, "shim": "1.4.2",
                    "log": HELLO_LINE})
    _still_running(world, lambda label, rc: True)


def test_retire_then_remove_x_y_z(world: World):
    # retire 1.4.0: labels go, binaries and handlers stay; every running pod lives on
    world.set_config(world.config([world.pool("a", [], [X]), world.pool("b", [X1]), world.pool("c", [X1], [X]),
                                   world.pool("d", [X2])]))
    assert world.stack.up(color="never").summary.result == "succeeded"
    assert world.labels("a") == {}
    assert "wasmtime-fleettest-v1-4-0" not in world.labels("c")
    _still_running(world, lambda label, rc: True)
    # drain what 1.4.0 runs before removing it: the exact class's Deployment, and node a (nothing left there)
    world.cluster.kubectl("delete", "deployment", "plan-wasmtime-fleettest-v1-4-0", "--wait=true")
    # in use means kept: a node refuses to remove 1.4.0 while a container still runs on it, so wait for the pods
    world.cluster.wait_for(lambda: not world.cluster.pods("default", "app=plan-wasmtime-fleettest-v1-4-0") or None,
                           "the exact 1.4.0 pods to go", timeout=180)
    world.cluster.kubectl("cordon", world.node("a").name)
    world.cluster.kubectl("delete", "pods", "--field-selector", f"spec.nodeName={world.node('a').name}",
                          "--wait=true")
    world.set_config(world.config([world.pool("a", []), world.pool("b", [X1]), world.pool("c", [X1]),
                                   world.pool("d", [X2])]))
    assert world.stack.up(color="never").summary.result == "succeeded"
    assert not (world.node("a").bin_dir / "containerd-shim-fleettest-v1-4-0-v1").exists()
    assert not (world.node("c").bin_dir / "containerd-shim-fleettest-v1-4-0-v1").exists()
    # pods whose class still holds on b and c live on (c's table changed: its containerd restarted)
    _still_running(world, lambda label, rc: label != "a" and rc != "wasmtime-fleettest-v1-4-0",
                   containerd_restarted=frozenset({"c"}))


def test_a_containerd_1_6_restart_leaves_running_wasm_containers_alone(world: World):
    """The contrast to node c above: restarting Debian's containerd 1.6 under running runwasi containers."""
    world.node("b").start_containerd()
    # The kubelet relists containers every second; give it time to see anything that died. The last test
    # looks at the same pods again, minutes later.
    time.sleep(20)
    _still_running(world, lambda label, rc: label == "b")


def _check(world: World) -> subprocess.CompletedProcess[str]:
    """`python -m components check` on a stack file of the applied config, as a scheduled CI job runs it."""
    import yaml

    stack_file = world.work / "Pulumi.nodes.yaml"
    stack_file.write_text(yaml.safe_dump({"config": {f"wasm-shim-fleet:{k}": v for k, v in world.applied.items()}}))
    key = world.node("a").host.key_file
    return subprocess.run([sys.executable, "-m", "components", "check", str(stack_file), "--identity", str(key)],
                          capture_output=True, text=True, timeout=300, cwd=REPO)


def test_drift_check_is_clean_on_the_fleet_as_applied(world: World):
    proc = _check(world)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1] == "no drift"


def test_drift_check_finds_a_wiped_node_a_changed_binary_and_a_label_without_handler(world: World):
    b, c, d = world.node("b"), world.node("c"), world.node("d")
    # node b is "reimaged": labels, shim binaries and the handler table gone
    keys = [k + "-" for k in world.labels("b")]
    world.cluster.kubectl("label", "node", b.name, *keys)
    for f in b.bin_dir.glob("containerd-shim-fleettest-*"):
        f.unlink()
    text = b.config.read_text()
    b.config.write_text(text.split("\n# >>> wasm-shim-fleet managed handler table >>>", 1)[0] + "\n")
    # node c: someone replaced a shim binary (a running binary cannot be written in place: rename over it)
    target = c.bin_dir / "containerd-shim-fleettest-v1-4-1-v1"
    changed = c.bin_dir / ".changed"
    changed.write_bytes(target.read_bytes() + b"\0")
    changed.chmod(0o755)
    changed.rename(target)
    # node d: its exact 1.4.2 handler was edited out of the containerd config; the label promising it stays
    text = d.config.read_text()
    edited = re.sub(r"\n\[[^\n]*\.fleettest-v1-4-2\]\n\s*runtime_type = [^\n]*", "", text)
    assert edited != text
    d.config.write_text(edited)
    proc = _check(world)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    out = proc.stdout
    section = {}
    for line in out.splitlines():
        if not line.startswith(" ") and ":" in line:
            current = line.split(":", 1)[0]
            section[current] = [line]
        elif line.startswith(" "):
            section[current].append(line)
    assert "label-missing" in "\n".join(section[b.name]) and "binary-missing" in "\n".join(section[b.name])
    assert "config-missing" in "\n".join(section[b.name])
    assert "binary-sha256: containerd-shim-fleettest-v1-4-1-v1" in "\n".join(section[c.name])
    assert "handler-missing: handler fleettest-v1-4-2" in "\n".join(section[d.name])
    assert "label-without-handler: label wasmtime-fleettest-v1-4-2" in "\n".join(section[d.name])
    assert section[world.node("a").name] == [f"{world.node('a').name}: in sync"]
    print("\n" + out)


def test_print_the_result_table(world: World):
    """The result table of docs/testing.md, from what this run observed (printed with -s)."""
    print("\n| RuntimeClass | node | runtime containerd recorded | shim -v | kubectl logs |")
    print("| --- | --- | --- | --- | --- |")
    for r in RESULTS:
        print(f"| `{r['class']}` | {r['node']} | `{r['runtime']}` | {r['shim']} | `{r['log']}` |")
    print("\n".join(["", "Containerd restarts seen by running pods:", *(RESTARTS or ["none"])]))
    assert RESULTS
    _still_running(world, lambda label, rc: label == "b")  # minutes after b's containerd restart
