"""Every command of README.md and then of the files in docs/ (tests/conftest.py: doc_files, in that order), on one
fresh clone, with the real engine (the built toolchain).

The fast tier runs the engine-free commands on their own (tests/test_readme.py); here they run again between
the engine ones, as a reader following the documentation runs them: `up dev` first, `export dev` after it,
`destroy dev` after that. Only the two set-up commands (CI runs them) and those marked `(needs ...)` are left
out. The runner's commands must leave every tracked file as it was.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import command_env, doc_commands, fresh_clone, run_command, tmp_files

pytestmark = pytest.mark.e2e

RUNNER = re.compile(r"-m components (up|preview|destroy|refresh|export)\b")


def git_status(clone: Path) -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=clone, check=True,
                          capture_output=True, text=True).stdout


def test_every_documented_command_runs_in_order_on_a_fresh_clone(toolchain_bin: Path, tmp_path: Path):
    clone = fresh_clone(tmp_path / "wasm-shim-fleet")
    home = tmp_path / "home"  # `pulumi login --local` keeps its state under ~/.pulumi
    home.mkdir()
    env = command_env(PULUMI_CONFIG_PASSPHRASE="readme", HOME=str(home), PULUMI_HOME=str(home / ".pulumi"))
    if "PYENV_ROOT" not in env and (Path.home() / ".pyenv").is_dir():
        env["PYENV_ROOT"] = str(Path.home() / ".pyenv")  # pyenv's python shims look there, not in the new HOME
    commands = [c for c in doc_commands() if not (c.by_ci or c.needs)]
    assert any(RUNNER.search(c.bare) for c in commands), "the e2e tier has engine commands to run"
    assert any(c.doc.startswith("docs/") for c in commands), "the commands of docs/ run here too"
    try:
        for cmd in commands:
            before = git_status(clone)
            out = run_command(cmd, clone, env)
            if RUNNER.search(cmd.bare):
                assert git_status(clone) == before, f"{cmd}: changed files git sees:\n{git_status(clone)}"
            if cmd.bare == "venv/bin/python -m components up dev":
                assert "up dev: succeeded (" in out, f"{cmd}: no success line:\n{out[-2000:]}"
        untracked = [line for line in git_status(clone).splitlines() if line.startswith("??")]
        assert untracked == [], "following the documentation leaves files git would add:\n" + "\n".join(untracked[:20])
        # the runner's state went to the project's own file backend, which git ignores
        assert list((clone / ".state" / "backend").rglob("dev.json")), "no state in .state/backend"
    finally:
        for path in tmp_files(commands):
            path.unlink(missing_ok=True)


def test_pulumi_stack_init_only_appends_its_salt_to_the_tracked_stack_file(toolchain_bin: Path, tmp_path: Path):
    """What the README tells CLI users: `pulumi stack init dev` adds one `encryptionsalt:` line, nothing else."""
    clone = fresh_clone(tmp_path / "wasm-shim-fleet")
    (tmp_path / "backend").mkdir()
    env = command_env(PULUMI_CONFIG_PASSPHRASE="readme", PULUMI_HOME=str(tmp_path / "pulumi-home"),
                      PULUMI_BACKEND_URL=f"file://{tmp_path / 'backend'}", PULUMI_SKIP_UPDATE_CHECK="true")
    before = (clone / "Pulumi.dev.yaml").read_text()
    subprocess.run(["pulumi", "stack", "init", "dev"], cwd=clone, env=env, check=True, capture_output=True)
    after = (clone / "Pulumi.dev.yaml").read_text()
    assert after.startswith(before)
    assert re.fullmatch(r"encryptionsalt: v1:\S+\n?", after[len(before):])
