"""`python -m components up|preview|destroy|refresh|export`: everything decided before the engine starts, and what
the command makes of the engine's outcome (exit codes 1 and 130, the --json summary).

The engine runs themselves are in the e2e tier (tests/e2e/test_readme_engine.py runs the documented commands); here
the Automation API stack is a stand-in (FakeStack) that returns an outcome or raises the engine's errors.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components import run
from tests.conftest import fresh_clone


def fake_cli(bin_dir: Path) -> Path:
    bin_dir.mkdir(parents=True, exist_ok=True)
    cli = bin_dir / "pulumi"
    cli.write_text("#!/bin/sh\nexit 0\n")
    cli.chmod(0o755)
    return cli


def project_copy(tmp_path: Path) -> Path:
    return fresh_clone(tmp_path / "project")


def components(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python -m components ARGS` in PROJECT (its own copy of the package), stdin not a terminal."""
    return subprocess.run([sys.executable, "-m", "components", *args], cwd=project, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL, env=env)


def test_the_cli_named_by_wsf_toolchain_bin_wins(tmp_path):
    cli = fake_cli(tmp_path / "tc" / "bin")
    other = fake_cli(tmp_path / "path")
    assert run.find_pulumi({"WSF_TOOLCHAIN_BIN": str(cli.parent), "PATH": str(other.parent)}) == cli


def test_a_wsf_toolchain_bin_without_pulumi_is_an_error_not_a_fallback(tmp_path):
    fake_cli(tmp_path / "path")
    with pytest.raises(run.Stop) as stop:
        run.find_pulumi({"WSF_TOOLCHAIN_BIN": str(tmp_path / "empty"), "PATH": str(tmp_path / "path")})
    assert stop.value.code == run.EXIT_SETUP and "WSF_TOOLCHAIN_BIN" in str(stop.value)


def test_the_cli_on_path_comes_before_the_toolchain_cache(tmp_path):
    on_path = fake_cli(tmp_path / "path")
    fake_cli(tmp_path / "cache" / "toolchain" / "k1" / "bin")
    assert run.find_pulumi({"PATH": str(on_path.parent), "WSF_CACHE": str(tmp_path / "cache")}) == on_path


def test_without_a_cli_on_path_the_newest_toolchain_build_is_used(tmp_path):
    old = fake_cli(tmp_path / "cache" / "toolchain" / "old" / "bin")
    new = fake_cli(tmp_path / "cache" / "toolchain" / "new" / "bin")
    os.utime(old, (1_000_000, 1_000_000))
    assert run.find_pulumi({"PATH": str(tmp_path / "nothing"), "WSF_CACHE": str(tmp_path / "cache")}) == new


def test_no_cli_anywhere_says_how_to_get_one(tmp_path):
    with pytest.raises(run.Stop) as stop:
        run.find_pulumi({"PATH": str(tmp_path), "WSF_CACHE": str(tmp_path / "cache")})
    assert stop.value.code == run.EXIT_SETUP
    assert "scripts/setup.sh" in str(stop.value) and "pulumi.com/docs/install" in str(stop.value)


def test_a_cli_outside_a_bin_folder_gets_a_bin_link(tmp_path, monkeypatch):
    monkeypatch.setattr(run, "STATE", tmp_path / ".state")
    cli = fake_cli(tmp_path / "pulumi-tarball")
    root = run.pulumi_root(cli)
    assert (root / "bin" / "pulumi").resolve() == cli.resolve()
    assert run.pulumi_root(fake_cli(tmp_path / "usr" / "bin")) == tmp_path / "usr"


def test_the_workspace_copy_keeps_its_salt_and_the_tracked_file_is_never_written(tmp_path):
    project = project_copy(tmp_path)
    tracked = (project / "Pulumi.dev.yaml").read_bytes()
    ws = run.prepare_workspace("dev", "file:///somewhere", project)
    copy = ws / "Pulumi.dev.yaml"
    assert copy.read_bytes() == tracked
    # what `pulumi stack init` does to the file it is given: a salt line, other spacing
    copy.write_text(yaml.safe_dump({**yaml.safe_load(tracked), "encryptionsalt": "v1:abc:def"}))
    ws2 = run.prepare_workspace("dev", "file:///somewhere", project)
    assert ws2 == ws
    assert copy.read_text() == tracked.decode() + "encryptionsalt: v1:abc:def\n"
    assert (project / "Pulumi.dev.yaml").read_bytes() == tracked
    assert run.prepare_workspace("dev", "file:///elsewhere", project) != ws  # one workspace per backend


def test_a_stack_file_with_its_own_secrets_provider_is_copied_as_it_is(tmp_path):
    project = project_copy(tmp_path)
    own = (project / "Pulumi.dev.yaml").read_text() + "encryptionsalt: v1:tracked:salt\n"
    (project / "Pulumi.dev.yaml").write_text(own)
    ws = run.prepare_workspace("dev", "file:///b", project)
    (ws / "Pulumi.dev.yaml").write_text(own + "encryptionsalt: v1:other:salt\n")
    run.prepare_workspace("dev", "file:///b", project)
    assert (ws / "Pulumi.dev.yaml").read_text() == own


@pytest.mark.parametrize(("tracked", "backend", "needed"), [
    ("config: {}\n", "file:///x", True),
    ("config: {}\n", "s3://bucket", True),
    ("config: {}\n", "https://api.pulumi.com", False),
    ("secretsprovider: awskms://alias/x\nconfig: {}\n", "file:///x", False),
    ("secretsprovider: passphrase\nconfig: {}\n", "https://api.pulumi.com", True),
])
def test_which_stacks_need_a_passphrase(tracked, backend, needed):
    assert run.needs_passphrase(tracked, backend) is needed


def test_no_passphrase_and_no_terminal_is_a_clear_error():
    with pytest.raises(run.Stop) as stop:
        run.passphrase_env("dev", "config: {}\n", "file:///x", environ={}, interactive=False)
    assert stop.value.code == run.EXIT_SETUP and "PULUMI_CONFIG_PASSPHRASE" in str(stop.value)
    assert run.passphrase_env("dev", "config: {}\n", "file:///x", environ={"PULUMI_CONFIG_PASSPHRASE": ""},
                              interactive=False) == {}


def test_an_unknown_stack_exits_2_and_names_the_stacks_there(tmp_path):
    r = components(project_copy(tmp_path), "up", "qa")
    assert r.returncode == 2
    assert "no stack file Pulumi.qa.yaml" in r.stderr and "the stacks here are: dev" in r.stderr


def test_errors_in_the_stack_file_stop_up_before_any_engine_is_looked_for(tmp_path):
    project = project_copy(tmp_path)
    doc = yaml.safe_load((project / "Pulumi.dev.yaml").read_text())
    doc["config"]["wasm-shim-fleet:nodePools"][0]["releases"] = ["slight@9.9.9"]
    (project / "Pulumi.dev.yaml").write_text(yaml.safe_dump(doc))
    env = {**os.environ, "PATH": str(tmp_path / "no-cli"), "WSF_CACHE": str(tmp_path / "no-cache")}
    for command in ("up", "preview"):
        r = components(project, command, "dev", env=env)
        assert r.returncode == 2, r.stderr
        assert "nodePools[0].releases[0]" in r.stderr and "nothing was run" in r.stderr
        assert "pulumi CLI" not in r.stderr and "Traceback" not in r.stderr


def test_without_a_cli_up_exits_3_and_says_what_to_install(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path / "no-cli"), "WSF_CACHE": str(tmp_path / "no-cache")}
    env.pop("WSF_TOOLCHAIN_BIN", None)
    r = components(project_copy(tmp_path), "up", "dev", env=env)
    assert r.returncode == 3
    assert "no pulumi CLI found" in r.stderr and "scripts/setup.sh" in r.stderr and "Traceback" not in r.stderr


def test_without_a_passphrase_up_exits_3_before_touching_the_stack(tmp_path):
    project = project_copy(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env["WSF_TOOLCHAIN_BIN"] = str(fake_cli(tmp_path / "tc" / "bin").parent)
    r = components(project, "up", "dev", env=env)
    assert r.returncode == 3, r.stderr
    assert "set PULUMI_CONFIG_PASSPHRASE" in r.stderr
    assert not (project / ".state" / "workspace").exists()


def test_the_engine_commands_take_the_pass_through_flags():
    from components.core.cli import build_parser

    parser = build_parser(run.add_engine_commands)
    args = parser.parse_args(["up", "dev", "--diff", "--json", "--continue-on-error", "--parallel", "4"])
    assert (args.diff, args.json, args.continue_on_error, args.parallel) == (True, True, True, 4)
    args = parser.parse_args(["preview", "dev", "--diff", "--json", "--parallel", "2"])
    assert (args.diff, args.json, args.parallel) == (True, True, 2)
    for command in ("preview", "refresh"):
        with pytest.raises(SystemExit):
            parser.parse_args([command, "dev", "--continue-on-error"])  # the engine has no such flag there


def test_the_summary_line_counts_changes_and_leaves_out_zero():
    assert run._summary({"create": 21}) == "21 create"
    assert run._summary({"delete": 3, "same": 0}) == "3 delete"
    assert run._summary({"update": 1, "same": 20}) == "1 update, 20 unchanged"
    assert run._summary({}) == "no resources"


@pytest.mark.parametrize(("engine_says", "phrase"), [
    ("error: get stack secrets manager: incorrect passphrase", "is not the one stack dev"),
    ("error: no resource plugin 'pulumi-resource-kubernetes' found", "a provider plugin is missing"),
])
def test_engine_failures_that_mean_set_up_first_exit_3(engine_says, phrase):
    with pytest.raises(run.Stop) as stop:
        run.setup_problem(RuntimeError(engine_says), "dev")
    assert stop.value.code == run.EXIT_SETUP and phrase in str(stop.value)
    run.setup_problem(RuntimeError("error: resource fleet-x failed: exit 1"), "dev")  # a real failure: no Stop


def test_in_a_terminal_without_a_passphrase_up_asks_for_one(tmp_path):
    import pty
    import select

    project = project_copy(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env["WSF_TOOLCHAIN_BIN"] = str(fake_cli(tmp_path / "tc" / "bin").parent)
    main, replica = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "components", "up", "dev"], cwd=project, env=env,
                            stdin=replica, stdout=replica, stderr=replica, start_new_session=True)
    os.close(replica)
    seen = b""
    try:
        while b"Passphrase of stack dev" not in seen:
            ready, _, _ = select.select([main], [], [], 60)
            assert ready, f"no passphrase prompt; the terminal shows: {seen.decode(errors='replace')}"
            seen += os.read(main, 4096)
    finally:
        proc.kill()
        proc.wait()
        os.close(main)
    assert b"PULUMI_CONFIG_PASSPHRASE skips this" in seen


@pytest.mark.parametrize("command, skips", [("preview", True), ("up", False), ("destroy", False),
                                            ("refresh", False)])
def test_only_a_preview_runs_without_checkpoints(monkeypatch, command, skips):
    """A preview saves nothing, so it runs with PULUMI_SKIP_CHECKPOINTS (the engine then serializes its
    state once, not at every step); up, destroy and refresh keep a checkpoint after every step."""
    from types import SimpleNamespace

    from components.core.cli import build_parser

    seen: dict[str, dict[str, str]] = {}

    class Stack:
        workspace = SimpleNamespace(env_vars={"PULUMI_BACKEND_URL": "file:///nowhere"})

        def _result(self, name):
            seen[name] = dict(self.workspace.env_vars)
            summary = SimpleNamespace(resource_changes={"same": 1}, result="succeeded")
            return SimpleNamespace(change_summary={"same": 1}, summary=summary, outputs={})

        def __getattr__(self, name):
            return lambda **kwargs: self._result(name)

    monkeypatch.setattr(run, "check_plan", lambda path: None)
    monkeypatch.setattr(run, "open_stack", lambda *a, **kw: Stack())
    args = build_parser(run.add_engine_commands).parse_args([command, "dev"])
    assert run.cmd_engine(args) == run.EXIT_OK
    env = seen[command]
    assert (env.get("PULUMI_SKIP_CHECKPOINTS") == "true") is skips, env
    assert env["PULUMI_BACKEND_URL"] == "file:///nowhere"


# --------------------------------------------------------------- the engine's outcome: exit codes and --json
class FakeStack:
    """Stands in for the Automation API stack that open_stack returns (the engine runs are the e2e tier's): each
    operation streams a line of engine output, then returns `result` or raises `error`."""

    def __init__(self, result=None, error: BaseException | None = None) -> None:
        from types import SimpleNamespace

        self.result, self.error, self.calls = result, error, []
        self.workspace = SimpleNamespace(env_vars={})

    def _run(self, name: str, **kwargs):
        self.calls.append((name, kwargs))
        kwargs["on_output"](f"engine: {name} running")
        if self.error is not None:
            raise self.error
        return self.result

    def up(self, **kwargs):
        return self._run("up", **kwargs)

    def destroy(self, **kwargs):
        return self._run("destroy", **kwargs)

    def preview(self, **kwargs):
        return self._run("preview", **kwargs)


def update_result(outcome: str, changes: dict[str, int], outputs: dict | None = None):
    from types import SimpleNamespace

    return SimpleNamespace(summary=SimpleNamespace(result=outcome, resource_changes=changes), outputs=outputs or {})


def engine_command(monkeypatch, capsys, stack: FakeStack, *argv: str) -> tuple[int, str, str]:
    """`python -m components ARGV` in this process, the stack file's plan checked for real, the engine a FakeStack."""
    from components.core.cli import main

    monkeypatch.setattr(run, "open_stack", lambda name, **kw: stack)
    code = main(list(argv), extend=run.add_engine_commands)
    out, err = capsys.readouterr()
    return code, out, err


def test_up_json_prints_a_summary_with_the_changes_and_outputs_secrets_hidden(monkeypatch, capsys):
    from pulumi.automation import OutputValue

    outputs = {"plan": OutputValue({"runtime": "wasmtime"}, False), "key": OutputValue("s3cret", True)}
    stack = FakeStack(update_result("succeeded", {"create": 5, "same": 2}, outputs))
    code, out, err = engine_command(monkeypatch, capsys, stack, "up", "dev", "--json")
    assert code == 0
    assert json.loads(out) == {"command": "up", "stack": "dev", "result": "succeeded",
                               "resourceChanges": {"create": 5, "same": 2},
                               "outputs": {"plan": {"runtime": "wasmtime"}, "key": "[secret]"}}
    assert "engine: up running" in err  # with --json the engine's text goes to stderr
    assert err.rstrip().splitlines()[-1].startswith("up dev: succeeded (5 create, 2 unchanged) in ")


def test_an_update_that_failed_exits_1_and_says_so_in_the_json(monkeypatch, capsys):
    stack = FakeStack(update_result("failed", {"create": 1, "update": 2}))
    code, out, err = engine_command(monkeypatch, capsys, stack, "up", "dev", "--json", "--continue-on-error")
    assert code == 1
    assert json.loads(out)["result"] == "failed"
    assert stack.calls[0][1]["continue_on_error"] is True
    assert "up dev: failed (1 create, 2 update)" in err


def test_an_engine_error_exits_1_naming_the_command_and_a_concurrent_update(monkeypatch, capsys):
    from pulumi.automation import CommandError, ConcurrentUpdateError
    from pulumi.automation._cmd import CommandResult

    code, out, err = engine_command(monkeypatch, capsys, FakeStack(error=CommandError(CommandResult("", "boom", 255))),
                                    "destroy", "dev")
    assert (code, out) == (1, "engine: destroy running\n")
    assert "error: destroy dev: failed; see the engine's output above" in err
    code, _, err = engine_command(monkeypatch, capsys,
                                  FakeStack(error=ConcurrentUpdateError(CommandResult("", "locked", 255))), "up", "dev")
    assert code == 1 and "another update of dev is running" in err


def test_an_interrupted_command_exits_130(monkeypatch, capsys):
    code, _, err = engine_command(monkeypatch, capsys, FakeStack(error=KeyboardInterrupt()), "up", "dev")
    assert code == 130
    assert err.rstrip().endswith("up: interrupted")


def test_a_missing_plugin_is_something_to_install_exit_3(monkeypatch, capsys):
    from pulumi.automation import CommandError
    from pulumi.automation._cmd import CommandResult

    error = CommandError(CommandResult("", "error: no resource plugin 'kubernetes' found", 255))
    code, _, err = engine_command(monkeypatch, capsys, FakeStack(error=error), "preview", "dev")
    assert code == 3 and "a provider plugin is missing" in err


def test_preview_json_is_the_engines_own_document_on_stdout(monkeypatch, capsys):
    from types import SimpleNamespace

    stack = FakeStack(SimpleNamespace(change_summary={"create": 3}))
    code, out, err = engine_command(monkeypatch, capsys, stack, "preview", "dev", "--json")
    assert code == 0
    assert stack.calls[0][1]["json"] is True and out == "engine: preview running\n"
    assert stack.workspace.env_vars == run.PREVIEW_ENV
    assert "preview dev: previewed (3 create) in " in err


RECORDING_CLI = """#!/bin/sh
# A stand-in pulumi CLI: records the passphrase settings it was started with, and what its file holds.
{ echo "${PULUMI_CONFIG_PASSPHRASE-unset} ${PULUMI_CONFIG_PASSPHRASE_FILE-unset} $*"
  [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ] || cat "$PULUMI_CONFIG_PASSPHRASE_FILE"; echo; } >> "$0.seen"
case " $* " in
    *" version "*) echo v3.274.1 ;;
    *" stack output "*) echo {} ;;
    *" stack history "*) echo '[{"kind": "update", "result": "succeeded", "startTime": "2025-01-01T00:00:00.0Z",
        "message": "", "environment": {}, "config": {}, "resourceChanges": {"same": 1}}]' ;;
esac
"""


def test_the_engine_reads_the_passphrase_from_a_private_file_never_from_its_environment(tmp_path):
    """The engine hands its environment to its plugins and they to every local command (restart commands,
    shim probes, kubectl): the passphrase is not in it, only a file's path (removed when the run ends)."""
    project = project_copy(tmp_path)
    cli = fake_cli(tmp_path / "tc" / "bin")
    cli.write_text(RECORDING_CLI)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env.update(WSF_TOOLCHAIN_BIN=str(cli.parent), PULUMI_CONFIG_PASSPHRASE="stack-secret")
    r = components(project, "up", "dev", env=env)
    assert r.returncode == 0, r.stderr
    seen = Path(f"{cli}.seen").read_text().splitlines()
    assert all(line.split()[0] == "unset" for line in seen[0::2]), seen  # never in the environment
    runs = [line.split()[:2] for line in seen[0::2] if not line.endswith(" version")]
    assert len(runs) > 2 and all(path != "unset" for _, path in runs), seen
    assert set(seen[3::2]) == {"stack-secret"}, seen  # each engine command read it from the file
    assert all(not Path(path).parent.exists() for _, path in runs)


def test_the_passphrase_file_is_private_and_a_killed_runs_file_is_removed_by_the_next_run(tmp_path):
    dead = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True).stdout.strip()
    left = tmp_path / f"{run.PASSPHRASE_PREFIX}{dead}-x"
    alive = tmp_path / f"{run.PASSPHRASE_PREFIX}{os.getppid()}-y"
    for d in (left, alive):
        d.mkdir(mode=0o700)
        (d / "passphrase").write_text("old")
    environ = {"PULUMI_CONFIG_PASSPHRASE": "p w", "HOME": "/h"}
    out = run.passphrase_file_env({}, environ, base=tmp_path)
    assert environ == {"HOME": "/h"} and list(out) == ["PULUMI_CONFIG_PASSPHRASE_FILE"]
    path = Path(out["PULUMI_CONFIG_PASSPHRASE_FILE"])
    assert path.read_text() == "p w"
    assert (path.stat().st_mode & 0o777, path.parent.stat().st_mode & 0o777) == (0o600, 0o700)
    assert not left.exists() and alive.exists()
    # a passphrase typed at the prompt goes the same way
    assert Path(run.passphrase_file_env({"PULUMI_CONFIG_PASSPHRASE": ""}, {}, base=tmp_path)
                ["PULUMI_CONFIG_PASSPHRASE_FILE"]).read_text() == ""


@pytest.mark.parametrize("environ", [
    {"PULUMI_CONFIG_PASSPHRASE_FILE": "/own/file"},  # the operator's own file: used as it is
    {"PULUMI_CONFIG_PASSPHRASE": " padded "},  # the CLI trims a file's text: this one stays as it is
    {},  # a stack without the passphrase provider
])
def test_a_passphrase_that_needs_no_file_is_left_as_it_is(environ, tmp_path):
    before = dict(environ)
    assert run.passphrase_file_env({}, environ, base=tmp_path) == {}
    assert environ == before and list(tmp_path.iterdir()) == []
