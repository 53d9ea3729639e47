"""`transport: kubernetes` on real kubelets: every node command runs on its node through the cluster, in a
privileged runner pod (components/incluster_run.py), with no sshd on those nodes; one pool over SSH beside
them in the same stack.

Nodes (tests/harness/kubelets.py), named by IP:
    a  127.0.0.2  Debian containerd 1.6  transport kubernetes
    b  127.0.0.3  Debian containerd 1.6  transport ssh (the only node with an sshd)
    c  127.0.0.4  containerd 2.2         transport kubernetes
    d  127.0.0.5  containerd 2.2         transport kubernetes (from the bump on)

The runner image is built here from deploy/runner/wsf-enter.c and imported into every node's containerd under
its digest (nothing is pulled). Each node's container runtime carries the node's settings (WSF_NODE_ROOT,
CONTAINERD_BIN, PATH, CURL_CA_BUNDLE) in its environment, as an sshd's per-key `environment=` does for the
SSH node: the runner pod takes them from the runtime that started it, never from the pod or the stack.

Tests run in order on one module-scoped fleet. Run: venv/bin/python -m pytest -m nodes tests/nodes/test_incluster.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from components.core import incluster
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

from .conftest import MEMBER, SHIM, VERSIONS, World, _program

pytestmark = pytest.mark.nodes

X, X1, X2 = "fleettest@1.4.0", "fleettest@1.4.1", "fleettest@1.4.2"
NS = incluster.DEFAULT_NAMESPACE
STATE = "var/lib/wasm-shim-fleet"


@dataclass(kw_only=True)
class Fleet(World):
    """The nodes tier's world (tests/nodes/conftest.py), with the runner image and the stack's own kubeconfig."""

    runner: str
    #: each node's containerd config as the node had it before the program ran (destroy must give it back)
    originals: dict[str, bytes]
    #: the stack's kubeconfig: the user `wasm-shim-fleet`, with exactly the rights of deploy/rbac.yaml
    kubeconfig: Path

    def catalog(self, wrong: frozenset[str] = frozenset()) -> dict:
        entries = []
        for v in VERSIONS:
            tarball = f"containerd-shim-{SHIM}-v{v}-linux-x86_64.tar.gz"
            sha = (self.dist / f"{tarball}.sha256").read_text().split()[0]
            if v in wrong:
                sha = sha[::-1]  # 64 hex digits, not the artifact's
            entries.append({"version": v, "url": self.server.url(tarball), "sha256": sha, "binary": MEMBER})
        return {SHIM: entries}

    def k8s_pool(self, label: str, releases: list[str], retiring: list[str] | None = None,
                 restart: str | None = None) -> dict:
        node = self.node(label)
        return {"name": f"pool-{label}", "containerd": node.flavor, "transport": "kubernetes",
                "releases": releases, "retiring": retiring or [], "restart": restart or f"sh '{RESTART}'",
                "nodes": [{"name": node.name}]}

    def ssh_pool(self, label: str, releases: list[str]) -> dict:
        node = self.node(label)
        assert node.host is not None
        return {"name": f"pool-{label}", "containerd": node.flavor, "releases": releases,
                "restart": f"sh '{RESTART}'",
                "nodes": [{"name": node.name, "host": "127.0.0.1", "port": node.host.port,
                           "hostKey": node.host.host_key}]}

    def config(self, pools: list[dict], wrong: frozenset[str] = frozenset()) -> dict[str, Any]:
        return {"runtime": "wasmtime", "shims": self.catalog(wrong), "nodePools": pools,
                "ssh": {"user": "root", "port": 22, "privateKey": self.node("b").host.key_file.read_text()},
                "kubernetes": {"kubeconfig": str(self.kubeconfig), "runnerImage": self.runner}}

    def runner_pods(self) -> list[dict]:
        """Every pod the runner made, in any namespace."""
        sel = f"{incluster.MANAGED_BY[0]}={incluster.MANAGED_BY[1]}"
        return self.cluster.get(f"/api/v1/pods?labelSelector={sel}")["items"]

    def runs_left(self) -> list[str]:
        return [str(p) for n in self.nodes.nodes.values() for p in (n.root / STATE / "runs").glob("*")]

    def restarts(self, label: str) -> int:
        log = self.node(label).root / "var/log/restarts"
        return len(log.read_text().splitlines()) if log.exists() else 0


@pytest.fixture(scope="module")
def fleet(toolchain_bin: Path, kubelet_bin: str, shim_dist: Path, containerd_bins: tuple[str, str],
          engine_tmpdir: Path) -> Iterator[Fleet]:
    one, two = containerd_bins
    become_subreaper()
    before = host_snapshot()
    work = Path(tempfile.mkdtemp(prefix="wsfn-", dir="/tmp"))  # short: unix socket paths <= 108 bytes
    try:
        with Cluster(toolchain_bin) as cluster, ArtifactServer(shim_dist, work / "https") as server:
            specs = [("a", one, "containerd-1"), ("b", one, "containerd-1"), ("c", two, "containerd-2"),
                     ("d", two, "containerd-2")]
            with real_nodes(cluster, kubelet_bin, specs, work, ssh={"b"},
                            extra_env={"CURL_CA_BUNDLE": str(server.ca_file)}) as nodes:
                runner, tarball = images.builder().build_image()  # the node image: /wsf-enter and /wsf-agent
                originals = {}
                for label, node in nodes.nodes.items():
                    images.import_image("ctr", node.socket, tarball)
                    originals[label] = node.config.read_bytes()
                assert [n.label for n in nodes.nodes.values() if n.host is not None] == ["b"]
                kubeconfig = cluster.limited_kubeconfig(work)
                stack = offline_stack(toolchain_bin, work, PROJECT, "incluster", _program)
                f = Fleet(cluster=cluster, nodes=nodes, server=server, dist=shim_dist, stack=stack, work=work,
                          runner=runner, originals=originals, kubeconfig=kubeconfig)
                try:
                    yield f
                finally:
                    cluster.kubectl("delete", "namespace", NS, "--ignore-not-found", "--wait=true",
                                    "--timeout=90s", check=False)
    finally:
        reap_children()
        shutil.rmtree(work, ignore_errors=True)
    left = [item for item in leftovers(before)
            if not item.startswith(("processes:", "mounts:")) or str(work) in item or "/netns/" in item]
    if left:
        pytest.fail("the real nodes left things behind:\n" + "\n".join(left), pytrace=False)


def running_pods(f: Fleet, app: str, count: int, timeout: float = 240) -> list[dict]:
    def probe():
        pods = [p for p in f.cluster.pods("default", f"app={app}") if not p["metadata"].get("deletionTimestamp")]
        ok = [p for p in pods if p.get("status", {}).get("phase") == "Running"
              and all(cs.get("ready") for cs in p["status"].get("containerStatuses", []))]
        return ok if len(pods) == count and len(ok) == count else None

    return f.cluster.wait_for(probe, f"{count} Running pods of {app}", timeout=timeout)


def run_class(f: Fleet, runtime_class: str, expected: set[str]) -> None:
    app = f"ic-{runtime_class}"[:50]
    f.cluster.create(api_path("apps/v1", "deployments", "default"),
                     spread_deployment(app, runtime_class, len(expected),
                                       {"image": f.nodes.hello_ref, "imagePullPolicy": "Never"},
                                       automountServiceAccountToken=False, terminationGracePeriodSeconds=1))
    pods = running_pods(f, app, len(expected))
    assert {f.nodes.by_name(p["spec"]["nodeName"]).label for p in pods} == expected
    for pod in pods:
        assert HELLO_LINE in f.cluster.kubectl("logs", pod["metadata"]["name"]).stdout


def assert_nothing_left(f: Fleet) -> None:
    assert f.runner_pods() == []
    assert f.runs_left() == []
    for tmp in {Path("/tmp"), Path(os.environ.get("TMPDIR") or "/tmp")}:  # the runner's private temporary folders
        assert not list(tmp.glob("wsf-run-*")), tmp


def test_install_through_the_cluster_beside_an_ssh_pool(fleet: Fleet):
    raw = fleet.config([fleet.k8s_pool("a", [X]), fleet.ssh_pool("b", [X1]), fleet.k8s_pool("c", [X, X1])])
    fleet.set_config(raw)
    c_pid, c_restarts = fleet.node("c").containerd_pid(), fleet.restarts("c")
    result = fleet.stack.up(color="never")
    assert result.summary.result == "succeeded"
    _, plan = plan_from_config(raw)
    for label in "abc":
        node = fleet.node(label)
        assert fleet.labels(label) == plan.node(node.name).labels
        for binary in plan.node(node.name).binaries:
            assert (node.bin_dir / binary).is_file()
    # Node c's handler table restarted c's containerd from a runner pod running on that very containerd, and
    # its result came back: the command succeeded and c is labelled.
    assert fleet.restarts("c") == c_restarts + 1 and fleet.node("c").containerd_pid() != c_pid
    namespace = fleet.cluster.get(api_path("v1", "namespaces", name=NS))
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert_nothing_left(fleet)


def test_the_stacks_identity_cannot_do_what_it_does_not_need(fleet: Fleet):
    """The user the stack ran as (exactly deploy/rbac.yaml), refused by the API server: RBAC and the stack's
    admission policy."""
    def as_stack(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([fleet.cluster.binary("kubectl"), f"--kubeconfig={fleet.kubeconfig}", *args],
                              input=stdin, capture_output=True, text=True, timeout=60)

    pod = json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe"},
                      "spec": {"containers": [{"name": "c", "image": fleet.runner, "command": ["/wsf-enter"]}],
                               "automountServiceAccountToken": False}})
    elsewhere = as_stack("create", "-n", "default", "-f", "-", stdin=pod)
    assert elsewhere.returncode != 0 and "forbidden" in elsewhere.stderr, elsewhere.stderr
    secret = as_stack("get", "secrets", "-n", "kube-system")
    assert secret.returncode != 0 and "forbidden" in secret.stderr, secret.stderr
    label = as_stack("label", "node", fleet.node("a").name, "team=intruder")
    assert label.returncode != 0 and "only the fleet's labels" in label.stderr, label.stderr
    assert "team" not in fleet.cluster.get(api_path("v1", "nodes", name=fleet.node("a").name))["metadata"]["labels"]


def test_wasm_pods_run_on_the_right_nodes(fleet: Fleet):
    run_class(fleet, "wasmtime-fleettest-v1-4-0", {"a", "c"})
    run_class(fleet, "wasmtime-fleettest-v1-4-1", {"b", "c"})


def test_a_wrong_sha256_fails_that_node_only(fleet: Fleet):
    import pulumi.automation as auto

    d = fleet.node("d")
    raw = fleet.config([fleet.k8s_pool("a", [X, X1]), fleet.ssh_pool("b", [X1]), fleet.k8s_pool("c", [X, X1]),
                        fleet.k8s_pool("d", [X2])], wrong=frozenset({"1.4.2"}))
    fleet.set_config(raw)
    with pytest.raises(auto.CommandError) as err:
        fleet.stack.up(color="never", continue_on_error=True)
    assert "sha256" in str(err.value)
    # node a converged beside it; node d got nothing: no binary, no label, its config untouched
    assert fleet.labels("a")["wasmtime-fleettest-v1-4-1"] == "true"
    assert fleet.labels("d") == {}
    assert not list(d.bin_dir.glob("containerd-shim-fleettest-*"))
    assert d.config.read_bytes() == fleet.originals["d"]
    assert_nothing_left(fleet)


def test_a_bump_whose_runner_pod_is_killed_mid_command_still_gets_its_one_result(fleet: Fleet):
    """Node d's table restarts its containerd after a pause (its `restart` starts with a sleep); meanwhile the
    test force-deletes the runner pod running that command. The command goes on, detached on the host; the
    runner attaches a new pod to the same run and reports its result. The script ran once."""
    d = fleet.node("d")
    restarts = fleet.restarts("d")
    killed: list[str] = []
    stop = threading.Event()

    def killer():
        while not stop.is_set() and not killed:
            for pod in fleet.runner_pods():
                ann = pod["metadata"].get("annotations", {})
                if (ann.get(incluster.NODE_ANNOTATION) == d.name
                        and ann.get(incluster.RESOURCE_ANNOTATION, "").endswith("-handlers")
                        and pod.get("status", {}).get("phase") == "Running"):
                    time.sleep(2)  # the command is running on the host by now (its restart sleeps 8 s)
                    fleet.cluster.kubectl("delete", "pod", "-n", NS, pod["metadata"]["name"], "--grace-period=0",
                                          "--force", "--wait=false", check=False)
                    killed.append(pod["metadata"]["name"])
                    break
            time.sleep(0.3)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        raw = fleet.config([fleet.k8s_pool("a", [X, X1]), fleet.ssh_pool("b", [X1]), fleet.k8s_pool("c", [X, X1]),
                            fleet.k8s_pool("d", [X2], restart=f"sleep 8; sh '{RESTART}'")])
        fleet.set_config(raw)
        preview = fleet.stack.preview(color="never")
        assert preview.change_summary.get("delete", 0) == 0 and preview.change_summary.get("replace", 0) == 0
        assert fleet.stack.up(color="never").summary.result == "succeeded"
    finally:
        stop.set()
        thread.join(30)
    assert killed, "the test never saw node d's handlers command running in a pod"
    assert fleet.restarts("d") == restarts + 1  # the script ran exactly once
    assert fleet.labels("d")["wasmtime-fleettest-v1-4-2"] == "true"
    state = fleet.stack.export_stack().deployment["resources"]
    handlers = next(r for r in state if r["urn"].endswith(f"pool-d-{d.name}-handlers"))
    assert "attaching again" in handlers["outputs"]["stderr"]
    print(f"\nkilled runner pod {killed[0]}; the command's stderr: {handlers['outputs']['stderr']!r}")
    assert handlers["outputs"]["stdout"].splitlines()[-1] == "changed"
    run_class(fleet, "wasmtime-fleettest-v1-4-2", {"d"})
    assert_nothing_left(fleet)


def test_retire_then_remove_runs_the_deletes_on_the_nodes(fleet: Fleet):
    pools = lambda a, c: [fleet.k8s_pool("a", *a), fleet.ssh_pool("b", [X1]), fleet.k8s_pool("c", *c),  # noqa: E731
                          fleet.k8s_pool("d", [X2])]
    fleet.set_config(fleet.config(pools(([X1], [X]), ([X1], [X]))))
    assert fleet.stack.up(color="never").summary.result == "succeeded"
    assert "wasmtime-fleettest-v1-4-0" not in fleet.labels("a")
    assert "wasmtime-fleettest-v1-4-0" not in fleet.labels("c")
    assert (fleet.node("a").bin_dir / "containerd-shim-fleettest-v1-4-0-v1").exists()
    fleet.cluster.kubectl("delete", "deployment", "ic-wasmtime-fleettest-v1-4-0", "--wait=true")
    # in use means kept: the node refuses the removal while a container still runs on it
    fleet.cluster.wait_for(lambda: not fleet.cluster.pods("default", "app=ic-wasmtime-fleettest-v1-4-0") or None,
                           "the pods of ic-wasmtime-fleettest-v1-4-0 to go", timeout=180)
    fleet.set_config(fleet.config(pools(([X1],), ([X1],))))
    assert fleet.stack.up(color="never").summary.result == "succeeded"
    for label in "ac":
        assert not (fleet.node(label).bin_dir / "containerd-shim-fleettest-v1-4-0-v1").exists()
        assert b"fleettest-v1-4-0" not in fleet.node(label).config.read_bytes()
    assert_nothing_left(fleet)


def test_removing_a_pool_takes_everything_back_on_its_node(fleet: Fleet):
    fleet.cluster.kubectl("delete", "deployment", "ic-wasmtime-fleettest-v1-4-2", "--wait=true")
    # in use means kept: the node refuses the removal while a container still runs on it
    fleet.cluster.wait_for(lambda: not fleet.cluster.pods("default", "app=ic-wasmtime-fleettest-v1-4-2") or None,
                           "the pods of ic-wasmtime-fleettest-v1-4-2 to go", timeout=180)
    fleet.set_config(fleet.config([fleet.k8s_pool("a", [X1]), fleet.ssh_pool("b", [X1]),
                                   fleet.k8s_pool("c", [X1])]))
    assert fleet.stack.up(color="never").summary.result == "succeeded"
    d = fleet.node("d")
    assert fleet.labels("d") == {}
    assert d.config.read_bytes() == fleet.originals["d"]
    assert not list(d.bin_dir.glob("containerd-shim-fleettest-*"))
    assert not (d.root / STATE / "kit").exists()
    assert_nothing_left(fleet)


def test_destroy_restores_every_config_byte_for_byte_and_leaves_nothing(fleet: Fleet):
    fleet.cluster.kubectl("delete", "deployments", "--all", "--wait=true")
    # The workloads go first, as an operator drains before uninstalling: a containerd 1.6 restarted while a
    # runwasi 1.0.1 container is still shutting down can hang at start (its `shim delete` of the dead shim
    # blocks opening a FIFO; seen here), which is the shim's problem, not the program's.
    deadline = time.monotonic() + 180
    while fleet.cluster.kubectl("get", "pods", "-o", "name").stdout.strip():
        assert time.monotonic() < deadline, "the deployments' pods did not go away within 180 s"
        time.sleep(1)
    assert fleet.stack.destroy(color="never").summary.result == "succeeded"
    for label, node in fleet.nodes.nodes.items():
        assert node.config.read_bytes() == fleet.originals[label], f"node {label}"
        assert not list(node.bin_dir.glob("containerd-shim-fleettest-*")), f"node {label}"
        assert fleet.labels(label) == {}
    for label in "acd":  # in-cluster nodes: the kit's delete ran on the node too
        state = fleet.node(label).root / STATE
        assert not (state / "kit").exists() and not (state / "runs").exists(), sorted(state.rglob("*"))
    # the runner namespace is the cluster administrator's (deploy/rbac.yaml): it stays, with no pod in it
    assert fleet.cluster.pods(NS) == []
    assert_nothing_left(fleet)
