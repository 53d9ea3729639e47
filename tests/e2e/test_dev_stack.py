"""The dev stack (Pulumi.dev.yaml) under the real Pulumi engine, with no cluster and no SSH host.

A copy of the project (Pulumi.yaml, Pulumi.dev.yaml, __main__.py, components/, examples/) in a temp dir; the
stack `dev` with the copied Pulumi.dev.yaml as its config; an Automation API inline program that runs the
copied __main__.py with the copy as cwd (as `pulumi up --stack dev` does through pulumi-language-python, which
cannot be built here). Nodes are folders nodes/<node> (transport local, config seeded from
examples/containerd/config.toml), artifacts are file: URLs, manifests go to rendered/dev
(pulumi-kubernetes renderYamlToDirectory): no kubeconfig, no cluster.

Run: venv/bin/python -m pytest -m e2e tests/e2e/test_dev_stack.py
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.core.config import read_stack_file
from components.core.plan import FleetPlan, plan_from_config

from .conftest import run_program
from .engine import offline_stack

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
PROJECT_FILES = ("Pulumi.yaml", "Pulumi.dev.yaml", "__main__.py", "components", "examples")


@dataclass
class DevStack:
    project: Path
    stack: Any  # pulumi.automation.Stack
    plan: FleetPlan
    seeds: dict[str, bytes]  # node -> the seed config's bytes

    def node_root(self, node: str) -> Path:
        return self.project / self.plan.node(node).node_root

    def config_toml(self, node: str) -> Path:
        return self.node_root(node) / "etc/containerd/config.toml"


@pytest.fixture(scope="module")
def dev(toolchain_bin: Path, tmp_path_factory) -> Iterator[DevStack]:

    work = tmp_path_factory.mktemp("dev-stack")
    project = work / "project"
    project.mkdir()
    for name in PROJECT_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, project / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, project / name)
    raw = read_stack_file(project / "Pulumi.dev.yaml")
    _, plan = plan_from_config(raw, project)
    assert plan.ok, plan.errors
    seeds = {n.name: (project / n.seed_config).read_bytes() for n in plan.nodes}

    def program() -> None:
        run_program(project / "__main__.py")

    # No kubeconfig at all: no $KUBECONFIG, and a HOME without ~/.kube. Render mode must not need one.
    saved = {k: os.environ.get(k) for k in ("KUBECONFIG", "HOME")}
    os.environ.pop("KUBECONFIG", None)
    (work / "home").mkdir()
    os.environ["HOME"] = str(work / "home")
    old_cwd = os.getcwd()
    os.chdir(project)  # __main__ resolves file: URLs and node roots against os.getcwd()
    try:
        # the copy's own Pulumi.yaml and Pulumi.dev.yaml, as `pulumi up --stack dev` would use them
        stack = offline_stack(toolchain_bin, project, "wasm-shim-fleet", "dev", program, project_settings=False)
        yield DevStack(project, stack, plan, seeds)
    finally:
        os.chdir(old_cwd)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _toml(text: str) -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomlkit as tomllib
    return tomllib.loads(text)


def rendered(project: Path) -> list[dict]:
    docs = []
    for f in sorted((project / "rendered/dev").rglob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(f.read_text()) if d]
    return docs


def test_up_installs_binaries_writes_handlers_and_renders_manifests(dev: DevStack):
    result = dev.stack.up(color="never")
    assert result.summary.result == "succeeded"
    for node in dev.plan.nodes:
        bin_dir = dev.node_root(node.name) / "usr/local/bin"
        assert sorted(p.name for p in bin_dir.iterdir()) == sorted(node.binaries)
        for binary in node.binaries:
            assert os.access(bin_dir / binary, os.X_OK)
        toml = _toml(dev.config_toml(node.name).read_text())
        runtimes = toml["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]
        assert {h: runtimes[h]["runtime_type"] for h in node.handlers} == node.handlers
        assert runtimes["runc"]["runtime_type"] == "io.containerd.runc.v2"  # the seed's runtime stays

    docs = rendered(dev.project)
    classes = {d["metadata"]["name"]: {"handler": d["handler"], "nodeSelector": d["scheduling"]["nodeSelector"]}
               for d in docs if d["kind"] == "RuntimeClass"}
    assert classes == {rc.name: {"handler": rc.handler, "nodeSelector": rc.node_selector}
                       for rc in dev.plan.runtime_classes}
    nodes = {d["metadata"]["name"]: d["metadata"].get("labels", {}) for d in docs if d["kind"] == "Node"}
    assert nodes == {n.name: n.labels for n in dev.plan.nodes}


def test_a_second_up_changes_nothing(dev: DevStack):
    result = dev.stack.up(color="never")
    assert result.summary.result == "succeeded"
    assert {k: v for k, v in result.summary.resource_changes.items() if k != "same"} == {}


def test_destroy_restores_the_seed_config_and_removes_the_binaries(dev: DevStack):
    result = dev.stack.destroy(color="never")
    assert result.summary.result == "succeeded"
    for node in dev.plan.nodes:
        assert dev.config_toml(node.name).read_bytes() == dev.seeds[node.name]
        bin_dir = dev.node_root(node.name) / "usr/local/bin"
        assert not bin_dir.exists() or list(bin_dir.iterdir()) == []


def test_a_kubeconfig_in_the_environment_does_not_leak_into_render_mode(dev: DevStack, tmp_path: Path):
    """A user's $KUBECONFIG (here: a cluster nobody listens on) is neither rejected beside renderYamlToDirectory
    nor contacted."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "elsewhere",
        "clusters": [{"name": "elsewhere", "cluster": {"server": "https://127.0.0.1:1"}}],
        "contexts": [{"name": "elsewhere", "context": {"cluster": "elsewhere", "user": "u"}}],
        "users": [{"name": "u", "user": {"token": "t"}}]}))
    os.environ["KUBECONFIG"] = str(kubeconfig)
    try:
        result = dev.stack.preview(color="never")
    finally:
        os.environ.pop("KUBECONFIG", None)
    assert result.change_summary.get("create", 0) > 0  # after destroy: everything would be created again
