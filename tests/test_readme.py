"""Every command in a ```sh block of README.md runs as written on a fresh clone; a drifted README fails here.

Commands are read from the README itself, so a command added to any section is run without touching this
file. Each command is exactly one of:
- run by CI: a line of `.ci/run` (scripts/setup.sh, scripts/test.sh; running them here would recurse);
- marked `# (needs ...)` in the README, which says what it needs that no tier has (e.g. a cluster);
- an engine command (`pulumi ...`, `python -m components up|preview|destroy|refresh|export`) or a
  network-bound one (`pip install`): run by the e2e tier (tests/e2e/test_readme_engine.py), in README order
  with all the others;
- any other: run here, in the fast tier, in README order on one fresh clone.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Command, ci_commands, command_env, fresh_clone, readme_commands, run_command, tmp_files

FAST = [c for c in readme_commands() if not (c.by_ci or c.needs or c.engine)]


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Iterator[Path]:
    yield fresh_clone(tmp_path_factory.mktemp("readme") / "wasm-shim-fleet")
    for path in tmp_files(FAST):
        path.unlink(missing_ok=True)


@pytest.mark.parametrize("cmd", FAST, ids=[f"L{c.line}" for c in FAST])
def test_the_readme_command_runs_as_written_on_a_fresh_clone(cmd: Command, clone: Path):
    run_command(cmd, clone, command_env(), timeout=300)


def test_the_first_screen_is_the_two_setup_commands_then_the_main_job():
    first = [c for c in readme_commands() if c.block == min(c.block for c in readme_commands())]
    assert [c.bare for c in first] == ["scripts/setup.sh", "scripts/test.sh", "venv/bin/python -m components up dev"]
    assert first[0].line <= 40, "the set-up commands are on the README's first screen"
    assert ci_commands() == ["scripts/setup.sh", "scripts/test.sh"], "CI runs the README's two commands"


def test_every_readme_command_is_run_by_a_test_or_says_what_it_needs():
    commands = readme_commands()
    assert len(commands) >= 10
    for c in commands:
        kinds = [k for k, on in (("ci", c.by_ci), ("needs", c.needs), ("engine", c.engine)) if on]
        assert len(kinds) <= 1 or kinds == ["needs", "engine"], f"{c}: more than one kind {kinds}"
        if c.needs:
            assert len(c.needs) > len("needs ") + 5, f"{c}: say what it needs"
    assert any(c.engine for c in commands), "the e2e tier has README commands to run"
    assert "pulumi" in " ".join(c.text for c in commands if c.needs), "the CLI path is shown, and marked"


def test_the_command_reader_joins_continuations_and_skips_other_blocks():
    text = "x\n```sh\n# a comment\na --b \\\n  c   # note\n\nd  # (needs a cluster)\n```\n```yaml\ne: f\n```\n"
    got = readme_commands(text)
    assert [(c.line, c.text, c.bare, c.needs) for c in got] == [
        (4, "a --b c   # note", "a --b c", None), (7, "d  # (needs a cluster)", "d", "needs a cluster")]
