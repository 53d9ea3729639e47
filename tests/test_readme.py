"""Every command in a ```sh block of README.md and of the files in docs/ runs as written on a fresh clone; a
drifted document fails here.

Commands are read from the documents themselves (tests/conftest.py: doc_files, doc_commands): README.md first,
then every Markdown file under docs/ in the order of their paths, so a command added to any section, or a new
file in docs/, is run without touching this file. Each command is exactly one of:
- run by CI: a line of `.ci/run` (scripts/setup.sh, scripts/test.sh; running them here would recurse);
- marked `# (needs ...)` in its document, which says what it needs that no tier has (e.g. a cluster);
- an engine command (`pulumi ...`, `python -m components up|preview|destroy|refresh|export`) or a
  network-bound one (`pip install`): run by the e2e tier (tests/e2e/test_readme_engine.py), in that order
  with all the others;
- any other: run here, in the fast tier, in that order on one fresh clone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import (
    ROOT,
    Command,
    ci_commands,
    command_env,
    commands_in,
    doc_commands,
    doc_files,
    fresh_clone,
    run_command,
    tmp_files,
)

FAST = [c for c in doc_commands() if not (c.by_ci or c.needs or c.engine)]


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Iterator[Path]:
    yield fresh_clone(tmp_path_factory.mktemp("readme") / "wasm-shim-fleet")
    for path in tmp_files(FAST):
        path.unlink(missing_ok=True)


@pytest.mark.parametrize("cmd", FAST, ids=[f"{c.doc}:{c.line}" for c in FAST])
def test_the_documented_command_runs_as_written_on_a_fresh_clone(cmd: Command, clone: Path):
    run_command(cmd, clone, command_env(), timeout=300)


def test_the_first_screen_is_the_two_setup_commands_then_the_main_job():
    readme = [c for c in doc_commands() if c.doc == "README.md"]
    first = [c for c in readme if c.block == min(c.block for c in readme)]
    assert [c.bare for c in first] == ["scripts/setup.sh", "scripts/test.sh", "venv/bin/python -m components up dev"]
    assert first[0].line <= 40, "the set-up commands are on the README's first screen"
    assert ci_commands() == ["scripts/setup.sh", "scripts/test.sh"], "CI runs the README's two commands"


def test_every_documented_command_is_run_by_a_test_or_says_what_it_needs():
    commands = doc_commands()
    assert len(commands) >= 10
    for c in commands:
        kinds = [k for k, on in (("ci", c.by_ci), ("needs", c.needs), ("engine", c.engine)) if on]
        assert len(kinds) <= 1 or kinds == ["needs", "engine"], f"{c}: more than one kind {kinds}"
        if c.needs:
            assert len(c.needs) > len("needs ") + 5, f"{c}: say what it needs"
    assert any(c.engine for c in commands), "the e2e tier has documented commands to run"
    assert "pulumi" in " ".join(c.text for c in commands if c.needs), "the CLI path is shown, and marked"


def test_every_document_with_a_sh_block_has_its_commands_read():
    """No document's commands are skipped: each file of doc_files with a ```sh block gives commands, in
    doc_files' order, and files of docs/ are among them."""
    commands = doc_commands()
    with_blocks = [p.relative_to(ROOT).as_posix() for p in doc_files() if commands_in(p.read_text())]
    assert with_blocks[0] == "README.md" and any(d.startswith("docs/") for d in with_blocks), with_blocks
    assert list(dict.fromkeys(c.doc for c in commands)) == with_blocks
    for path in doc_files():
        if "```sh" in path.read_text():
            assert commands_in(path.read_text()), f"{path}: a ```sh block but no command read from it"


def test_the_documents_are_the_readme_then_every_file_of_docs_in_path_order(tmp_path: Path):
    (tmp_path / "docs" / "sub").mkdir(parents=True)
    for rel, cmd in (("README.md", "r"), ("docs/b.md", "b"), ("docs/a.md", "a"), ("docs/sub/c.md", "c"),
                     ("docs/notes.txt", "t")):
        (tmp_path / rel).write_text(f"# {rel}\n\n```sh\n{cmd} --x\n```\n")
    assert [p.relative_to(tmp_path).as_posix() for p in doc_files(tmp_path)] == [
        "README.md", "docs/a.md", "docs/b.md", "docs/sub/c.md"]
    assert [(c.doc, c.line, c.bare) for c in doc_commands(tmp_path)] == [
        ("README.md", 4, "r --x"), ("docs/a.md", 4, "a --x"), ("docs/b.md", 4, "b --x"),
        ("docs/sub/c.md", 4, "c --x")]
    assert str(doc_commands(tmp_path)[1]) == "docs/a.md:4: a --x"


def test_the_command_reader_joins_continuations_and_skips_other_blocks():
    text = "x\n```sh\n# a comment\na --b \\\n  c   # note\n\nd  # (needs a cluster)\n```\n```yaml\ne: f\n```\n"
    got = commands_in(text)
    assert [(c.line, c.text, c.bare, c.needs) for c in got] == [
        (4, "a --b c   # note", "a --b c", None), (7, "d  # (needs a cluster)", "d", "needs a cluster")]


def test_the_bump_preview_in_the_readme_is_the_golden_preview_abridged():
    """The README's preview of a bump is cut from tests/golden/preview-bump.txt (which the e2e tier checks against
    the real engine): every line it keeps whole is a line of the golden, in the golden's order, and every piece
    of a line it abridges with `...` is in the golden (whitespace aside); the counts are the golden's."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index("```\nPreviewing update (")
    excerpt = readme[start + 4:readme.index("```", start + 4)].replace("(prod)", "(e2e)").replace(":prod:", ":e2e:")
    golden = (ROOT / "tests" / "golden" / "preview-bump.txt").read_text().splitlines()
    flat = "".join("".join(golden).split())
    at, whole = 0, 0
    for line in excerpt.rstrip("\n").splitlines():
        if "..." in line:
            pieces = [p for part in line.split("...") for p in re.split(r"[{}\[\],]", part)]
            missing = [p.strip() for p in pieces if len("".join(p.split())) >= 6 and "".join(p.split()) not in flat]
            assert not missing, f"README preview line {line.strip()!r}: not in the golden: {missing}"
            continue
        found = next((i for i in range(at, len(golden)) if golden[i].rstrip() == line.rstrip()), None)
        assert found is not None, f"README preview line {line.strip()!r} is not in the golden after line {at}"
        at, whole = found + 1, whole + 1
    assert whole >= 25 and excerpt.rstrip().splitlines()[-2:] == [g.rstrip() for g in golden[-2:]]
