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

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CI = ROOT / ".ci" / "run"
NEEDS = re.compile(r"#\s*\((needs [^)]+)\)")
ENGINE = re.compile(r"(^|[\s(;&|])pulumi\s|-m components (up|preview|destroy|refresh|export)\b")
SLOW = re.compile(r"\bpip install\b")
FENCE = re.compile(r"^(\s*)```\s*(\S*)")


@dataclass(frozen=True)
class Command:
    line: int  # 1-based, in README.md
    text: str  # as written, trailing comment included
    block: int  # index of its ```sh block

    @property
    def bare(self) -> str:
        """The command without its trailing comment (a `#` after a space, outside quotes: good enough here)."""
        return re.sub(r"\s+#.*$", "", self.text).strip()

    @property
    def needs(self) -> str | None:
        m = NEEDS.search(self.text)
        return m.group(1) if m else None

    @property
    def by_ci(self) -> bool:
        return self.bare in ci_commands()

    @property
    def engine(self) -> bool:
        return bool(ENGINE.search(self.bare) or SLOW.search(self.bare))

    def __str__(self) -> str:
        return f"README.md:{self.line}: {self.text}"


def readme_commands(text: str | None = None) -> list[Command]:
    """The commands of every ```sh / ```bash block, continuation lines joined, comment lines dropped."""
    text = README.read_text() if text is None else text
    commands: list[Command] = []
    lang: str | None = None
    block = -1
    pending: tuple[int, str] | None = None
    for no, line in enumerate(text.splitlines(), 1):
        fence = FENCE.match(line)
        if fence:
            if lang is None:
                lang = fence.group(2) or "text"
                block += 1
            else:
                lang = None
            continue
        if lang not in ("sh", "bash", "shell"):
            continue
        stripped = line.strip()
        if pending is not None:
            start, acc = pending
            acc += " " + stripped.rstrip("\\").strip()
            if stripped.endswith("\\"):
                pending = (start, acc)
            else:
                commands.append(Command(start, acc, block))
                pending = None
            continue
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending = (no, stripped.rstrip("\\").strip())
        else:
            commands.append(Command(no, stripped, block))
    return commands


def ci_commands() -> list[str]:
    return [line.strip() for line in CI.read_text().splitlines()
            if line.strip() and not line.startswith("#") and not re.match(r"(set|cd)\s", line.strip())]


def fresh_clone(dest: Path) -> Path:
    """What `git clone` of this tree gives (working-tree contents of every file git tracks or would add),
    on branch main, with the shared virtualenv linked in as ./venv (scripts/setup.sh's venv step)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    dest.mkdir(parents=True)
    for rel in filter(None, listed):
        src = ROOT / rel
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the working tree
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel, follow_symlinks=False)
    git = ["git", "-c", "user.name=readme", "-c", "user.email=readme@localhost", "-c", "init.defaultBranch=main"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "fresh clone"]):
        subprocess.run([*git, *args], cwd=dest, check=True, capture_output=True)
    (dest / "venv").symlink_to((ROOT / "venv").resolve())
    return dest


def command_env(**extra: str) -> dict[str, str]:
    """The caller's environment without Pulumi settings or a kubeconfig, plus EXTRA."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_") and k != "KUBECONFIG"}
    env.update(extra)
    return env


def run_command(cmd: Command, cwd: Path, env: dict[str, str], timeout: float = 1800) -> str:
    """Run CMD with bash (process substitution, pipefail) in CWD; fail the test with its output unless it
    exits 0. Returns what it printed."""
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd.text], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        pytest.fail(f"{cmd}\nexited {proc.returncode}\n--- stdout (end)\n{proc.stdout[-3000:]}\n"
                    f"--- stderr (end)\n{proc.stderr[-3000:]}", pytrace=False)
    return proc.stdout + proc.stderr


def tmp_files(commands: list[Command]) -> list[Path]:
    """Files in /tmp that the commands write by redirection: removed after a run (no temp file left)."""
    return [Path(p) for c in commands for p in re.findall(r">\s*(/tmp/[\w./-]+)", c.bare)]


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
