"""The policy pack under the real Pulumi engine: `pulumi preview --policy-pack ...` on real stacks.

How the engine runs a Python policy pack (pulumi 3.274.1, pkg/resource/plugin/analyzer_plugin.go and plugin.go):
  - `--policy-pack <directory>`: the engine reads the directory's PulumiPolicy.yaml and asks the *language host*
    of its runtime (`pulumi-language-python`) to run it (LanguageRuntime.RunPlugin, kind analyzer). The host runs
    `<virtualenv>/bin/python -u -m pulumi.policy <engine address> <pack directory>`. The old stand-alone script
    `pulumi-analyzer-policy-python` is gone from the sdk module at this version (3.215.0 still shipped it in
    sdk/python/dist); the engine no longer looks it up.
  - `--policy-pack <executable file>`: the engine launches the file directly as the analyzer plugin, with the
    engine address as its argument, and reads PulumiPolicy.yaml beside it if there is one.

The Python language host cannot be built here (its Go module is not served), so the tests launch the pack the
second way: `ANALYZER` below is the language host's RunPlugin for a Python pack, as a two-line script over the
pack's own virtualenv (the cached one of tests/test_policy_rules.py, pulumi-policy from policy/requirements.txt).
Everything after the launch is real: the engine's analyzer protocol, the pack's config reconciliation
(`--policy-pack-config`, enforcement levels set by policy.pack_config), stack and resource validation on the
program's real resources, and the engine failing the preview on a mandatory violation.
`test_the_pack_directory_runs_through_the_python_language_host` covers the first way: with `pulumi-language-python`
on PATH it runs the pack directory exactly as users do.

Run: venv/bin/python -m pytest -m e2e tests/e2e/test_policy.py
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from policy.pack_config import pack_config
from tests.conftest import policy_venv

from .conftest import PROJECT, X1, Fleet, X, base_pools
from .engine import offline_stack

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
PACK_DIR = REPO / "policy"
PACK_NAME = "wasm-shim-fleet"
MANDATORY = ("runtimeclass-handler-on-selected-nodes", "runtimeclass-handler-unchanged", "binary-command-sha256",
             "binary-sha256-coverage")

# What pulumi-language-python's RunPlugin does for a Python policy pack (runtime options: virtualenv).
ANALYZER = """#!/bin/sh
PYTHONDONTWRITEBYTECODE=1 exec '{python}' -u -m pulumi.policy "$@" '{pack}'
"""


@pytest.fixture(scope="module")
def analyzer(tmp_path_factory) -> Path:
    """An executable analyzer plugin that runs the repository's policy/ pack in its own virtualenv."""
    python = policy_venv()
    d = tmp_path_factory.mktemp("policy-analyzer")
    shutil.copy(PACK_DIR / "PulumiPolicy.yaml", d / "PulumiPolicy.yaml")  # the engine reads it beside the plugin
    exe = d / "pulumi-analyzer-policy-python"
    exe.write_text(ANALYZER.format(python=python, pack=PACK_DIR))
    exe.chmod(0o755)
    return exe


def write_pack_config(path: Path, new_raw: dict, old_raw: dict | None) -> str:
    path.write_text(json.dumps(pack_config(new_raw, old_raw)))
    return str(path)


class Run:
    """A preview with the pack: the engine's policy events, the output, and the error if it failed."""

    def __init__(self, stack, packs: list[str], configs: list[str] | None = None, program=None):
        import pulumi.automation as auto

        self.events: list = []
        self.error: str | None = None
        self.output = ""
        kw = {"program": program} if program else {}
        try:
            result = stack.preview(policy_packs=packs, policy_pack_configs=configs, color="never",
                                   on_event=self._event, **kw)
            self.output = result.stdout
        except auto.CommandError as exc:
            self.error = str(exc)
            self.output = self.error

    def _event(self, event) -> None:
        if event.policy_event is not None:
            self.events.append(event.policy_event)

    def violations(self, level: str | None = None) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for e in self.events:
            if level is None or e.enforcement_level == level:
                assert e.policy_pack_name == PACK_NAME, e.policy_pack_name
                out.setdefault(e.policy_name, []).append(e.message)
        return out


# ----------------------------------------------------------------------------------- compliant stack
def test_the_fleets_base_config_passes_the_pack(fleet: Fleet, analyzer: Path, tmp_path: Path):
    raw = fleet.config(base_pools(fleet))
    fleet.set_config(raw)
    run = Run(fleet.stack, [str(analyzer)], [write_pack_config(tmp_path / "pc.json", raw, raw)])
    assert run.error is None, run.output
    assert run.violations() == {}, run.violations()
    assert f"{PACK_NAME}@v0.1.0" in run.output  # the engine loaded and ran the pack


def test_a_version_bump_that_drops_n_minus_1_fails_when_the_stack_says_error(fleet: Fleet, analyzer: Path,
                                                                              tmp_path: Path):
    """The program only makes compliant resources; the step is what violates: pool a moves X -> X+1 in one
    step while the stack's deprecation mode is error. policy.pack_config raises shim-deprecation to mandatory."""
    old = fleet.config(base_pools(fleet))
    pools = base_pools(fleet)
    pools[0] = fleet.pool("a", [X1], ["node-a"])
    new = {**fleet.config(pools), "deprecation": {"mode": "error", "keep": 2}}
    fleet.set_config(new)
    run = Run(fleet.stack, [str(analyzer)], [write_pack_config(tmp_path / "pc.json", new, old)])
    assert run.error is not None, run.output
    [message] = run.violations("mandatory")["shim-deprecation"]
    assert f"pool 'a' adds {X1} and in the same step drops {X}" in message  # the core's rule and words
    assert "shim-deprecation" in run.output and "[mandatory]" in run.output
    assert set(run.violations()) == {"shim-deprecation"}

    # The same step with the default mode (warn): reported, advisory, the preview succeeds.
    new["deprecation"] = {"mode": "warn", "keep": 2}
    fleet.set_config(new)
    run = Run(fleet.stack, [str(analyzer)], [write_pack_config(tmp_path / "pc.json", new, old)])
    assert run.error is None, run.output
    assert set(run.violations("advisory")) == {"shim-deprecation"} and run.violations("mandatory") == {}


# ----------------------------------------------------------------------------------- violating stack
def _violating_program(render_dir: Path):
    """Resources the program never makes: a series class pointing at an exact handler on a node that only has
    the other patch version, and a shim binary install without a digest (for the wrong binary)."""

    def program() -> None:
        import pulumi
        import pulumi_command as command
        import pulumi_kubernetes as k8s

        class NodePool(pulumi.ComponentResource):  # registers the outputs the project's NodePool registers
            def __init__(self, name: str) -> None:
                super().__init__("wasm-shim-fleet:index:NodePool", name, {}, None)
                self.register_outputs({"nodes": {"node-a": {
                    "releases": ["slight@1.2.4"], "retiring": [], "labels": {"wasmtime-slight-v1-2": "true"},
                    "handlers": {"slight-v1-2": "io.containerd.slight-v1-2-4.v1",
                                 "slight-v1-2-4": "io.containerd.slight-v1-2-4.v1"}}}})

        NodePool("fleet-a")
        provider = k8s.Provider("k8s", render_yaml_to_directory=str(render_dir))
        k8s.node.v1.RuntimeClass(
            "fleet-classes-wasmtime-slight-v1-2",
            metadata={"name": "wasmtime-slight-v1-2"}, handler="slight-v1-2-3",
            opts=pulumi.ResourceOptions(provider=provider))
        command.local.Command(
            "fleet-a-node-a-bin-containerd-shim-slight-v1-2-3-v1",
            create="curl -fsSL https://example.org/slight -o /usr/local/bin/containerd-shim-slight-v1-2-3-v1")

    return program


@pytest.fixture
def scratch_stack(toolchain_bin: Path, tmp_path: Path):

    return offline_stack(toolchain_bin, tmp_path, PROJECT, "policy", _violating_program(tmp_path / "rendered"))


def test_a_stack_that_violates_the_pack_fails_preview_and_names_the_policies(scratch_stack, analyzer: Path):
    run = Run(scratch_stack, [str(analyzer)])
    assert run.error is not None, run.output
    found = run.violations("mandatory")
    assert set(found) == set(MANDATORY), found
    [handler] = found["runtimeclass-handler-unchanged"]
    assert "RuntimeClass wasmtime-slight-v1-2 has handler 'slight-v1-2-3'" in handler
    [selected] = found["runtimeclass-handler-on-selected-nodes"]
    assert "selects node node-a" in selected and "no containerd handler 'slight-v1-2-3'" in selected
    assert len(found["binary-command-sha256"]) == 2  # no digest, and not through the kit's checked install
    [coverage] = found["binary-sha256-coverage"]
    assert "binary containerd-shim-slight-v1-2-4-v1 on node node-a" in coverage
    for name in found:
        assert f"[mandatory]  {name}" in run.output
    assert f"{PACK_NAME}@v0.1.0" in run.output


# ------------------------------------------------------------------------- the directory, as users run it
def test_the_pack_directory_runs_through_the_python_language_host(scratch_stack, tmp_path: Path):
    """`--policy-pack <dir>` needs pulumi-language-python (the engine runs the pack through its RunPlugin).
    With the host on PATH: the pack directory (its venv linked to the cached one) fails the violating preview.
    Without it: the engine names the missing host, and nothing else (no other launch problem)."""
    pack = tmp_path / "policy"
    shutil.copytree(PACK_DIR, pack, ignore=shutil.ignore_patterns("__pycache__", "venv"))
    (pack / "venv").symlink_to(policy_venv().parents[1])
    run = Run(scratch_stack, [str(pack)])
    assert run.error is not None, run.output
    if shutil.which("pulumi-language-python") is None:
        assert "no language plugin 'pulumi-language-python' found" in run.output, run.output
        assert run.events == []
    else:
        assert set(run.violations("mandatory")) == set(MANDATORY)
