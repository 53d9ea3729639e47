"""`python -m components check STACK_FILE` as a command: its exit codes (0 in sync, 2 on drift or a stack it cannot
check, 1 when the cluster cannot be read) and its --json report.

Real: the command in a process of its own, the node kit installing a local pool's node (a node-root folder, as
the dev stack has), and the read-only script check runs on it. Stand-in: the cluster is a fake `kubectl` (named
by $KUBECTL, as check reads it) that prints the Nodes a converged node would have, labels and runtimeHandlers
taken from the plan, or fails like kubectl does.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from components.core.flavors import FLAVORS
from components.core.nodescript import install_script
from tests.conftest import cli, planned, write_stack
from tests.integration.helpers import INPUTS, minimal_path, run_script, sample_raw


def fake_kubectl(bin_dir: Path, nodes: list[dict] | None, fail: str | None = None) -> Path:
    """A kubectl whose `get nodes -o json` prints these Nodes (or exits 1 with `fail` on stderr)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    doc = bin_dir / "nodes.json"
    doc.write_text(json.dumps({"kind": "NodeList", "items": nodes or []}))
    kubectl = bin_dir / "kubectl"
    body = f"echo {fail!r} >&2; exit 1" if fail else f'cat "{doc}"'
    kubectl.write_text(f"#!/bin/sh\n[ \"$1 $2 $3 $4\" = 'get nodes -o json' ] || exit 3\n{body}\n")
    kubectl.chmod(0o755)
    return kubectl


@pytest.fixture
def project(tmp_path) -> Path:
    """A project folder with a stack of one local pool (node roots under nodes/), node-a installed for real."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "Pulumi.yaml").write_text("name: wasm-shim-fleet\nruntime: python\n")
    raw = sample_raw("containerd-1")
    raw["nodePools"][0].update(transport="local")
    for n in raw["nodePools"][0]["nodes"]:
        n.pop("host")
    del raw["ssh"]
    write_stack(folder / "Pulumi.t.yaml", raw)
    node = planned(raw).node("node-a")
    root = folder / "nodes" / "node-a"
    config = root / FLAVORS["containerd-1"].config_path.lstrip("/")
    config.parent.mkdir(parents=True)
    shutil.copyfile(INPUTS / "containerd-1.toml", config)
    result = run_script(install_script(node), root, path=minimal_path(tmp_path))
    assert result.returncode == 0, result.stderr
    return folder


def api_node(name: str, labels: dict[str, str], handlers: list[str]) -> dict:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/os": "linux", **labels}},
            "status": {"runtimeHandlers": [{"name": h} for h in ["runc", *handlers]]}}


def converged(project: Path) -> list[dict]:
    from components.core.config import read_stack_file

    node = planned(read_stack_file(project / "Pulumi.t.yaml")).node("node-a")
    return [api_node("node-a", dict(node.labels), list(node.handlers))]


def check(project: Path, kubectl: Path, *args: str):
    return cli("check", str(project / "Pulumi.t.yaml"), *args, env={"KUBECTL": str(kubectl)}, process=True)


def test_a_converged_node_is_no_drift_exit_0_and_json_says_clean(project, tmp_path):
    kubectl = fake_kubectl(tmp_path / "bin", converged(project))
    r = check(project, kubectl)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.rstrip().endswith("no drift")
    r = check(project, kubectl, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["clean"] is True and doc["drift"] == [] and doc["nodes"] == ["node-a"]


def test_a_missing_binary_and_a_missing_label_are_drift_exit_2_each_named_in_the_json(project, tmp_path):
    nodes = converged(project)
    del nodes[0]["metadata"]["labels"]["wasmtime-slight-v1-2-3"]
    (project / "nodes" / "node-a" / "usr" / "local" / "bin" / "containerd-shim-spin-v0-3-0-v1").unlink()
    r = check(project, fake_kubectl(tmp_path / "bin", nodes), "--json")
    assert r.returncode == 2, r.stderr
    doc = json.loads(r.stdout)
    assert doc["clean"] is False
    found = {(d["node"], d["kind"]) for d in doc["drift"]}
    assert ("node-a", "binary-missing") in found and ("node-a", "label-missing") in found, doc["drift"]
    r = check(project, fake_kubectl(tmp_path / "bin", nodes))
    assert r.returncode == 2 and "drift(s) on 1 node(s)" in r.stdout


def test_a_cluster_that_cannot_be_read_exits_1_with_kubectls_words(project, tmp_path):
    r = check(project, fake_kubectl(tmp_path / "bin", None, fail="Unable to connect to the server"))
    assert r.returncode == 1
    assert "check: cannot read the cluster's nodes: kubectl get nodes failed: Unable to connect" in r.stderr


def test_a_stack_that_cannot_be_checked_exits_2_before_reading_the_cluster(project, tmp_path):
    kubectl = fake_kubectl(tmp_path / "bin", None, fail="must not be called")
    r = cli("check", str(project / "Pulumi.missing.yaml"), env={"KUBECTL": str(kubectl)}, process=True)
    assert r.returncode == 2 and "check: " in r.stderr and "cannot read" in r.stderr
    stack_file = project / "Pulumi.t.yaml"
    text = stack_file.read_text()
    stack_file.write_text(text.replace("containerd: containerd-1", "containerd: dockerd"))
    r = check(project, kubectl)
    assert r.returncode == 2 and "check: fix the errors above first" in r.stderr
    stack_file.write_text(text + "  wasm-shim-fleet:kubernetes:\n    renderDir: rendered/t\n")
    r = check(project, kubectl)
    assert r.returncode == 2 and "renders manifests" in r.stderr
    assert "must not be called" not in r.stderr
