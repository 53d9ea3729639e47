"""`python -m components up|preview|destroy|refresh STACK`: the program under the real Pulumi engine.

The project's `__main__.py` runs as an Automation API inline program in this process, exactly as the e2e
tier runs it, so no Python language plugin (`pulumi-language-python`) is needed: only a `pulumi` CLI and the
provider plugins. Settings:

- backend: `PULUMI_BACKEND_URL` if set, else a local file backend in `.state/backend` under the project
  (gitignored);
- secrets: the stack file's own secrets provider; with the passphrase provider (the default of a file
  backend) the passphrase comes from `PULUMI_CONFIG_PASSPHRASE` (or `..._FILE`), else from a prompt in a
  terminal, else the run stops with an error saying what to set;
- no update check, no plugin download (`PULUMI_SKIP_UPDATE_CHECK`,
  `PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION`);
- `preview` runs with `PULUMI_SKIP_CHECKPOINTS=true` (PREVIEW_ENV: a preview saves nothing, and without it
  the engine serializes its whole in-memory state at every step);
- the stack is created on first use inside `.state/workspace/`, from a copy of `Pulumi.<stack>.yaml`: the
  tracked stack file is read, never written (`pulumi stack init` would add `encryptionsalt` to it);
- `python -m components export STACK` prints the stack's last deployment (`pulumi stack export`), which
  `diff --deployed` reads: the plan the program recorded and the labels each node's patch applied.

Exit codes (the same for every command): 0 done; 1 the engine ran and the operation failed (a resource or
the program failed: see the engine's output); 2 bad input (no such stack file, errors in it, no deployment
to read); 3 something to install or set first (no pulumi CLI, no or a wrong passphrase, a missing provider
plugin); 130 interrupted.
"""

from __future__ import annotations

import argparse
import atexit
import getpass
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
STATE = PROJECT / ".state"
ENGINE_COMMANDS = ("up", "preview", "destroy", "refresh")
TOOLCHAIN_CACHE = "/var/cache/wasm-shim-fleet"
# Keys of a stack file that belong to its secrets provider; their presence means the file brings its own.
_SECRETS_KEYS = re.compile(r"^(encryptionsalt|secretsprovider|encryptedkey):", re.M)
_SALT_LINE = re.compile(r"^encryptionsalt:.*$", re.M)

EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_SETUP, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

#: What a preview runs with. A preview records nothing (both the file and the Cloud backend give it a
#: snapshot persister that discards every save), yet pulumi 3.274 still serializes and checks its whole
#: in-memory snapshot when each step starts and ends: a preview grows with steps x state, quadratic in the
#: fleet (1 000 nodes: not done in 13 minutes; bench/RESULTS.md). With PULUMI_SKIP_CHECKPOINTS the engine
#: does that once, at the end; for a preview nothing else changes, since no save is ever written.
PREVIEW_ENV = {"PULUMI_SKIP_CHECKPOINTS": "true"}


class Stop(Exception):
    """Ends a command with a message on stderr and an exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# ------------------------------------------------------------------------------------------ the pulumi CLI
def find_pulumi(environ: Mapping[str, str] | None = None) -> Path:
    """The `pulumi` CLI: $WSF_TOOLCHAIN_BIN/pulumi, else `pulumi` on PATH, else the newest one built by
    toolchain/build.sh into the toolchain cache (${WSF_CACHE:-/var/cache/wasm-shim-fleet}/toolchain/*/bin)."""
    env = os.environ if environ is None else environ
    given = env.get("WSF_TOOLCHAIN_BIN")
    if given:
        cli = Path(given) / "pulumi"
        if cli.is_file() and os.access(cli, os.X_OK):
            return cli
        raise Stop(f"WSF_TOOLCHAIN_BIN={given} has no executable pulumi; unset it or point it at "
                   "the bin dir toolchain/build.sh prints", EXIT_SETUP)
    on_path = shutil.which("pulumi", path=env.get("PATH", ""))
    if on_path:
        return Path(on_path)
    cache = Path(env.get("WSF_CACHE", TOOLCHAIN_CACHE)) / "toolchain"
    built = [p for p in cache.glob("*/bin/pulumi") if os.access(p, os.X_OK)]
    if built:
        return max(built, key=lambda p: p.stat().st_mtime)
    raise Stop(
        "no pulumi CLI found: none on PATH and none built in " f"{cache}/*/bin.\n"
        "  Either build it here: scripts/setup.sh (its toolchain step, about 30 minutes cold),\n"
        "  or install the Pulumi CLI (https://www.pulumi.com/docs/install/) and put it on PATH;\n"
        "  then run this command again. (`pulumi up` through the CLI also needs its Python language host;\n"
        "  this command does not.)", EXIT_SETUP)


def pulumi_root(cli: Path) -> Path:
    """The Automation API wants <root>/bin/pulumi; a CLI elsewhere (a tarball's `pulumi/pulumi`) gets a link."""
    if cli.parent.name == "bin":
        return cli.parent.parent
    link_dir = STATE / "cli" / "bin"
    link_dir.mkdir(parents=True, exist_ok=True)
    link = link_dir / "pulumi"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(cli.resolve())
    return link_dir.parent


# ------------------------------------------------------------------------------------------- the stack
def stack_file(stack: str, project: Path = PROJECT) -> Path:
    path = project / f"Pulumi.{stack}.yaml"
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", stack) or not path.is_file():
        known = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in project.glob("Pulumi.*.yaml"))
        raise Stop(f"no stack file Pulumi.{stack}.yaml in {project}; the stacks here are: "
                   f"{', '.join(known) or 'none'}", EXIT_INPUT)
    return path


def backend_url(environ: Mapping[str, str] | None = None, project: Path = PROJECT) -> str:
    env = os.environ if environ is None else environ
    return env.get("PULUMI_BACKEND_URL") or f"file://{project / '.state' / 'backend'}"


def prepare_workspace(stack: str, backend: str, project: Path = PROJECT) -> Path:
    """A private workspace folder for (backend, stack): the project's Pulumi.yaml and a copy of the tracked
    stack file. The engine may write into the copy (the passphrase provider's `encryptionsalt` on first use);
    that salt is carried over to the next copy unless the tracked file brings its own secrets provider."""
    tracked = stack_file(stack, project).read_text()
    ws = project / ".state" / "workspace" / hashlib.sha256(backend.encode()).hexdigest()[:12]
    ws.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(project / "Pulumi.yaml", ws / "Pulumi.yaml")
    copy = ws / f"Pulumi.{stack}.yaml"
    text = tracked if tracked.endswith("\n") or not tracked else tracked + "\n"
    if copy.exists() and not _SECRETS_KEYS.search(tracked):
        salt = _SALT_LINE.search(copy.read_text())
        if salt:
            text += salt.group(0) + "\n"
    copy.write_text(text)
    return ws


def needs_passphrase(tracked: str, backend: str) -> bool:
    """The passphrase provider is used unless the stack file names another one, or the backend is Pulumi
    Cloud (http(s):// backends default to its own secrets provider)."""
    provider = re.search(r"^secretsprovider:\s*(\S+)", tracked, re.M)
    if provider:
        return provider.group(1).startswith("passphrase")
    return not backend.startswith(("https://", "http://"))


def passphrase_env(stack: str, tracked: str, backend: str, environ: Mapping[str, str] | None = None,
                   interactive: bool | None = None) -> dict[str, str]:
    env = os.environ if environ is None else environ
    if not needs_passphrase(tracked, backend) or "PULUMI_CONFIG_PASSPHRASE" in env \
            or "PULUMI_CONFIG_PASSPHRASE_FILE" in env:
        return {}
    if interactive is None:
        interactive = sys.stdin.isatty() and sys.stderr.isatty()
    if not interactive:
        raise Stop(
            f"stack {stack} keeps its secrets with a passphrase (backend {backend}) and none was given:\n"
            "  set PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) and run again. Use the same one\n"
            "  every time for this stack; a stack without secrets (dev) accepts any, even an empty one.",
            EXIT_SETUP)
    phrase = getpass.getpass(f"Passphrase of stack {stack}'s secrets (PULUMI_CONFIG_PASSPHRASE skips this): ")
    return {"PULUMI_CONFIG_PASSPHRASE": phrase}


PASSPHRASE_PREFIX = "wsf-passphrase-"


def _private_dir_base() -> Path:
    """Memory-backed when the machine has /dev/shm: a passphrase file never reaches a disk."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else Path(tempfile.gettempdir())


def _sweep_passphrase_dirs(base: Path) -> None:
    """Removes the passphrase folders of runs that were killed (their process is gone)."""
    for d in base.glob(f"{PASSPHRASE_PREFIX}*"):
        try:
            pid = int(d.name[len(PASSPHRASE_PREFIX):].split("-", 1)[0])
            if d.stat().st_uid != os.getuid() or pid == os.getpid():
                continue
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except (ValueError, OSError):
            continue


def passphrase_file_env(extra: Mapping[str, str], environ: MutableMapping[str, str] | None = None,
                        base: Path | None = None) -> dict[str, str]:
    """The passphrase goes to the engine in a private file (PULUMI_CONFIG_PASSPHRASE_FILE), not in the
    environment: the engine hands its environment to its plugins and they to every local command (restart
    commands, shim probes, kubectl). The file is 0600 in a 0700 folder (in /dev/shm where there is one),
    removed when this process ends; a killed run's folder is removed by the next run. PULUMI_CONFIG_PASSPHRASE
    is taken out of this process's environment, which the Automation API passes on to the CLI. A passphrase
    with surrounding white space stays in the environment (the CLI trims what it reads from a file)."""
    env = os.environ if environ is None else environ
    phrase = extra.get("PULUMI_CONFIG_PASSPHRASE", env.get("PULUMI_CONFIG_PASSPHRASE"))
    if phrase is None or phrase != phrase.strip():
        return dict(extra)
    base = _private_dir_base() if base is None else base
    _sweep_passphrase_dirs(base)
    folder = Path(tempfile.mkdtemp(prefix=f"{PASSPHRASE_PREFIX}{os.getpid()}-", dir=base))  # 0700
    atexit.register(shutil.rmtree, folder, True)
    path = folder / "passphrase"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(phrase)
    env.pop("PULUMI_CONFIG_PASSPHRASE", None)
    out = {k: v for k, v in extra.items() if k != "PULUMI_CONFIG_PASSPHRASE"}
    out["PULUMI_CONFIG_PASSPHRASE_FILE"] = str(path)
    return out


def engine_env(backend: str, extra: Mapping[str, str]) -> dict[str, str]:
    return {
        "PULUMI_BACKEND_URL": backend,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        **extra,
    }


def check_plan(path: Path) -> None:
    """The core's checks before any engine starts: every problem with its config path, errors stop here."""
    from .core.cli import load_plan

    plan = load_plan(str(path))
    for p in plan.problems:
        print(f"{path.name}: {p}", file=sys.stderr)
    if not plan.ok:
        raise Stop(f"{len(plan.errors)} error(s) in {path.name}; nothing was run", EXIT_INPUT)


def open_stack(stack: str, *, create: bool, program: Callable[[], None] | None = None,
               environ: Mapping[str, str] | None = None) -> Any:
    """The Automation API stack (created on first use when `create`), in its private workspace."""
    import yaml

    path = stack_file(stack)
    tracked = path.read_text()
    backend = backend_url(environ)
    if backend.startswith("file://"):
        Path(backend[len("file://"):]).mkdir(parents=True, exist_ok=True)
    cli = find_pulumi(environ)
    extra = passphrase_file_env(passphrase_env(stack, tracked, backend, environ),
                                None if environ is None else dict(environ))
    ws = prepare_workspace(stack, backend)
    project_name = (yaml.safe_load((PROJECT / "Pulumi.yaml").read_text()) or {}).get("name", PROJECT.name)

    import pulumi.automation as auto

    opts = auto.LocalWorkspaceOptions(work_dir=str(ws), env_vars=engine_env(backend, extra),
                                      pulumi_command=auto.PulumiCommand(root=str(pulumi_root(cli))))
    program = program or (lambda: None)
    try:
        if create:
            return auto.create_or_select_stack(stack, project_name=project_name, program=program, opts=opts)
        return auto.select_stack(stack, project_name=project_name, program=program, opts=opts)
    except auto.StackNotFoundError:
        raise Stop(f"stack {stack} does not exist in {backend}: run `python -m components up {stack}` first",
                   EXIT_INPUT) from None
    except auto.CommandError as exc:
        setup_problem(exc, stack)
        raise Stop(f"the pulumi CLI ({cli}) could not open stack {stack} in {backend}:\n{_tail(exc)}",
                   EXIT_FAILED) from None


def setup_problem(exc: BaseException, stack: str) -> None:
    """Raises Stop (exit 3) when the engine failed for want of something to install or set."""
    text = str(exc)
    if "incorrect passphrase" in text:
        raise Stop(f"the passphrase (PULUMI_CONFIG_PASSPHRASE) is not the one stack {stack}'s secrets were set up "
                   "with; use that one", EXIT_SETUP) from None
    if "no resource plugin" in text or "could not find plugin" in text.lower():
        raise Stop("a provider plugin is missing (plugins are not downloaded):\n"
                   "  scripts/setup.sh builds pulumi-resource-kubernetes and pulumi-resource-command beside\n"
                   "  its pulumi; with your own CLI: pulumi plugin install resource kubernetes 4.34.2 and\n"
                   "  pulumi plugin install resource command 1.2.1", EXIT_SETUP) from None


def _tail(exc: BaseException, lines: int = 15) -> str:
    text = str(exc).strip().splitlines()
    return "\n".join("  " + line for line in text[-lines:])


def inline_program() -> Callable[[], None]:
    """`__main__.py` run as `pulumi up` runs it (cwd = the project)."""

    def program() -> None:
        import runpy

        runpy.run_path(str(PROJECT / "__main__.py"), run_name="__main__")

    return program


# ------------------------------------------------------------------------------------------- commands
def _summary(changes: Mapping[str, int] | None) -> str:
    changes = dict(changes or {})
    same = changes.pop("same", 0)
    parts = [f"{n} {op}" for op, n in sorted(changes.items()) if n] + ([f"{same} unchanged"] if same else [])
    return ", ".join(parts) or "no resources"


def cmd_engine(args: argparse.Namespace) -> int:
    """up, preview, destroy or refresh of STACK; the engine's output streams as it runs."""
    command, stack = args.command, args.stack
    path = stack_file(stack)
    if command in ("up", "preview"):
        check_plan(path)
    st = open_stack(stack, create=True, program=inline_program())

    as_json = getattr(args, "json", False)
    engine_out = sys.stderr if as_json and command != "preview" else sys.stdout
    kwargs: dict[str, Any] = {
        "color": "always" if engine_out.isatty() else "never",
        "on_output": lambda line: print(line, file=engine_out, flush=True),
        "on_error": lambda line: print(line, file=sys.stderr, flush=True),
    }
    if args.diff:
        kwargs["diff"] = True
    if args.parallel is not None:
        kwargs["parallel"] = args.parallel
    if getattr(args, "continue_on_error", False):
        kwargs["continue_on_error"] = True
    if command == "preview" and as_json:
        kwargs["json"] = True
    if command == "preview":
        st.workspace.env_vars.update(PREVIEW_ENV)

    import pulumi.automation as auto

    started = time.monotonic()
    old_cwd = os.getcwd()
    os.chdir(PROJECT)  # __main__.py resolves file: URLs and node roots against the working directory
    try:
        result = getattr(st, command)(**kwargs)
    except auto.CommandError as exc:
        setup_problem(exc, stack)
        hint = ""
        if isinstance(exc, auto.ConcurrentUpdateError):
            hint = f" (another update of {stack} is running, or one was killed: `pulumi cancel` after checking)"
        raise Stop(f"{command} {stack}: failed{hint}; see the engine's output above", EXIT_FAILED) from None
    finally:
        os.chdir(old_cwd)
    took = time.monotonic() - started

    if command == "preview":
        changes = result.change_summary
        outcome = "previewed"
    else:
        changes = result.summary.resource_changes
        outcome = result.summary.result
    if as_json and command != "preview":
        outputs = getattr(result, "outputs", None) or {}
        outputs = {k: ("[secret]" if v.secret else v.value) for k, v in outputs.items()}
        print(json.dumps({"command": command, "stack": stack, "result": outcome, "resourceChanges": changes,
                          "outputs": outputs}, indent=2))
    print(f"{command} {stack}: {outcome} ({_summary(changes)}) in {took:.0f}s", file=sys.stderr)
    return EXIT_OK if outcome in ("succeeded", "previewed") else EXIT_FAILED


def cmd_export(args: argparse.Namespace) -> int:
    """Print STACK's last deployment as `pulumi stack export` does, for `diff --deployed`."""
    stack_file(args.stack)
    st = open_stack(args.stack, create=False)
    exported = st.export_stack()
    print(json.dumps({"version": exported.version, "deployment": exported.deployment}, indent=2))
    return EXIT_OK


def _guarded(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except Stop as stop:
            print(f"error: {stop}", file=sys.stderr)
            return stop.code
        except KeyboardInterrupt:
            print(f"{args.command}: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED

    return run


HELP = {
    "up": "create or update STACK's resources under the Pulumi engine (no language plugin needed)",
    "preview": "show what `up` would change, running no node command",
    "destroy": "delete STACK's resources (nodes get their original containerd config back)",
    "refresh": "read STACK's resources back into its state",
}


def add_engine_commands(sub: argparse._SubParsersAction) -> None:
    """Adds up, preview, destroy, refresh and export to the `python -m components` parser."""
    epilog = ("exit codes: 0 done, 1 the operation failed (see the engine output), 2 bad input, "
              "3 something to install or set first, 130 interrupted")
    for command in ENGINE_COMMANDS:
        p = sub.add_parser(command, help=HELP[command], description=HELP[command], epilog=epilog)
        p.add_argument("stack", help="stack name: its config is Pulumi.<STACK>.yaml")
        p.add_argument("--diff", action="store_true", help="show a detailed diff of every change")
        p.add_argument("--parallel", type=int, metavar="N", help="at most N resource operations at once")
        if command in ("up", "destroy"):
            p.add_argument("--continue-on-error", action="store_true",
                           help="keep going past a failed resource; the others still converge")
        p.add_argument("--json", action="store_true",
                       help="JSON on stdout (preview: the engine's own document; the others: a summary "
                            "with the resource changes and outputs), the engine's text on stderr")
        p.set_defaults(func=_guarded(cmd_engine))
    p = sub.add_parser("export", help="print STACK's last deployment (`pulumi stack export`), for diff --deployed",
                       epilog=epilog)
    p.add_argument("stack")
    p.set_defaults(func=_guarded(cmd_export))
