"""The stack configuration contract: read `wasm-shim-fleet:*` keys and check every value.

Checks are collected, never stopped at the first: a platform engineer fixing a stack file wants the whole
list at once. Every problem names its stack config path (`nodePools[1].releases[0]`), the value, the rule
and the fix. Values that pass are turned into frozen dataclasses; nothing downstream re-validates.

Nothing from config may ever reach a shell unquoted, and even quoted, host names, user names, node names,
URLs and archive members are held to the characters that belong in them.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import semver

from . import incluster, naming
from .flavors import FLAVORS

NAMESPACE = "wasm-shim-fleet"
#: The namespace the program creates for agent pools' DaemonSets (kubernetes.agentNamespace).
DEFAULT_AGENT_NAMESPACE = "wasm-shim-fleet"
DEFAULT_RUNTIME = "wasmtime"
TRANSPORTS = ("ssh", "local", "kubernetes", "agent")
DEPRECATION_MODES = ("off", "warn", "error")

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_NODE_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_MEMBER = re.compile(r"^[A-Za-z0-9._+-]+(/[A-Za-z0-9._+-]+)*$")
_URL = re.compile(r"^(https://[A-Za-z0-9.-]+(:[0-9]+)?|file://)/[A-Za-z0-9._~%/+:@=,-]*$")
#: `file:<relative path>`: resolved against the project folder (where Pulumi.yaml is).
_RELATIVE_FILE_URL = re.compile(r"^file:(?!/)[A-Za-z0-9._~%+@=,-][A-Za-z0-9._~%/+@=,-]*$")
_HOST_KEY = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,3}$")
_SAFE_PATH = re.compile(r"^[A-Za-z0-9._/-]+$")
_SERIES_LIKE = re.compile(r"-v[0-9]")

TOP_KEYS = ("runtime", "labelPrefix", "shims", "nodePools", "ssh", "kubernetes", "deprecation")
RELEASE_KEYS = ("version", "url", "sha256", "binary", "probe", "maxBytes")
#: The largest artifact a node downloads when its catalog entry sets no maxBytes (the kit's default), and the
#: largest maxBytes may be.
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
MAX_MAX_BYTES = 1 << 40
#: `probe`: how a node checks an installed shim binary before anything uses it (`-v`), or not at all.
PROBES = ("version", "none")
POOL_KEYS = ("name", "containerd", "releases", "retiring", "nodes", "transport", "localRoot", "restart", "seedConfig",
             "nodeSelector", "rollout", "checkSeconds")
#: How a pool's change reaches its nodes, node by node: the same names for every kind of pool (agent pools: the
#: DaemonSet's rolling update; pools that list nodes: batches in the engine's dependency order,
#: components/core/rollout.py). minReadySeconds and timeoutSeconds are agent pools' only.
ROLLOUT_KEYS = ("maxUnavailable", "canary", "minReadySeconds", "timeoutSeconds")
#: rollout keys that only agent pools have (their agents' Ready time; how long the program waits for the DaemonSet)
AGENT_ONLY_ROLLOUT_KEYS = ("minReadySeconds", "timeoutSeconds")
NODE_KEYS = ("name", "host", "port", "hostKey")
SSH_KEYS = ("user", "port", "privateKey", "proxy", "insecureAcceptAnyHostKey")
PROXY_KEYS = ("host", "port", "user", "privateKey", "hostKey")
K8S_KEYS = ("kubeconfig", "context", "renderDir", "forceLabels", "runnerImage", "runnerNamespace", "agentImage",
            "agentNamespace", "agentApiServer")
DEPRECATION_KEYS = ("mode", "keep")


# --------------------------------------------------------------------------------------------- types
@dataclass(frozen=True)
class Problem:
    """One thing wrong (or worth a look) in a stack configuration."""

    severity: str  # "error" or "warning"
    path: str  # stack config path, e.g. nodePools[1].releases[0]
    message: str  # the value, the rule and the fix

    def __str__(self) -> str:
        return f"{self.severity}: {self.path}: {self.message}"

    def to_json(self) -> dict[str, str]:
        return {"severity": self.severity, "path": self.path, "message": self.message}


@dataclass(frozen=True)
class Release:
    """One catalog entry: a shim at one version and where its artifact comes from."""

    shim: str
    version: semver.Version
    url: str
    sha256: str  # lower-case hex
    member: str | None  # archive member to install; None for a bare binary
    path: str  # stack config path of the entry, e.g. shims.slight[0]
    probe: str = "version"  # version: run the binary with -v on the node before installing it; none: do not
    max_bytes: int | None = None  # the largest download a node accepts (None: DEFAULT_MAX_BYTES)

    @property
    def key(self) -> str:
        return naming.release_key(self.shim, self.version)

    @property
    def handler(self) -> str:
        return naming.exact_handler(self.shim, self.version)

    @property
    def binary(self) -> str:
        return naming.binary_name(self.shim, self.version)

    @property
    def stable(self) -> bool:
        """Prereleases carry no compatibility promise: they never stand for a series."""
        return not self.version.prerelease


@dataclass(frozen=True)
class Node:
    name: str  # Kubernetes node name
    host: str  # SSH address
    port: int | None  # SSH port (None: the ssh default)
    host_key: str | None  # pinned host public key, "ssh-ed25519 AAAA..."
    path: str


@dataclass(frozen=True)
class Rollout:
    """How a pool's change rolls over its nodes (the defaults are an agent pool's; NODE_LIST_ROLLOUT is those of a
    pool that lists its nodes)."""

    #: at most this many nodes (or this percentage of the pool's nodes, "25%", rounded up) converge at once
    max_unavailable: int | str = 1
    #: a node counts as done only after its agent has been Ready this long (a soak time; agent pools)
    min_ready_seconds: int = 0
    #: `pulumi up` fails when the rollout has not finished after this long (agent pools)
    timeout_seconds: int = 600
    #: how many nodes go first, alone, before any other node's handler table changes (None: not set; an agent
    #: pool's first step is its DaemonSet's first maxUnavailable nodes)
    canary: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"maxUnavailable": self.max_unavailable, "minReadySeconds": self.min_ready_seconds,
                               "timeoutSeconds": self.timeout_seconds}
        if self.canary is not None:  # only then: an agent pool without it records what it always recorded
            out["canary"] = self.canary
        return out


#: A pool that lists its nodes: one canary node, then batches of at most 25 % of the pool's nodes (rounded up).
NODE_LIST_ROLLOUT = Rollout(max_unavailable="25%", canary=1)


@dataclass(frozen=True)
class Pool:
    name: str
    flavor: str
    transport: str  # "ssh", "local" or "kubernetes"
    releases: tuple[str, ...]  # release keys, labelled
    retiring: tuple[str, ...]  # release keys, installed but no longer labelled
    nodes: tuple[Node, ...]
    local_root: str  # for transport local: node roots are <local_root>/<node name>
    restart: str | None  # overrides the flavor's restart command
    path: str
    #: transport local only: a containerd config copied into a node root that has none yet
    seed_config: str | None = None
    #: transport agent: the node labels that choose the pool's nodes (a DaemonSet's nodeSelector)
    node_selector: dict[str, str] | None = None
    #: how a change rolls over the pool's nodes (agent pools: the DaemonSet's; pools that list nodes: the
    #: batches of components/core/rollout.py)
    rollout: Rollout | None = None
    #: transport agent: how often each node's agent checks (and repairs) its node, in seconds
    check_seconds: int = 60


@dataclass(frozen=True)
class Proxy:
    host: str
    port: int | None
    user: str | None
    host_key: str | None
    has_private_key: bool


@dataclass(frozen=True)
class Ssh:
    user: str
    port: int
    #: The private key. May be a placeholder when read from a stack file (secrets stay encrypted there);
    #: the program passes it on only as a Pulumi secret. Never in a repr.
    private_key: str | None = field(repr=False)
    proxy: Proxy | None = None
    proxy_private_key: str | None = field(default=None, repr=False)
    #: Lab only: SSH nodes and the bastion may go without a pinned host key (pulumi-command then checks none).
    insecure_accept_any_host_key: bool = False


@dataclass(frozen=True)
class Kubernetes:
    kubeconfig: str | None
    context: str | None
    render_dir: str | None
    #: Take over a label another field manager owns (server-side apply force). Off: such a label is a
    #: conflict error that names the label and its manager.
    force_labels: bool = False
    #: transport kubernetes: the image of the pods that run node commands, pinned by digest
    runner_image: str | None = None
    #: transport kubernetes: the namespace the program creates for those pods
    runner_namespace: str = incluster.DEFAULT_NAMESPACE
    #: transport agent: the node agent's image, pinned by digest
    agent_image: str | None = None
    #: transport agent: the namespace the program creates for the agents' DaemonSets
    agent_namespace: str = DEFAULT_AGENT_NAMESPACE
    #: transport agent: host:port of the API server as the agents reach it (None: the in-cluster Service)
    agent_api_server: str | None = None


@dataclass(frozen=True)
class Deprecation:
    mode: str  # off | warn | error
    keep: int  # releases of a shim to keep per pool (N and N-1 -> 2)


@dataclass(frozen=True)
class FleetConfig:
    runtime: str
    releases: dict[str, Release]  # by key, catalog order
    pools: tuple[Pool, ...]
    ssh: Ssh
    kubernetes: Kubernetes
    deprecation: Deprecation
    label_prefix: str = ""  # e.g. "wasm.example.org/"; "" for the proposal's unprefixed names


# ----------------------------------------------------------------------------------------- reading
#: A stack file of 10,000 nodes is about 1 MiB; anything past this is not a stack file.
MAX_FILE_BYTES = 16 * 1024 * 1024
#: A stack config is about 6 levels deep; deeper input is refused before it is built.
MAX_DEPTH = 64
#: Values in the file once YAML aliases are expanded (10,000 nodes are about 60,000): bounds alias bombs.
MAX_VALUES = 2_000_000


class StackFileError(Exception):
    """The stack file itself cannot be read (missing, not YAML, no config mapping)."""


def _show(value: Any, limit: int = 60) -> str:
    """A value as a message quotes it: repr, non-ASCII escaped (a look-alike letter shows as \\u043e),
    long values cut, so no input can flood a log."""
    text = ascii(value)
    if len(text) > limit:
        text = f"{text[:limit]}… ({len(text)} characters)"
    if isinstance(value, str):
        odd = naming.non_ascii(value)
        if odd:
            text += f" ({odd})"
    return text


def _key(key: Any) -> str:
    """A key as it appears in a config path: escaped and cut like a quoted value."""
    text = str(key)
    if text.isascii() and text.isprintable() and len(text) <= 80:
        return text
    text = ascii(text)[1:-1]
    return text if len(text) <= 80 else text[:60] + "…"


def _yaml_loader() -> type:
    """libyaml's safe loader when PyYAML was built with it (about 10x faster), else the pure-Python one;
    both refuse a key written twice in one mapping."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    # the base class is chosen at run time (libyaml's loader when PyYAML has it), which mypy cannot follow
    class Loader(base):  # type: ignore[misc,valid-type]
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            if isinstance(node, yaml.MappingNode):
                seen: dict[Any, int] = {}
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue
                    key = self.construct_object(key_node, deep=deep)
                    try:
                        first = seen.get(key)
                    except TypeError:
                        continue  # unhashable: the base class reports it
                    line = key_node.start_mark.line + 1
                    if first is not None:
                        raise StackFileError(f"line {line}: key {_show(key)} is already set at line {first} of "
                                             "the same mapping (YAML would silently keep only the last); "
                                             "remove or merge one of them")
                    seen[key] = line
            return super().construct_mapping(node, deep=deep)

    return Loader


def _bound_yaml(text: str, loader: type) -> None:
    """Refuse nesting deeper than MAX_DEPTH and alias expansion past MAX_VALUES, from the event stream
    alone (nothing is built, so an alias bomb costs no memory and a deep file no recursion)."""
    import yaml

    frames: list[list[Any]] = []  # [anchor, values inside]
    sizes: dict[str, int] = {}
    total = 0
    for ev in yaml.parse(text, Loader=loader):
        n = 0
        if isinstance(ev, yaml.CollectionStartEvent):
            if len(frames) >= MAX_DEPTH:
                raise StackFileError(f"line {_line(ev)}: values nested more than {MAX_DEPTH} deep; "
                                     "a stack config is a few levels deep: this is not a stack file")
            frames.append([ev.anchor, 1])
            total += 1
            continue
        if isinstance(ev, yaml.CollectionEndEvent):
            anchor, n = frames.pop()
            if anchor is not None:
                sizes[anchor] = n
            if frames:
                frames[-1][1] += n
            continue
        if isinstance(ev, yaml.ScalarEvent):
            n = 1
            if ev.anchor is not None:
                sizes[ev.anchor] = 1
        elif isinstance(ev, yaml.AliasEvent):
            n = sizes.get(ev.anchor or "", 1)
        else:
            continue
        total += n
        if frames:
            frames[-1][1] += n
        if total > MAX_VALUES:
            where = f"alias *{ev.anchor}" if isinstance(ev, yaml.AliasEvent) else "value"
            raise StackFileError(f"line {_line(ev)}: {where} takes the file past {MAX_VALUES:,} "
                                 "values once YAML aliases are expanded; write the values out instead of "
                                 "nesting aliases")


def _line(event: Any) -> int | str:
    """The 1-based line of a YAML event (the parser marks every event; "?" if one came without)."""
    mark = event.start_mark
    return mark.line + 1 if mark is not None else "?"


def _yaml_error(exc: Exception) -> str:
    """Where and what, without the snippet of the file PyYAML would quote (it may hold a secret)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}" + (f" ({context})" if context else "")


def load_yaml(path: str | Path) -> Any:
    """The YAML document in `path`, read safely: size, encoding, depth and alias expansion bounded,
    duplicate keys refused. Raises StackFileError naming the file, the line and the fix."""
    import stat

    import yaml  # PyYAML: read-only parsing; promote uses ruamel.yaml to keep comments when writing.

    p = Path(path)
    try:
        # O_NONBLOCK: opening a FIFO nobody writes to must not hang. A pipe is fine (`diff <(git show ...)`):
        # once open, reads block again, and a FIFO without a writer reads as empty.
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
        with open(fd, "rb") as f:
            mode = os.fstat(fd).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
                raise StackFileError(f"{p}: not a regular file or a pipe; give the path of a Pulumi.<stack>.yaml")
            os.set_blocking(fd, True)
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise StackFileError(f"{p}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise StackFileError(f"{p}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB (a stack file of 10,000 "
                             "nodes is about 1 MiB); check that this is the stack file")
    if b"\0" in data:
        raise StackFileError(f"{p}: contains NUL bytes: a binary file, not a YAML stack file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise StackFileError(f"{p}: line {line}: byte 0x{data[exc.start]:02x} is not UTF-8 (a Latin-1 or other "
                             "8-bit file?); save the file as UTF-8") from None
    loader = _yaml_loader()
    try:
        _bound_yaml(text, loader)
        return yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader subclass
    except StackFileError as exc:
        raise StackFileError(f"{p}: {exc}") from None
    except yaml.YAMLError as exc:
        raise StackFileError(f"{p}: not valid YAML: {_yaml_error(exc)}") from None
    except (RecursionError, MemoryError, ValueError, OverflowError) as exc:
        raise StackFileError(f"{p}: cannot be read as YAML ({type(exc).__name__}); "
                             "check that this is the stack file") from None


def config_key_problems(config: Mapping[Any, Any]) -> list[Problem]:
    """Keys under `config:` that were surely meant for this program but would be ignored: a misspelled
    namespace (`wasm-shim-flet:shims`) or none at all (`shims`)."""
    import difflib

    out = []
    for key in config:
        if not isinstance(key, str):
            out.append(Problem("error", _show(key), f"config key {_show(key)} is not a string; "
                                                    f"write {NAMESPACE}:<key>"))
            continue
        ns, sep, rest = key.partition(":")
        if not sep and key in TOP_KEYS:
            out.append(Problem("error", key, f"config key {_show(key)} has no namespace, so Pulumi would not "
                                             f"pass it to this program; write {NAMESPACE}:{key}"))
        elif sep and ns != NAMESPACE and (difflib.SequenceMatcher(None, ns, NAMESPACE).ratio() >= 0.8
                                          or ns.lower() == NAMESPACE):
            out.append(Problem("error", key, f"namespace {_show(ns)} looks like a misspelling of {NAMESPACE!r}, "
                                             f"so the key would be ignored; write {NAMESPACE}:{rest}"))
    return out


def project_dir(*stack_files: str | Path) -> Path:
    """The folder that relative `file:` URLs (and local node roots) of these stack files resolve against: the
    project's, that is the nearest folder holding Pulumi.yaml above the first file that has one; else the folder of
    the first regular file; else the current directory. One folder for every file given: the old side of
    `diff <(git show main:Pulumi.prod.yaml) Pulumi.prod.yaml` is a pipe (/dev/fd/63) whose own folder is no
    project's, and resolved there its URLs would all look new."""
    for f in stack_files:
        for folder in Path(f).absolute().parents:
            if (folder / "Pulumi.yaml").is_file():
                return folder
    for f in stack_files:
        if Path(f).is_file():
            return Path(f).resolve().parent
    return Path.cwd()


def read_stack_file(path: str | Path) -> dict[str, Any]:
    """The `wasm-shim-fleet:*` keys of a `Pulumi.<stack>.yaml`, namespace stripped."""
    import difflib

    p = Path(path)
    doc = load_yaml(p)
    if doc is None:
        raise StackFileError(f"{p}: the file is empty; a stack file holds config: with {NAMESPACE}:shims, "
                             f"{NAMESPACE}:nodePools and the other keys of the configuration reference")
    if not isinstance(doc, Mapping):
        raise StackFileError(f"{p}: expected a mapping with a 'config:' key, found {_typename(doc)}")
    if "config" not in doc:
        near = difflib.get_close_matches("config", [k for k in doc if isinstance(k, str)], n=1, cutoff=0.6)
        ours = [k for k in doc if isinstance(k, str) and k.startswith(NAMESPACE + ":")]
        hint = (f"found {near[0]!r}: rename it to config" if near else
                f"indent the {NAMESPACE}:* keys under config:" if ours else
                f"put the {NAMESPACE}:* keys under config:")
        raise StackFileError(f"{p}: no 'config:' key; {hint}")
    config = doc.get("config")
    if config is None:
        config = {}
    if not isinstance(config, Mapping):
        raise StackFileError(f"{p}: 'config' must be a mapping of keys to values, found {_typename(config)}")
    problems = config_key_problems(config)
    if problems:
        raise StackFileError(f"{p}: " + "; ".join(f"{q.path}: {q.message}" for q in problems))
    out = strip_namespace(config)
    if not out:
        raise StackFileError(f"{p}: config: has no {NAMESPACE}:* keys; declare at least {NAMESPACE}:shims "
                             f"and {NAMESPACE}:nodePools")
    return out


def strip_namespace(config: Mapping[str, Any]) -> dict[str, Any]:
    prefix = NAMESPACE + ":"
    return {k[len(prefix) :]: v for k, v in config.items() if isinstance(k, str) and k.startswith(prefix)}


# ---------------------------------------------------------------------------------------- checking
def _typename(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", int: "a number", float: "a number",
            bool: "true/false", type(None): "empty"}.get(type(value), type(value).__name__)


class _Checker:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        #: release key -> config path of catalog entries that exist but have errors of their own
        self.rejected: dict[str, str] = {}

    def error(self, path: str, message: str) -> None:
        self.problems.append(Problem("error", path, message))

    def warn(self, path: str, message: str) -> None:
        self.problems.append(Problem("warning", path, message))

    def mapping(self, value: Any, path: str, allowed: tuple[str, ...], what: str) -> Mapping[str, Any] | None:
        if not isinstance(value, Mapping):
            self.error(path, f"{_show(value)} is {_typename(value)}; {what} must be a mapping with keys "
                             f"{', '.join(allowed)}")
            return None
        for key in value:
            if key not in allowed:
                self.error(f"{path}.{_key(key)}" if path else _key(key),
                           f"unknown key {_show(key)}; {what} takes only {', '.join(allowed)}"
                           f"{_did_you_mean(key, allowed)}: fix the spelling or remove it")
        return value

    def string(self, value: Any, path: str, hint: str = "") -> str | None:
        if isinstance(value, str) and value != "":
            return value
        if value is None or value == "":
            self.error(path, f"missing; it must be a non-empty string{hint}")
        else:
            self.error(path, f"{_show(value)} is {_typename(value)}; it must be a string{hint} "
                             "(quote it in YAML)")
        return None

    def port(self, value: Any, path: str) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            self.error(path, f"{_show(value)} is not a TCP port; use a whole number from 1 to 65535")
            return None
        return value

    def string_list(self, value: Any, path: str) -> list[tuple[str, str]]:
        """[(path, item)] of a list of strings; bad items reported."""
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(path, f"{_show(value)} is {_typename(value)}; it must be a list like [slight@1.2.3]")
            return []
        out = []
        for i, item in enumerate(value):
            p = f"{path}[{i}]"
            if isinstance(item, str):
                out.append((p, item))
            else:
                self.error(p, f"{_show(item)} is {_typename(item)}; each entry must be a string "
                              "<shim>@<version> such as slight@1.2.3")
        return out


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _check_host(c: _Checker, value: Any, path: str) -> str | None:
    host = c.string(value, path, " holding a host name or IP address")
    if host is None:
        return None
    if _HOSTNAME.match(host) or _is_ipv6(host):
        return host
    c.error(path, f"{_show(host)} is not a host name or IP address (letters, digits, '-', '.' for names; "
                  "hex digits and ':' for IPv6); write only the address: the port goes in 'port'")
    return None


def _check_user(c: _Checker, value: Any, path: str) -> str | None:
    user = c.string(value, path, " holding a user name")
    if user is None:
        return None
    if _USER.match(user):
        return user
    c.error(path, f"{_show(user)} is not a POSIX user name (lower-case letter or '_' first, then lower-case "
                  "letters, digits, '_' or '-', at most 32); use the account name on the node")
    return None


def _check_host_key(c: _Checker, value: Any, path: str) -> str | None:
    if value is None:
        return None
    key = c.string(value, path, " holding a public host key")
    if key is None:
        return None
    key = key.strip()
    if _HOST_KEY.match(key):
        return key
    c.error(path, f"{_show(key, 40)} is not an SSH public host key '<type> <base64>' (type ssh-ed25519, "
                  "ssh-rsa or ecdsa-sha2-*); copy one line of the node's /etc/ssh/ssh_host_*_key.pub "
                  "without the comment")
    return None


def _check_version(c: _Checker, value: Any, path: str) -> semver.Version | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        c.error(path, f"{_show(value)} was read by YAML as a number; write the full version as a quoted string, "
                      f"e.g. \"{value}.0\"")
        return None
    text = c.string(value, path, " holding a semantic version such as 1.2.3")
    if text is None:
        return None
    try:
        version = naming.parse_version(text)
    except ValueError as exc:
        c.error(path, f"{_show(text)} is {exc}; write e.g. 1.2.3 or 0.1.0-alpha.1")
        return None
    if version.build:
        c.error(path, f"{_show(text)} carries build metadata '+{version.build}', which cannot appear in node "
                      f"labels or handler names; remove it (publish a new version instead)")
        return None
    return version


def _check_release(c: _Checker, shim: str, entry: Any, path: str, base_dir: str | Path | None) -> Release | None:
    m = c.mapping(entry, path, RELEASE_KEYS, "a release")
    if m is None:
        return None
    version = _check_version(c, m.get("version"), f"{path}.version")
    url = c.string(m.get("url"), f"{path}.url", " holding an https:// or file:// URL")
    if url is not None and _RELATIVE_FILE_URL.match(url) and base_dir is not None:
        url = "file://" + str((Path(base_dir) / url[len("file:"):]).resolve())
    if url is not None and not _URL.match(url) and not _RELATIVE_FILE_URL.match(url):
        c.error(f"{path}.url", f"{_show(url)} is not an https://, file:/// or file:<relative path> URL of plain "
                               "characters; download artifacts over https (file: for local tests) and "
                               "percent-encode spaces and quotes")
        url = None
    digest = m.get("sha256")
    sha = c.string(digest, f"{path}.sha256", " of 64 hex digits")
    if sha is not None and not _HEX64.match(sha):
        c.error(f"{path}.sha256", f"{_show(sha)} is not a sha256 (64 hex digits); run `sha256sum` on the file "
                                  "the url serves and paste the digest")
        sha = None
    member = m.get("binary")
    if member is not None:
        member = c.string(member, f"{path}.binary", " naming the archive member")
        if member is not None and (not _MEMBER.match(member) or ".." in member.split("/")):
            c.error(f"{path}.binary", f"{_show(member)} is not a relative path inside the archive (letters, digits, "
                                      "'._+-', '/' between parts, no '..'); use the member's path as `tar tzf` "
                                      "lists it")
            member = None
    max_bytes = m.get("maxBytes")
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int)
                                  or not 1 <= max_bytes <= MAX_MAX_BYTES):
        c.error(f"{path}.maxBytes", f"{_show(max_bytes)} is not a size in bytes from 1 to {MAX_MAX_BYTES}; give the "
                                    "largest artifact a node may download for this entry as a whole number (default "
                                    f"{DEFAULT_MAX_BYTES}, 256 MiB), or remove the key")
        return None
    probe = m.get("probe", "version")
    if probe not in PROBES:
        c.error(f"{path}.probe", f"{probe!r} is not one of {', '.join(PROBES)}; use version (run the binary with -v "
                                 "on each node before installing it) or none (for a binary without -v)")
        return None
    if version is None or url is None or sha is None or (m.get("binary") is not None and member is None):
        return None
    return Release(shim, version, url, sha.lower(), member, path, probe, max_bytes)


def _check_shims(c: _Checker, runtime: str, value: Any, base_dir: str | Path | None) -> dict[str, Release]:
    releases: dict[str, Release] = {}
    if value is None:
        c.error("shims", "missing; declare the catalog as shims: {<shim>: [{version, url, sha256}]}")
        return releases
    shims = c.mapping(value, "shims", tuple(value) if isinstance(value, Mapping) else (), "the catalog")
    if shims is None:
        return releases
    for shim, entries in shims.items():
        base = f"shims.{_key(shim)}"
        why = naming.dns_label_problem(shim) if isinstance(shim, str) else "is not a string"
        if why is not None:
            c.error(base, f"shim name {_show(shim)} {why}; rename it, e.g. 'slight'")
            continue
        if _SERIES_LIKE.search(shim):
            c.error(base, f"shim name {_show(shim)} contains '-v<digit>', which would collide with another shim's "
                          "versioned handler names; drop the version from the name")
            continue
        any_label = naming.label_key(runtime, naming.any_handler(shim), shim)
        if len(any_label) > naming.MAX_NAME:
            c.error(base, f"label {_show(any_label)} would be {len(any_label)} characters, over the "
                          f"{naming.MAX_NAME} a label name allows; "
                          "use a shorter shim name or runtime prefix")
            continue
        if not isinstance(entries, list):
            c.error(base, f"{_show(entries)} is {_typename(entries)}; list the releases: "
                          "- {version: 1.2.3, url: ..., sha256: ...}")
            continue
        encoded: dict[str, tuple[str, str]] = {}
        for i, entry in enumerate(entries):
            path = f"{base}[{i}]"
            rel = _check_release(c, shim, entry, path, base_dir)
            if rel is None:
                _remember_rejected(c, shim, entry, path)
                continue
            enc = naming.encode_version(rel.version)
            if rel.key in releases:
                c.error(f"{path}.version", f"{rel.version} is listed twice for {shim} (first at "
                                           f"{releases[rel.key].path}); remove one entry")
                continue
            if enc in encoded:
                first_path, first_version = encoded[enc]
                c.error(f"{path}.version", f"{rel.version} encodes to the same names ({rel.handler}) as "
                                           f"{first_version} at {first_path}; names use dashes and lower case, "
                                           "so keep only one of them")
                continue
            class_label = naming.class_name(runtime, rel.handler)
            if len(class_label) > naming.MAX_NAME:
                c.error(f"{path}.version", f"RuntimeClass/label {_show(class_label)} would be {len(class_label)} "
                                           f"characters, over the {naming.MAX_NAME} a name allows; shorten the "
                                           "prerelease, the shim name or the runtime prefix")
                continue
            encoded[enc] = (f"{path}.version", str(rel.version))
            releases[rel.key] = rel
    return releases


def _remember_rejected(c: _Checker, shim: str, entry: Any, path: str) -> None:
    """So that a pin of a broken entry points at the entry rather than saying it does not exist."""
    try:
        text = entry.get("version") if isinstance(entry, Mapping) else None
        version = naming.parse_version(text) if isinstance(text, str) else None
    except (ValueError, TypeError, AttributeError):
        return
    if version is not None:
        c.rejected.setdefault(naming.release_key(shim, version), path)


def _resolve_ref(c: _Checker, text: str, path: str, releases: Mapping[str, Release]) -> str | None:
    shim, sep, ver = text.partition("@")
    if not sep or not shim or not ver:
        c.error(path, f"{_show(text)} is not <shim>@<version>; write e.g. slight@1.2.3")
        return None
    try:
        version = naming.parse_version(ver)
    except ValueError:
        c.error(path, f"{_show(text)}: {_show(ver)} is not a semantic version; write e.g. {shim}@1.2.3")
        return None
    key = naming.release_key(shim, version)
    if key not in releases and key in c.rejected:
        c.error(path, f"{_show(text)} pins the catalog entry at {c.rejected[key]}, which has errors of its own; "
                      "fix that entry")
        return None
    if key not in releases:
        known = sorted(k for k in releases if k.startswith(shim + "@"))
        hint = f"the catalog has {', '.join(known)}" if known else f"the catalog has no shim {_show(shim)}"
        c.error(path, f"{_show(text)} names a release that is not in the catalog ({hint}); add it under "
                      f"shims.{shim} or fix the pin")
        return None
    return key


def _unique_name(c: _Checker, value: Any, path: str, what: str, problem: Callable[[str], str | None], fix: str,
                 seen: dict[str, str], twice: str) -> str | None:
    """A name that follows its rule (`problem` says which rule it breaks) and was not seen before (recorded
    in `seen` with its path)."""
    name = c.string(value, path, f" ({what})")
    why = problem(name) if name is not None else None
    if why is not None:
        c.error(path, f"{_show(name)} {why}; {fix}")
        return None
    if name is not None and name in seen:
        c.error(path, twice.format(name=_show(name), first=seen[name]))
        return None
    if name is not None:
        seen[name] = path
    return name


def _check_pins(c: _Checker, m: Mapping[str, Any], base: str, releases: Mapping[str, Release]
                ) -> tuple[list[str], list[str], bool]:
    """The pool's `releases` and `retiring` as release keys, and whether all of them resolved."""
    ok = True
    pins: list[list[str]] = []
    seen: dict[str, str] = {}
    for field_name in ("releases", "retiring"):
        keys = []
        for p, text in c.string_list(m.get(field_name), f"{base}.{field_name}"):
            key = _resolve_ref(c, text, p, releases)
            if key is not None and key in seen:
                c.error(p, f"{_show(text)} is already listed at {seen[key]}; a release is either in releases "
                           "(labelled) or in retiring (installed, unlabelled), once")
                key = None
            if key is None:
                ok = False
                continue
            seen[key] = p
            keys.append(key)
        pins.append(keys)
    return pins[0], pins[1], ok


def _check_node(c: _Checker, raw: Any, path: str, transport: str, node_names: dict[str, str]) -> Node | None:
    m = c.mapping(raw, path, NODE_KEYS, "a node")
    if m is None:
        return None
    name = _unique_name(c, m.get("name"), f"{path}.name", "the Kubernetes node name", naming.dns_subdomain_problem,
                        "a Kubernetes node name is a lower-case DNS subdomain: use the name `kubectl get nodes` "
                        "shows", node_names,
                        "node {name} is already in {first}; a node belongs to one pool: list all of its "
                        "releases in that pool")
    host = m.get("host")
    if transport == "kubernetes":
        # The node is reached through the cluster by its name: an address, port or host key would be unused.
        for key in ("host", "port", "hostKey"):
            if m.get(key) is not None:
                c.error(f"{path}.{key}", f"{_show(m.get(key))}: transport kubernetes reaches node "
                                         f"{_show(m.get('name'))} through the cluster by its name; remove {key}")
        if name is None or any(m.get(k) is not None for k in ("host", "port", "hostKey")):
            return None
        return Node(name, "", None, None, path)
    if host is None and transport == "local":
        host = "localhost"
    host = _check_host(c, host, f"{path}.host")
    port = None if m.get("port") is None else c.port(m.get("port"), f"{path}.port")
    host_key = _check_host_key(c, m.get("hostKey"), f"{path}.hostKey")
    if (name is None or host is None or (m.get("port") is not None and port is None)
            or (m.get("hostKey") is not None and host_key is None)):
        return None
    return Node(name, host, port, host_key, path)


def _check_pool(c: _Checker, raw: Any, base: str, releases: Mapping[str, Release], pool_names: dict[str, str],
                node_names: dict[str, str], flavors: Mapping[str, Any] = FLAVORS) -> Pool | None:
    m = c.mapping(raw, base, POOL_KEYS, "a node pool")
    if m is None:
        return None
    name = _unique_name(c, m.get("name"), f"{base}.name", "a DNS label such as slight-1-2-3", naming.dns_label_problem,
                        "rename the pool, e.g. slight-1-2-3",
                        pool_names, "pool {name} is declared twice (first at {first}); pool names must be unique")
    ok = name is not None
    flavor = m.get("containerd", "containerd-1")
    if not isinstance(flavor, str) or flavor not in flavors:
        c.error(f"{base}.containerd", f"{_show(flavor)} is not a known containerd flavor; use one of "
                                      f"{', '.join(flavors)}")
        ok = False
    raw_selector = m.get("nodeSelector")
    transport = m.get("transport", "agent" if raw_selector is not None else "ssh")
    if transport not in TRANSPORTS:
        c.error(f"{base}.transport", f"{_show(transport)} is not a transport; use ssh (nodes over SSH), kubernetes "
                                     "(node commands in a privileged pod on each node, through the cluster), "
                                     "agent (nodes chosen by nodeSelector, each converged by a node agent) or "
                                     "local (commands on this machine against a node-root folder)")
        ok = False
    selector: dict[str, str] | None = None
    rollout: Rollout | None = None
    check_seconds: int | None = 60
    if transport == "agent":
        selector = _check_selector(c, raw_selector, f"{base}.nodeSelector", name)
        rollout = _check_rollout(c, m.get("rollout"), f"{base}.rollout", agent=True, pool=name,
                                 transport=transport)
        check_seconds = _check_seconds(c, m.get("checkSeconds", 60), f"{base}.checkSeconds", 10, 3600,
                                       "how often each node's agent checks (and repairs) its node")
        if m.get("nodes"):
            c.error(f"{base}.nodes", f"pool {_show(name)} has transport agent, which chooses its nodes by "
                                     "nodeSelector (every node with those labels, now and later); remove nodes, or "
                                     "use transport ssh or kubernetes to list nodes by name")
            ok = False
        if m.get("localRoot") is not None:
            c.error(f"{base}.localRoot", f"{_show(m.get('localRoot'))}: localRoot is only for transport local; "
                                         "remove it")
            ok = False
        ok = ok and selector is not None and rollout is not None and check_seconds is not None
    else:
        if raw_selector is not None:
            c.error(f"{base}.nodeSelector", f"pool {_show(name)} lists its nodes by name (transport "
                                            f"{_show(transport)}), so a nodeSelector would not choose any; remove "
                                            "nodeSelector, or set transport: agent and remove nodes")
            ok = False
        if m.get("checkSeconds") is not None:
            c.error(f"{base}.checkSeconds", f"checkSeconds applies to pools of transport agent (how often its "
                                            f"agents check their nodes); pool {_show(name)} has transport "
                                            f"{_show(transport)}: remove checkSeconds")
            ok = False
        if transport in TRANSPORTS:
            rollout = _check_rollout(c, m.get("rollout"), f"{base}.rollout", agent=False, pool=name,
                                     transport=transport)
            ok = ok and rollout is not None
    local_root = m.get("localRoot", "nodes")
    if not isinstance(local_root, str) or not _SAFE_PATH.match(local_root):
        c.error(f"{base}.localRoot", f"{_show(local_root)} is not a plain folder path (letters, digits, '._/-'); "
                                     "use e.g. nodes")
        ok = False
    restart = m.get("restart")
    if restart is not None and (not isinstance(restart, str) or not restart.strip()):
        c.error(f"{base}.restart", f"{_show(restart)} must be a shell command that restarts containerd, or omitted "
                                   "for the flavor's default")
        ok = False
    seed = m.get("seedConfig")
    if seed is not None and (transport != "local" or not isinstance(seed, str) or not _SAFE_PATH.match(seed)):
        c.error(f"{base}.seedConfig", f"{_show(seed)}: seedConfig is a plain path (letters, digits, '._/-') to a "
                                      "containerd config, and only for transport local; remove it from ssh pools")
        ok = False
    active, retiring, pins_ok = _check_pins(c, m, base, releases)
    raw_nodes = m.get("nodes")
    if raw_nodes is None:
        raw_nodes = []
    if not isinstance(raw_nodes, list):
        c.error(f"{base}.nodes", f"{_show(raw_nodes)} is {_typename(raw_nodes)}; list nodes as "
                                 "- {name: node-a, host: 10.0.0.4}")
        raw_nodes, ok = [], False
    if transport == "agent":
        raw_nodes = []
    checked = [_check_node(c, rn, f"{base}.nodes[{j}]", transport, node_names) for j, rn in enumerate(raw_nodes)]
    nodes = [n for n in checked if n is not None]
    if not (ok and pins_ok) or name is None or len(nodes) < len(checked):
        return None
    if not nodes and transport != "agent":
        c.warn(f"{base}.nodes", f"pool {_show(name)} has no nodes, so it installs nothing; add nodes or "
                                "remove the pool")
    if not active and not retiring:
        c.warn(f"{base}.releases", f"pool {_show(name)} runs no release; pin one such as slight@1.2.3")
    return Pool(name, flavor, transport, tuple(active), tuple(retiring), tuple(nodes), local_root, restart, base,
                seed, selector, rollout, check_seconds if check_seconds is not None else 60)


def _check_seconds(c: _Checker, value: Any, path: str, low: int, high: int, what: str) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        c.error(path, f"{_show(value)} must be a whole number of seconds from {low} to {high} ({what})")
        return None
    return value


def _check_selector(c: _Checker, value: Any, path: str, pool: str | None) -> dict[str, str] | None:
    """An agent pool's nodeSelector: a non-empty mapping of label keys to label values."""
    example = "e.g. {eks.amazonaws.com/nodegroup: wasm-spin-3}"
    if value is None:
        c.error(path, f"missing; a pool of transport agent chooses its nodes by their labels: give nodeSelector, "
                      f"{example}")
        return None
    if not isinstance(value, Mapping) or not value:
        c.error(path, f"{_show(value)} is {_typename(value) if value != {} else 'an empty mapping'}; nodeSelector "
                      f"is a mapping of node label keys to values that every node of the pool carries, {example} "
                      "(an empty one would select every node of the cluster)")
        return None
    out: dict[str, str] = {}
    for key, v in value.items():
        p = f"{path}.{_key(key)}"
        why = naming.label_key_problem(key) if isinstance(key, str) else "is not a string"
        if why is not None:
            c.error(p, f"label key {_show(key)} {why}; use a node label key such as kubernetes.io/arch or "
                       "eks.amazonaws.com/nodegroup")
            continue
        if isinstance(v, bool) or not isinstance(v, (str, int)):
            c.error(p, f"{_show(v)} is {_typename(v)}; a label value is a string (quote it in YAML)")
            continue
        text = str(v)
        why = naming.label_value_problem(text)
        if why is not None:
            c.error(p, f"{_show(text)} {why}; use the value the nodes' label has")
            continue
        out[key] = text
    return out if len(out) == len(value) else None


def _check_rollout(c: _Checker, value: Any, path: str, *, agent: bool, pool: str | None,
                   transport: str) -> Rollout | None:
    """The pool's `rollout`, with the same names for every kind of pool so that a pool keeps its settings when it
    changes kind. Agent pools: the DaemonSet's rolling update (default maxUnavailable 1). Pools that list nodes:
    a canary, then batches (default canary 1, maxUnavailable 25 %); minReadySeconds and timeoutSeconds are refused
    there (no agent becomes Ready, and each node command has its own limits)."""
    default = Rollout() if agent else NODE_LIST_ROLLOUT
    if value is None:
        return default
    m = c.mapping(value, path, ROLLOUT_KEYS, "rollout")
    if m is None:
        return None
    ok = True
    most = m.get("maxUnavailable", default.max_unavailable)
    if isinstance(most, str) and re.fullmatch(r"[0-9]{1,3}%", most) and 1 <= int(most[:-1]) <= 100:
        pass
    elif isinstance(most, bool) or not isinstance(most, int) or most < 1:
        c.error(f"{path}.maxUnavailable", f"{_show(most)} must be a whole number of nodes >= 1 or a percentage "
                                          "of the pool's nodes from \"1%\" to \"100%\" (how many nodes converge at "
                                          f"once; default {default.max_unavailable})")
        ok = False
    canary = m.get("canary", default.canary)
    if canary is not None and (isinstance(canary, bool) or not isinstance(canary, int) or not 0 <= canary <= 1000):
        c.error(f"{path}.canary", f"{_show(canary)} must be a whole number of nodes from 0 to 1000 (how many nodes "
                                  "go first, alone, before any other node's handler table changes; 0: no canary; "
                                  "default 1)")
        ok = False
        canary = None
    if not agent:
        for key in AGENT_ONLY_ROLLOUT_KEYS:
            if m.get(key) is not None:
                what = ("waits for an agent to stay Ready" if key == "minReadySeconds"
                        else "bounds how long the program waits for an agent DaemonSet's rollout")
                c.error(f"{path}.{key}", f"{_show(m.get(key))}: {key} {what}, so it applies to pools of transport "
                                         f"agent; pool {_show(pool)} lists its nodes (transport {_show(transport)}), "
                                         "whose next batch starts as soon as the previous batch's handler tables "
                                         "are verified and its labels set: remove "
                                         f"{key}, or keep it only on an agent pool")
                ok = False
        if not ok:
            return None
        return Rollout(most, canary=canary)
    soak = _check_seconds(c, m.get("minReadySeconds", default.min_ready_seconds), f"{path}.minReadySeconds", 0,
                          3600, "how long a node's agent must stay Ready before the rollout moves on")
    limit = _check_seconds(c, m.get("timeoutSeconds", default.timeout_seconds), f"{path}.timeoutSeconds", 30,
                           6 * 3600, "how long `pulumi up` waits for the rollout before it fails")
    if canary and ok and not (isinstance(most, int) and most <= canary):
        # The DaemonSet's rolling update has no separate first step: its first step is maxUnavailable nodes. A
        # canary is kept only when that step is no larger than it (then no more than `canary` nodes change
        # before the first ones converge, and the DaemonSet stops at the first that does not).
        c.error(f"{path}.canary", f"{_show(canary)}: pool {_show(pool)} is an agent pool, whose DaemonSet replaces "
                                  f"maxUnavailable ({_show(most)}) agents at a time from its first step, so a "
                                  f"canary of {canary} node(s) holds only when maxUnavailable is a number of nodes "
                                  f"no larger than it: set maxUnavailable to {max(canary, 1)} or less, or remove "
                                  "canary")
        ok = False
    if not ok or soak is None or limit is None:
        return None
    return Rollout(most, soak, limit, canary)


def _check_pools(c: _Checker, value: Any, releases: Mapping[str, Release],
                 flavors: Mapping[str, Any] = FLAVORS) -> tuple[Pool, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        c.error("nodePools", f"{_show(value)} is {_typename(value)}; it must be a list of pools")
        return ()
    pool_names: dict[str, str] = {}
    node_names: dict[str, str] = {}
    pools = [_check_pool(c, raw, f"nodePools[{i}]", releases, pool_names, node_names, flavors)
             for i, raw in enumerate(value)]
    return tuple(p for p in pools if p is not None)


def _check_ssh(c: _Checker, value: Any, need: bool, plaintext: bool) -> Ssh:
    """`plaintext`: a string private key here was stored unencrypted (read from a stack file, or a key the
    engine does not hold as a secret)."""
    default = Ssh(user="root", port=22, private_key=None, proxy=None)
    if value is None:
        if need:
            c.error("ssh", "missing; pools with transport ssh need ssh: {user, port, privateKey} "
                           "(set the key with `pulumi config set --secret --path ssh.privateKey < key`)")
        return default
    if not isinstance(value, Mapping):
        # Never quote the value: it may be a private key pasted in the wrong place.
        c.error("ssh", f"{_typename(value)} here; ssh must be a mapping with keys {', '.join(SSH_KEYS)}")
        return default
    m = c.mapping(value, "ssh", SSH_KEYS, "ssh")
    if m is None:
        return default
    user = _check_user(c, m.get("user", "root"), "ssh.user") or "root"
    port = c.port(m.get("port", 22), "ssh.port") or 22
    key = _secret(c, m.get("privateKey"), "ssh.privateKey", need, plaintext)
    insecure = m.get("insecureAcceptAnyHostKey", False)
    if not isinstance(insecure, bool):
        c.error("ssh.insecureAcceptAnyHostKey", f"{_show(insecure)} must be true or false (default false: every "
                                                "SSH node and the bastion need a pinned hostKey)")
        insecure = False
    proxy = None
    proxy_key = None
    if m.get("proxy") is not None:
        pm = m.get("proxy")
        if not isinstance(pm, Mapping):
            c.error("ssh.proxy", f"{_typename(pm)} here; ssh.proxy (the bastion) must be a mapping with keys "
                                 f"{', '.join(PROXY_KEYS)}")
            pm = None
        pm = pm and c.mapping(pm, "ssh.proxy", PROXY_KEYS, "ssh.proxy (the bastion)")
        if pm is not None:
            phost = _check_host(c, pm.get("host"), "ssh.proxy.host")
            pport = None if pm.get("port") is None else c.port(pm.get("port"), "ssh.proxy.port")
            puser = None if pm.get("user") is None else _check_user(c, pm.get("user"), "ssh.proxy.user")
            pkey = _check_host_key(c, pm.get("hostKey"), "ssh.proxy.hostKey")
            proxy_key = _secret(c, pm.get("privateKey"), "ssh.proxy.privateKey", False, plaintext)
            if phost is not None and pm.get("hostKey") is None:
                _unpinned(c, "ssh.proxy.hostKey", f"bastion {_show(phost)}", "every connection through it",
                          insecure)
            if phost is not None:
                proxy = Proxy(phost, pport, puser, pkey, proxy_key is not None)
    return Ssh(user, port, key, proxy, proxy_key, insecure)


def _unpinned(c: _Checker, path: str, who: str, what: str, insecure: bool) -> None:
    """A host reached over SSH without a pinned host key: pulumi-command then checks none, and a man in the
    middle receives the root command stream (and can answer "installed"). An error, unless the lab opt-out."""
    if insecure:
        c.warn(path, f"INSECURE: {who} accepts any SSH host key (ssh.insecureAcceptAnyHostKey is true), so {what} "
                     "trusts whatever answers at that address and hands it the root command stream; pin hostKey "
                     "before this stack reaches real machines")
    else:
        c.error(path, f"missing: {who} is reached over SSH, and without a pinned host key pulumi-command checks "
                      f"none, so {what} trusts whatever answers at that address and hands it the root command "
                      "stream; add hostKey (a line of `ssh-keyscan -t ed25519 HOST` without the host name), or, "
                      "in a lab only, set ssh.insecureAcceptAnyHostKey: true")


def _secret(c: _Checker, value: Any, path: str, need: bool, plaintext: bool = False) -> str | None:
    fix = f"`pulumi config set --secret --path {path} < ~/.ssh/id_ed25519`"
    if value is None:
        if need:
            c.error(path, f"missing; set it with {fix}")
        return None
    if isinstance(value, Mapping) and set(value) == {"secure"}:
        return "<secret>"  # still encrypted: a stack file read without the engine
    if isinstance(value, str) and value.strip():
        if plaintext:
            c.warn(path, f"the private key is stored in plain text, readable by anyone who can read the stack "
                         f"file; set it again with {fix}, which stores it encrypted, and rotate the key")
        return value
    c.error(path, f"value of type {_typename(value)} is not a private key; set it with {fix}")
    return None


def _check_kubernetes(c: _Checker, value: Any, base_dir: str | Path | None) -> Kubernetes:
    if value is None:
        return Kubernetes(None, None, None)
    m = c.mapping(value, "kubernetes", K8S_KEYS, "kubernetes")
    if m is None:
        return Kubernetes(None, None, None)
    vals = {}
    for key in ("kubeconfig", "context", "renderDir"):
        v = m.get(key)
        vals[key] = None if v is None else c.string(v, f"kubernetes.{key}")
    force = m.get("forceLabels", False)
    if not isinstance(force, bool):
        c.error("kubernetes.forceLabels", f"{_show(force)} must be true or false (default false: a label another "
                                          "field manager set is a conflict error, never silently taken over)")
        force = False
    image = m.get("runnerImage")
    if image is not None:
        why = incluster.image_problem(image)
        if why is not None:
            c.error("kubernetes.runnerImage", f"{_show(image, 100)} {why}; pin it as "
                                              "<registry>/<repository>@sha256:<digest> (see deploy/runner)")
            image = None
    namespace = m.get("runnerNamespace", incluster.DEFAULT_NAMESPACE)
    why = naming.dns_label_problem(namespace) if isinstance(namespace, str) else "is not a string"
    if why is None:
        why = incluster.namespace_problem(namespace)
    if why is not None:
        c.error("kubernetes.runnerNamespace", f"{_show(namespace)} {why}; it names the namespace the program "
                                              f"creates for its runner pods, e.g. {incluster.DEFAULT_NAMESPACE}")
        namespace = incluster.DEFAULT_NAMESPACE
    agent_image = m.get("agentImage")
    if agent_image is not None:
        why = incluster.image_problem(agent_image)
        if why is not None:
            c.error("kubernetes.agentImage", f"{_show(agent_image, 100)} {why}; pin it as "
                                             "<registry>/<repository>@sha256:<digest> (see deploy/agent)")
            agent_image = None
    agent_ns = m.get("agentNamespace", DEFAULT_AGENT_NAMESPACE)
    why = naming.dns_label_problem(agent_ns) if isinstance(agent_ns, str) else "is not a string"
    if why is None and (agent_ns == "default" or agent_ns.startswith("kube-")):
        why = "is a namespace Kubernetes itself uses (default, kube-*), where privileged agents would share room"
    if why is not None:
        c.error("kubernetes.agentNamespace", f"{_show(agent_ns)} {why}; it names the namespace the program creates "
                                             f"for its node agents, e.g. {DEFAULT_AGENT_NAMESPACE}")
        agent_ns = DEFAULT_AGENT_NAMESPACE
    api = m.get("agentApiServer")
    if api is not None:
        host, _, port = api.rpartition(":") if isinstance(api, str) else ("", "", "")
        bracketed = host.startswith("[") and host.endswith("]")
        host = host[1:-1] if bracketed else host
        named = bool(_HOSTNAME.match(host)) if not bracketed else _is_ipv6(host)
        if not (host and named and port.isdigit() and 1 <= int(port) <= 65535):
            c.error("kubernetes.agentApiServer", f"{_show(api)} is not host:port (an IPv6 address in brackets); "
                                                 "give the API server's address as the nodes reach it, e.g. "
                                                 "10.0.0.1:6443, or remove the key to use the in-cluster Service")
            api = None
    render = vals["renderDir"]
    if render is not None:
        base = Path(base_dir) if base_dir is not None else Path(".")
        target = os.path.normpath(os.path.join(os.path.abspath(base), render))
        if os.path.isabs(render) or os.path.relpath(target, os.path.abspath(base)).split(os.sep)[0] == "..":
            c.warn("kubernetes.renderDir", f"{_show(render)} is outside the project folder, so manifests (node "
                                           "names, labels) are written where this stack does not own the files; "
                                           "use a folder inside the project such as rendered/<stack>")
    return Kubernetes(vals["kubeconfig"], vals["context"], render, force, image, namespace, agent_image, agent_ns,
                      api)


def _check_deprecation(c: _Checker, value: Any) -> Deprecation:
    default = Deprecation("warn", 2)
    if value is None:
        return default
    m = c.mapping(value, "deprecation", DEPRECATION_KEYS, "deprecation")
    if m is None:
        return default
    mode = m.get("mode", "warn")
    if mode not in DEPRECATION_MODES:
        c.error("deprecation.mode", f"{_show(mode)} is not a mode; use off, warn or error")
        mode = "warn"
    keep = m.get("keep", 2)
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        c.error("deprecation.keep", f"{_show(keep)} must be a whole number >= 1 (2 keeps N and N-1)")
        keep = 2
    return Deprecation(mode, keep)


def _too_deep(value: Any) -> bool:
    """Whether `value` nests deeper than MAX_DEPTH (walked without recursion)."""
    todo = [(value, 0)]
    while todo:
        v, depth = todo.pop()
        if depth > MAX_DEPTH:
            return True
        if isinstance(v, Mapping):
            todo.extend((x, depth + 1) for x in v.values())
        elif isinstance(v, (list, tuple)):
            todo.extend((x, depth + 1) for x in v)
    return False


def check_config(raw: Mapping[str, Any], base_dir: str | Path | None = None,
                 secret_keys: Collection[str] | None = None,
                 flavors: Mapping[str, Any] | None = None) -> tuple[FleetConfig, list[Problem]]:
    """Validate the namespace-stripped config. Returns the typed config (of the parts that passed) and
    every problem found. Callers must not act on the config when any problem is an error.

    `base_dir` is the project folder: `file:<relative path>` URLs are made absolute against it.
    `secret_keys`: the top-level keys the source holds encrypted (a stack file: none, its secrets are
    `{secure: ...}` values; the engine: its secret config keys); None when unknown. A private key given
    as a plain string under a key not in it is reported as stored in plain text. `flavors`: the containerd
    flavors a pool may name (default the built-in ones; the components add a caller's own layout)."""
    c = _Checker()
    empty = FleetConfig(DEFAULT_RUNTIME, {}, (), Ssh("root", 22, None, None), Kubernetes(None, None, None),
                        Deprecation("warn", 2))
    if not raw:
        c.error(NAMESPACE, f"the stack config has no {NAMESPACE}:* keys; declare at least {NAMESPACE}:shims and "
                           f"{NAMESPACE}:nodePools (see the configuration reference)")
        return empty, c.problems
    if _too_deep(raw):
        c.error(NAMESPACE, f"values nested more than {MAX_DEPTH} deep; a stack config is a few levels deep")
        return empty, c.problems
    for key in raw:
        if key not in TOP_KEYS:
            c.error(_key(key), f"unknown key {_show(f'{NAMESPACE}:{key}')}; the keys are {', '.join(TOP_KEYS)}"
                              f"{_did_you_mean(key, TOP_KEYS)}")
    runtime = raw.get("runtime", DEFAULT_RUNTIME)
    why = naming.dns_label_problem(runtime) if isinstance(runtime, str) else "is not a string"
    if why is not None:
        c.error("runtime", f"{_show(runtime)} {why}; it prefixes every RuntimeClass and label: use e.g. wasmtime")
        runtime = DEFAULT_RUNTIME
    prefix = raw.get("labelPrefix", "")
    why = naming.label_prefix_problem(prefix) if isinstance(prefix, str) else "is not a string"
    if prefix != "" and why is not None:
        c.error("labelPrefix", f"{_show(prefix)} {why}; or remove the key for the proposal's unprefixed labels")
        prefix = ""
    releases = _check_shims(c, runtime, raw.get("shims"), base_dir)
    pools = _check_pools(c, raw.get("nodePools"), releases, FLAVORS if flavors is None else flavors)
    need_ssh = any(p.transport == "ssh" and p.nodes for p in pools)
    ssh = _check_ssh(c, raw.get("ssh"), need_ssh, plaintext=secret_keys is not None and "ssh" not in secret_keys)
    for pool in pools:
        if pool.transport != "ssh":
            continue
        for node in pool.nodes:
            if node.host_key is None:
                _unpinned(c, f"{node.path}.hostKey", f"node {_show(node.name)}", "every command sent to it",
                          ssh.insecure_accept_any_host_key)
    kubernetes = _check_kubernetes(c, raw.get("kubernetes"), base_dir)
    _check_in_cluster(c, pools, kubernetes, raw.get("kubernetes"))
    _check_agents(c, pools, kubernetes, raw.get("kubernetes"), runtime, prefix)
    deprecation = _check_deprecation(c, raw.get("deprecation"))
    for pool in pools:
        for key in (*pool.releases, *pool.retiring):
            if pool.transport != "local" and releases[key].url.startswith("file:"):
                c.warn(pool.path, f"pool {_show(pool.name)} pins {key}, whose url {_show(releases[key].url)} is a "
                                  f"file: URL: over {pool.transport} each node reads that path on its own disk; "
                                  "serve the artifact over https for remote nodes")
    _check_shared_hosts(c, pools, ssh)
    used = {k for p in pools for k in (*p.releases, *p.retiring) if p.nodes or p.transport == "agent"}
    for key, rel in releases.items():
        if key not in used:
            c.warn(rel.path, f"{key} is in the catalog but installed on no node; pin it in a pool or remove it")
    cfg = FleetConfig(runtime, releases, pools, ssh, kubernetes, deprecation, prefix)
    return cfg, c.problems


def _check_in_cluster(c: _Checker, pools: tuple[Pool, ...], k8s: Kubernetes, raw: Any) -> None:
    """Pools of transport kubernetes need a cluster to run their pods in, and a runner image."""
    in_cluster = [p for p in pools if p.transport == "kubernetes"]
    if not in_cluster:
        return
    if k8s.render_dir is not None:
        for pool in in_cluster:
            c.error(f"{pool.path}.transport", f"pool {_show(pool.name)}: transport kubernetes runs node commands "
                                              "through the cluster, but kubernetes.renderDir renders manifests "
                                              "instead of applying them (no cluster); remove renderDir, or use "
                                              "transport ssh or local for this pool")
    has_image = isinstance(raw, Mapping) and raw.get("runnerImage") is not None
    if k8s.runner_image is None and not has_image and any(p.nodes for p in in_cluster):
        c.error("kubernetes.runnerImage", f"missing; pool {_show(in_cluster[0].name)} (transport kubernetes) runs "
                                          "its node commands in pods of this image: set it to an image with "
                                          "/wsf-enter (deploy/runner), pinned by digest, e.g. "
                                          "registry.example.org/wasm-shim-fleet/runner@sha256:<digest> "
                                          "(see deploy/runner)")


def _check_agents(c: _Checker, pools: tuple[Pool, ...], k8s: Kubernetes, raw: Any, runtime: str,
                  prefix: str) -> None:
    """Agent pools need a cluster and an agent image; their selectors must not use the labels the agents set, and
    two of them must not be able to select the same node."""
    agents = [p for p in pools if p.transport == "agent"]
    if not agents:
        return
    if k8s.render_dir is not None:
        for pool in agents:
            c.error(f"{pool.path}.transport", f"pool {_show(pool.name)}: transport agent runs a node agent on every "
                                              "selected node through the cluster, but kubernetes.renderDir renders "
                                              "manifests instead of applying them (no cluster); remove renderDir, or "
                                              "list this pool's nodes with transport ssh or local")
    has_image = isinstance(raw, Mapping) and raw.get("agentImage") is not None
    if k8s.agent_image is None and not has_image:
        c.error("kubernetes.agentImage", f"missing; pool {_show(agents[0].name)} (transport agent) runs its node "
                                         "agent from this image: set it to the image built from deploy/agent, "
                                         "pinned by digest, e.g. registry.example.org/wasm-shim-fleet/agent@sha256:"
                                         "<digest> (see deploy/agent)")
    for pool in agents:
        for key in pool.node_selector or {}:
            if naming.is_fleet_label(key, runtime, prefix) or key == naming.CLAIM_LABEL:
                c.error(f"{pool.path}.nodeSelector.{_key(key)}", f"{_show(key)} is a label the node agents set "
                                                                 "themselves, so a node would have to be converged "
                                                                 "before it is chosen; select nodes by labels of "
                                                                 "their own (node group, instance type, ...)")
    for i, a in enumerate(agents):
        for b in agents[i + 1:]:
            sa, sb = a.node_selector or {}, b.node_selector or {}
            if any(k in sb and sb[k] != v for k, v in sa.items()):
                continue  # one label with two values: no node carries both
            shown = ", ".join(f"{k}={v}" for k, v in sorted({**sa, **sb}.items()))
            if sa == sb:
                c.error(f"{b.path}.nodeSelector", f"pool {_show(b.name)} selects the same nodes as pool "
                                                  f"{_show(a.name)} ({a.path}); a node belongs to one pool: give "
                                                  "one of them another nodeSelector, or merge their releases")
            else:
                c.warn(f"{b.path}.nodeSelector", f"pools {_show(a.name)} and {_show(b.name)} both select a node "
                                                 f"labelled {shown}; the agent of the second pool on such a node "
                                                 "refuses it and changes nothing: make the selectors exclusive (one "
                                                 "label with different values)")


def _check_shared_hosts(c: _Checker, pools: tuple[Pool, ...], ssh: Ssh) -> None:
    """Two nodes at one SSH address are one machine: each would overwrite the other's handler table."""
    seen: dict[tuple[str, int], Node] = {}
    for pool in pools:
        if pool.transport != "ssh":
            continue
        for node in pool.nodes:
            where = (node.host.lower(), node.port if node.port is not None else ssh.port)
            first = seen.setdefault(where, node)
            if first is not node:
                c.warn(f"{node.path}.host", f"node {_show(node.name)} is reached at {where[0]} port {where[1]}, "
                                            f"like node {_show(first.name)} ({first.path}): both would write the "
                                            "same machine's containerd config and undo each other; fix the host "
                                            "or port, or list the machine once")


def _did_you_mean(key: Any, choices: Collection[str]) -> str:
    import difflib

    if not isinstance(key, str):
        return ""
    near = difflib.get_close_matches(key, list(choices), n=1, cutoff=0.6)
    if not near:
        near = [k for k in choices if k.lower() == key.lower()]
    return f" (did you mean {near[0]}?)" if near else ""


def kubeconfig_is_contents(value: str) -> bool:
    """Whether `kubernetes.kubeconfig` holds the file's contents rather than its path: more than one line (YAML),
    or one line of JSON (as CI secrets often hold it). A path is one line and never starts with '{'."""
    return "\n" in value or value.lstrip().startswith("{")


def connection_problems(path: str, *, host: Any = None, port: Any = None, host_key: Any = None,
                        user: Any = None) -> list[Problem]:
    """The stack file's rules for how a node is reached, for values that arrive late (a caller's pulumi Outputs,
    checked when they resolve): `path` prefixes each problem (e.g. `nodes[0]`). None: not given."""
    c = _Checker()
    if host is not None:
        _check_host(c, host, f"{path}.host")
    if port is not None:
        c.port(port, f"{path}.port")
    if host_key is not None:
        _check_host_key(c, host_key, f"{path}.host_key")
    if user is not None:
        _check_user(c, user, f"{path}.user")
    return c.problems


def rollout_problems(path: str, rollout: Any, pool: str | None = None) -> list[Problem]:
    """The stack file's rules for a node-list pool's rollout, for a caller's own program (NodePoolArgs.rollout, a
    Rollout): `path` names the argument."""
    c = _Checker()
    if not isinstance(rollout, Rollout):
        c.error(path, f"{_typename(rollout)} here; give a Rollout(max_unavailable=..., canary=...) or None")
        return c.problems
    raw: dict[str, Any] = {"maxUnavailable": rollout.max_unavailable,
                           "canary": rollout.canary if rollout.canary is not None else 0}
    if rollout.min_ready_seconds != Rollout.min_ready_seconds:
        raw["minReadySeconds"] = rollout.min_ready_seconds
    if rollout.timeout_seconds != Rollout.timeout_seconds:
        raw["timeoutSeconds"] = rollout.timeout_seconds
    _check_rollout(c, raw, path, agent=False, pool=pool, transport="ssh")
    return [Problem(p.severity, p.path.replace("maxUnavailable", "max_unavailable")
                    .replace("minReadySeconds", "min_ready_seconds").replace("timeoutSeconds", "timeout_seconds"),
                    p.message) for p in c.problems]
