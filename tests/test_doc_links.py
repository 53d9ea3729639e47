"""Every relative link of README.md and of the files in docs/ resolves: the file it names exists, and the heading
its anchor names is in that file, by GitHub's anchor rules (lowercase; spaces become '-'; punctuation other than
'-' and '_' is dropped; a second heading of the same anchor gets '-1', a third '-2', ...)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ROOT, doc_files

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
INLINE_LINK = re.compile(r"!?\[((?:[^\[\]]|\[[^\]]*\])*)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of every line outside fenced code blocks."""
    out, fenced = [], False
    for no, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            out.append((no, line))
    return out


def heading_text(markdown: str) -> str:
    """What GitHub renders of a heading: code spans as their text, links as their text, no emphasis marks."""
    text = CODE_SPAN.sub(lambda m: m.group(2), markdown)
    text = INLINE_LINK.sub(lambda m: m.group(1), text)
    return re.sub(r"(\*+|(?<!\w)_+|_+(?!\w))", "", text)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading's text."""
    return re.sub(r"[^\w\- ]", "", heading_text(heading).strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for _, line in prose_lines(text):
        m = HEADING.match(line)
        if m:
            base = slug(m.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(text: str) -> list[tuple[int, str]]:
    """(line, target) of every inline and reference link outside code."""
    found = []
    for no, line in prose_lines(text):
        ref = REFERENCE.match(line)
        if ref:
            found.append((no, ref.group(1)))
            continue
        bare = CODE_SPAN.sub(lambda m: "x" * len(m.group(0)), line)
        found += [(no, m.group(2)) for m in INLINE_LINK.finditer(bare)]
    return found


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """Each relative link of the document at `path` that does not resolve, with the reason."""
    problems = []
    rel = path.relative_to(root).as_posix()
    for no, target in links(path.read_text()):
        if SCHEME.match(target) or target.startswith("//"):
            continue  # https:, mailto: ...: not a file of this repository
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part if file_part else path).resolve()
        where = f"{rel}:{no}: ({target})"
        if not dest.is_relative_to(root.resolve()) or not dest.exists():
            problems.append(f"{where}: no file {file_part}")
        elif anchor and dest.suffix != ".md":
            problems.append(f"{where}: an anchor in a file that is not Markdown")
        elif anchor and anchor not in anchors(dest.read_text()):
            problems.append(f"{where}: no heading with anchor #{anchor} in {dest.relative_to(root.resolve())}")
    return problems


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_and_anchor_resolves(path: Path):
    assert broken_links(path) == []


def test_the_documents_link_somewhere():
    """The check above has links to judge: the README links to headings of its own (and, once split, docs/)."""
    assert sum(len(links(p.read_text())) for p in doc_files()) >= 5


@pytest.mark.parametrize(("heading", "anchor"), [
    ("Set up, test, run", "set-up-test-run"),
    ("`python -m components`: the engine, without a language plugin",
     "python--m-components-the-engine-without-a-language-plugin"),
    ("Managed clusters: node commands through the cluster (`transport: kubernetes`)",
     "managed-clusters-node-commands-through-the-cluster-transport-kubernetes"),
    ("Pull requests and deployments (GitHub Actions)", "pull-requests-and-deployments-github-actions"),
    ("Rollouts: a canary, then batches", "rollouts-a-canary-then-batches"),
    ("snake_case and **bold** [a link](x.md) 1.2.3 ≥ Ünïcode", "snake_case-and-bold-a-link-123--ünïcode"),
])
def test_anchors_follow_githubs_rules(heading: str, anchor: str):
    assert slug(heading) == anchor


def test_a_missing_file_a_missing_heading_and_a_repeated_heading_are_told_apart(tmp_path: Path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "b.md").write_text("# B\n\n## Twice\n\n## Twice\n\n```sh\n# not a heading\n```\n")
    doc = tmp_path / "README.md"
    doc.write_text("# A\n\n## Here\n\n"
                   "[ok](#here) [ok](docs/b.md) [ok](docs/b.md#twice-1) [web](https://example.org/#x)\n"
                   "[gone](docs/c.md) [no heading](docs/b.md#three) [no heading](#there)\n"
                   "[fenced](docs/b.md#not-a-heading) `[code](#code)`\n"
                   "\n```sh\n[inside a block](#block)\n```\n[ref]: docs/b.md#twice-2\n")
    assert broken_links(doc, tmp_path) == [
        "README.md:6: (docs/c.md): no file docs/c.md",
        "README.md:6: (docs/b.md#three): no heading with anchor #three in docs/b.md",
        "README.md:6: (#there): no heading with anchor #there in README.md",
        "README.md:7: (docs/b.md#not-a-heading): no heading with anchor #not-a-heading in docs/b.md",
        "README.md:12: (docs/b.md#twice-2): no heading with anchor #twice-2 in docs/b.md",
    ]
