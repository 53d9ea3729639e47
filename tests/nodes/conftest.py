"""Fixtures of the real-nodes tier: a control plane, real kubelets with their own containerd (1.6 and 2.x),
a real Wasm shim in several versions served over https, and one Pulumi stack of the program.

Nodes (tests/harness/kubelets.py), named by IP:
    a  127.0.0.2  Debian containerd 1.6   (flavor containerd-1)
    b  127.0.0.3  Debian containerd 1.6   (flavor containerd-1)
    c  127.0.0.4  containerd 2.2          (flavor containerd-2: the kubelet reports node.status.runtimeHandlers)
    d  127.0.0.5  containerd 2.2          (in no pool until the bump)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cluster import Cluster, api_path
from tests.e2e.conftest import (  # noqa: F401 - engine_tmpdir and toolchain_bin are fixtures
    PROJECT,
    engine_tmpdir,
    run_program,
    toolchain_bin,
)
from tests.e2e.engine import offline_stack
from tests.harness.https import ArtifactServer
from tests.harness.kubelets import NodeSet, RealNode, host_snapshot, leftovers, real_nodes
from tests.harness.nodes import RESTART, become_subreaper, containerd_major, reap_children, require

REPO = Path(__file__).resolve().parents[2]
BUILD_SHIM = REPO / "tests" / "nodes" / "build-shim.sh"
BUILD_CONTAINERD2 = REPO / "tests" / "integration" / "build-containerd2.sh"
SHIM = "fleettest"
VERSIONS = ("1.4.0", "1.4.1", "1.4.2")
MEMBER = "containerd-shim-fleettest-v1"


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


@pytest.fixture(scope="session")
def shim_dist() -> Path:
    """The shim's release tarballs (tests/nodes/build-shim.sh: cached; a cold build takes ~20-30 min)."""
    if not shutil.which("cargo") and not Path.home().joinpath(".cargo/bin/cargo").exists():
        pytest.fail("the nodes tier builds its Wasm shim with cargo (Rust 1.95): install Rust with rustup")
    proc = subprocess.run(["bash", str(BUILD_SHIM), *VERSIONS], capture_output=True, text=True, timeout=4 * 3600)
    if proc.returncode != 0:
        pytest.fail(f"building the test shim failed ({BUILD_SHIM}):\n{proc.stderr[-4000:]}")
    return Path(_last_line(proc.stdout))


@pytest.fixture(scope="session")
def kubelet_bin(toolchain_bin: Path) -> str:  # noqa: F811 - the fixture imported above
    kubelet = toolchain_bin / "kubelet"
    if not kubelet.is_file():
        pytest.fail(f"{kubelet} is missing; run `bash toolchain/build.sh` (it builds the kubelet too)")
    return str(kubelet)


@pytest.fixture(scope="session")
def containerd_bins() -> tuple[str, str]:
    """(Debian's containerd 1.6, containerd 2.x built by tests/integration/build-containerd2.sh)."""
    one = require("containerd", "containerd")
    require("runc", "runc")
    if not shutil.which("go"):
        pytest.fail(f"the nodes tier needs Go to build containerd 2.x with {BUILD_CONTAINERD2}")
    proc = subprocess.run(["sh", str(BUILD_CONTAINERD2)], capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        pytest.fail(f"building containerd 2.x failed: {proc.stderr[-2000:]}")
    two = _last_line(proc.stdout)
    assert containerd_major(one) == 1 and containerd_major(two) == 2
    return one, two


@dataclass
class World:
    """The nodes tier's world: control plane, real nodes, artifact server, and a stack of the program."""

    cluster: Cluster
    nodes: NodeSet
    server: ArtifactServer
    dist: Path
    stack: Any
    work: Path
    applied: dict[str, Any] = field(default_factory=dict, repr=False)  # holds the test key

    def node(self, label: str) -> RealNode:
        return self.nodes[label]

    def catalog(self, versions=VERSIONS) -> dict:
        entries = []
        for v in versions:
            tarball = f"containerd-shim-{SHIM}-v{v}-linux-x86_64.tar.gz"
            sha = (self.dist / f"{tarball}.sha256").read_text().split()[0]
            entries.append({"version": v, "url": self.server.url(tarball), "sha256": sha, "binary": MEMBER})
        return {SHIM: entries}

    def pool(self, label: str, releases: list[str], retiring: list[str] | None = None) -> dict:
        node = self.node(label)
        assert node.host is not None
        return {"name": f"pool-{label}", "containerd": node.flavor, "releases": releases,
                "retiring": retiring or [], "restart": f"sh '{RESTART}'",
                "nodes": [{"name": node.name, "host": "127.0.0.1", "port": node.host.port,
                           "hostKey": node.host.host_key}]}

    def config(self, pools: list[dict]) -> dict[str, Any]:
        key = next(iter(self.nodes.nodes.values())).host.key_file.read_text()
        return {"runtime": "wasmtime", "shims": self.catalog(), "nodePools": pools,
                "ssh": {"user": "root", "port": 22, "privateKey": key},
                "kubernetes": {"kubeconfig": str(self.cluster.kubeconfig)}}

    def set_config(self, raw: dict[str, Any]) -> None:
        import pulumi.automation as auto

        values = {f"{PROJECT}:{k}": auto.ConfigValue(json.dumps(v), secret=(k == "ssh")) for k, v in raw.items()}
        self.stack.set_all_config(values)
        self.applied = raw

    def labels(self, label: str) -> dict[str, str]:
        node = self.cluster.get(api_path("v1", "nodes", name=self.node(label).name))
        return {k: v for k, v in node["metadata"].get("labels", {}).items() if k.startswith("wasmtime-")}


def _program() -> None:
    run_program(REPO / "__main__.py")


@pytest.fixture(scope="module")
def world(toolchain_bin: Path, kubelet_bin: str, shim_dist: Path,  # noqa: F811
          containerd_bins: tuple[str, str]) -> Iterator[World]:
    one, two = containerd_bins
    become_subreaper()
    before = host_snapshot()
    work = Path(tempfile.mkdtemp(prefix="wsfn-", dir="/tmp"))  # short: unix socket paths <= 108 bytes
    try:
        with Cluster(toolchain_bin) as cluster, ArtifactServer(shim_dist, work / "https") as server:
            specs = [("a", one, "containerd-1"), ("b", one, "containerd-1"), ("c", two, "containerd-2"),
                     ("d", two, "containerd-2")]
            with real_nodes(cluster, kubelet_bin, specs, work, extra_env={"CURL_CA_BUNDLE": str(server.ca_file)}) \
                    as nodes:
                stack = offline_stack(toolchain_bin, work, PROJECT, "nodes", _program)
                yield World(cluster, nodes, server, shim_dist, stack, work)
    finally:
        reap_children()
        shutil.rmtree(work, ignore_errors=True)
    # Other processes on this machine may come and go meanwhile: only what names this run's work dir, or the
    # host state the nodes change, counts.
    left = [item for item in leftovers(before)
            if not item.startswith(("processes:", "mounts:")) or str(work) in item or "/netns/" in item]
    if left:
        pytest.fail("the real nodes left things behind:\n" + "\n".join(left), pytrace=False)


def dashed(version: str) -> str:
    return "v" + version.replace(".", "-")


def shim_that_ran(w: World, pod: dict) -> tuple[str, str, str]:
    """(runtime name containerd recorded, shim binary the task runs from, version that binary prints with -v)
    for the pod's container, read on its node."""
    node = w.nodes.by_name(pod["spec"]["nodeName"])
    cid = pod["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
    runtime = node.container_runtime(cid)
    exe = os.readlink(f"/proc/{node.task_pid(cid)}/exe")
    printed = subprocess.run([exe, "-v"], capture_output=True, text=True, timeout=30).stdout
    return runtime, exe, printed
