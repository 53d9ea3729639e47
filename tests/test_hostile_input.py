"""No input crashes the CLI or leaks a secret: every bad file ends in one clear error (exit 2), never a
traceback, and reading is bounded in size, depth and alias expansion."""

from __future__ import annotations

import os
import re

import pytest
import yaml

from components.core import config as config_mod
from components.core.cli import main
from components.core.config import StackFileError, read_stack_file

KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAAc2VjcmV0LWtleS1ieXRlcw==\n"
SECRET_PART = "c2VjcmV0LWtleS1ieXRlcw"

GOOD = """config:
  wasm-shim-fleet:shims:
    slight:
      - version: 1.2.3
        url: https://example.org/slight-1.2.3.tar.gz
        sha256: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
  wasm-shim-fleet:nodePools:
    - name: p
      releases: [slight@1.2.3]
      nodes:
        - {name: node-a, host: 10.0.0.4}
"""


def plan_cli(path, capsys) -> tuple[int, str]:
    rc = main(["plan", str(path)])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return rc, out.err


def write(tmp_path, data: bytes | str, name: str = "Pulumi.x.yaml"):
    f = tmp_path / name
    f.write_bytes(data if isinstance(data, bytes) else data.encode())
    return f


# (case, file contents, words the one error line must contain)
FILES = [
    ("binary file", bytes(range(256)) * 4, ["NUL bytes", "binary file"]),
    ("latin-1 file", "config:\n  wasm-shim-fleet:runtime: caf\u00e9\n".encode("latin-1"),
     ["line 2", "0xe9", "not UTF-8", "save the file as UTF-8"]),
    ("20,000-deep block nesting", "config:\n  x:\n  " + "- " * 20000 + "1\n", ["nested more than 64 deep"]),
    ("20,000-deep flow nesting", "config: " + "[" * 20000 + "]" * 20000 + "\n", ["line 1"]),
    ("empty file", "", ["the file is empty", "wasm-shim-fleet:shims"]),
    ("only comments", "# nothing here\n", ["the file is empty"]),
    ("configs for config", GOOD.replace("config:", "configs:", 1), ["no 'config:' key", "'configs'",
                                                                   "rename it to config"]),
    ("keys not under config", GOOD.replace("config:\n  ", "").replace("\n  ", "\n"),
     ["no 'config:' key", "indent"]),
    ("misspelled namespace", GOOD.replace("wasm-shim-fleet:nodePools", "wasm-shim-flet:nodePools"),
     ["wasm-shim-flet:nodePools", "misspelling of 'wasm-shim-fleet'", "write wasm-shim-fleet:nodePools"]),
    ("key without namespace", GOOD.replace("wasm-shim-fleet:nodePools", "nodePools"),
     ["'nodePools' has no namespace", "write wasm-shim-fleet:nodePools"]),
    ("no key of this program", "config:\n  aws:region: eu-west-1\n", ["no wasm-shim-fleet:* keys"]),
    ("duplicate key", GOOD + "  wasm-shim-fleet:shims: {}\n",
     ["line 12", "'wasm-shim-fleet:shims'", "already set at line 2", "keep only the last"]),
    ("duplicate key deep inside", GOOD.replace("host: 10.0.0.4}", "host: 10.0.0.4, host: 10.0.0.5}"),
     ["line 11", "'host'", "already set at line 11"]),
    ("a list, not a mapping", "- config\n", ["expected a mapping", "a list"]),
    ("config is a string", "config: hello\n", ["'config' must be a mapping"]),
    ("tab indentation", "config:\n\twasm-shim-fleet:runtime: x\n", ["not valid YAML", "line 2"]),
    ("undefined alias", "config: *nothing\n", ["not valid YAML", "undefined alias"]),
    ("python object tag", "config: !!python/object/apply:os.system ['id']\n", ["not valid YAML"]),
]


@pytest.mark.parametrize(("case", "data", "words"), FILES, ids=[c[0] for c in FILES])
def test_each_unreadable_file_is_one_clear_error_never_a_traceback(tmp_path, capsys, case, data, words):
    f = write(tmp_path, data)
    rc, err = plan_cli(f, capsys)
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {f}: "), err
    for w in words:
        assert w in err, f"{case}: {w!r} missing from {err!r}"
    assert len(err) < 1000


def test_a_yaml_alias_bomb_is_refused_from_the_event_stream_without_expanding_it(tmp_path, capsys):
    bomb = ["config:", "  a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    bomb += [f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    bomb += ["  wasm-shim-fleet:shims: *a9"]
    text = "\n".join(bomb) + "\n"
    assert len(text) < 1100
    rc, err = plan_cli(write(tmp_path, text), capsys)
    assert rc == 2
    assert "2,000,000 values once YAML aliases are expanded" in err and "alias *a" in err
    assert len(err) < 1000


def test_a_few_aliases_within_the_bound_still_load(tmp_path):
    text = GOOD + "  wasm-shim-fleet:x: &r [1, 2]\n  wasm-shim-fleet:y: [*r, *r]\n"
    assert read_stack_file(write(tmp_path, text))["y"] == [[1, 2], [1, 2]]


def test_a_100_mb_file_is_refused_without_reading_it_all(tmp_path, capsys):
    f = tmp_path / "Pulumi.big.yaml"
    with open(f, "wb") as fh:
        fh.truncate(100 * 1024 * 1024)  # sparse: no disk used
    rc, err = plan_cli(f, capsys)
    assert rc == 2 and "larger than 16 MiB" in err


def test_a_fifo_without_a_writer_reads_as_empty_instead_of_blocking(tmp_path, capsys):
    f = tmp_path / "Pulumi.fifo.yaml"
    os.mkfifo(f)
    rc, err = plan_cli(f, capsys)
    assert rc == 2 and "empty" in err


def test_a_pipe_is_read_like_a_file_so_process_substitution_works(tmp_path, capsys):
    src = tmp_path / "Pulumi.src.yaml"
    src.write_text("config:\n  wasm-shim-fleet:shims: {}\n")
    r, w = os.pipe()
    os.write(w, src.read_bytes())
    os.close(w)
    try:
        rc, err = plan_cli(f"/dev/fd/{r}", capsys)
    finally:
        os.close(r)
    assert "not a regular file" not in err and "cannot read" not in err and "empty" not in err


def test_a_directory_is_refused(tmp_path, capsys):
    rc, err = plan_cli(tmp_path, capsys)
    assert rc == 2 and ("not a regular file" in err or "cannot read" in err)


def test_a_yaml_error_never_quotes_the_file_so_a_key_beside_it_stays_private(tmp_path, capsys):
    text = ("config:\n  wasm-shim-fleet:ssh:\n    privateKey: |\n      " + KEY.replace("\n", "\n      ")
            + "\n   bad: [indent\n")
    rc, err = plan_cli(write(tmp_path, text), capsys)
    assert rc == 2 and "not valid YAML" in err and "line" in err
    assert SECRET_PART not in err


def test_libyaml_parses_stack_files_when_pyyaml_has_it():
    if not yaml.__with_libyaml__:
        pytest.skip("this PyYAML was built without libyaml; the pure-Python loader is used")
    assert issubclass(config_mod._yaml_loader(), yaml.CSafeLoader)


def test_duplicate_keys_are_refused_by_the_pure_python_loader_too(tmp_path, monkeypatch):
    monkeypatch.delattr(yaml, "CSafeLoader")
    f = write(tmp_path, GOOD + "  wasm-shim-fleet:shims: {}\n")
    with pytest.raises(StackFileError, match="already set at line 2"):
        read_stack_file(f)


def test_merge_keys_may_override_what_they_merge(tmp_path):
    text = GOOD + "  wasm-shim-fleet:x:\n    base: &b {a: 1, b: 2}\n    over: {<<: *b, b: 3}\n"
    assert read_stack_file(write(tmp_path, text))["x"]["over"] == {"a": 1, "b": 3}


def test_a_file_of_too_many_plain_values_is_refused_naming_the_line_of_the_value_past_the_bound(tmp_path, capsys,
                                                                                                 monkeypatch):
    monkeypatch.setattr(config_mod, "MAX_VALUES", 20)
    text = GOOD + "  wasm-shim-fleet:x: [" + ", ".join(str(i) for i in range(30)) + "]\n"
    rc, err = plan_cli(write(tmp_path, text), capsys)
    assert rc == 2 and re.search(r"line \d+: value takes the file past 20 values once YAML aliases are expanded",
                                 err), err


def test_a_yaml_error_says_what_the_parser_was_reading_when_it_found_the_problem(tmp_path, capsys):
    rc, err = plan_cli(write(tmp_path, GOOD + "  wasm-shim-fleet:x: {a: [1, 2\n"), capsys)
    assert rc == 2 and "(while parsing a flow sequence)" in err, err
