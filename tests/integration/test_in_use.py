"""In use means kept: the kit asks the node's containerd which running containers use a runtime before it removes
its handler or its binary, and refuses while any does (pools that list nodes), or keeps them and says so (agent
pools, WSF_IN_USE=keep), changing nothing else.

A real containerd (Debian's 1.6) runs a real container under the versioned runtime name: the shim binary installed
as `containerd-shim-slight-v1-3-0-v1` is replaced by containerd's own runc shim, so `ctr run --runtime
io.containerd.slight-v1-3-0.v1` starts a task there exactly as a Wasm shim's would (containerd records the
runtime name the same way). The container carries the CRI's pod labels, as a pod's containers do."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from components.core import nodescript
from components.core.nodescript import install_script, uninstall_script

from .helpers import last_line, sample_node, snapshot

pytestmark = pytest.mark.integration

DAEMON_PATHS = ("var/lib/containerd", "run", "var/log", "opt")
RUNTIME = "io.containerd.slight-v1-3-0.v1"
BINARY = "containerd-shim-slight-v1-3-0-v1"
BOTH = ("slight@1.2.3", "slight@1.3.0")


def ctr(node, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ctr", "--address", str(node.socket), "-n", "k8s.io", *args], capture_output=True,
                          text=True, check=check, timeout=60)


@pytest.fixture
def node(make_node, containerd1, tmp_path):
    """A containerd 1.6 node with slight 1.2.3 and 1.3.0 installed, 1.3.0's binary a working (runc) shim, and the
    pause image imported; its containerd finds the node's shims on PATH (as a node's finds /usr/local/bin)."""
    from tests.harness.images import build_pause_image, import_image

    n = make_node("containerd-1", containerd1)
    n.seed()
    n.extra_env["PATH"] = f"{n.root}/usr/local/bin:{Path(containerd1).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    result = n.run(install_script(sample_node("containerd-1", releases=BOTH)))
    assert result.returncode == 0, result.stderr
    shim = shutil.which("containerd-shim-runc-v2")
    assert shim, "containerd-shim-runc-v2 (Debian's containerd) is needed"
    shutil.copyfile(shim, n.root / "usr/local/bin" / BINARY)
    ref, tarball = build_pause_image(tmp_path)
    import_image("ctr", n.socket, tarball)
    n.pause_ref = ref
    yield n
    for cid in ("wasm-1", "wasm-2"):
        ctr(n, "task", "kill", "-s", "KILL", cid, check=False)
        ctr(n, "task", "delete", "-f", cid, check=False)
        ctr(n, "container", "delete", cid, check=False)


def start_container(node, cid: str, pod: str) -> None:
    ctr(node, "run", "-d", "--runtime", RUNTIME, "--label", "io.kubernetes.pod.namespace=default",
        "--label", f"io.kubernetes.pod.name={pod}", node.pause_ref, cid)
    tasks = ctr(node, "task", "ls").stdout
    assert cid in tasks and "RUNNING" in tasks, tasks


def stop_container(node, cid: str) -> None:
    ctr(node, "task", "kill", "-s", "KILL", cid, check=False)
    for _ in range(50):
        if ctr(node, "task", "delete", cid, check=False).returncode == 0:
            break
        import time

        time.sleep(0.1)
    ctr(node, "container", "delete", cid)


def test_a_table_that_drops_a_runtime_in_use_is_refused_naming_the_pods_and_nothing_changes(node):
    start_container(node, "wasm-1", "hello-abc")
    start_container(node, "wasm-2", "hello-def")
    before = snapshot(node.root, ignore=DAEMON_PATHS)
    restarts = node.restarts()
    # 1.3.0 removed from the pool: its handlers leave the table
    result = node.run(install_script(sample_node("containerd-1", releases=("slight@1.2.3",))))
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line == ("wasm-shim-fleet: error: refusing to change the handler table on this node: 2 running "
                    f"container(s) use runtime {RUNTIME} (pods default/hello-abc, default/hello-def); drain the "
                    "node or delete those pods, then re-run; nothing was changed"), line
    assert snapshot(node.root, ignore=DAEMON_PATHS) == before
    assert node.restarts() == restarts
    assert "RUNNING" in ctr(node, "task", "ls").stdout

    # the whole table and the binary too (a node or pool removed, destroy)
    gone = node.run(uninstall_script(sample_node("containerd-1", releases=BOTH)))
    assert gone.returncode == 1
    assert "refusing to remove the handler table on this node: 2 running container(s)" in gone.stderr
    assert snapshot(node.root, ignore=DAEMON_PATHS) == before
    assert node.restarts() == restarts

    # once the pods are gone, the same change goes through
    stop_container(node, "wasm-1")
    stop_container(node, "wasm-2")
    result = node.run(install_script(sample_node("containerd-1", releases=("slight@1.2.3",))))
    assert result.returncode == 0, result.stderr
    assert "io.containerd.slight-v1-3-0.v1" not in node.config.read_text()
    assert node.restarts() == restarts + 1


def test_a_binary_in_use_is_not_removed(node):
    plan = sample_node("containerd-1", releases=("slight@1.2.3",))
    assert node.run(install_script(plan)).returncode == 0  # the table no longer names 1.3.0
    start_container(node, "wasm-1", "hello-abc")  # a container still runs on 1.3.0's binary (an alias moved)
    b = sample_node("containerd-1", releases=BOTH).binaries[BINARY]
    result = node.run(nodescript.remove_binary_script(plan, b))
    assert result.returncode == 1
    assert (f"refusing to remove {BINARY}: 1 running container(s) use runtime {RUNTIME} (pods default/hello-abc); "
            "drain the node or delete those pods, then re-run; nothing was changed") in result.stderr
    assert (node.root / "usr/local/bin" / BINARY).exists()
    stop_container(node, "wasm-1")
    result = node.run(nodescript.remove_binary_script(plan, b))
    assert result.returncode == 0, result.stderr
    assert not (node.root / "usr/local/bin" / BINARY).exists()


def test_an_agent_keeps_what_is_in_use_converges_the_rest_and_removes_it_on_a_later_pass(node):
    start_container(node, "wasm-1", "hello-abc")
    restarts = node.restarts()
    plan = sample_node("containerd-1", releases=("slight@1.2.3",))
    keep = {"WSF_IN_USE": "keep"}
    table = node.run(nodescript.apply_table_script(plan), env=keep)
    assert table.returncode == 0, table.stderr
    assert ("kept handler(s) slight-v1-3, slight-v1-3-0 for now: 1 running container(s) use "
            f"runtime {RUNTIME} (pods default/hello-abc); a later run removes them once they are gone") in table.stdout
    # the rest converged: the aliases that 1.2.3 provides moved to it; 1.3.0's exact handler and its own series
    # alias (a pod of that series class may be the one running) stay one more pass
    text = node.config.read_text()
    assert 'slight-v1-3-0]\n  runtime_type = "io.containerd.slight-v1-3-0.v1"' in text
    assert '.slight]\n  runtime_type = "io.containerd.slight-v1-2-3.v1"' in text
    assert node.restarts() == restarts + 1
    prune = node.run(nodescript.prune_binaries_script(plan, plan.binaries), env=keep)
    assert prune.returncode == 0, prune.stderr
    assert f"kept {node.root}/usr/local/bin/{BINARY}" in prune.stdout
    assert (node.root / "usr/local/bin" / BINARY).exists()
    # the pod goes: the next pass drops the handler and then the binary
    stop_container(node, "wasm-1")
    table = node.run(nodescript.apply_table_script(plan), env=keep)
    assert table.returncode == 0, table.stderr
    assert "slight-v1-3-0" not in node.config.read_text()
    prune = node.run(nodescript.prune_binaries_script(plan, plan.binaries), env=keep)
    assert prune.returncode == 0, prune.stderr
    assert not (node.root / "usr/local/bin" / BINARY).exists()
    assert last_line(prune.stdout) == "changed"


def test_the_agents_table_script_keeps_what_is_in_use():
    from components.core.plan import NodePlan

    plan = sample_node("containerd-1")
    agent = NodePlan(**{**plan.__dict__, "transport": "agent", "name": "pool-a"})
    scripts = nodescript.agent_scripts(agent)
    assert "WSF_IN_USE=keep; export WSF_IN_USE" in scripts["table"]
    assert "WSF_IN_USE" not in scripts["uninstall"]  # an uninstall refuses, naming the pods
