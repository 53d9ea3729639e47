"""Node scripts and the containerd handler block: golden files, and the scripts run for real against a node
root in a temporary folder with only sh, coreutils, tar and gzip on PATH (no containerd: restarts are `:`).

Regenerate the golden files with `UPDATE_GOLDEN=1 venv/bin/python -m pytest tests/test_nodescript.py`
and review the diff.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components.core import nodescript
from components.core.containerd import BEGIN
from components.core.flavors import FLAVORS
from components.core.kit_graph import kit_stage_dir, node_resources
from components.core.nodescript_cli import node_script_main
from components.core.plan import plan_from_config
from tests.conftest import assert_kit_block, kit_config, split_block, write_stack
from tests.integration.helpers import (
    GOLDEN,
    INPUTS,
    debug_kit,
    install_kit,
    last_line,
    minimal_path,
    run_script,
    sample_node,
    sample_raw,
    snapshot,
)

UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
GOLDEN_SCRIPTS = GOLDEN / "nodescript"
#: The config file each flavor starts from in these tests (None: the file does not exist yet).
INPUT = {
    "containerd-legacy": INPUTS / "containerd-legacy.toml",  # version 1, no final newline
    "containerd-1": INPUTS / "containerd-1.toml",  # `containerd config default` of containerd 1.6
    "containerd-2": INPUTS / "containerd-2.toml",  # `containerd config default` of containerd 2.2
    "k3s": None,  # no template yet: the script creates it
    "rke2": INPUTS / "rke2.toml.tmpl",  # a template with a runtime added by hand
    "k3s-2": None,  # containerd 2.x: config-v3.toml.tmpl, created by the script
    "rke2-2": None,
    "microk8s": INPUTS / "microk8s-containerd-template.toml",
    "k0s": None,  # our own drop-in, created by the script
}


def golden(path: Path, actual: str) -> None:
    """`actual` must equal the golden file. With UPDATE_GOLDEN=1 a golden file that differs (or is missing) is
    rewritten, and the test still fails, naming it: review the diff, then run again without UPDATE_GOLDEN."""
    before = path.read_text() if path.exists() else None
    if UPDATE and before != actual:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
        pytest.fail(f"{path} rewritten (UPDATE_GOLDEN=1): review the diff, then run the tests again without it")
    assert before is not None, f"{path} is missing: run with UPDATE_GOLDEN=1"
    assert actual == before, f"{path} differs: review, then regenerate with UPDATE_GOLDEN=1"


def config_name(flavor: str) -> str:
    return Path(FLAVORS[flavor].config_path).name


def seed(root: Path, flavor: str, text: str | None = None) -> Path:
    """A node root whose config file is the flavor's test input (or `text`), with the node kit delivered."""
    install_kit(root)
    cfg = root / FLAVORS[flavor].config_path.lstrip("/")
    cfg.parent.mkdir(parents=True, exist_ok=True)
    if text is not None:
        cfg.write_text(text)
    elif INPUT[flavor] is not None:
        shutil.copyfile(INPUT[flavor], cfg)
    return cfg


@pytest.fixture
def path(tmp_path: Path) -> str:
    return minimal_path(tmp_path)


@pytest.fixture
def fake_socket(tmp_path: Path):
    """A listening unix socket where containerd's would be: with no ctr on PATH, that is what the script
    waits for after a restart."""
    sock_path = tmp_path / FLAVORS["containerd-1"].socket.lstrip("/")
    sock_path.parent.mkdir(parents=True, exist_ok=True)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    sock.listen()
    yield sock_path
    sock.close()


# ------------------------------------------------------------------------------------------ golden
@pytest.mark.parametrize(("version", "flavor", "original"), [
    (1, "containerd-legacy", "oom_score = 0\n"), (2, "containerd-1", "version = 2\n"),
    (3, "containerd-2", "version = 3\n")])
def test_the_kit_writes_whole_tables_per_config_version(version: int, flavor: str, original: str,
                                                        tmp_path: Path) -> None:
    node = sample_node()
    text = kit_config(node.handlers, tmp_path, flavor, original)
    assert_kit_block(text, original, node.handlers, version)
    golden(GOLDEN / "containerd" / f"block-v{version}.toml", split_block(text)[1])


def test_the_kit_file_holds_the_data_of_flavors_py_and_matches_its_golden_file() -> None:
    """The kit is source, not a golden file: no test writes it. Its data block must be what kit_data() generates
    (the message shows the difference and the command that writes it)."""
    source = nodescript.KIT_FILE.read_text()
    wanted = nodescript.with_kit_data(source)
    assert source == wanted, (
        "the kit's data block differs from flavors.py and containerd.py:\n"
        + "".join(difflib.unified_diff(source.splitlines(True), wanted.splitlines(True), "wsf.sh", "kit_data()"))
        + "\nwrite it with: venv/bin/python -c 'from components.core import nodescript as n; "
          "n.KIT_FILE.write_text(n.with_kit_data(n.KIT_FILE.read_text()))'")
    golden(GOLDEN_SCRIPTS / "kit.sh", nodescript.kit_text())


def test_update_golden_rewrites_a_differing_golden_file_and_fails(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "x.txt"
    target.write_text("old\n")
    monkeypatch.setattr(sys.modules[__name__], "UPDATE", True)
    with pytest.raises(pytest.fail.Exception, match="rewritten"):
        golden(target, "new\n")
    assert target.read_text() == "new\n"
    golden(target, "new\n")  # equal: nothing to rewrite, the test passes
    monkeypatch.setattr(sys.modules[__name__], "UPDATE", False)
    with pytest.raises(AssertionError, match="differs"):
        golden(target, "newer\n")
    assert target.read_text() == "new\n"


def pieces(node, kit_file: str = "/srv/project/components/core/kit/wsf.sh") -> dict[str, str]:
    binary = node.binaries["containerd-shim-slight-v1-3-0-v1"]
    return {
        "install_binary.sh": nodescript.install_binary_script(node, binary),
        "remove_binary.sh": nodescript.remove_binary_script(node, binary),
        "apply_table.sh": nodescript.apply_table_script(node),
        "remove_table.sh": nodescript.remove_table_script(node),
        "kit_copy.sh": nodescript.kit_copy_script(node, kit_file, sha="0" * 64),
        "kit_remove.sh": nodescript.kit_remove_script(node),
    }


def test_the_per_resource_scripts_match_golden_files() -> None:
    for name, text in pieces(sample_node("containerd-1", urls="https")).items():
        golden(GOLDEN_SCRIPTS / "pieces" / name, text)


@pytest.mark.parametrize("flavor", sorted(FLAVORS))
def test_every_resource_script_is_at_most_40_lines_and_ships_no_test_hook(flavor: str) -> None:
    node = sample_node(flavor, urls="https")
    for r in node_resources("fleet-a", node):
        for text in (r.create, r.update, r.delete):
            if text is not None:
                assert len(text.splitlines()) <= 40, (r.name, text)
    for text in [*pieces(node).values(), nodescript.kit_text(), nodescript.install_script(node)]:
        assert "kill -9" not in text and "KILL_AT" not in text


def test_only_the_table_scripts_change_when_the_table_does() -> None:
    """A binary's commands, and the table's removal, must not re-run when another release joins the node."""
    small = sample_node("containerd-1", releases=("slight@1.2.3",))
    big = sample_node("containerd-1")
    binary = small.binaries["containerd-shim-slight-v1-2-3-v1"]
    assert nodescript.install_binary_script(small, binary) == nodescript.install_binary_script(big, binary)
    assert nodescript.remove_binary_script(small, binary) == nodescript.remove_binary_script(big, binary)
    assert nodescript.remove_table_script(small) == nodescript.remove_table_script(big)
    assert nodescript.apply_table_script(small) != nodescript.apply_table_script(big)


@pytest.mark.parametrize("flavor", sorted(FLAVORS))
def test_installed_config_keeps_the_original_bytes_and_adds_one_block_of_the_nodes_tables(
        flavor: str, tmp_path: Path, path: str) -> None:
    node = sample_node(flavor)
    cfg = seed(tmp_path, flavor)
    result = run_script(nodescript.install_script(node), tmp_path, path=path)
    assert result.returncode == 0, result.stderr
    assert last_line(result.stdout) == "changed"
    flv = FLAVORS[flavor]
    original = INPUT[flavor].read_text() if INPUT[flavor] else None
    assert_kit_block(cfg.read_text(), original, node.handlers, flv.config_version,
                     flv.base_for(flv.config_version) or "")
    golden(GOLDEN_SCRIPTS / flavor / f"{config_name(flavor)}.after", cfg.read_text())


# --------------------------------------------------------------------------------------- behaviour
@pytest.mark.parametrize("shell", ["sh", "bash"])
@pytest.mark.parametrize("flavor", sorted(FLAVORS))
def test_install_is_idempotent_and_uninstall_restores_the_original_bytes(
        flavor: str, shell: str, tmp_path: Path, path: str) -> None:
    node = sample_node(flavor)
    cfg = seed(tmp_path, flavor)
    before = cfg.read_bytes() if cfg.exists() else None
    first = run_script(nodescript.install_script(node), tmp_path, path=path, shell=shell)
    assert first.returncode == 0, first.stderr
    bindir = tmp_path / "usr/local/bin"
    for name in node.binaries:
        assert os.stat(bindir / name).st_mode & 0o777 == 0o755
    assert (bindir / "containerd-shim-slight-v1-2-3-v1").read_text().startswith("#!/bin/sh")
    assert not list(bindir.glob(".*")), "no temporary file may stay behind"
    snap = snapshot(tmp_path, ignore=("minimal-bin",))
    second = run_script(nodescript.install_script(node), tmp_path, path=path, shell=shell)
    assert second.returncode == 0, second.stderr
    assert last_line(second.stdout) == "unchanged"
    assert snapshot(tmp_path, ignore=("minimal-bin",)) == snap, "a re-run with nothing to do changes no byte"
    gone = run_script(nodescript.uninstall_script(node), tmp_path, path=path, shell=shell)
    assert gone.returncode == 0, gone.stderr
    assert last_line(gone.stdout) == "changed"
    if before is None:
        assert not cfg.exists(), "a template the script created is removed again"
    else:
        assert cfg.read_bytes() == before
    assert not list(bindir.iterdir())
    state = tmp_path / "var/lib/wasm-shim-fleet"
    assert sorted(p.name for p in state.rglob("*") if p.is_file()) == []
    again = run_script(nodescript.uninstall_script(node), tmp_path, path=path, shell=shell)
    assert (again.returncode, last_line(again.stdout)) == (0, "unchanged")


def test_a_changed_table_replaces_the_block_in_place_and_keeps_the_rest(tmp_path: Path, path: str) -> None:
    cfg = seed(tmp_path, "containerd-1")
    original = cfg.read_text()
    big = sample_node("containerd-1")
    small = sample_node("containerd-1", releases=("slight@1.2.3",))
    assert run_script(nodescript.install_script(big), tmp_path, path=path).returncode == 0
    result = run_script(nodescript.apply_table_script(small), tmp_path, path=path)
    assert result.returncode == 0, result.stderr
    assert_kit_block(cfg.read_text(), original, small.handlers, 2)
    # the binary of a release that left the table can now go; one still named by the table cannot
    gone = run_script(nodescript.remove_binary_script(big, big.binaries["containerd-shim-spin-v0-3-0-v1"]),
                      tmp_path, path=path)
    assert gone.returncode == 0, gone.stderr
    kept = run_script(nodescript.remove_binary_script(big, big.binaries["containerd-shim-slight-v1-2-3-v1"]),
                      tmp_path, path=path)
    assert kept.returncode != 0
    assert "refusing to remove containerd-shim-slight-v1-2-3-v1" in kept.stderr
    assert (tmp_path / "usr/local/bin/containerd-shim-slight-v1-2-3-v1").exists()


def test_a_node_without_handlers_gets_its_table_removed(tmp_path: Path, path: str) -> None:
    cfg = seed(tmp_path, "containerd-1")
    original = cfg.read_bytes()
    node = sample_node("containerd-1")
    assert run_script(nodescript.install_script(node), tmp_path, path=path).returncode == 0
    empty = sample_node("containerd-1", releases=())
    result = run_script(nodescript.apply_table_script(empty), tmp_path, path=path)
    assert result.returncode == 0, result.stderr
    assert cfg.read_bytes() == original


@pytest.mark.parametrize(("flavor", "text", "fits"), [
    ("containerd-1", "[plugins.cri.containerd]\n  snapshotter = \"overlayfs\"\n", "containerd-legacy"),
    ("containerd-legacy", "version = 2\n[plugins]\n", "containerd-1 or k3s or rke2"),
    ("containerd-1", "version = 3 # containerd 2.x\n\n[plugins]\n", "containerd-2"),
    ("containerd-2", "# comment\nversion=1\nimports = [\n  \"/a.toml\",\n]\n[plugins]\n", "containerd-legacy"),
])
def test_a_config_of_another_version_is_refused_naming_the_flavor_that_fits(
        flavor: str, text: str, fits: str, tmp_path: Path, path: str) -> None:
    seed(tmp_path, flavor, text)
    snap = snapshot(tmp_path, ignore=("minimal-bin",))
    result = run_script(nodescript.apply_table_script(sample_node(flavor)), tmp_path, path=path)
    assert result.returncode == 1
    assert "config version" in result.stderr and fits in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    after = snapshot(tmp_path, ignore=("minimal-bin", "var"))
    assert after == {k: v for k, v in snap.items() if not k.startswith("var")}


@pytest.mark.parametrize(("old", "new", "verb", "rule"), [
    # a handler glob the kit took before: '*' and ']' would write TOML of the caller's choosing
    ("'slight-v1-2-3=io.containerd.slight-v1-2-3.v1'", "'slight*]=io.containerd.slight-v1-2-3.v1'",
     "apply-table", "handler=io.containerd.<name>.v<N>"),
    ("'spin=io.containerd.spin-v0-3-0.v1'", "'spin=io.containerd.spin-v0-3-0.v1 x'", "apply-table",
     "handler=io.containerd.<name>.v<N>"),
    # a binary name that leaves /usr/local/bin
    ("install-binary \\\n    'containerd-shim-spin-v0-3-0-v1'",
     "install-binary \\\n    '../../../etc/cron.d/containerd-shim-x-v1'",
     "install-binary", "a shim binary name containerd-shim-<name>-v<N>"),
    # an archive member that leaves the archive's folder
    ("'containerd-shim-slight-v1'", "'../containerd-shim-slight-v1'", "install-binary", "an archive member"),
    # a URL with a character that belongs in no URL of ours
    ("'file://", "'file://$HOME", "install-binary", "an https:// or file:/// URL"),
])
def test_the_kit_refuses_a_value_that_breaks_its_rule_whoever_wrote_the_script(
        old: str, new: str, verb: str, rule: str, tmp_path: Path, path: str) -> None:
    """The break-glass install script of a node, edited by hand (or an old script recorded in a state): the kit
    checks its own arguments, changes nothing and says which value breaks which rule."""
    cfg = seed(tmp_path, "containerd-1")
    original = cfg.read_bytes()
    script = nodescript.install_script(sample_node("containerd-1"))
    assert old in script
    result = run_script(script.replace(old, new, 1), tmp_path, path=path)
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"wasm-shim-fleet: error: {verb}: '") and f"is not {rule}" in line, line
    assert line.endswith("nothing was changed")
    assert cfg.read_bytes() == original
    assert not (tmp_path / "etc/cron.d").exists()
    assert not list(tmp_path.rglob("containerd-shim-x-v1"))


def test_a_size_limit_reaches_the_kit_only_when_the_catalog_sets_one() -> None:
    raw = sample_raw("containerd-1", urls="https")
    _, plan = plan_from_config(raw)
    binary = plan.node("node-a").binaries["containerd-shim-spin-v0-3-0-v1"]
    script = nodescript.install_binary_script(plan.node("node-a"), binary)
    assert nodescript.install_binary_call(script).probe == "version" and "1048576" not in script
    raw["shims"]["spin"][0]["maxBytes"] = 1048576
    _, plan = plan_from_config(raw)
    node = plan.node("node-a")
    limited = nodescript.install_binary_script(node, node.binaries["containerd-shim-spin-v0-3-0-v1"])
    assert limited.rstrip().endswith("'version' \\\n    '1048576'")
    assert nodescript.install_binary_call(limited).sha256 == binary.sha256  # the policy pack still reads it


def test_the_work_copies_of_a_killed_run_are_private_and_the_next_run_removes_them(tmp_path: Path, path: str) -> None:
    """What the kit writes besides its final targets (copies of containerd's config, which may hold registry
    credentials, candidates, dumps, downloads) is readable by root only, and a run killed with SIGKILL leaves
    nothing the next run does not remove."""
    cfg = seed(tmp_path, "containerd-1")
    node = sample_node("containerd-1")
    killed = run_script(nodescript.install_script(node, kit=debug_kit("config-staged")), tmp_path, path=path)
    assert killed.returncode in (-9, 137), killed.stderr
    state = tmp_path / "var/lib/wasm-shim-fleet"
    (work,) = state.glob("tmp.*")
    assert oct(state.stat().st_mode & 0o777) == "0o700"
    assert {str(p.relative_to(state)): oct(p.stat().st_mode & 0o077) for p in [work, *work.rglob("*")]} == \
        {str(p.relative_to(state)): "0o0" for p in [work, *work.rglob("*")]}
    assert (work / "config.new").exists()
    staged = cfg.parent / f".{cfg.name}.wsf-tmp"
    assert staged.exists() and staged.stat().st_mode & 0o777 == cfg.stat().st_mode & 0o777  # the config's own
    again = run_script(nodescript.install_script(node), tmp_path, path=path)
    assert again.returncode == 0, again.stderr
    assert not list(state.glob("tmp.*")) and not staged.exists()
    assert (tmp_path / "usr/local/bin").stat().st_mode & 0o777 == 0o755


def test_two_runs_that_find_a_stale_lock_never_both_take_it(tmp_path: Path, path: str) -> None:
    """Without flock the lock is a folder holding its owner's pid, broken once that pid is gone. Run B finds it
    stale and is slow to break it; run A, started meanwhile, finds it stale too. A must not end up holding the
    lock while B breaks it under A (B breaking it a second time)."""
    from concurrent.futures import ThreadPoolExecutor

    seed(tmp_path, "containerd-1")
    node = sample_node("containerd-1", releases=("slight@1.2.3",))
    (binary,) = node.binaries.values()
    assert run_script(nodescript.install_binary_script(node, binary), tmp_path, path=path).returncode == 0
    state = tmp_path / "var/lib/wasm-shim-fleet"
    gone = subprocess.Popen(["true"])
    gone.wait()
    (state / "lock.d").mkdir()
    (state / "lock.d/pid").write_text(f"{gone.pid}\n")
    wrap = tmp_path / "wrap"
    wrap.mkdir()
    (wrap / "mv").write_text('#!/bin/sh\nfor a; do case $a in */lock.d) [ -z "${SLOW_MV:-}" ] || sleep 2 ;; esac; '
                             f'done\nexec {shutil.which("mv")} "$@"\n')
    (wrap / "mv").chmod(0o755)
    sock_path = tmp_path / "run/containerd/containerd.sock"  # "containerd answers" (no ctr on this PATH)
    sock_path.parent.mkdir(parents=True)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    log = tmp_path / "held.log"
    # A's restart runs inside A's lock: is the lock still A's three seconds later?
    restart = (f'sleep 3; if [ "$(cat {state}/lock.d/pid 2>/dev/null)" = "$PPID" ]; then echo held; '
               f"else echo stolen; fi >> {log}")
    try:
        with ThreadPoolExecutor(2) as pool:
            b = pool.submit(run_script, nodescript.install_binary_script(node, binary), tmp_path,
                            path=f"{wrap}:{path}", env={"SLOW_MV": "1"})
            time.sleep(0.5)
            a = pool.submit(run_script, nodescript.apply_table_script(node), tmp_path, path=f"{wrap}:{path}",
                            restart=restart)
            results = [b.result(), a.result()]
    finally:
        sock.close()
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    assert log.read_text() == "held\n"
    assert not (state / "lock.d").exists() and not (state / "lock.break.d").exists()


def test_a_config_changed_after_an_interrupted_run_is_not_undone_by_the_next_rollback(tmp_path: Path,
                                                                                     path: str) -> None:
    """config.prev, left by a run killed after it saved it, is the rollback target of the next run only while
    the config is what that run left; an edit made since is what a failure must put back."""
    cfg = seed(tmp_path, "containerd-1")
    first = sample_node("containerd-1", releases=("slight@1.2.3",))
    assert run_script(nodescript.install_script(first), tmp_path, path=path).returncode == 0
    second = sample_node("containerd-1")
    for b in second.binaries.values():
        assert run_script(nodescript.install_binary_script(second, b), tmp_path, path=path).returncode == 0
    install_kit(tmp_path, debug_kit("config-written"))
    killed = run_script(nodescript.apply_table_script(second), tmp_path, path=path)
    assert killed.returncode in (-9, 137), killed.stderr
    install_kit(tmp_path)
    assert (tmp_path / "var/lib/wasm-shim-fleet/config.prev").exists()
    edited = cfg.read_text() + "# the operator's registry mirror, added after the interrupted run\n"
    cfg.write_text(edited)
    failed = run_script(nodescript.apply_table_script(second), tmp_path, path=path, restart="false")
    assert failed.returncode == 1
    assert "was changed since an interrupted run saved" in failed.stdout
    assert cfg.read_text() == edited


def test_a_symlinked_config_is_followed_as_the_node_sees_it_and_never_out_of_the_node_root(
        tmp_path: Path, path: str) -> None:
    root = tmp_path / "root"
    install_kit(root)
    text = (INPUTS / "containerd-1.toml").read_text()
    outside = tmp_path / "outside/config.toml"
    outside.parent.mkdir()
    outside.write_text(text)
    link = root / "etc/containerd/config.toml"
    link.parent.mkdir(parents=True)
    node = sample_node("containerd-1")
    link.symlink_to(os.path.relpath(outside, link.parent))  # ../../../outside/config.toml
    escaped = run_script(nodescript.install_script(node), root, path=path)
    assert escaped.returncode == 1
    assert f"leads to {outside}, outside the node root {root}" in escaped.stderr
    link.unlink()
    link.symlink_to(str(outside))  # an absolute target is a path on the node: under the node root
    absent = run_script(nodescript.install_script(node), root, path=path)
    assert absent.returncode == 1 and "whose folder does not exist on this node" in absent.stderr
    assert outside.read_text() == text
    real = root / "etc/containerd/real.toml"
    real.write_text(text)
    link.unlink()
    link.symlink_to("/etc/containerd/real.toml")
    followed = run_script(nodescript.install_script(node), root, path=path)
    assert followed.returncode == 0, followed.stderr
    assert link.is_symlink() and BEGIN in real.read_text()


def test_the_new_config_is_flushed_to_disk_before_it_replaces_the_old_one(tmp_path: Path, path: str) -> None:
    cfg = seed(tmp_path, "containerd-1")
    wrap = tmp_path / "wrap"
    wrap.mkdir()
    log = tmp_path / "sync.log"
    (wrap / "sync").write_text(f'#!/bin/sh\nif [ -e "${{2:-}}" ]; then p=present; else p=absent; fi\n'
                               f'echo "$* $p" >> {log}\nexec {shutil.which("sync")} "$@"\n')
    (wrap / "sync").chmod(0o755)
    result = run_script(nodescript.install_script(sample_node("containerd-1")), tmp_path, path=f"{wrap}:{path}")
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    staged = f"-- {cfg.parent}/.{cfg.name}.wsf-tmp present"
    assert staged in calls and f"-- {cfg.parent} present" in calls
    assert calls.index(staged) < calls.index(f"-- {cfg.parent} present")


CORPUS = Path(__file__).resolve().parent / "corpus"


@pytest.mark.parametrize("flavor", ["containerd-1", "containerd-2"])
def test_a_version_2_file_with_containerd_2_plugin_ids_is_refused_when_no_containerd_can_say_where_it_reads_it(
        flavor: str, tmp_path: Path, path: str) -> None:
    """AKS's containerd 2 config says version 2 but uses the 2.x plugin ids: containerd 2 reads its runtimes from
    io.containerd.cri.v1.runtime, 1.x never does. Without a containerd on PATH to ask, neither table is safe."""
    cfg = seed(tmp_path, flavor, (CORPUS / "aks-containerd-2.toml").read_text())
    original = cfg.read_bytes()
    result = run_script(nodescript.install_script(sample_node(flavor)), tmp_path, path=path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"wasm-shim-fleet: error: {cfg} says config version 2 but uses containerd 2.x plugin ids (line 3: "
        '[plugins."io.containerd.cri.v1.images"]): containerd 2.x reads its runtimes from '
        "io.containerd.cri.v1.runtime and 1.x never does, and no containerd on this node's PATH reads the file to "
        "say which one this node runs; put the node's containerd on PATH (containerd --version), then re-run; "
        "nothing was changed")
    assert cfg.read_bytes() == original


def test_a_containerd_2_pool_writes_version_2_tables_into_a_version_2_file_of_the_1_x_plugin_ids(
        tmp_path: Path, path: str) -> None:
    """EKS's containerd 1.7 config (version 2, io.containerd.grpc.v1.cri) on a containerd 2 node: containerd 2
    migrates those tables, and would drop the file's own runtimes under io.containerd.cri.v1.runtime tables."""
    text = (CORPUS / "eks-al2023-containerd-1.7.toml").read_text()
    cfg = seed(tmp_path, "containerd-2", text)
    node = sample_node("containerd-2")
    result = run_script(nodescript.install_script(node), tmp_path, path=path)
    assert result.returncode == 0, result.stderr
    assert "not validating: no containerd on PATH that reads config version 2" in result.stdout
    assert_kit_block(cfg.read_text(), text, node.handlers, 2)


@pytest.mark.parametrize(("root_config", "version"), [(None, 3), ("version = 2\n", 2), ("version = 3\n", 3)])
def test_a_k0s_drop_in_follows_the_version_of_the_config_that_imports_it(
        root_config: str | None, version: int, tmp_path: Path, path: str) -> None:
    install_kit(tmp_path)
    flavor = FLAVORS["k0s"]
    if root_config is not None:
        root = tmp_path / flavor.loaded_config_path.lstrip("/")
        root.parent.mkdir(parents=True)
        root.write_text(root_config + f'imports = ["{tmp_path}/etc/k0s/containerd.d/*.toml"]\n')
    node = sample_node("k0s")
    result = run_script(nodescript.install_script(node), tmp_path, path=path)
    assert result.returncode == 0, result.stderr
    cfg = tmp_path / flavor.config_path.lstrip("/")
    assert_kit_block(cfg.read_text(), None, node.handlers, version, f"version = {version}")
    gone = run_script(nodescript.uninstall_script(node), tmp_path, path=path)
    assert gone.returncode == 0, gone.stderr
    assert not cfg.exists()


@pytest.mark.parametrize("imports", [
    'imports = ["conf.d/*.toml"]',  # relative to the config's folder, a glob
    'imports = [\n  "/ROOT/etc/containerd/conf.d/99-other.toml", # the admin one\n]',  # several lines, a comment
])
def test_a_drop_in_that_defines_one_of_our_handlers_is_refused_naming_it(imports: str, tmp_path: Path,
                                                                         path: str) -> None:
    text = ("version = 2\n" + imports.replace("/ROOT", str(tmp_path))
            + '\n\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]\n'
            + '  runtime_type = "io.containerd.runc.v2"\n')
    cfg = seed(tmp_path, "containerd-1", text)
    dropin = tmp_path / "etc/containerd/conf.d/99-other.toml"
    dropin.parent.mkdir()
    dropin.write_text('# the admin one\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes."slight-v1-2-3"]\n'
                      '  runtime_type = "io.containerd.other.v1"\n')
    result = run_script(nodescript.install_script(sample_node("containerd-1")), tmp_path, path=path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"wasm-shim-fleet: error: refusing to add the handler table: the drop-in {dropin} line 2 (handler "
        f"slight-v1-2-3), which containerd loads with {cfg}, defines that handler's table too and containerd "
        "merges it over ours; remove that table from the drop-in or drop the handler from the pool; nothing was "
        "changed")
    assert cfg.read_text() == text


def test_a_handler_table_that_a_distribution_renders_already_is_refused_before_the_template_changes(
        tmp_path: Path, path: str) -> None:
    """k3s renders a runtime for each shim it finds on PATH (ExtraRuntimes): ours under the same name would be a
    table defined twice, which containerd refuses to start on."""
    install_kit(tmp_path)
    loaded = tmp_path / FLAVORS["k3s"].loaded_config_path.lstrip("/")
    loaded.parent.mkdir(parents=True)
    base = (CORPUS / "k3s-v2-config.toml").read_text()
    loaded.write_text(base + '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes."slight"]\n'
                             '  runtime_type = "io.containerd.slight.v1"\n')
    result = run_script(nodescript.install_script(sample_node("k3s")), tmp_path, path=path)
    assert result.returncode == 1
    line = base.count("\n") + 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"wasm-shim-fleet: error: refusing to add the handler table: {loaded}, which k3s renders, already defines "
        f'[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.slight] (line {line}) outside the '
        "wasm-shim-fleet block (containerd refuses a table defined twice); remove it or drop the handler from the "
        "pool; nothing was changed")
    assert not (tmp_path / FLAVORS["k3s"].config_path.lstrip("/")).exists()


def test_a_k3s_template_is_checked_against_the_version_of_the_config_k3s_renders(
        tmp_path: Path, path: str) -> None:
    install_kit(tmp_path)
    loaded = tmp_path / FLAVORS["k3s"].loaded_config_path.lstrip("/")
    loaded.parent.mkdir(parents=True)
    loaded.write_text("version = 3\n\n[plugins]\n")
    result = run_script(nodescript.apply_table_script(sample_node("k3s")), tmp_path, path=path)
    assert result.returncode == 1
    assert "version 3" in result.stderr and "containerd-2" in result.stderr
    assert not (tmp_path / FLAVORS["k3s"].config_path.lstrip("/")).exists()


@pytest.mark.parametrize("clash", [
    '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.slight]\n  runtime_type = "x"\n',
    "[plugins.'io.containerd.grpc.v1.cri'.containerd.runtimes.\"spin-v0-3\"]\n",
    '[ plugins . "io.containerd.grpc.v1.cri" . containerd.runtimes.slight-v1-2-3.options ]\n',
    '[plugins."io.containerd.grpc.v1.cri".containerd]\n  runtimes = { slight-v1 = { runtime_type = "x" } }\n',
    '[plugins."io.containerd.grpc.v1.cri"]\n  containerd.runtimes.slight-v1-3.runtime_type = "x"\n',
])
def test_a_table_we_would_write_that_is_defined_elsewhere_is_refused(
        clash: str, tmp_path: Path, path: str) -> None:
    seed(tmp_path, "containerd-1", "version = 2\n\n" + clash)
    snap = snapshot(tmp_path, ignore=("minimal-bin", "var"))
    result = run_script(nodescript.apply_table_script(sample_node("containerd-1")), tmp_path, path=path)
    assert result.returncode == 1, result.stdout
    assert "refusing" in result.stderr and "already defines" in result.stderr
    assert snapshot(tmp_path, ignore=("minimal-bin", "var")) == snap


def test_names_that_only_contain_ours_as_a_substring_are_not_a_clash(tmp_path: Path, path: str) -> None:
    # field notes trap 7: slight-v1-2 is a substring of slight-v1-2-3 and of slight-v1-2-3-rc
    text = ('version = 2\n\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.slight-v1-2-3-rc]\n'
            '  runtime_type = "io.containerd.slight-v1-2-3-rc.v1"\n'
            '[plugins."io.containerd.grpc.v1.cri".containerd]\n  default_runtime_name = "slight"\n')
    cfg = seed(tmp_path, "containerd-1", text)
    result = run_script(nodescript.install_script(sample_node("containerd-1")), tmp_path, path=path)
    assert result.returncode == 0, result.stderr
    assert cfg.read_text().startswith(text)


def test_a_missing_main_config_is_refused_because_runc_would_vanish(tmp_path: Path, path: str) -> None:
    result = run_script(nodescript.install_script(sample_node("containerd-1")), tmp_path, path=path)
    assert result.returncode == 1
    assert "containerd config default" in result.stderr


def test_a_wrong_sha256_changes_nothing(tmp_path: Path, path: str) -> None:
    seed(tmp_path, "containerd-1")
    snap = snapshot(tmp_path, ignore=("minimal-bin",))
    node = sample_node("containerd-1", sha_override={"slight@1.2.3": "0" * 64})  # the first binary
    result = run_script(nodescript.install_script(node), tmp_path, path=path)
    assert result.returncode == 1
    assert "sha256 mismatch" in result.stderr and "nothing was changed" in result.stderr
    after = snapshot(tmp_path, ignore=("minimal-bin",))
    assert after.pop("var/lib/wasm-shim-fleet") == (0o700, "")  # the kit's own folder, made private
    snap.pop("var/lib/wasm-shim-fleet")
    assert after == snap


def test_a_failed_download_fails_with_the_reason_and_leaves_nothing(tmp_path: Path, path: str) -> None:
    seed(tmp_path, "containerd-1")
    node = sample_node("containerd-1", url_override={"slight@1.2.3": "file:///nonexistent/slight.tar.gz"})
    result = run_script(nodescript.install_binary_script(node, node.binaries["containerd-shim-slight-v1-2-3-v1"]),
                        tmp_path, path=path)
    assert result.returncode == 1
    assert "download of file:///nonexistent/slight.tar.gz failed" in result.stderr
    assert not (tmp_path / "usr/local/bin").exists()
    assert [p.name for p in (tmp_path / "var/lib/wasm-shim-fleet").iterdir()] == ["kit"]


def test_a_binary_that_changed_on_disk_is_replaced_by_rename(tmp_path: Path, path: str) -> None:
    seed(tmp_path, "containerd-1")
    node = sample_node("containerd-1")
    binary = node.binaries["containerd-shim-slight-v1-2-3-v1"]
    assert run_script(nodescript.install_binary_script(node, binary), tmp_path, path=path).returncode == 0
    dest = tmp_path / "usr/local/bin" / binary.name
    inode = dest.stat().st_ino
    dest.write_text("tampered")
    result = run_script(nodescript.install_binary_script(node, binary), tmp_path, path=path)
    assert (result.returncode, last_line(result.stdout)) == (0, "changed")
    assert dest.read_text().startswith("#!/bin/sh") and dest.stat().st_ino != inode


@pytest.mark.parametrize("kill_at", [*nodescript.BINARY_STEPS, *nodescript.TABLE_STEPS])
def test_a_run_killed_at_any_step_converges_when_re_run(kill_at: str, tmp_path: Path, path: str) -> None:
    cfg = seed(tmp_path, "containerd-1")
    node = sample_node("containerd-1")
    killed = run_script(nodescript.install_script(node, kit=debug_kit(kill_at)), tmp_path, path=path)
    assert killed.returncode in (-9, 137), (killed.returncode, killed.stderr)
    # the mkdir lock of the dead run is still there: the re-run must break it
    assert (tmp_path / "var/lib/wasm-shim-fleet/lock.d").exists()
    again = run_script(nodescript.install_script(node), tmp_path, path=path)
    assert again.returncode == 0, again.stderr
    assert "breaking the stale lock" in again.stdout
    assert_kit_block(cfg.read_text(), INPUT["containerd-1"].read_text(), node.handlers, 2)
    assert not [p for p in tmp_path.rglob("*.wsf-tmp")]
    third = run_script(nodescript.install_script(node), tmp_path, path=path)
    assert (third.returncode, last_line(third.stdout)) == (0, "unchanged")


def test_a_held_lock_makes_the_next_command_wait_then_fail_clearly(tmp_path: Path, path: str) -> None:
    seed(tmp_path, "containerd-1")
    holder = subprocess.Popen(["sleep", "30"])
    try:
        lock = tmp_path / "var/lib/wasm-shim-fleet/lock.d"
        lock.mkdir(parents=True)
        (lock / "pid").write_text(f"{holder.pid}\n")
        result = run_script(nodescript.install_script(sample_node("containerd-1")), tmp_path, path=path,
                            env={"WSF_LOCK_WAIT": "2"})
        assert result.returncode == 1
        assert f"(pid {holder.pid}) held" in result.stderr
        assert not (tmp_path / "usr/local/bin").exists()
    finally:
        holder.kill()
        holder.wait()


def test_a_failing_restart_puts_the_previous_config_back(tmp_path: Path, path: str, fake_socket: Path) -> None:
    cfg = seed(tmp_path, "containerd-1")
    before = cfg.read_bytes()
    # A restart that fails while our block is in the file and works without it.
    restart = 'case $(cat "$WSF_NODE_ROOT/etc/containerd/config.toml") in *wasm-shim-fleet*) exit 3 ;; esac'
    result = run_script(nodescript.install_script(sample_node("containerd-1")), tmp_path, path=path,
                        restart=restart)
    assert result.returncode == 1
    assert "restored the previous config and restarted containerd on it" in result.stderr
    assert cfg.read_bytes() == before
    state = tmp_path / "var/lib/wasm-shim-fleet"
    assert not (state / "table.sha256").exists() and not (state / "config.prev").exists()


def test_the_nodes_commands_do_not_inherit_the_stacks_passphrase(tmp_path: Path, path: str,
                                                                 fake_socket: Path) -> None:
    seed(tmp_path, "containerd-1")
    seen = tmp_path.parent / f"{tmp_path.name}-restart-env"
    result = run_script(nodescript.install_script(sample_node("containerd-1")), tmp_path, path=path,
                        restart=f"env > {seen}",
                        env={"PULUMI_CONFIG_PASSPHRASE": "stack-secret", "PULUMI_CONFIG_PASSPHRASE_FILE": "/p"})
    assert result.returncode == 0, result.stderr
    env = seen.read_text()
    seen.unlink()
    assert "WSF_NODE_ROOT=" in env and "PULUMI_CONFIG_PASSPHRASE" not in env and "stack-secret" not in env


def test_relative_node_roots_and_trailing_slashes_resolve_to_the_same_files(tmp_path: Path, path: str) -> None:
    seed(tmp_path / "n", "containerd-1")
    node = sample_node("containerd-1")
    text = nodescript.with_env(nodescript.install_script(node), {"WSF_NODE_ROOT": "n//", "WSF_RESTART": ":"})
    result = subprocess.run(["sh", "-c", text], cwd=tmp_path, capture_output=True, text=True,
                            env={"PATH": path}, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "n/usr/local/bin/containerd-shim-spin-v0-3-0-v1").exists()


# ---------------------------------------------------------------------------------------- quoting
@pytest.mark.parametrize("value", ["plain", "it's", "a'b'c", "$HOME `id` $(id) \\ \" ;|&", "", "\n"])
def test_shell_quoting_round_trips_every_value(value: str) -> None:
    out = subprocess.run(["sh", "-c", f"printf %s {nodescript.shq(value)}"], capture_output=True, text=True)
    assert out.stdout == value


def test_the_restart_command_and_node_root_reach_the_script_verbatim(
        tmp_path: Path, path: str, fake_socket: Path) -> None:
    seed(tmp_path, "containerd-1")
    weird = "printf '%s' \"it's $WSF_NODE_ROOT\" > \"$WSF_NODE_ROOT/restarted\""
    node = sample_node("containerd-1", restart=weird)
    assert nodescript.script_env(node)["WSF_RESTART"] == weird
    script = nodescript.with_env(nodescript.install_script(node), {"WSF_NODE_ROOT": str(tmp_path)})
    result = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env={"PATH": path},
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "restarted").read_text() == f"it's {tmp_path}"


@pytest.mark.parametrize("flavor", sorted(FLAVORS))
def test_every_script_parses_as_posix_sh(flavor: str) -> None:
    node = sample_node(flavor)
    for script in (nodescript.install_script(node), nodescript.uninstall_script(node)):
        for shell in ("sh", "bash"):
            check = subprocess.run([shell, "-n"], input=script, capture_output=True, text=True)
            assert check.returncode == 0, check.stderr


def test_with_env_rejects_names_that_are_not_shell_variables() -> None:
    with pytest.raises(ValueError):
        nodescript.with_env("true", {"A B": "x"})


# -------------------------------------------------------------------------------------------- cli
def test_cli_prints_the_same_script_the_components_render(tmp_path: Path) -> None:
    stack_file = write_stack(tmp_path / "Pulumi.test.yaml", sample_raw("containerd-1", urls="https"))
    out, err = io.StringIO(), io.StringIO()
    assert node_script_main(str(stack_file), "node-a", "install", out, err) == 0
    assert out.getvalue() == nodescript.install_script(sample_node("containerd-1", urls="https"))
    out = io.StringIO()
    assert node_script_main(str(stack_file), "node-a", "uninstall", out, err) == 0
    assert out.getvalue() == nodescript.uninstall_script(sample_node("containerd-1", urls="https"))
    out = io.StringIO()
    assert node_script_main(str(stack_file), "node-a", "kit", out, err) == 0
    assert out.getvalue() == nodescript.kit_text()


def test_cli_lists_every_resource_with_the_exact_text_the_program_sends(tmp_path: Path) -> None:
    raw = sample_raw("containerd-1", urls="https")
    raw["nodePools"][0].update(transport="local", seedConfig="seed/config.toml")
    raw["shims"]["spin"][0]["url"] = "file:artifacts/spin"
    stack_file = write_stack(tmp_path / "Pulumi.test.yaml", raw)
    out, err = io.StringIO(), io.StringIO()
    assert node_script_main(str(stack_file), "node-a", out=out, err=err) == 0, err.getvalue()
    text = out.getvalue()
    _, plan = plan_from_config(raw, str(tmp_path))
    resources = node_resources("fleet-pool-a", plan.node("node-a"), str(tmp_path))
    assert [r.name for r in resources] == [line.split()[1] for line in text.splitlines() if line.startswith("##### ")]
    for r in resources:
        for script in (r.create, r.delete):
            if script is not None:
                assert script in text
    # relative file: URLs, node roots and seed configs resolve against the stack file's folder
    assert f"file://{tmp_path}/artifacts/spin" in text and "file:artifacts" not in text
    assert f"WSF_NODE_ROOT=${{WSF_NODE_ROOT:-'{tmp_path}/nodes/node-a'}}" in text
    assert f"'{tmp_path}/seed/config.toml'" in text
    text = text.replace(kit_stage_dir(nodescript.kit_sha256()), "~/.cache/wasm-shim-fleet/kit-stage/<kit sha256>")
    golden(GOLDEN_SCRIPTS / "node-script-resources.txt",
           text.replace(str(tmp_path), "/srv/project").replace(nodescript.kit_sha256(), "<kit sha256>"))


def test_cli_lists_the_known_nodes_for_an_unknown_one(tmp_path: Path) -> None:
    stack_file = write_stack(tmp_path / "Pulumi.test.yaml", sample_raw(nodes=("node-a", "node-b")))
    out, err = io.StringIO(), io.StringIO()
    assert node_script_main(str(stack_file), "node-z", "install", out, err) == 2
    assert "node-a, node-b" in err.getvalue() and out.getvalue() == ""


def test_cli_prints_the_plan_errors_and_no_script(tmp_path: Path) -> None:
    raw = sample_raw()
    raw["nodePools"][0]["containerd"] = "containerd-9"
    stack_file = write_stack(tmp_path / "Pulumi.test.yaml", raw)
    out, err = io.StringIO(), io.StringIO()
    assert node_script_main(str(stack_file), "node-a", "install", out, err) == 2
    assert "containerd-9" in err.getvalue() and out.getvalue() == ""


def test_cli_refuses_unknown_actions_and_unreadable_files(tmp_path: Path) -> None:
    err = io.StringIO()
    assert node_script_main(str(tmp_path / "nope.yaml"), "node-a", "install", io.StringIO(), err) == 2
    assert "cannot read" in err.getvalue()
    assert node_script_main(str(tmp_path / "nope.yaml"), "node-a", "upgrade", io.StringIO(), err) == 2


# ------------------------------------------------------------------------------------------ the kit
def test_deletes_recorded_with_one_kit_run_on_the_next(tmp_path: Path, path: str) -> None:
    """The delete texts in state name no kit: after the kit changed (a new kit delivered and selected), the
    recorded deletes run on it and the node is back to its original bytes, with one kit left."""
    cfg = seed(tmp_path, "containerd-1")
    before = cfg.read_bytes()
    node = sample_node("containerd-1")
    old_kit = nodescript.kit_text().replace("# wasm-shim-fleet node kit:", "# wasm-shim-fleet node kit (A):", 1)
    old_sha = install_kit(tmp_path, old_kit)
    recorded = [nodescript.install_binary_script(node, b) for b in node.binaries.values()]
    recorded.append(nodescript.apply_table_script(node))
    for script in recorded:
        result = run_script(script, tmp_path, path=path)
        assert result.returncode == 0, result.stderr
    new_sha = install_kit(tmp_path)
    assert new_sha != old_sha
    deletes = [nodescript.remove_table_script(node)]
    deletes += [nodescript.remove_binary_script(node, b) for b in node.binaries.values()]
    for script in deletes:
        result = run_script(script, tmp_path, path=path)
        assert result.returncode == 0, result.stderr
    assert cfg.read_bytes() == before
    assert not list((tmp_path / "usr/local/bin").iterdir())
    assert sorted(p.name for p in (tmp_path / "var/lib/wasm-shim-fleet/kit").iterdir()) == [new_sha, "selected"]


def test_a_delete_on_a_reimaged_node_has_nothing_to_do(tmp_path: Path, path: str) -> None:
    node = sample_node("containerd-1")
    cfg = seed(tmp_path, "containerd-1")
    shutil.rmtree(tmp_path / "var")  # reimaged: no kit, no state
    for script in (nodescript.remove_table_script(node),
                   nodescript.remove_binary_script(node, node.binaries["containerd-shim-spin-v0-3-0-v1"])):
        result = run_script(script, tmp_path, path=path)
        assert (result.returncode, last_line(result.stdout)) == (0, "unchanged"), result.stderr
    assert cfg.read_bytes() == INPUT["containerd-1"].read_bytes()


def test_a_missing_or_altered_kit_fails_truthfully_and_changes_nothing(tmp_path: Path, path: str) -> None:
    seed(tmp_path, "containerd-1")
    node = sample_node("containerd-1")
    assert run_script(nodescript.install_script(node), tmp_path, path=path).returncode == 0
    sha = nodescript.kit_sha256()
    kit = tmp_path / "var/lib/wasm-shim-fleet/kit" / sha / "wsf.sh"
    kit.write_text(kit.read_text() + "echo altered\n")
    snap = snapshot(tmp_path, ignore=("minimal-bin",))
    for script in (nodescript.apply_table_script(node), nodescript.remove_table_script(node)):
        result = run_script(script, tmp_path, path=path)
        assert result.returncode == 1
        assert "error: no valid node kit in " in result.stderr and "(pulumi up delivers it)" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert snapshot(tmp_path, ignore=("minimal-bin",)) == snap
    shutil.rmtree(kit.parent)  # missing: the same one line (no shell message about the file it cannot open)
    snap = snapshot(tmp_path, ignore=("minimal-bin",))
    result = run_script(nodescript.apply_table_script(node), tmp_path, path=path)
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "error: no valid node kit in " in result.stderr
    assert snapshot(tmp_path, ignore=("minimal-bin",)) == snap


def test_a_node_that_exports_node_root_is_not_redirected(tmp_path: Path, path: str) -> None:
    """Only WSF_-prefixed settings steer a script: a node's own NODE_ROOT or CONTAINERD_RESTART is ignored."""
    seed(tmp_path, "containerd-1")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_script(nodescript.install_script(sample_node("containerd-1")), tmp_path, path=path,
                        env={"NODE_ROOT": str(elsewhere), "CONTAINERD_RESTART": f"touch {elsewhere}/x"})
    assert result.returncode == 0, result.stderr
    assert list(elsewhere.iterdir()) == []


def test_the_kit_copy_delivers_checks_and_selects_the_kit(tmp_path: Path, path: str) -> None:
    node = sample_node("containerd-1")
    script = nodescript.kit_copy_script(node, str(nodescript.KIT_FILE), str(tmp_path))
    first = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env={"PATH": path})
    assert (first.returncode, last_line(first.stdout)) == (0, "changed"), first.stderr
    sha = nodescript.kit_sha256()
    kits = tmp_path / "var/lib/wasm-shim-fleet/kit"
    assert (kits / "selected").read_text() == sha + "\n"
    assert (kits / sha / "wsf.sh").read_text() == nodescript.kit_text()
    again = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env={"PATH": path})
    assert (again.returncode, last_line(again.stdout)) == (0, "unchanged")
    wrong = nodescript.kit_copy_script(node, str(nodescript.KIT_FILE), str(tmp_path), sha="1" * 64)
    bad = subprocess.run(["sh", "-c", wrong], capture_output=True, text=True, env={"PATH": path})
    assert bad.returncode == 1 and "sha256 is not " + "1" * 64 in bad.stderr
    assert (kits / "selected").read_text() == sha + "\n"


def test_a_replaced_local_kit_resource_keeps_the_kit_while_the_node_still_uses_it(tmp_path: Path, path: str) -> None:
    """Create-before-delete: the new kit resource has delivered, then the old one's delete runs. It leaves the
    kit while binaries or a table are recorded, and removes it once nothing of ours is left (destroy)."""
    seed(tmp_path, "containerd-1")
    node = sample_node("containerd-1", releases=("spin@0.3.0",))
    assert run_script(nodescript.install_script(node), tmp_path, path=path).returncode == 0
    kits = tmp_path / "var/lib/wasm-shim-fleet/kit"
    old_delete = nodescript.kit_remove_script(node, str(tmp_path))
    kept = run_script(old_delete, tmp_path, path=path)
    assert (kept.returncode, last_line(kept.stdout)) == (0, "unchanged") and "keeping the node kit" in kept.stdout
    assert (kits / "selected").exists()
    deletes = [nodescript.remove_table_script(node)]
    deletes += [nodescript.remove_binary_script(node, b) for b in node.binaries.values()]
    for script in deletes:
        assert run_script(script, tmp_path, path=path).returncode == 0
    gone = run_script(old_delete, tmp_path, path=path)
    assert (gone.returncode, last_line(gone.stdout)) == (0, "changed") and not kits.exists()


def test_containerd_2_takes_a_version_4_config_of_containerd_2_3(tmp_path: Path, path: str) -> None:
    """containerd 2.3 writes config version 4, whose runtimes table is version 3's."""
    text = ("version = 4\n\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]\n"
            "  runtime_type = 'io.containerd.runc.v2'\n")
    cfg = seed(tmp_path, "containerd-2", text)
    node = sample_node("containerd-2")
    result = run_script(nodescript.install_script(node), tmp_path, path=path)
    assert result.returncode == 0, result.stderr
    assert_kit_block(cfg.read_text(), text, node.handlers, 3)
    gone = run_script(nodescript.uninstall_script(node), tmp_path, path=path)
    assert gone.returncode == 0 and cfg.read_text() == text


def test_k3s_on_containerd_2_writes_its_v3_template_and_checks_the_rendered_version(tmp_path: Path, path: str):
    install_kit(tmp_path)
    loaded = tmp_path / FLAVORS["k3s-2"].loaded_config_path.lstrip("/")
    loaded.parent.mkdir(parents=True)
    loaded.write_text("version = 3\n\n[plugins]\n")
    node = sample_node("k3s-2")
    result = run_script(nodescript.install_script(node), tmp_path, path=path)
    assert result.returncode == 0, result.stderr
    template = tmp_path / FLAVORS["k3s-2"].config_path.lstrip("/")
    assert template.name == "config-v3.toml.tmpl"
    assert_kit_block(template.read_text(), None, node.handlers, 3, FLAVORS["k3s-2"].create_base or "")
    loaded.write_text("version = 2\n\n[plugins]\n")  # a k3s still on containerd 1.x: the other flavor fits
    refused = run_script(nodescript.apply_table_script(sample_node("k3s-2", releases=("spin@0.3.0",))), tmp_path,
                         path=path)
    assert refused.returncode == 1 and "set the pool's containerd to containerd-1 or k3s or rke2" in refused.stderr


# ------------------------------------------------------------------------------------------ probe
def probe_stack(tmp_path: Path, body: str, probe: str | None = None) -> tuple[dict, Path]:
    """A one-release stack whose bare binary is a script with `body` (it stands for a shim built for another
    architecture or missing a library)."""
    artifact = tmp_path / "art" / "containerd-shim-bad-v1"
    artifact.parent.mkdir()
    artifact.write_text(f"#!/bin/sh\n{body}\n")
    digest = hashlib.sha256(artifact.read_bytes()).hexdigest()
    entry = {"version": "1.0.0", "url": f"file://{artifact}", "sha256": digest}
    if probe is not None:
        entry["probe"] = probe
    raw = {"shims": {"bad": [entry]},
           "nodePools": [{"name": "p", "containerd": "containerd-1", "releases": ["bad@1.0.0"],
                          "nodes": [{"name": "node-a", "host": "10.0.0.4"}]}],
           "ssh": {"user": "root", "privateKey": "k"}}
    return raw, artifact


def test_a_binary_that_does_not_run_on_the_node_fails_its_node_with_the_reason(tmp_path: Path, path: str) -> None:
    raw, _ = probe_stack(tmp_path, "echo 'error while loading shared libraries: libseccomp.so.2' >&2; exit 127")
    _, plan = plan_from_config(raw)
    node = plan.node("node-a")
    root = tmp_path / "root"
    seed(root, "containerd-1")
    snap = snapshot(root)
    result = run_script(nodescript.install_binary_script(node, next(iter(node.binaries.values()))), root, path=path)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "containerd-shim-bad-v1-0-0-v1 does not run on this node" in result.stderr
    assert "exited 127: error while loading shared libraries: libseccomp.so.2" in result.stderr
    files = {k: v for k, v in snapshot(root).items() if v[1]}
    assert files == {k: v for k, v in snap.items() if v[1]}, "nothing installed, nothing left behind"


def test_probe_none_installs_a_binary_without_running_it(tmp_path: Path, path: str) -> None:
    raw, _ = probe_stack(tmp_path, "exit 1", probe="none")
    _, plan = plan_from_config(raw)
    node = plan.node("node-a")
    root = tmp_path / "root"
    seed(root, "containerd-1")
    result = run_script(nodescript.install_binary_script(node, next(iter(node.binaries.values()))), root, path=path)
    assert result.returncode == 0, result.stderr
    assert (root / "usr/local/bin/containerd-shim-bad-v1-0-0-v1").exists()


def test_an_unknown_probe_is_refused_with_its_config_path(tmp_path: Path) -> None:
    raw, _ = probe_stack(tmp_path, "true", probe="always")
    _, plan = plan_from_config(raw)
    assert [str(p) for p in plan.errors if "shims.bad[0].probe" in str(p) and "'always'" in str(p)]
