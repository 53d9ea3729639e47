"""Shared test helpers, in one place: stack configs built in code (so each test states only what it varies), the
stack-file writer, plans and problems of a config, the `python -m components` command, a fresh clone of the
checkout, and the Pulumi mocks the component tests run under.

Test modules import the plain helpers from here (`from tests.conftest import stack, pool`) and take the fixtures
by name; no test module imports from another (tests/test_layout.py fails if one does).
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime import rpc

from components.core import naming
from components.core.config import check_config
from components.core.plan import FleetPlan, plan_from_config

ROOT = Path(__file__).resolve().parents[1]

SHA = {v: (c * 64) for v, c in {"1.2.3": "a", "1.2.4": "b", "1.2.5": "c", "2.0.0": "d", "0.1.0-alpha.1": "e",
                                "0.2.0": "f", "0.2.1": "1"}.items()}
#: An agent image pinned by digest (kubernetes.agentImage).
IMAGE = "registry.example.org/wasm-shim-fleet/node@sha256:" + "ab" * 32


# ------------------------------------------------------------------------------------------- configs
def release(version: str, shim: str = "slight", **extra: Any) -> dict[str, Any]:
    entry = {"version": version, "url": f"https://example.org/{shim}-{version}.tar.gz",
             "sha256": SHA.get(version, "0" * 64), "binary": f"containerd-shim-{shim}-v1"}
    entry.update(extra)
    return entry


def host_key(host: str) -> str:
    """A pinned host key for a test node (SSH nodes need one): the host's name, base64 shaped."""
    import base64

    return "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + base64.b64encode(host.encode()).decode().rstrip("=")


def stack(pools: list[dict[str, Any]], versions: tuple[str, ...] = ("1.2.3", "1.2.4"), **extra: Any) -> dict:
    raw = {
        "shims": {"slight": [release(v) for v in versions]},
        "nodePools": pools,
        "ssh": {"user": "root", "port": 22, "privateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n"},
    }
    raw.update(extra)
    return copy.deepcopy(raw)


def pool(name: str, releases: list[str], nodes: list[str], **extra: Any) -> dict[str, Any]:
    p = {"name": name, "containerd": "containerd-1", "releases": releases,
         "nodes": [{"name": n, "host": f"10.0.0.{i + 4}"} for i, n in enumerate(nodes)]}
    if extra.get("transport", "ssh") == "ssh":  # SSH nodes need a pinned host key
        for n in p["nodes"]:
            n["hostKey"] = host_key(n["host"])
    p.update(extra)
    return p


def agent_pool(name: str, releases: list[str], selector: dict | None = None, **extra: Any) -> dict:
    """A pool of transport agent: its nodes are chosen by `selector` (default `example.org/wasm-pool=<name>`)."""
    p = {"name": name, "containerd": "containerd-2", "releases": releases,
         "nodeSelector": selector if selector is not None else {"example.org/wasm-pool": name}}
    p.update(extra)
    return p


def agent_stack(pools: list[dict], **kubernetes: Any) -> dict:
    """A stack of agent pools: an agent image, no ssh settings."""
    raw = stack(pools, kubernetes={"agentImage": IMAGE, **kubernetes})
    del raw["ssh"]
    return raw


@pytest.fixture
def test_plan_stack() -> dict:
    """The proposal's test plan: A runs X.Y.Z, B runs X.Y.Z+1, C runs both."""
    return stack([
        pool("a", ["slight@1.2.3"], ["node-a"]),
        pool("b", ["slight@1.2.4"], ["node-b"]),
        pool("c", ["slight@1.2.3", "slight@1.2.4"], ["node-c"]),
    ])


# ------------------------------------------------------------------------------------ problems, plans
def _problems(raw: dict, severity: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in check_config(raw)[1]:
        if p.severity == severity:
            out[p.path] = f"{out[p.path]}\n{p.message}" if p.path in out else p.message
    return out


def errors(raw: dict) -> dict[str, str]:
    """The config's errors: stack config path -> message (several on one path joined by newlines)."""
    return _problems(raw, "error")


def warnings(raw: dict) -> dict[str, str]:
    """The config's warnings, like errors()."""
    return _problems(raw, "warning")


def planned(raw: dict) -> FleetPlan:
    """The plan of a config that must have no error."""
    _, p = plan_from_config(raw)
    assert p.ok, p.errors
    return p


def plan(pools: list[dict], versions: tuple[str, ...] = ("1.2.3", "1.2.4", "1.2.5", "2.0.0"),
         **extra: Any) -> FleetPlan:
    """The plan of `stack(pools, versions, **extra)`, which must have no error."""
    return planned(stack(pools, versions=versions, **extra))


# ------------------------------------------------------------------------------------- files, commands
def write_stack(path: Path, raw: dict) -> Path:
    """`raw` as the stack file `path` (every key under the wasm-shim-fleet namespace)."""
    path.write_text(yaml.safe_dump({"config": {f"wasm-shim-fleet:{k}": v for k, v in raw.items()}}))
    return path


def cli(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None,
        process: bool = False) -> subprocess.CompletedProcess:
    """`python -m components ARGS`: its parser and commands (components/__main__.py's) called in this process with
    `cwd` as working directory, `env` added to the environment, stdout and stderr captured, an exception turned
    into exit 1 with its traceback as the interpreter would; with `process`, the command in a process of its own."""
    if process:
        return subprocess.run([sys.executable, "-m", "components", *args], cwd=cwd, capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    import contextlib
    import io
    import traceback

    from components.__main__ import extend
    from components.core.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    os.environ.update(env or {})
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args), extend=extend)
            except SystemExit as exc:  # argparse's usage errors, a command's sys.exit
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except Exception:  # noqa: BLE001 - as the interpreter does: the traceback, exit 1
                traceback.print_exc()
                code = 1
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return subprocess.CompletedProcess(["python", "-m", "components", *args], code, out.getvalue(), err.getvalue())


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


# ---------------------------------------------------------------------------------- deployed states
def outputs_after(applied: FleetPlan) -> dict:
    """The stack outputs an update of `applied` records (what the program reads back)."""
    from components.core.deployed import LABELS_OUTPUT, PLAN_OUTPUT

    return {PLAN_OUTPUT: {k: v for k, v in applied.to_json().items() if k != "problems"},
            LABELS_OUTPUT: {n.name: {**n.labels, "kubernetes.io/os": "linux"} for n in applied.nodes}}


def snapshot(applied: FleetPlan, labels: dict[str, dict[str, str]] | None = None,
             classes: FleetPlan | None = None) -> list[tuple[str, dict]]:
    """(type, outputs) of every resource an update of `applied` leaves, as `pulumi stack export` has them.
    `labels` overrides what a node's label patch last applied and `classes` the plan whose RuntimeClasses
    are still there (an update that failed at the label patch, before its deletes)."""
    from components.core.deployed import NODE_PATCH as PATCH
    from components.core.deployed import RUNTIME_CLASS as CLASS
    from components.core.deployed import STACK

    out: list[tuple[str, dict]] = [(STACK, outputs_after(applied))]
    for rc in (classes or applied).runtime_classes:
        out.append((CLASS, {"metadata": {"name": rc.name}, "handler": rc.handler,
                            "scheduling": {"nodeSelector": dict(rc.node_selector)}}))
    for n in applied.nodes:
        live = (labels or {}).get(n.name, n.labels)
        out.append((PATCH, {"metadata": {"name": n.name, "labels": {**live, "kubernetes.io/os": "linux"}}}))
    return out


def export(resources: list[tuple[str, dict]]) -> dict:
    """`pulumi stack export` JSON of these (type, outputs)."""
    return {"version": 3, "deployment": {"resources": [{"urn": f"urn:{i}", "type": t, "outputs": o}
                                                       for i, (t, o) in enumerate(resources)]}}


# ----------------------------------------------------------------------------------------- Pulumi mocks
COMMAND_REMOTE = "command:remote:Command"
COMMAND_LOCAL = "command:local:Command"
COPY_TO_REMOTE = "command:remote:CopyToRemote"
NODE_PATCH = "kubernetes:core/v1:NodePatch"
RUNTIME_CLASS = "kubernetes:node.k8s.io/v1:RuntimeClass"
SECRET_SIG_KEY = rpc._special_sig_key  # noqa: SLF001 (the wire marker of a secret value)
SECRET_SIG = rpc._special_secret_sig  # noqa: SLF001
KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret-key-material\n-----END OPENSSH PRIVATE KEY-----\n"


@dataclass
class Recorder(pulumi.runtime.Mocks):
    """The mock engine: records every resource registered (by name), answers with the inputs as outputs."""

    resources: dict[str, pulumi.runtime.MockResourceArgs] = field(default_factory=dict)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        outputs = dict(args.inputs)
        # archives recorded as (kind, path): comparable between two runs
        args.inputs = {k: ("FileArchive", v.path) if isinstance(v, pulumi.FileArchive) else v
                       for k, v in args.inputs.items()}
        self.resources[args.name] = args
        return [f"{args.name}-id", outputs]

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}

    def of_type(self, typ: str) -> dict[str, pulumi.runtime.MockResourceArgs]:
        return {n: r for n, r in self.resources.items() if r.typ == typ}


@pytest.fixture
def kit_cache(tmp_path, monkeypatch):
    """The components stage the kit under $XDG_CACHE_HOME: a temporary one, not the user's cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def mocks(kit_cache) -> Iterator[Recorder]:
    """A fresh mock engine for one test (not a preview), its kit cache temporary."""
    recorder = Recorder()
    pulumi.runtime.set_mocks(recorder, preview=False)
    yield recorder
    pulumi.runtime.settings.reset_options()


def unwrap_secret(value):
    """The mock monitor receives secrets in their wire form; fail if `value` is not one."""
    assert isinstance(value, dict) and value.get(SECRET_SIG_KEY) == SECRET_SIG, f"not a secret: {value!r}"
    return value["value"]


def build(raw: dict):
    """Instantiate the fleet for a config inside a mock run (nodes over SSH with KEY); returns (fleet, plan)."""
    from components.fleet import ShimFleet, ShimFleetArgs
    from components.nodepool import SshConnection

    plan_ = planned(raw)
    ssh = SshConnection(user="root", port=22, private_key=pulumi.Output.secret(KEY))
    return ShimFleet("fleet", ShimFleetArgs(plan=plan_, ssh=ssh, local_base="/srv/project")), plan_


def run_fleet(raw: dict, agents: dict[str, Any] | None = None):
    """The fleet of a config in one mock program run; returns (fleet, plan). Nodes are reached over SSH with KEY;
    with `agents` (the stack's agent pools), the agents' image and namespace come from the config's kubernetes
    section and `agents` adds the other AgentSettings."""
    holder = {}

    @pulumi.runtime.test
    def program():
        if agents is None:
            fleet, plan_ = build(raw)
        else:
            from components.agent import AgentSettings
            from components.fleet import ShimFleet, ShimFleetArgs

            cfg, plan_ = plan_from_config(raw)
            assert plan_.ok, plan_.errors
            fleet = ShimFleet("fleet", ShimFleetArgs(plan=plan_, agents=AgentSettings(
                image=cfg.kubernetes.agent_image, namespace=cfg.kubernetes.agent_namespace, **agents)))
        holder["fleet"], holder["plan"] = fleet, plan_
        return pulumi.Output.from_input(fleet.urn)

    program()
    return holder["fleet"], holder["plan"]


# ------------------------------------------------------------------------------------- the README, docs/
README = ROOT / "README.md"
DOCS = "docs"
CI = ROOT / ".ci" / "run"
NEEDS = re.compile(r"#\s*\((needs [^)]+)\)")
ENGINE = re.compile(r"(^|[\s(;&|])pulumi\s|-m components (up|preview|destroy|refresh|export)\b")
SLOW = re.compile(r"\bpip install\b")
FENCE = re.compile(r"^(\s*)```\s*(\S*)")


@dataclass(frozen=True)
class Command:
    line: int  # 1-based, in its document
    text: str  # as written, trailing comment included
    block: int  # index of its ```sh block in its document
    doc: str = "README.md"  # the document, relative to the repository

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
        return f"{self.doc}:{self.line}: {self.text}"


def doc_files(root: Path = ROOT) -> list[Path]:
    """The documents whose commands the tests run, in the order they run them: README.md first, then every
    Markdown file under docs/ (subfolders included) in the order of their paths. A new file in docs/ is read
    without touching a test."""
    docs = sorted((root / DOCS).rglob("*.md"), key=lambda p: p.relative_to(root).as_posix())
    return [root / "README.md", *docs]


def doc_commands(root: Path = ROOT) -> list[Command]:
    """The commands of README.md, then of each file of docs/, in doc_files' order (what a reader following the
    documentation runs, on one clone)."""
    return [c for path in doc_files(root) for c in commands_in(path.read_text(), path.relative_to(root).as_posix())]


def commands_in(text: str, doc: str = "README.md") -> list[Command]:
    """The commands of every ```sh / ```bash block of one document, continuation lines joined, comment lines
    dropped."""
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
                commands.append(Command(start, acc, block, doc))
                pending = None
            continue
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending = (no, stripped.rstrip("\\").strip())
        else:
            commands.append(Command(no, stripped, block, doc))
    return commands


def ci_commands() -> list[str]:
    return [line.strip() for line in CI.read_text().splitlines()
            if line.strip() and not line.startswith("#") and not re.match(r"(set|cd)\s", line.strip())]


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


# ------------------------------------------------------------------------- the policy pack's SDK
POLICY_VENV = Path(os.environ.get("WSF_POLICY_VENV", "/var/cache/wasm-shim-fleet/policy-venv"))


def _package_stamp() -> str:
    """The pack's requirements and the sha256 of the package's files: what the cached virtualenv was built from."""
    import hashlib

    h = hashlib.sha256((ROOT / "policy" / "requirements.txt").read_bytes())
    for f in sorted((ROOT / "components").rglob("*")):
        if f.is_file() and "__pycache__" not in f.parts:
            h.update(str(f.relative_to(ROOT)).encode() + b"\0" + f.read_bytes())
    h.update((ROOT / "pyproject.toml").read_bytes())
    return h.hexdigest()


def policy_venv() -> Path:
    """pulumi-policy in its own virtualenv outside the repository, built once from policy/requirements.txt, with
    this checkout's package installed into it as docs/operating.md says (`pip install --no-deps .`), re-installed
    when the package changes."""
    python = POLICY_VENV / "bin" / "python"
    stamp = POLICY_VENV / "requirements.txt"
    reqs = (ROOT / "policy" / "requirements.txt").read_text()
    if not python.exists() or not stamp.exists() or stamp.read_text() != reqs:
        shutil.rmtree(POLICY_VENV, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(POLICY_VENV)], check=True, timeout=300)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r",
                        str(ROOT / "policy" / "requirements.txt")], check=True, timeout=600)
        stamp.write_text(reqs)
    package = POLICY_VENV / "package.sha256"
    want = _package_stamp()
    if not package.exists() or package.read_text() != want:
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                        "--force-reinstall", str(ROOT)], check=True, timeout=600)
        package.write_text(want)
    return python


# ------------------------------------------------------------------------- the kit's handler block
def kit_config(handlers: Mapping[str, str], work: Path, flavor: str = "containerd-1",
               original: str | None = "version = 2\n") -> str:
    """The containerd config the node kit writes (its apply-table call, the one source of the block) when the
    config was `original` (None: no file yet), in a node root under `work`; restart `:`, no containerd on PATH."""
    from components.core.flavors import FLAVORS
    from components.core.nodescript import KIT_FILE, shq
    from tests.integration.helpers import minimal_path

    root = Path(tempfile.mkdtemp(prefix="node-", dir=work))
    config = root / FLAVORS[flavor].config_path.lstrip("/")
    if original is not None:
        config.parent.mkdir(parents=True)
        config.write_text(original)
    bin_dir = root / "usr" / "local" / "bin"  # the shims the table names, in place (the kit checks for them)
    bin_dir.mkdir(parents=True)
    for t in handlers.values():
        shim = bin_dir / naming.binary_of_runtime_type(t)
        shim.write_text("#!/bin/sh\n")
        shim.chmod(0o755)
    pairs = " ".join(shq(f"{h}={t}") for h, t in handlers.items())
    proc = subprocess.run(["sh", "-c", f". {shq(str(KIT_FILE))}; wsf 1 {flavor} apply-table {pairs}"],
                          env={"PATH": minimal_path(work), "WSF_NODE_ROOT": str(root), "WSF_RESTART": ":",
                               "LANG": "C"}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return config.read_text()


def split_block(text: str) -> tuple[str, str]:
    """(what comes before the managed block, the block from its first marker line to its last): the file must
    hold exactly one block, at its end."""
    from components.core.containerd import BEGIN, END

    assert text.count(BEGIN + "\n") == 1 and text.count(END + "\n") == 1 and text.endswith(END + "\n"), text[-400:]
    head, _, rest = text.partition(BEGIN + "\n")
    return head, BEGIN + "\n" + rest


def runtimes_in(text: str, config_version: int) -> dict[str, str]:
    """handler -> runtime_type of every runtime table in a TOML text, as a TOML parser (tomllib) reads them."""
    import tomllib

    from components.core.flavors import RUNTIMES_TABLE
    from components.core.nodescript import split_key

    table: Any = tomllib.loads(text)
    for part in split_key(RUNTIMES_TABLE[config_version]):
        table = table.get(part, {})
    return {name: t.get("runtime_type") for name, t in table.items()}


def assert_kit_block(text: str, original: str | None, handlers: dict[str, str], version: int,
                     create_base: str = "") -> None:
    """`text` is `original` byte for byte (a newline added when it had no final one; `create_base` when there was
    no file), an empty line, then one managed block whose second line says how to restore the original, holding
    exactly `handlers` as a TOML parser reads its tables; and, a TOML file, the whole keeps them too."""
    head, block = split_block(text)
    if original is None:
        kind, want = "created", create_base + "\n\n"
    elif original and not original.endswith("\n"):
        kind, want = "no-final-newline", original + "\n\n"
    else:
        kind, want = "kept", original + "\n"
    assert head == want
    from components.core.containerd import ORIGINAL_PREFIX

    assert block.splitlines()[1] == ORIGINAL_PREFIX + kind
    assert runtimes_in(block, version) == handlers
    if "{{" not in text:  # not a k3s/rke2 template: the whole file is TOML
        assert {h: t for h, t in runtimes_in(text, version).items() if h in handlers} == handlers
