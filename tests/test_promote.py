"""`promote` carries pins from one stack file to the next, edits only what it must, and stops unsafe steps."""

from __future__ import annotations

import difflib
import io
from pathlib import Path

import pytest
import yaml

from components.core.config import read_stack_file
from components.core.promote import promote
from tests.conftest import SHA, pool, release, stack, write_stack
from tests.conftest import cli as run

URL = "https://example.org/slight-{}.tar.gz"

# A target stack as a person keeps it: comments everywhere, flow and block lists, a secret, a pool of its own.
PROD = """\
# Production: pins arrive by `python -m components promote`, nodes are edited by hand.
encryptionsalt: v1:c2FsdA==:v1:AAAA
config:
  wasm-shim-fleet:runtime: wasmtime
  # Every artifact prod may install; prod mirrors nothing, urls are upstream's.
  wasm-shim-fleet:shims:
    slight:
      - version: "1.2.3"   # first release we ran
        url: https://example.org/slight-1.2.3.tar.gz
        sha256: {sha123}
        binary: containerd-shim-slight-v1
  wasm-shim-fleet:nodePools:
    - name: a   # rack 1, the big one
      containerd: containerd-2
      releases: [slight@1.2.3]
      nodes:
        - {{name: prod-a-1, host: 192.0.2.10, hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE5vZGVLZXk"}}   # spare PSU
        - {{name: prod-a-2, host: 192.0.2.11, hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE5vZGVLZXk"}}
    - name: b
      releases:
        - slight@1.2.3   # canary pool
      nodes:
        - name: prod-b-1
          host: 192.0.2.20
          hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE5vZGVLZXk"
    # Exists only in prod: promotion never touches it.
    - name: legacy
      releases: [slight@1.2.3]
      nodes:
        - {{name: prod-legacy-1, host: 192.0.2.30, hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE5vZGVLZXk"}}
  wasm-shim-fleet:ssh:
    user: deploy
    port: 2222
    privateKey:
      secure: v1:AAAABBBB
  wasm-shim-fleet:deprecation:
    mode: warn   # prod: error once the first rollout has gone well
""".format(sha123=SHA["1.2.3"])


def dev(pools, versions=("1.2.3", "1.2.4"), **extra):
    """A dev stack: local transport, other node names, same pool names."""
    raw = stack(pools, versions=versions, **extra)
    for p in raw["nodePools"]:
        p["transport"] = "local"
    return raw


def dev_pool(name, releases, **extra):
    return pool(name, releases, [f"dev-{name}"], **extra)


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


@pytest.fixture
def prod(tmp_path) -> Path:
    f = tmp_path / "Pulumi.prod.yaml"
    f.write_text(PROD)
    return f


def bump_both():
    return dev([dev_pool("a", ["slight@1.2.3", "slight@1.2.4"]), dev_pool("b", ["slight@1.2.3", "slight@1.2.4"])])


# ------------------------------------------------------------------------------------------ the edit
def test_the_unedited_file_round_trips_byte_for_byte(prod):
    result = promote(dev([dev_pool("a", ["slight@1.2.3"]), dev_pool("b", ["slight@1.2.3"])]), PROD)
    assert result.edits == [] and result.text == PROD and result.notes == []


def test_promotion_changes_only_pin_lines_and_adds_the_catalog_entry():
    result = promote(bump_both(), PROD)
    assert not result.refused, (result.errors, result.diff.unsafe)
    assert changed_lines(PROD, result.text) == [
        '+      - version: "1.2.4"',
        "+        url: https://example.org/slight-1.2.4.tar.gz",
        f"+        sha256: {SHA['1.2.4']}",
        "+        binary: containerd-shim-slight-v1",
        "-      releases: [slight@1.2.3]",
        "+      releases: [slight@1.2.3, slight@1.2.4]",
        "+        - slight@1.2.4",
    ]
    # Every comment of the target survives, the pool's comment on the pin it keeps included.
    for line in PROD.splitlines():
        if "#" in line:
            assert line in result.text.splitlines()


def test_what_belongs_to_the_target_stays():
    result = promote(bump_both(), PROD)
    after = read_stack_file_text(result.text)
    before = read_stack_file_text(PROD)
    for key in ("ssh", "runtime", "deprecation"):
        assert after[key] == before[key]
    for p_after, p_before in zip(after["nodePools"], before["nodePools"], strict=True):
        assert p_after["nodes"] == p_before["nodes"]
        assert p_after.get("containerd") == p_before.get("containerd")
        assert "transport" not in p_after  # dev's transport: local did not travel
    assert after["nodePools"][2] == before["nodePools"][2]  # the prod-only pool


def read_stack_file_text(text: str) -> dict:
    return {k.split(":", 1)[1]: v for k, v in yaml.safe_load(text)["config"].items()}


def test_the_output_uses_the_words_of_diff():
    result = promote(bump_both(), PROD)
    assert "pool a: ~ releases slight@1.2.3 -> slight@1.2.3, slight@1.2.4" in result.edits
    assert any(e.startswith("catalog: + slight@1.2.4") for e in result.edits)
    words = result.diff.words()
    assert "  nodes prod-a-1, prod-a-2:\n    + label wasmtime-slight-v1-2-4\n" in words
    assert "+ runtimeClass wasmtime-slight-v1-2-4" in words
    assert "node prod-legacy-1" not in words


def test_retiring_is_added_after_releases_and_removed_when_the_source_has_none():
    step1 = dev([dev_pool("a", ["slight@1.2.4"], retiring=["slight@1.2.3"]), dev_pool("b", ["slight@1.2.3"])])
    text1 = promote(dev([dev_pool("a", ["slight@1.2.3", "slight@1.2.4"]), dev_pool("b", ["slight@1.2.3"])]),
                    PROD).text
    r1 = promote(step1, text1)
    assert not r1.refused
    assert changed_lines(text1, r1.text) == ["-      releases: [slight@1.2.3, slight@1.2.4]",
                                             "+      releases: [slight@1.2.4]",
                                             "+      retiring: [slight@1.2.3]"]
    r2 = promote(dev([dev_pool("a", ["slight@1.2.4"]), dev_pool("b", ["slight@1.2.3"])]), r1.text)
    assert not r2.refused
    assert changed_lines(r1.text, r2.text) == ["-      retiring: [slight@1.2.3]"]


def test_a_catalog_entry_with_the_same_bytes_keeps_the_targets_url():
    mirrored = PROD.replace("https://example.org/slight-1.2.3", "https://mirror.prod.example/slight-1.2.3")
    result = promote(bump_both(), mirrored)
    assert "https://mirror.prod.example/slight-1.2.3.tar.gz" in result.text
    assert not any("~ slight@1.2.3" in e for e in result.edits)


def test_other_bytes_for_an_installed_version_are_refused():
    src = bump_both()
    src["shims"]["slight"][0]["sha256"] = "9" * 64
    result = promote(src, PROD)
    assert "catalog: ~ slight@1.2.3: sha256 aaaaaaaaaaaa… -> 999999999999…, " \
           "https://example.org/slight-1.2.3.tar.gz" in result.edits
    assert result.refused
    assert {u.name for u in result.diff.unsafe} == {"binary containerd-shim-slight-v1-2-3-v1"}


def test_pools_only_in_the_source_are_reported_as_needing_nodes():
    src = dev([dev_pool("a", ["slight@1.2.3"]), dev_pool("b", ["slight@1.2.3"]), dev_pool("edge", ["slight@1.2.4"])])
    result = promote(src, PROD)
    assert not result.refused and result.edits == []
    assert any(n.startswith("pool edge exists only in the source: it needs nodes in the target") for n in result.notes)


@pytest.mark.parametrize("offset", [0, 2])
def test_the_files_own_indentation_is_kept(offset):
    """PyYAML and some editors write lists flush with their key (offset 0), others indent them (offset 2)."""
    from ruamel.yaml import YAML

    doc = {"config": {f"wasm-shim-fleet:{k}": v for k, v in stack([pool("a", ["slight@1.2.3"], ["node-a"])]).items()}}
    if offset == 0:
        text = yaml.safe_dump(doc, sort_keys=False)
        assert "\n  - name: a\n" in text
    else:
        y = YAML()
        y.indent(mapping=2, sequence=4, offset=2)
        out = io.StringIO()
        y.dump(doc, out)
        text = out.getvalue()
        assert "\n    - name: a\n" in text
    result = promote(stack([pool("a", ["slight@1.2.3", "slight@1.2.4"], ["node-x"])]), text)
    assert not result.refused and result.notes == []
    dash = " " * (4 + 2 * offset) + "- "
    assert changed_lines(text, result.text) == [f"+{dash}slight@1.2.4"]


# ----------------------------------------------------------------------------------- refusing steps
def test_an_unsafe_step_is_refused(tmp_path, prod):
    # Dropping 1.2.3 while pool a's nodes are labelled for it: diff calls that unsafe.
    src = write_stack(tmp_path / "Pulumi.dev.yaml", dev([dev_pool("a", ["slight@1.2.4"]),
                                                         dev_pool("b", ["slight@1.2.3"])]))
    r = run("promote", str(src), str(prod), "--write")
    assert r.returncode == 2
    assert "UNSAFE nodes prod-a-1, prod-a-2 (pool a): handler slight-v1-2-3" in r.stdout
    assert f"promote: {prod} was not changed" in r.stderr
    assert prod.read_text() == PROD


def test_the_targets_deprecation_policy_decides(tmp_path, prod):
    # N-1 is retiring (unlabelled), so dropping it is safe for diff but drops N-1 while adding N.
    versions = ("1.2.3", "1.2.4", "2.0.0")
    start = dev([dev_pool("a", ["slight@1.2.3"], retiring=["slight@1.2.4"]), dev_pool("b", ["slight@1.2.3"])],
                versions=versions)
    staged = promote(start, PROD).text
    src = write_stack(tmp_path / "Pulumi.dev.yaml", dev([dev_pool("a", ["slight@1.2.3", "slight@2.0.0"]),
                                                         dev_pool("b", ["slight@1.2.3"])], versions=versions))
    prod.write_text(staged)
    r = run("promote", str(src), str(prod))
    assert r.returncode == 0, r.stderr
    assert "warning: nodePools[0].releases: pool 'a' adds slight@2.0.0 and in the same step drops slight@1.2.4" \
        in r.stderr
    prod.write_text(staged.replace("mode: warn", "mode: error"))
    r = run("promote", str(src), str(prod), "--write")
    assert r.returncode == 2
    assert "error: nodePools[0].releases" in r.stderr and "deprecation policy" in r.stderr
    assert prod.read_text() == staged.replace("mode: warn", "mode: error")


def test_errors_in_either_file_stop_before_anything(tmp_path, prod):
    bad = dev([dev_pool("a", ["slight@9.9.9"])])
    src = write_stack(tmp_path / "Pulumi.dev.yaml", bad)
    r = run("promote", str(src), str(prod), "--write")
    assert r.returncode == 2
    assert "nodePools[0].releases[0]" in r.stderr and "nothing was changed" in r.stderr
    assert prod.read_text() == PROD


# ----------------------------------------------------------------------------------- the command
def test_dry_run_prints_and_changes_nothing_then_write_edits(tmp_path, prod):
    src = write_stack(tmp_path / "Pulumi.dev.yaml", bump_both())
    r = run("promote", str(src), str(prod))
    assert r.returncode == 0, r.stderr
    assert "pool a: ~ releases slight@1.2.3 -> slight@1.2.3, slight@1.2.4" in r.stdout
    assert "  node prod-b-1:\n    + label wasmtime-slight-v1-2-4\n" in r.stdout
    assert "dry run" in r.stderr
    assert prod.read_text() == PROD
    r = run("promote", str(src), str(prod), "--write")
    assert r.returncode == 0, r.stderr
    assert f"promote: wrote {prod}" in r.stderr
    assert read_stack_file(prod)["nodePools"][1]["releases"] == ["slight@1.2.3", "slight@1.2.4"]
    r = run("promote", str(src), str(prod), "--write")
    assert r.returncode == 0
    assert "No changes" in r.stdout


def test_a_bump_travels_dev_to_staging_to_prod_one_safe_step_at_a_time(tmp_path, prod):
    """The promotion story: bump in dev, then promote each step to staging and prod with one command each."""
    staging = tmp_path / "Pulumi.staging.yaml"
    staging.write_text(PROD.replace("prod-", "staging-"))
    steps = [
        [dev_pool("a", ["slight@1.2.3", "slight@1.2.4"]), dev_pool("b", ["slight@1.2.3", "slight@1.2.4"])],
        [dev_pool("a", ["slight@1.2.4"], retiring=["slight@1.2.3"]),
         dev_pool("b", ["slight@1.2.4"], retiring=["slight@1.2.3"])],
        [dev_pool("a", ["slight@1.2.4"]), dev_pool("b", ["slight@1.2.4"])],
    ]
    src = tmp_path / "Pulumi.dev.yaml"
    for pools in steps:
        write_stack(src, dev(pools))
        for target in (staging, prod):
            r = run("promote", str(src), str(target), "--write")
            assert r.returncode == 0, r.stdout + r.stderr
    final = read_stack_file(prod)
    assert [p["releases"] for p in final["nodePools"]] == [["slight@1.2.4"], ["slight@1.2.4"], ["slight@1.2.3"]]
    assert all("retiring" not in p for p in final["nodePools"])
    assert [e["version"] for e in final["shims"]["slight"]] == ["1.2.3", "1.2.4"]  # legacy still runs 1.2.3
    text = prod.read_text()
    assert "# canary pool" not in text  # its pin (1.2.3) left pool b, and its comment with it
    assert "# rack 1, the big one" in text and "# spare PSU" in text and "mode: warn   # prod" in text


def test_new_shims_and_versions_are_inserted_in_version_order():
    src = dev([dev_pool("a", ["slight@1.2.3", "slight@1.2.4"]), dev_pool("b", ["slight@1.2.3", "spin@0.2.0"])],
              versions=("1.2.3", "1.2.4"))
    src["shims"]["spin"] = [release("0.2.0", shim="spin")]
    text = PROD.replace('version: "1.2.3"', 'version: "1.2.5"').replace("slight@1.2.3", "slight@1.2.5") \
        .replace("slight-1.2.3", "slight-1.2.5").replace(SHA["1.2.3"], SHA["1.2.5"])
    # Prod runs 1.2.5 only; dev's pools ask for 1.2.3 and 1.2.4 (a downgrade: refused, but the text shows the order).
    result = promote(src, text)
    versions = [e["version"] for e in read_stack_file_text(result.text)["shims"]["slight"]]
    assert versions == ["1.2.3", "1.2.4", "1.2.5"]
    assert read_stack_file_text(result.text)["shims"]["spin"][0]["version"] == "0.2.0"
