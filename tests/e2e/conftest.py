"""Fixtures of the e2e tier: the built toolchain on PATH, a control plane, and a fleet of test nodes.

A test node is three real things at once: a kwok Node object in the API server (the scheduler places pods
on it), a node root with a real containerd daemon running in it (tests/harness/nodes.py), and an sshd test
host on 127.0.0.1 whose sessions get that node root as WSF_NODE_ROOT (tests/harness/sshd.py). The program
reaches it over SSH like any node: pinned host key, key auth.
"""

from __future__ import annotations

import gc
import glob
import json
import os
import runpy
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.harness import artifacts
from tests.harness.artifacts import ARTIFACTS as ARTIFACT_TABLE
from tests.harness.artifacts import sums as artifact_sums
from tests.harness.nodes import Node, become_subreaper, reap_children, require
from tests.harness.sshd import SshHost, start_hosts, stop_hosts

from .cluster import Cluster, ToolchainMissing, ensure_toolchain
from .engine import offline_stack

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = artifacts.DIR
PROJECT = "wasm-shim-fleet"
NODE_NAMES = ("node-a", "node-b", "node-c", "node-d")


def kubeconfigs_naming_our_clusters(paths) -> list[str]:
    """The files among `paths` that name a control plane this process started (other runs on the machine have
    their own)."""
    out = []
    for p in paths:
        try:
            text = Path(p).read_text(errors="replace")
        except OSError:
            continue
        if any(f"server: {url}\n" in text or f'"{url}"' in text for url in Cluster.started):
            out.append(p)
    return sorted(out)


@contextmanager
def env_var(name: str, value: str) -> Iterator[None]:
    """os.environ[name] = value for the block, then as it was (the engine runs read os.environ)."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


@pytest.fixture(scope="session", autouse=True)
def engine_tmpdir() -> Iterator[Path]:
    """TMPDIR of every engine run (and its plugins) is a folder removed at the end of the session: the
    Kubernetes provider writes the kubeconfig it is given, client key included, to a temporary file it never
    removes (about 20 per e2e run in /tmp before). Fails the session if a kubeconfig naming one of its
    control planes still lands in /tmp."""
    before = set(glob.glob("/tmp/kubeconfig*"))
    tmp = Path(tempfile.mkdtemp(prefix="wsf-engine-tmp-", dir="/tmp"))
    try:
        with env_var("TMPDIR", str(tmp)):  # the Automation API passes os.environ on to the pulumi CLI
            yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    leaked = kubeconfigs_naming_our_clusters(set(glob.glob("/tmp/kubeconfig*")) - before)
    if leaked:
        pytest.fail(f"the run left kubeconfig files (with client keys) in /tmp: {leaked}", pytrace=False)


@pytest.fixture(scope="session")
def toolchain_bin() -> Iterator[Path]:
    """The toolchain bin dir, built if needed (toolchain/build.sh), first on PATH for the session."""
    problem = None
    try:
        bin_dir = ensure_toolchain()
    except ToolchainMissing as exc:
        problem = str(exc)
    if problem:
        pytest.fail(f"e2e toolchain unavailable: {problem}\nRun: bash toolchain/build.sh", pytrace=False)
    old_path = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{old_path}"
    yield bin_dir
    os.environ["PATH"] = old_path


@dataclass
class Fleet:
    """The e2e world: cluster, node roots with containerd, sshd hosts, and one Pulumi stack of the program."""

    cluster: Cluster
    nodes: dict[str, Node]
    hosts: dict[str, SshHost]
    originals: dict[str, bytes]
    stack: Any  # pulumi.automation.Stack
    workdir: Path
    restart: str
    applied: dict[str, Any] = field(default_factory=dict, repr=False)  # holds the test key

    def catalog(self, sha_override: dict[str, str] | None = None) -> dict[str, list[dict[str, str]]]:
        sums = artifact_sums()
        shims: dict[str, list[dict[str, str]]] = {}
        for fname, member, shim, version in ARTIFACT_TABLE:
            entry = {"version": version, "url": f"file://{ARTIFACTS / fname}",
                     "sha256": (sha_override or {}).get(f"{shim}@{version}", sums[fname])}
            if member:
                entry["binary"] = member
            shims.setdefault(shim, []).append(entry)
        return shims

    def pool(self, name: str, releases: list[str], nodes: list[str], retiring: list[str] | None = None) -> dict:
        return {"name": name, "containerd": "containerd-1", "releases": releases, "retiring": retiring or [],
                "restart": self.restart,
                "nodes": [{"name": n, "host": "127.0.0.1", "port": self.hosts[n].port,
                           "hostKey": self.hosts[n].host_key} for n in nodes]}

    def config(self, pools: list[dict], sha_override: dict[str, str] | None = None) -> dict[str, Any]:
        return {
            "runtime": "wasmtime",
            "shims": self.catalog(sha_override),
            "nodePools": pools,
            "ssh": {"user": "root", "port": 22, "privateKey": self._private_key()},
            "kubernetes": {"kubeconfig": str(self.cluster.kubeconfig)},
        }

    def _private_key(self) -> str:
        """The test key of the sshd hosts (a placeholder in a world without hosts: previews never connect)."""
        host = next(iter(self.hosts.values()), None)
        return host.key_file.read_text() if host else "no SSH host in this world: previews only"

    def set_config(self, raw: dict[str, Any]) -> None:
        """Write the stack's config the way `pulumi config set` would; the ssh object (key inside) is a secret."""
        import pulumi.automation as auto

        values = {f"{PROJECT}:{k}": auto.ConfigValue(json.dumps(v), secret=(k == "ssh")) for k, v in raw.items()}
        self.stack.set_all_config(values)
        self.applied = raw

    def restarts(self) -> dict[str, int]:
        return {name: node.restarts() for name, node in self.nodes.items()}

    def node_labels(self, name: str) -> dict[str, str]:
        from .cluster import api_path

        labels = self.cluster.get(api_path("v1", "nodes", name=name))["metadata"].get("labels", {})
        return {k: v for k, v in labels.items() if k.startswith("wasmtime-")}

    def runtime_classes(self) -> dict[str, dict]:
        from .cluster import api_path

        items = self.cluster.get(api_path("node.k8s.io/v1", "runtimeclasses"))["items"]
        return {rc["metadata"]["name"]: {"handler": rc["handler"],
                                         "nodeSelector": rc.get("scheduling", {}).get("nodeSelector", {})}
                for rc in items if rc["metadata"].get("labels", {}).get("app.kubernetes.io/managed-by") == PROJECT}


#: The releases of the proposal's test plan: X.Y.Z, X.Y.Z+1, X.Y.Z+2.
X, X1, X2 = "slight@1.2.3", "slight@1.2.4", "slight@1.2.5"


def base_pools(f: Fleet) -> list[dict]:
    """The proposal's test plan: A runs X.Y.Z, B runs X.Y.Z+1, C runs both."""
    return [f.pool("a", [X], ["node-a"]), f.pool("b", [X1], ["node-b"]), f.pool("c", [X, X1], ["node-c"])]


def run_program(main: Path) -> None:
    """A project's __main__.py exactly as `pulumi up` runs it (as an Automation API inline program: the
    Python language host cannot be built here), reading the stack's config."""
    from components.stack_traces import keep_whole_stacks

    gc_was_on = gc.isenabled()
    try:
        runpy.run_path(str(main), run_name="__main__")
    finally:
        if gc_was_on:  # the program turns the cyclic GC off for its own short process, not for the test run
            gc.enable()
        keep_whole_stacks()  # and shortens the SDK's stack traces for it (components/stack_traces.py)


def _program() -> None:
    run_program(REPO / "__main__.py")


@contextmanager
def open_fleet(toolchain_bin: Path, node_names: Sequence[str] = NODE_NAMES, *, ssh_hosts: bool = True,
               host_env: Mapping[str, str] | None = None, stack_name: str = "e2e",
               prefix: str = "wsf-e2e-") -> Iterator[Fleet]:
    """The e2e world as a plain context manager (the `fleet` fixture and bench/run.py use it).

    Every name in `node_names` is a kwok Node. With `ssh_hosts` (default) each is also a node root with its own
    containerd and an sshd test host whose sessions get WSF_NODE_ROOT plus `host_env`; without, `nodes` and
    `hosts` are empty (enough for a preview: commands do not run, NodePatch previews only need the Node).
    `toolchain_bin` must be first on PATH (the `toolchain_bin` fixture does that). Everything started is
    stopped on exit."""

    containerd = ""
    if ssh_hosts:
        containerd = require("containerd", "containerd")
        require("ctr", "containerd")
        become_subreaper()
    work = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))  # short: unix socket paths <= 108 bytes
    nodes: dict[str, Node] = {}
    hosts: list[SshHost] = []
    try:
        with Cluster(toolchain_bin) as cluster:
            for name in node_names:
                cluster.create_node(name, wait=False)
            for name in node_names:
                cluster.wait_for(lambda name=name: cluster.node_ready(name), f"node {name} to be Ready", timeout=120)
            originals: dict[str, bytes] = {}
            if ssh_hosts:
                for name in node_names:
                    root = work / name
                    root.mkdir()
                    nodes[name] = Node(root, "containerd-1", containerd)
                originals = {name: node.seed() for name, node in nodes.items()}
                ssh_dir = work / "sshd"
                ssh_dir.mkdir()
                hosts = start_hosts(ssh_dir, len(node_names),
                                    env=[{"WSF_NODE_ROOT": str(nodes[n].root), **(host_env or {})} for n in node_names])
            stack = offline_stack(toolchain_bin, work, PROJECT, stack_name, _program)
            # The restart stand-in of the integration tier: restarts the node's own containerd daemon.
            restart = nodes[node_names[0]].restart if ssh_hosts else ":"
            by_name = dict(zip(node_names, hosts, strict=True)) if ssh_hosts else {}
            yield Fleet(cluster, nodes, by_name, originals, stack, work, restart)
    finally:
        stop_hosts(hosts)
        for node in nodes.values():
            node.stop()
        if ssh_hosts:
            reap_children()
        if os.environ.get("WSF_KEEP_E2E_DIR") != "1":
            shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def fleet(toolchain_bin: Path) -> Iterator[Fleet]:
    with open_fleet(toolchain_bin) as world:
        yield world
