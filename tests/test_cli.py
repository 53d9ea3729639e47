"""The `python -m components` commands, run as a user runs them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from components.core.config import project_dir
from tests.conftest import cli as run
from tests.conftest import export, fresh_clone, pool, snapshot, stack, write_stack

ROOT = Path(__file__).resolve().parents[1]


def test_plan_json_of_the_test_plan(tmp_path, test_plan_stack):
    f = write_stack(tmp_path / "Pulumi.t.yaml", test_plan_stack)
    r = run("plan", str(f), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [n["name"] for n in doc["nodes"]] == ["node-a", "node-b", "node-c"]
    assert [p for p in doc["problems"] if p["severity"] == "error"] == []


def test_plan_table_is_readable(tmp_path, test_plan_stack):
    r = run("plan", str(write_stack(tmp_path / "s.yaml", test_plan_stack)))
    assert r.returncode == 0
    assert "wasmtime-slight-v1-2  " in r.stdout and "node-c  pool c" in r.stdout


def test_plan_with_errors_exits_2_and_lists_them_on_stderr(tmp_path):
    raw = stack([pool("a", ["slight@1.2.3"], ["node-a"])])
    raw["shims"]["slight"][0]["sha256"] = "x"
    raw["nodePools"][0]["containerd"] = "dockerd"
    r = run("plan", str(write_stack(tmp_path / "s.yaml", raw)), "--json")
    assert r.returncode == 2
    assert "shims.slight[0].sha256" in r.stderr and "nodePools[0].containerd" in r.stderr
    assert {p["path"] for p in json.loads(r.stdout)["problems"]} >= {"shims.slight[0].sha256",
                                                                     "nodePools[0].containerd"}


def test_plan_warnings_do_not_fail(tmp_path):
    raw = stack([pool("a", ["slight@1.2.3"], ["node-a"])])  # 1.2.4 unused: a warning
    r = run("plan", str(write_stack(tmp_path / "s.yaml", raw)))
    assert r.returncode == 0
    assert "warning: shims.slight[1]" in r.stderr


def test_missing_stack_file_is_a_clear_error(tmp_path):
    r = run("plan", str(tmp_path / "nope.yaml"))
    assert r.returncode == 2
    assert "cannot read" in r.stderr


def test_diff_exits_2_on_an_unsafe_transition(tmp_path):
    old = write_stack(tmp_path / "old.yaml", stack([pool("a", ["slight@1.2.3", "slight@1.2.4"], ["node-a"])]))
    new = write_stack(tmp_path / "new.yaml", stack([pool("a", ["slight@1.2.4"], ["node-a"])]))
    r = run("diff", str(old), str(new))
    assert r.returncode == 2
    assert "UNSAFE node node-a (pool a): handler slight-v1-2-3" in r.stdout
    r = run("diff", str(old), str(new), "--json")
    assert json.loads(r.stdout)["safe"] is False


def test_diff_of_a_safe_bump(tmp_path):
    old = write_stack(tmp_path / "old.yaml", stack([pool("a", ["slight@1.2.3"], ["node-a"])]))
    new = write_stack(tmp_path / "new.yaml", stack([pool("a", ["slight@1.2.3"], ["node-a"]),
                                                   pool("b", ["slight@1.2.4"], ["node-b"])]))
    r = run("diff", str(old), str(new))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "+ runtimeClass wasmtime-slight-v1-2-4" in r.stdout
    assert "Resources: 4 to create, 7 unchanged" in r.stdout


def test_diff_markdown_is_a_pull_request_comment(tmp_path):
    old = write_stack(tmp_path / "old.yaml", stack([pool("a", ["slight@1.2.3"], ["node-a"])]))
    new = write_stack(tmp_path / "Pulumi.prod.yaml", stack([pool("a", ["slight@1.2.3", "slight@1.2.4"], ["node-a"])]))
    r = run("diff", str(old), str(new), "--markdown")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("### wasm-shim-fleet: `Pulumi.prod.yaml`\n\n**Safe to apply.**")
    assert "| a | labelled | **· → labelled** |" in r.stdout


def test_diff_says_each_warning_once(tmp_path):
    def lab(raw):  # a lab stack: a node without a pinned host key, allowed by the opt-out (a loud warning)
        del raw["nodePools"][0]["nodes"][0]["hostKey"]
        raw["ssh"]["insecureAcceptAnyHostKey"] = True
        return raw

    old = write_stack(tmp_path / "old.yaml", lab(stack([pool("a", ["slight@1.2.3"], ["node-a"])])))
    new = write_stack(tmp_path / "new.yaml", lab(stack([pool("a", ["slight@1.2.3"], ["node-a"], retiring=[])])))
    r = run("diff", str(old), str(new))
    assert r.stderr.count("INSECURE: node 'node-a' accepts any SSH host key") == 1
    assert r.stderr.count("installed on no node") == 1


def test_a_change_of_the_root_command_is_not_no_changes(tmp_path):
    old = write_stack(tmp_path / "old.yaml", stack([pool("a", ["slight@1.2.3"], ["node-a"])]))
    new = write_stack(tmp_path / "new.yaml", stack([pool("a", ["slight@1.2.3"], ["node-a"], restart="reboot")]))
    r = run("diff", str(old), str(new))
    assert "No changes" not in r.stdout
    assert "~ pool restart: (none) -> reboot" in r.stdout and "runs as root" in r.stdout


def _export(tmp_path, raw: dict) -> Path:
    """A `pulumi stack export` of a stack that applied `raw`."""
    from components.core.plan import plan_from_config
    _, applied = plan_from_config(raw)
    path = tmp_path / "deployed.json"
    path.write_text(json.dumps(export(snapshot(applied))))
    return path


def test_diff_against_the_deployed_state_catches_what_two_merged_changes_hide(tmp_path):
    deployed = _export(tmp_path, stack([pool("a", ["slight@1.2.3", "slight@1.2.4"], ["node-a"])]))
    # in git: a retire change and a remove change merged before one deploy; the file now says removed
    new = write_stack(tmp_path / "new.yaml", stack([pool("a", ["slight@1.2.4"], ["node-a"])]))
    r = run("diff", "--deployed", str(deployed), str(new))
    assert r.returncode == 0, r.stderr
    assert "handler slight-v1-2-3 stays on node node-a for this step" in r.stderr
    assert "NOTE handler slight-v1-2-3 stays on node node-a" in r.stdout
    assert "- label wasmtime-slight-v1-2-3" in r.stdout
    assert "- handler slight-v1-2-3" not in r.stdout


def test_diff_against_the_deployed_state_refuses_what_cannot_be_done_in_place(tmp_path):
    deployed = _export(tmp_path, stack([pool("a", ["slight@1.2.3"], ["node-a"])]))
    new = write_stack(tmp_path / "new.yaml", stack([pool("a", ["slight@1.2.3"], ["node-a"], containerd="k3s")]))
    r = run("diff", "--deployed", str(deployed), str(new))
    assert r.returncode == 2 and "UNSAFE pool a: containerd" in r.stdout


def test_diff_needs_two_files_or_the_deployed_state(tmp_path):
    new = write_stack(tmp_path / "new.yaml", stack([pool("a", ["slight@1.2.3"], ["node-a"])]))
    assert run("diff", str(new)).returncode == 2
    bad = tmp_path / "deployed.json"
    bad.write_text("[" * 100_000)
    r = run("diff", "--deployed", str(bad), str(new))
    assert r.returncode == 2 and "not the JSON of `pulumi stack export`" in r.stderr and "Traceback" not in r.stderr


def test_diff_against_the_deployed_state_lets_a_fixed_sha256_through_as_a_note(tmp_path):
    bad = stack([pool("a", ["slight@1.2.3"], ["node-a"])])
    bad["shims"]["slight"][0]["sha256"] = "0" * 64  # recorded by an update whose install then failed
    deployed = _export(tmp_path, bad)
    new = write_stack(tmp_path / "new.yaml", stack([pool("a", ["slight@1.2.3"], ["node-a"])]))
    r = run("diff", "--deployed", str(deployed), str(new))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "NOTE pool a: binary containerd-shim-slight-v1-2-3-v1: sha256 changes for slight@1.2.3" in r.stdout


def test_the_readmes_diff_against_git_show_resolves_both_files_urls_in_the_project(tmp_path):
    """The README's form on the dev stack (relative file: URLs): `diff <(git show HEAD:Pulumi.dev.yaml)
    Pulumi.dev.yaml` after adding slight@1.2.4 to pool slight-1-2-3. The old file is a pipe (/dev/fd/63); its URLs
    resolve in the project folder like the new file's, so no URL looks new. Real: bash, git, the command."""
    clone = fresh_clone(tmp_path / "project")
    dev = clone / "Pulumi.dev.yaml"
    dev.write_text(dev.read_text().replace("releases: [slight@1.2.3, spin@0.3.0]",
                                           "releases: [slight@1.2.3, slight@1.2.4, spin@0.3.0]"))
    r = subprocess.run(["bash", "-c", "venv/bin/python -m components diff <(git show HEAD:Pulumi.dev.yaml) "
                                      "Pulumi.dev.yaml"], cwd=clone, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "new url" not in r.stdout and "/proc/" not in r.stdout and "/dev/fd" not in r.stdout
    assert f"file://{clone}/examples/artifacts/slight-v1.2.4-linux-amd64.tar.gz" in r.stdout
    assert "Resources: 1 to create, 2 to update, 13 unchanged" in r.stdout
    # the pull-request workflow's form: the base branch's file written outside the checkout
    base = tmp_path / "runner-temp" / "base.yaml"
    base.parent.mkdir()
    base.write_text(subprocess.run(["git", "show", "HEAD:Pulumi.dev.yaml"], cwd=clone, capture_output=True,
                                   text=True, check=True).stdout)
    r = run("diff", "--markdown", str(base), str(dev), cwd=clone)
    assert r.returncode == 0, r.stderr
    assert "**Safe to apply.**" in r.stdout and ":warning:" not in r.stdout and "new url" not in r.stdout


def test_relative_urls_resolve_in_the_folder_of_pulumi_yaml_else_the_files_own(tmp_path):
    project = tmp_path / "project"
    (project / "stacks").mkdir(parents=True)
    (project / "Pulumi.yaml").write_text("name: x\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    inside = project / "stacks" / "Pulumi.a.yaml"
    outside = elsewhere / "Pulumi.b.yaml"
    for f in (inside, outside):
        f.write_text("config: {}\n")
    assert project_dir(outside, inside) == project  # the first file in a project decides
    assert project_dir(inside, outside) == project
    assert project_dir(outside) == elsewhere  # no project above: the file's own folder
    assert project_dir("/dev/fd/63", outside) == elsewhere  # a pipe has no folder of its own
