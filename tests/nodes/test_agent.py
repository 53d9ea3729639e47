"""Agent pools on real kubelets: nodes chosen by label, each converged by the pool's node agent (a DaemonSet pod of
the image deploy/build_image.py builds here from source), running a real Wasm shim in three versions.

Nodes (tests/harness/kubelets.py), named by IP; every node's containerd carries the node's settings
(WSF_NODE_ROOT, ...) in its environment, as for transport kubernetes, and the agents take them from there:
    a  127.0.0.2  Debian containerd 1.6   label wsf-test/pool=a   (pool a: X)
    b  127.0.0.3  Debian containerd 1.6   label wsf-test/pool=b   (pool b: X+1)
    c  127.0.0.4  containerd 2.2          label wsf-test/pool=c   (pool c: X and X+1)
    d  127.0.0.5  containerd 2.2          label wsf-test/pool=c
    e  127.0.0.6  containerd 2.2          joins later with label wsf-test/pool=c

The stack's kubeconfig is a user bound to exactly deploy/rbac.yaml. The agents reach the API server at its
loopback address (`kubernetes.agentApiServer`: this control plane has no kube-proxy for the Service address).
Tests run in order on one module-scoped fleet. Run: venv/bin/python -m pytest -m nodes tests/nodes/test_agent.py -s
"""

from __future__ import annotations

import json
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from components.core import agent, naming
from components.core.plan import plan_from_config
from tests.e2e.cluster import Cluster, api_path
from tests.e2e.conftest import PROJECT
from tests.e2e.engine import offline_stack
from tests.harness import images
from tests.harness.https import ArtifactServer
from tests.harness.images import HELLO_LINE
from tests.harness.kubelets import host_snapshot, leftovers, real_nodes
from tests.harness.nodes import RESTART, become_subreaper, reap_children
from tests.harness.workloads import spread_deployment

from .conftest import MEMBER, REPO, SHIM, VERSIONS, World, _program, dashed, shim_that_ran

pytestmark = pytest.mark.nodes

X, X1, X2 = "fleettest@1.4.0", "fleettest@1.4.1", "fleettest@1.4.2"
NS = "wasm-shim-fleet"  # the default agentNamespace, whose objects deploy/rbac.yaml names
POOL_LABEL = "wsf-test/pool"
CHECK_SECONDS = 10
#: What docs/operating.md (agent pools) and bench/RESULTS.md report from this tier (printed with -s).
FIGURES: dict[str, float] = {}


@dataclass(kw_only=True)
class Agents(World):
    """The nodes tier's world with agent pools: the node image, the stack's own kubeconfig."""

    image: str
    image_tar: Path
    originals: dict[str, bytes]
    kubeconfig: Path
    two: str  # containerd 2.2

    def catalog(self, wrong: frozenset[str] = frozenset()) -> dict:
        entries = []
        for v in VERSIONS:
            tarball = f"containerd-shim-{SHIM}-v{v}-linux-x86_64.tar.gz"
            sha = (self.dist / f"{tarball}.sha256").read_text().split()[0]
            entries.append({"version": v, "url": self.server.url(tarball), "sha256": sha[::-1] if v in wrong else sha,
                            "binary": MEMBER})
        return {SHIM: entries}

    def agent_pool(self, name: str, releases: list[str], flavor: str, selector: str | None = None, **extra) -> dict:
        return {"name": name, "containerd": flavor, "releases": releases,
                "nodeSelector": {POOL_LABEL: selector or name}, "restart": f"sh '{RESTART}'",
                "checkSeconds": CHECK_SECONDS, "rollout": {"timeoutSeconds": 300}, **extra}

    def pools(self, c_releases: list[str] | None = None, **c_extra) -> list[dict]:
        return [self.agent_pool("a", [X], "containerd-1"), self.agent_pool("b", [X1], "containerd-1"),
                self.agent_pool("c", c_releases or [X, X1], "containerd-2", **c_extra)]

    def agent_config(self, pools: list[dict], wrong: frozenset[str] = frozenset()) -> dict[str, Any]:
        return {"runtime": "wasmtime", "shims": self.catalog(wrong), "nodePools": pools,
                "kubernetes": {"kubeconfig": str(self.kubeconfig), "agentImage": self.image,
                               "agentApiServer": self.cluster.server.removeprefix("https://")}}

    def fleet_labels(self, label: str) -> dict[str, str]:
        node = self.cluster.get(api_path("v1", "nodes", name=self.node(label).name))
        return {k: v for k, v in node["metadata"].get("labels", {}).items()
                if k.startswith("wasmtime-") or k == naming.CLAIM_LABEL}

    def status(self, label: str, pool: str) -> dict | None:
        node = self.cluster.get(api_path("v1", "nodes", name=self.node(label).name))
        return agent.parse_status(node["metadata"].get("annotations", {}).get(naming.agent_status_annotation(pool)))

    def agent_pods(self, pool: str, mode: str = "install") -> dict[str, dict]:
        sel = ",".join(f"{k}={v}" for k, v in agent.selector_labels(pool, mode).items())
        return {self.nodes.by_name(p["spec"]["nodeName"]).label: p for p in self.cluster.pods(NS, sel)
                if p["spec"].get("nodeName")}

    def events(self, reason: str) -> list[dict]:
        return [e for e in self.cluster.get(api_path("v1", "events", NS))["items"] if e.get("reason") == reason]

    def restarts(self, label: str) -> int:
        log = self.node(label).root / "var/log/restarts"
        return len(log.read_text().splitlines()) if log.exists() else 0

    def label_node(self, label: str, labels: dict[str, str | None]) -> None:
        self.cluster.request("PATCH", api_path("v1", "nodes", name=self.node(label).name),
                             {"metadata": {"labels": labels}}, content_type="application/merge-patch+json")


@pytest.fixture(scope="module")
def agents(toolchain_bin: Path, kubelet_bin: str, shim_dist: Path, containerd_bins: tuple[str, str],
           engine_tmpdir: Path) -> Iterator[Agents]:
    one, two = containerd_bins
    become_subreaper()
    before = host_snapshot()
    work = Path(tempfile.mkdtemp(prefix="wsfn-", dir="/tmp"))  # short: unix socket paths <= 108 bytes
    try:
        image, image_tar = images.builder().build_image()
        with Cluster(toolchain_bin) as cluster, ArtifactServer(shim_dist, work / "https") as server:
            specs = [("a", one, "containerd-1"), ("b", one, "containerd-1"), ("c", two, "containerd-2"),
                     ("d", two, "containerd-2")]
            with real_nodes(cluster, kubelet_bin, specs, work, ssh=False,
                            extra_env={"CURL_CA_BUNDLE": str(server.ca_file)}) as nodes:
                originals = {}
                for label, node in nodes.nodes.items():
                    images.import_image("ctr", node.socket, image_tar)
                    originals[label] = node.config.read_bytes()
                kubeconfig = cluster.limited_kubeconfig(work)
                stack = offline_stack(toolchain_bin, work, PROJECT, "agents", _program)
                world = Agents(cluster=cluster, nodes=nodes, server=server, dist=shim_dist, stack=stack, work=work,
                               image=image, image_tar=image_tar, originals=originals, kubeconfig=kubeconfig, two=two)
                for label, pool in (("a", "a"), ("b", "b"), ("c", "c"), ("d", "c")):
                    world.label_node(label, {POOL_LABEL: pool})
                try:
                    yield world
                finally:
                    cluster.kubectl("delete", "deployments,pods", "--all", "-n", "default", "--wait=true",
                                    "--timeout=90s", check=False)
                    cluster.kubectl("delete", "namespace", NS, "--ignore-not-found", "--wait=true",
                                    "--timeout=90s", check=False)
    finally:
        reap_children()
        shutil.rmtree(work, ignore_errors=True)
        if FIGURES:
            print("\nagent pools on real nodes:", json.dumps(FIGURES, indent=1))
    left = [item for item in leftovers(before)
            if not item.startswith(("processes:", "mounts:")) or str(work) in item or "/netns/" in item]
    if left:
        pytest.fail("the real nodes left things behind:\n" + "\n".join(left), pytrace=False)


def wait_agent(agents: Agents, label: str, probe, what: str, timeout: float) -> None:
    """Wait for `probe`; on a timeout, say what the agents on node `label` logged and published."""
    try:
        agents.cluster.wait_for(probe, what, timeout=timeout)
    except TimeoutError as exc:
        name = agents.node(label).name
        pods = [p for p in agents.cluster.pods(NS) if p["spec"].get("nodeName") == name]
        said = [f"--- {p['metadata']['name']} {p.get('status', {}).get('phase')} "
                f"{[c.get('state') for c in p.get('status', {}).get('containerStatuses', [])]}\n"
                + agents.cluster.kubectl("logs", "-n", NS, p["metadata"]["name"], "--tail=30", check=False).stdout
                for p in pods]
        node = agents.cluster.get(api_path("v1", "nodes", name=name))
        raise AssertionError(f"{str(exc).splitlines()[0]}\nlabels {agents.fleet_labels(label)}\nannotations "
                             f"{node['metadata'].get('annotations', {})}\n" + "\n".join(said)) from None


def up(world: Agents, raw: dict[str, Any]) -> Any:
    world.set_config(raw)
    started = time.monotonic()
    result = world.stack.up(color="never")
    assert result.summary.result == "succeeded"
    return time.monotonic() - started


def running_pods(world: Agents, app: str, count: int, timeout: float = 240) -> list[dict]:
    def probe():
        pods = [p for p in world.cluster.pods("default", f"app={app}") if not p["metadata"].get("deletionTimestamp")]
        ok = [p for p in pods if p.get("status", {}).get("phase") == "Running"
              and all(cs.get("ready") for cs in p["status"].get("containerStatuses", []))]
        return ok if len(pods) == count and len(ok) == count else None

    return world.cluster.wait_for(probe, f"{count} Running pods of {app}", timeout=timeout)


def run_class(world: Agents, runtime_class: str, expected: set[str], **pod_spec: Any) -> list[dict]:
    app = f"ag-{runtime_class}"[:50]
    world.cluster.create(api_path("apps/v1", "deployments", "default"),
                         spread_deployment(app, runtime_class, len(expected),
                                           {"image": world.nodes.hello_ref, "imagePullPolicy": "Never"},
                                           automountServiceAccountToken=False, terminationGracePeriodSeconds=1,
                                           **pod_spec))
    pods = running_pods(world, app, len(expected))
    assert {world.nodes.by_name(p["spec"]["nodeName"]).label for p in pods} == expected
    for pod in pods:
        assert HELLO_LINE in world.cluster.kubectl("logs", pod["metadata"]["name"]).stdout
    return pods


def planned(raw: dict[str, Any]):
    _, plan = plan_from_config(raw)
    assert plan.ok, plan.errors
    return plan


def test_the_proposals_test_plan_with_agent_pools(agents: Agents):
    raw = agents.agent_config(agents.pools())
    FIGURES["up_seconds_3_pools_4_nodes"] = round(up(agents, raw), 1)
    plan = planned(raw)
    for label, pool in (("a", "a"), ("b", "b"), ("c", "c"), ("d", "c")):
        want = {**plan.agent_pool(pool).labels, naming.CLAIM_LABEL: pool}
        assert agents.fleet_labels(label) == want, label
        status = agents.status(label, pool)
        assert status is not None and status["state"] == "converged", status
        for binary in plan.agent_pool(pool).node.binaries:
            assert (agents.node(label).bin_dir / binary).is_file()
    # the kubelets of the containerd 2.2 nodes report every handler of their table
    for label in "cd":
        node = agents.cluster.get(api_path("v1", "nodes", name=agents.node(label).name))
        reported = {h["name"] for h in node["status"].get("runtimeHandlers", [])}
        assert set(plan.agent_pool("c").node.handlers) <= reported
    assert len(agents.events("Converged")) >= 4
    # exact X on a, c, d; exact X+1 on b, c, d; the series and "any" classes everywhere, each pod on the shim
    # version its class promises on that node (containerd's record of the runtime, the binary its task runs)
    newest = {"a": "1.4.0", "b": "1.4.1", "c": "1.4.1", "d": "1.4.1"}
    plan_runs = {
        "wasmtime-fleettest-v1-4-0": {"a": "1.4.0", "c": "1.4.0", "d": "1.4.0"},
        "wasmtime-fleettest-v1-4-1": {"b": "1.4.1", "c": "1.4.1", "d": "1.4.1"},
        "wasmtime-fleettest-v1-4": newest, "wasmtime-fleettest-v1": newest, "wasmtime-fleettest": newest,
    }
    for runtime_class, expected in plan_runs.items():
        for pod in run_class(agents, runtime_class, set(expected)):
            label = agents.nodes.by_name(pod["spec"]["nodeName"]).label
            version = expected[label]
            assert f"containerd-shim-fleettest {version} runs _start" in \
                agents.cluster.kubectl("logs", pod["metadata"]["name"]).stdout
            runtime, exe, printed = shim_that_ran(agents, pod)
            assert runtime == f"io.containerd.fleettest-{dashed(version)}.v1", (runtime_class, label)
            assert exe == str(agents.node(label).bin_dir / f"containerd-shim-fleettest-{dashed(version)}-v1")
            assert version in printed


def test_check_reads_the_agent_pools_from_what_the_agents_publish(agents: Agents):
    proc = _check(agents)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1] == "no drift"
    assert "pool c (agent): selects 2 node(s) with wsf-test/pool=c" in proc.stderr


def _check(world: Agents) -> subprocess.CompletedProcess[str]:
    import yaml

    stack_file = world.work / "Pulumi.agents.yaml"
    stack_file.write_text(yaml.safe_dump({"config": {f"wasm-shim-fleet:{k}": v for k, v in world.applied.items()}}))
    return subprocess.run([sys.executable, "-m", "components", "check", str(stack_file)], capture_output=True,
                          text=True, timeout=300, cwd=REPO)


def test_a_node_that_joins_gets_its_shims_and_labels_without_an_up(agents: Agents):
    started = time.monotonic()
    e = agents.nodes.join("e", agents.two, "containerd-2", {POOL_LABEL: "c"}, images=[agents.image_tar])
    ready = time.monotonic()
    agents.originals["e"] = e.config.read_bytes()
    plan = planned(agents.applied)
    want = {**plan.agent_pool("c").labels, naming.CLAIM_LABEL: "c"}
    wait_agent(agents, "e", lambda: agents.fleet_labels("e") == want, "node e labelled by its agent", 300)
    FIGURES["new_node_ready_seconds"] = round(ready - started, 1)
    FIGURES["new_node_ready_to_labels_seconds"] = round(time.monotonic() - ready, 1)
    # a Wasm pod of the exact X class runs there
    app = "ag-joined-e"
    agents.cluster.create(api_path("apps/v1", "deployments", "default"),
                          spread_deployment(app, "wasmtime-fleettest-v1-4-0", 1,
                                            {"image": agents.nodes.hello_ref, "imagePullPolicy": "Never"},
                                            automountServiceAccountToken=False, terminationGracePeriodSeconds=1,
                                            nodeSelector={"kubernetes.io/hostname": e.name}))
    (pod,) = running_pods(agents, app, 1)
    assert pod["spec"]["nodeName"] == e.name
    assert HELLO_LINE in agents.cluster.kubectl("logs", pod["metadata"]["name"]).stdout
    agents.cluster.delete(api_path("apps/v1", "deployments", "default", app))


def test_a_wiped_node_is_repaired_by_its_agent_within_the_check_interval(agents: Agents):
    a = agents.node("a")
    plan = planned(agents.applied)
    binary = a.bin_dir / next(iter(plan.agent_pool("a").node.binaries))
    repaired_before = len(agents.events("Repaired"))
    # the handler table and the binary gone, as on a reimaged node whose Node object kept its labels (the config
    # as the node image ships it)
    a.config.write_bytes(agents.originals["a"])
    binary.unlink()
    wiped = time.monotonic()
    wait_agent(agents, "a", lambda: binary.is_file() and "fleettest-v1-4-0" in a.config.read_text()
               and len(agents.events("Repaired")) > repaired_before, "node a repaired by its agent",
               CHECK_SECONDS * 6 + 60)
    FIGURES["wiped_node_repaired_seconds"] = round(time.monotonic() - wiped, 1)
    event = agents.events("Repaired")[-1]
    assert "127.0.0.2 had drifted" in event["message"] and "installed" in event["message"]
    assert agents.fleet_labels("a") == {**plan.agent_pool("a").labels, naming.CLAIM_LABEL: "a"}


def _token_of_agent(agents: Agents, label: str, pool: str) -> str:
    pod = agents.agent_pods(pool)[label]
    pods_dir = agents.node(label).root / "var/lib/kubelet/pods" / pod["metadata"]["uid"] / "volumes"
    (token,) = list(pods_dir.glob("kubernetes.io~projected/*/token"))
    return token.read_text()


def _patch_as(agents: Agents, token: str, node: str, labels: dict[str, str]) -> tuple[int, str]:
    body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node, "labels": labels}}
    url = f"{agents.cluster.server}/api/v1/nodes/{node}?fieldManager=test-intruder&force=true"
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="PATCH")
    req.add_header("Content-Type", "application/apply-patch+yaml")
    req.add_header("Authorization", f"Bearer {token}")
    ctx = ssl.create_default_context(cafile=str(agents.cluster.pki / "ca.crt"))
    try:
        with urllib.request.urlopen(req, timeout=30, context=ctx) as resp:
            return resp.status, ""
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


def test_an_agents_own_token_cannot_label_another_node_nor_set_other_labels(agents: Agents):
    token = _token_of_agent(agents, "a", "a")
    other = _patch_as(agents, token, agents.node("b").name, {"wasmtime-fleettest-v1-4-0": "true"})
    assert other[0] == 403 and "may change only the Node its pod runs on" in other[1], other
    outside = _patch_as(agents, token, agents.node("a").name, {"team": "intruder"})
    assert outside[0] == 403 and "only the fleet's labels" in outside[1], outside
    assert agents.fleet_labels("b")["wasmtime-fleettest-v1-4-1"] == "true"


def test_a_bump_with_a_wrong_sha256_stops_at_the_first_node_and_the_fixed_bump_completes(agents: Agents):
    import pulumi.automation as auto

    before = agents.agent_pods("c")
    assert set(before) == {"c", "d", "e"}
    restarts = {label: agents.restarts(label) for label in "cde"}
    labels = {label: agents.fleet_labels(label) for label in "cde"}
    agents.set_config(agents.agent_config(agents.pools([X, X1, X2]), wrong=frozenset({"1.4.2"})))
    with pytest.raises(auto.CommandError) as err:
        agents.stack.up(color="never")
    text = str(err.value)
    assert "the rollout stopped at node 127.0.0." in text and "sha256 mismatch" in text, text[-3000:]
    print("\n" + next(line.strip() for line in text.splitlines() if "the rollout stopped" in line))
    now = agents.agent_pods("c")
    replaced = [label for label in "cde" if now[label]["metadata"]["uid"] != before[label]["metadata"]["uid"]]
    assert len(replaced) == 1, replaced  # maxUnavailable 1: the rollout stopped at the first node
    (first,) = replaced
    assert f"node {agents.node(first).name}:" in text
    for label in "cde":
        # every node keeps its labels (the failing one too: its old releases are still in place) and its table
        assert agents.fleet_labels(label) == labels[label], label
        assert agents.restarts(label) == restarts[label], label
        if label != first:
            assert now[label]["metadata"]["uid"] == before[label]["metadata"]["uid"]
    # the fixed bump rolls every node, one at a time
    raw = agents.agent_config(agents.pools([X, X1, X2]))
    FIGURES["bump_seconds_3_nodes_max_unavailable_1"] = round(up(agents, raw), 1)
    plan = planned(raw)
    for label in "cde":
        assert agents.fleet_labels(label) == {**plan.agent_pool("c").labels, naming.CLAIM_LABEL: "c"}
        assert agents.restarts(label) == restarts[label] + 1, label  # one containerd restart per node
    run_class(agents, "wasmtime-fleettest-v1-4-2", {"c", "d", "e"})


def test_a_node_selected_by_two_pools_is_refused_there_and_nothing_changes(agents: Agents):
    import pulumi.automation as auto

    b = agents.node("b")
    labels, config = agents.fleet_labels("b"), b.config.read_bytes()
    agents.label_node("b", {"wsf-test/extra": "yes"})
    pools = [*agents.pools([X, X1, X2]), agents.agent_pool("x", [X2], "containerd-1", selector="unused",
                                                           nodeSelector={"wsf-test/extra": "yes"})]
    agents.set_config(agents.agent_config(pools))
    with pytest.raises(auto.CommandError) as err:
        agents.stack.up(color="never")
    assert "node 127.0.0.3 is selected by pools x and b" in str(err.value), str(err.value)[-3000:]
    assert agents.fleet_labels("b") == labels and b.config.read_bytes() == config
    status = agents.status("b", "x")
    assert status is not None and status["state"] == "refused"
    proc = _check(agents)
    assert proc.returncode == 2 and "agent-refused" in proc.stdout, proc.stdout + proc.stderr
    # take pool x away again: its uninstall runs on node b, pool b's, and leaves it as it is (only pool x's own
    # status annotation goes)
    up(agents, agents.agent_config(agents.pools([X, X1, X2])))
    assert agents.fleet_labels("b") == labels and b.config.read_bytes() == config
    assert agents.status("b", "x") is None
    agents.label_node("b", {"wsf-test/extra": None})


def test_a_node_that_leaves_the_pool_while_a_pod_runs_on_it_is_refused_and_reported(agents: Agents):
    """In use means kept: node e leaves pool c while a Wasm pod of the pool runs there. Its agent refuses to
    uninstall (the pod would lose its handler and binary), says so in the node's status and an Event, and changes
    nothing; back in the pool, it converges again."""
    e = agents.node("e")
    app = "ag-leave-e"
    agents.cluster.create(api_path("apps/v1", "deployments", "default"),
                          spread_deployment(app, "wasmtime-fleettest-v1-4-0", 1,
                                            {"image": agents.nodes.hello_ref, "imagePullPolicy": "Never"},
                                            automountServiceAccountToken=False, terminationGracePeriodSeconds=1,
                                            nodeSelector={"kubernetes.io/hostname": e.name}))
    (pod,) = running_pods(agents, app, 1)
    config, binaries = e.config.read_bytes(), sorted(p.name for p in e.bin_dir.glob("containerd-shim-*"))
    try:
        agents.label_node("e", {POOL_LABEL: None})

        def refused():
            status = agents.status("e", "c") or {}
            return status if status.get("state") == "failed" else None

        status = agents.cluster.wait_for(refused, "node e's agent to refuse the uninstall", timeout=180)
        reason = status["reason"]
        assert reason.startswith("refusing to remove the handler table on this node: "), status
        named = re.search(r"\(pods ([^)]*)\)", reason)
        assert named and f"default/{pod['metadata']['name']}" in named.group(1).split(", "), status
        assert reason.endswith("drain the node or delete those pods, then re-run; nothing was changed")
        assert any(pod["metadata"]["name"] in ev["message"] for ev in agents.events("UninstallFailed"))
        assert e.config.read_bytes() == config
        assert sorted(p.name for p in e.bin_dir.glob("containerd-shim-*")) == binaries
        assert running_pods(agents, app, 1)[0]["metadata"]["uid"] == pod["metadata"]["uid"]
        # back in the pool: its agent converges it again
        agents.label_node("e", {POOL_LABEL: "c"})
        agents.cluster.wait_for(lambda: (agents.status("e", "c") or {}).get("state") == "converged" or None,
                                "node e converged again", timeout=180)
    finally:
        # drained (as the refusal says), it can leave: the next test takes it out of the pool
        agents.cluster.kubectl("cordon", e.name)
        agents.cluster.delete(api_path("apps/v1", "deployments", "default", app))
        agents.cluster.kubectl("delete", "pods", "-n", "default", "--field-selector", f"spec.nodeName={e.name}",
                               "--wait=true")
        agents.cluster.wait_for(lambda: not [p for p in agents.cluster.pods("default")
                                             if p["spec"].get("nodeName") == e.name] or None,
                                "the pods of node e to go", timeout=180)
        agents.label_node("e", {POOL_LABEL: "c"})


def test_a_node_that_leaves_the_pool_is_uninstalled_by_its_agent(agents: Agents):
    e = agents.node("e")
    agents.label_node("e", {POOL_LABEL: None})
    wait_agent(agents, "e", lambda: agents.fleet_labels("e") == {} and e.config.read_bytes() == agents.originals["e"]
               and not list(e.bin_dir.glob("containerd-shim-*")), "node e uninstalled", 300)
    agents.cluster.wait_for(lambda: "e" not in agents.agent_pods("c"), "the agent pod of node e to end", timeout=120)
    uninstalled = [ev for ev in agents.events("Uninstalled") if e.name in ev["message"]]
    assert uninstalled, agents.events("Uninstalled")


def test_destroy_leaves_every_config_byte_for_byte_and_nothing_of_ours(agents: Agents):
    agents.cluster.kubectl("delete", "deployments", "--all", "-n", "default", "--wait=true", "--timeout=120s")
    agents.cluster.wait_for(lambda: not agents.cluster.pods("default"), "the workloads' pods to go", timeout=120)
    result = agents.stack.destroy(color="never")
    assert result.summary.result == "succeeded"
    for label, node in agents.nodes.nodes.items():
        assert node.config.read_bytes() == agents.originals[label], label
        assert not list(node.bin_dir.glob("containerd-shim-*")), label
        assert agents.fleet_labels(label) == {}, label
        assert not (node.root / "var/lib/wasm-shim-fleet/kit").exists(), label
    # the agents' namespace is the cluster administrator's (deploy/rbac.yaml): it stays, with nothing of ours
    assert not agents.cluster.pods(NS)
    assert not [d for d in agents.cluster.get(api_path("apps/v1", "daemonsets", NS))["items"]]
