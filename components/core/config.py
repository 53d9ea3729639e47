"""The stack configuration contract: read `wasm-shim-fleet:*` keys and check every value.

Checks are collected, never stopped at the first: a platform engineer fixing a stack file wants the whole
list at once. Every problem names its stack config path (`nodePools[1].releases[0]`), the value, the rule
and the fix. Values that pass are turned into frozen dataclasses; nothing downstream re-validates.

Nothing from config may ever reach a shell unquoted, and even quoted, host names, user names, node names,
URLs and archive members are held to the characters that belong in them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import semver

from . import naming
from .flavors import FLAVORS

NAMESPACE = "wasm-shim-fleet"
DEFAULT_RUNTIME = "wasmtime"
TRANSPORTS = ("ssh", "local")
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

TOP_KEYS = ("runtime", "shims", "nodePools", "ssh", "kubernetes", "deprecation")
RELEASE_KEYS = ("version", "url", "sha256", "binary", "probe")
#: `probe`: how a node checks an installed shim binary before anything uses it (`-v`), or not at all.
PROBES = ("version", "none")
POOL_KEYS = ("name", "containerd", "releases", "retiring", "nodes", "transport", "localRoot", "restart", "seedConfig")
NODE_KEYS = ("name", "host", "port", "hostKey")
SSH_KEYS = ("user", "port", "privateKey", "proxy")
PROXY_KEYS = ("host", "port", "user", "privateKey", "hostKey")
K8S_KEYS = ("kubeconfig", "context", "renderDir")
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
class Pool:
    name: str
    flavor: str
    transport: str  # "ssh" or "local"
    releases: tuple[str, ...]  # release keys, labelled
    retiring: tuple[str, ...]  # release keys, installed but no longer labelled
    nodes: tuple[Node, ...]
    local_root: str  # for transport local: node roots are <local_root>/<node name>
    restart: str | None  # overrides the flavor's restart command
    path: str
    #: transport local only: a containerd config copied into a node root that has none yet
    seed_config: str | None = None


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
    #: the program passes it on only as a Pulumi secret.
    private_key: str | None
    proxy: Proxy | None
    proxy_private_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Kubernetes:
    kubeconfig: str | None
    context: str | None
    render_dir: str | None


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


# ----------------------------------------------------------------------------------------- reading
class StackFileError(Exception):
    """The stack file itself cannot be read (missing, not YAML, no config mapping)."""


def read_stack_file(path: str | Path) -> dict[str, Any]:
    """The `wasm-shim-fleet:*` keys of a `Pulumi.<stack>.yaml`, namespace stripped."""
    import yaml  # PyYAML: read-only parsing; promote uses ruamel.yaml to keep comments when writing.

    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text())
    except OSError as exc:
        raise StackFileError(f"{p}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise StackFileError(f"{p}: not valid YAML: {exc}") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, Mapping):
        raise StackFileError(f"{p}: expected a mapping with a 'config:' key, found {type(doc).__name__}")
    config = doc.get("config") or {}
    if not isinstance(config, Mapping):
        raise StackFileError(f"{p}: 'config' must be a mapping of keys to values")
    return strip_namespace(config)


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
            self.error(path, f"{value!r} is {_typename(value)}; {what} must be a mapping with keys "
                             f"{', '.join(allowed)}")
            return None
        for key in value:
            if key not in allowed:
                self.error(f"{path}.{key}" if path else str(key),
                           f"unknown key {key!r}; {what} takes only {', '.join(allowed)}: "
                           "fix the spelling or remove it")
        return value

    def string(self, value: Any, path: str, hint: str = "") -> str | None:
        if isinstance(value, str) and value != "":
            return value
        if value is None or value == "":
            self.error(path, f"missing; it must be a non-empty string{hint}")
        else:
            self.error(path, f"{value!r} is {_typename(value)}; it must be a string{hint} "
                             "(quote it in YAML)")
        return None

    def port(self, value: Any, path: str) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            self.error(path, f"{value!r} is not a TCP port; use a whole number from 1 to 65535")
            return None
        return value

    def string_list(self, value: Any, path: str) -> list[tuple[str, str]]:
        """[(path, item)] of a list of strings; bad items reported."""
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(path, f"{value!r} is {_typename(value)}; it must be a list like [slight@1.2.3]")
            return []
        out = []
        for i, item in enumerate(value):
            p = f"{path}[{i}]"
            if isinstance(item, str):
                out.append((p, item))
            else:
                self.error(p, f"{item!r} is {_typename(item)}; each entry must be a string "
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
    c.error(path, f"{host!r} is not a host name or IP address (letters, digits, '-', '.' for names; "
                  "hex digits and ':' for IPv6); write only the address: the port goes in 'port'")
    return None


def _check_user(c: _Checker, value: Any, path: str) -> str | None:
    user = c.string(value, path, " holding a user name")
    if user is None:
        return None
    if _USER.match(user):
        return user
    c.error(path, f"{user!r} is not a POSIX user name (lower-case letter or '_' first, then lower-case "
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
    c.error(path, f"{key[:40]!r} is not an SSH public host key '<type> <base64>' (type ssh-ed25519, "
                  "ssh-rsa or ecdsa-sha2-*); copy one line of the node's /etc/ssh/ssh_host_*_key.pub "
                  "without the comment")
    return None


def _check_version(c: _Checker, value: Any, path: str) -> semver.Version | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        c.error(path, f"{value!r} was read by YAML as a number; write the full version as a quoted string, "
                      f"e.g. \"{value}.0\"")
        return None
    text = c.string(value, path, " holding a semantic version such as 1.2.3")
    if text is None:
        return None
    try:
        version = naming.parse_version(text)
    except ValueError as exc:
        c.error(path, f"{text!r} is {exc}; write e.g. 1.2.3 or 0.1.0-alpha.1")
        return None
    if version.build:
        c.error(path, f"{text!r} carries build metadata '+{version.build}', which cannot appear in node "
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
        c.error(f"{path}.url", f"{url!r} is not an https://, file:/// or file:<relative path> URL of plain "
                               "characters; download artifacts over https (file: for local tests) and "
                               "percent-encode spaces and quotes")
        url = None
    digest = m.get("sha256")
    sha = c.string(digest, f"{path}.sha256", " of 64 hex digits")
    if sha is not None and not _HEX64.match(sha):
        c.error(f"{path}.sha256", f"{sha!r} is not a sha256 (64 hex digits); run `sha256sum` on the file "
                                  "the url serves and paste the digest")
        sha = None
    member = m.get("binary")
    if member is not None:
        member = c.string(member, f"{path}.binary", " naming the archive member")
        if member is not None and (not _MEMBER.match(member) or ".." in member.split("/")):
            c.error(f"{path}.binary", f"{member!r} is not a relative path inside the archive (letters, digits, "
                                      "'._+-', '/' between parts, no '..'); use the member's path as `tar tzf` "
                                      "lists it")
            member = None
    probe = m.get("probe", "version")
    if probe not in PROBES:
        c.error(f"{path}.probe", f"{probe!r} is not one of {', '.join(PROBES)}; use version (run the binary with -v "
                                 "on each node before installing it) or none (for a binary without -v)")
        return None
    if version is None or url is None or sha is None or (m.get("binary") is not None and member is None):
        return None
    return Release(shim, version, url, sha.lower(), member, path, probe)


def _check_shims(c: _Checker, runtime: str, value: Any, base_dir: str | Path | None) -> dict[str, Release]:
    releases: dict[str, Release] = {}
    if value is None:
        c.error("shims", "missing; declare the catalog as shims: {<shim>: [{version, url, sha256}]}")
        return releases
    shims = c.mapping(value, "shims", tuple(value) if isinstance(value, Mapping) else (), "the catalog")
    if shims is None:
        return releases
    for shim, entries in shims.items():
        base = f"shims.{shim}"
        if not isinstance(shim, str) or not naming.is_dns_label(shim):
            c.error(base, f"shim name {shim!r} is not a DNS label (lower-case letters, digits and '-', "
                          "alphanumeric at both ends); rename it, e.g. 'slight'")
            continue
        if _SERIES_LIKE.search(shim):
            c.error(base, f"shim name {shim!r} contains '-v<digit>', which would collide with another shim's "
                          "versioned handler names; drop the version from the name")
            continue
        any_label = naming.label_key(runtime, naming.any_handler(shim), shim)
        if len(any_label) > naming.MAX_NAME:
            c.error(base, f"label {any_label!r} would be {len(any_label)} characters, over the 63 allowed; "
                          "use a shorter shim name or runtime prefix")
            continue
        if not isinstance(entries, list):
            c.error(base, f"{entries!r} is {_typename(entries)}; list the releases: "
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
                c.error(f"{path}.version", f"RuntimeClass/label {class_label!r} would be {len(class_label)} "
                                           "characters, over the 63 allowed; shorten the prerelease, the shim "
                                           "name or the runtime prefix")
                continue
            encoded[enc] = (f"{path}.version", str(rel.version))
            releases[rel.key] = rel
    return releases


def _remember_rejected(c: _Checker, shim: str, entry: Any, path: str) -> None:
    """So that a pin of a broken entry points at the entry rather than saying it does not exist."""
    try:
        version = naming.parse_version(entry.get("version")) if isinstance(entry, Mapping) else None
    except (ValueError, TypeError, AttributeError):
        return
    if version is not None:
        c.rejected.setdefault(naming.release_key(shim, version), path)


def _resolve_ref(c: _Checker, text: str, path: str, releases: Mapping[str, Release]) -> str | None:
    shim, sep, ver = text.partition("@")
    if not sep or not shim or not ver:
        c.error(path, f"{text!r} is not <shim>@<version>; write e.g. slight@1.2.3")
        return None
    try:
        version = naming.parse_version(ver)
    except ValueError:
        c.error(path, f"{text!r}: {ver!r} is not a semantic version; write e.g. {shim}@1.2.3")
        return None
    key = naming.release_key(shim, version)
    if key not in releases and key in c.rejected:
        c.error(path, f"{text!r} pins the catalog entry at {c.rejected[key]}, which has errors of its own; "
                      "fix that entry")
        return None
    if key not in releases:
        known = sorted(k for k in releases if k.startswith(shim + "@"))
        hint = f"the catalog has {', '.join(known)}" if known else f"the catalog has no shim {shim!r}"
        c.error(path, f"{text!r} names a release that is not in the catalog ({hint}); add it under "
                      f"shims.{shim} or fix the pin")
        return None
    return key


def _unique_name(c: _Checker, value: Any, path: str, what: str, valid: Callable[[str], bool], rule: str,
                 seen: dict[str, str], twice: str) -> str | None:
    """A name that follows its rule and was not seen before (recorded in `seen` with its path)."""
    name = c.string(value, path, f" ({what})")
    if name is not None and not valid(name):
        c.error(path, f"{name!r} {rule}")
        return None
    if name is not None and name in seen:
        c.error(path, twice.format(name=name, first=seen[name]))
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
                c.error(p, f"{text!r} is already listed at {seen[key]}; a release is either in releases "
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
    name = _unique_name(c, m.get("name"), f"{path}.name", "the Kubernetes node name", _NODE_NAME.match,
                        "is not a Kubernetes node name (lower-case DNS subdomain); use the name "
                        "`kubectl get nodes` shows", node_names,
                        "node {name!r} is already in {first}; a node belongs to one pool: list all of its "
                        "releases in that pool")
    host = m.get("host")
    if host is None and transport == "local":
        host = "localhost"
    host = _check_host(c, host, f"{path}.host")
    port = None if m.get("port") is None else c.port(m.get("port"), f"{path}.port")
    host_key = _check_host_key(c, m.get("hostKey"), f"{path}.hostKey")
    if (name is None or host is None or (m.get("port") is not None and port is None)
            or (m.get("hostKey") is not None and host_key is None)):
        return None
    if transport == "ssh" and host_key is None:
        c.warn(f"{path}.hostKey", f"node {name!r}: host key not pinned, so the SSH server's identity is not "
                                  "verified; add hostKey (a line of `ssh-keyscan -t ed25519 HOST` without the "
                                  "host name)")
    return Node(name, host, port, host_key, path)


def _check_pool(c: _Checker, raw: Any, base: str, releases: Mapping[str, Release], pool_names: dict[str, str],
                node_names: dict[str, str]) -> Pool | None:
    m = c.mapping(raw, base, POOL_KEYS, "a node pool")
    if m is None:
        return None
    name = _unique_name(c, m.get("name"), f"{base}.name", "a DNS label such as slight-1-2-3", naming.is_dns_label,
                        "is not a DNS label (lower-case letters, digits, '-'); rename the pool, e.g. slight-1-2-3",
                        pool_names, "pool {name!r} is declared twice (first at {first}); pool names must be unique")
    ok = name is not None
    flavor = m.get("containerd", "containerd-1")
    if flavor not in FLAVORS:
        c.error(f"{base}.containerd", f"{flavor!r} is not a known containerd flavor; use one of "
                                      f"{', '.join(FLAVORS)}")
        ok = False
    transport = m.get("transport", "ssh")
    if transport not in TRANSPORTS:
        c.error(f"{base}.transport", f"{transport!r} is not a transport; use ssh (nodes over SSH) or local "
                                     "(commands on this machine against a node-root folder)")
        ok = False
    local_root = m.get("localRoot", "nodes")
    if not isinstance(local_root, str) or not _SAFE_PATH.match(local_root):
        c.error(f"{base}.localRoot", f"{local_root!r} is not a plain folder path (letters, digits, '._/-'); "
                                     "use e.g. nodes")
        ok = False
    restart = m.get("restart")
    if restart is not None and (not isinstance(restart, str) or not restart.strip()):
        c.error(f"{base}.restart", f"{restart!r} must be a shell command that restarts containerd, or omitted "
                                   "for the flavor's default")
        ok = False
    seed = m.get("seedConfig")
    if seed is not None and (transport != "local" or not isinstance(seed, str) or not _SAFE_PATH.match(seed)):
        c.error(f"{base}.seedConfig", f"{seed!r}: seedConfig is a plain path (letters, digits, '._/-') to a "
                                      "containerd config, and only for transport local; remove it from ssh pools")
        ok = False
    active, retiring, pins_ok = _check_pins(c, m, base, releases)
    raw_nodes = m.get("nodes") or []
    if not isinstance(raw_nodes, list):
        c.error(f"{base}.nodes", f"{raw_nodes!r} is {_typename(raw_nodes)}; list nodes as "
                                 "- {name: node-a, host: 10.0.0.4}")
        raw_nodes, ok = [], False
    nodes = [_check_node(c, rn, f"{base}.nodes[{j}]", transport, node_names) for j, rn in enumerate(raw_nodes)]
    if not (ok and pins_ok) or None in nodes:
        return None
    if not nodes:
        c.warn(f"{base}.nodes", f"pool {name!r} has no nodes, so it installs nothing; add nodes or remove the pool")
    if not active and not retiring:
        c.warn(f"{base}.releases", f"pool {name!r} runs no release; pin one such as slight@1.2.3")
    return Pool(name, flavor, transport, tuple(active), tuple(retiring), tuple(nodes), local_root, restart, base,
                seed)


def _check_pools(c: _Checker, value: Any, releases: Mapping[str, Release]) -> tuple[Pool, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        c.error("nodePools", f"{value!r} is {_typename(value)}; it must be a list of pools")
        return ()
    pool_names: dict[str, str] = {}
    node_names: dict[str, str] = {}
    pools = [_check_pool(c, raw, f"nodePools[{i}]", releases, pool_names, node_names) for i, raw in enumerate(value)]
    return tuple(p for p in pools if p is not None)


def _check_ssh(c: _Checker, value: Any, need: bool) -> Ssh:
    default = Ssh(user="root", port=22, private_key=None, proxy=None)
    if value is None:
        if need:
            c.error("ssh", "missing; pools with transport ssh need ssh: {user, port, privateKey} "
                           "(set the key with `pulumi config set --secret --path ssh.privateKey < key`)")
        return default
    m = c.mapping(value, "ssh", SSH_KEYS, "ssh")
    if m is None:
        return default
    user = _check_user(c, m.get("user", "root"), "ssh.user") or "root"
    port = c.port(m.get("port", 22), "ssh.port") or 22
    key = _secret(c, m.get("privateKey"), "ssh.privateKey", need)
    proxy = None
    proxy_key = None
    if m.get("proxy") is not None:
        pm = c.mapping(m.get("proxy"), "ssh.proxy", PROXY_KEYS, "ssh.proxy (the bastion)")
        if pm is not None:
            phost = _check_host(c, pm.get("host"), "ssh.proxy.host")
            pport = None if pm.get("port") is None else c.port(pm.get("port"), "ssh.proxy.port")
            puser = None if pm.get("user") is None else _check_user(c, pm.get("user"), "ssh.proxy.user")
            pkey = _check_host_key(c, pm.get("hostKey"), "ssh.proxy.hostKey")
            proxy_key = _secret(c, pm.get("privateKey"), "ssh.proxy.privateKey", False)
            if phost is not None:
                proxy = Proxy(phost, pport, puser, pkey, proxy_key is not None)
    return Ssh(user, port, key, proxy, proxy_key)


def _secret(c: _Checker, value: Any, path: str, need: bool) -> str | None:
    if value is None:
        if need:
            c.error(path, f"missing; set it with `pulumi config set --secret --path {path} < ~/.ssh/id_ed25519`")
        return None
    if isinstance(value, Mapping) and set(value) == {"secure"}:
        return "<secret>"  # still encrypted: a stack file read without the engine
    if isinstance(value, str) and value.strip():
        return value
    c.error(path, f"value of type {_typename(value)} is not a private key; set it with "
                  f"`pulumi config set --secret --path {path} < ~/.ssh/id_ed25519`")
    return None


def _check_kubernetes(c: _Checker, value: Any) -> Kubernetes:
    if value is None:
        return Kubernetes(None, None, None)
    m = c.mapping(value, "kubernetes", K8S_KEYS, "kubernetes")
    if m is None:
        return Kubernetes(None, None, None)
    vals = {}
    for key in K8S_KEYS:
        v = m.get(key)
        vals[key] = None if v is None else c.string(v, f"kubernetes.{key}")
    return Kubernetes(vals["kubeconfig"], vals["context"], vals["renderDir"])


def _check_deprecation(c: _Checker, value: Any) -> Deprecation:
    default = Deprecation("warn", 2)
    if value is None:
        return default
    m = c.mapping(value, "deprecation", DEPRECATION_KEYS, "deprecation")
    if m is None:
        return default
    mode = m.get("mode", "warn")
    if mode not in DEPRECATION_MODES:
        c.error("deprecation.mode", f"{mode!r} is not a mode; use off, warn or error")
        mode = "warn"
    keep = m.get("keep", 2)
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        c.error("deprecation.keep", f"{keep!r} must be a whole number >= 1 (2 keeps N and N-1)")
        keep = 2
    return Deprecation(mode, keep)


def check_config(raw: Mapping[str, Any], base_dir: str | Path | None = None) -> tuple[FleetConfig, list[Problem]]:
    """Validate the namespace-stripped config. Returns the typed config (of the parts that passed) and
    every problem found. Callers must not act on the config when any problem is an error.

    `base_dir` is the project folder: `file:<relative path>` URLs are made absolute against it."""
    c = _Checker()
    for key in raw:
        if key not in TOP_KEYS:
            c.error(key, f"unknown key '{NAMESPACE}:{key}'; the keys are {', '.join(TOP_KEYS)}")
    runtime = raw.get("runtime", DEFAULT_RUNTIME)
    if not isinstance(runtime, str) or not naming.is_dns_label(runtime):
        c.error("runtime", f"{runtime!r} is not a DNS label (lower-case letters, digits, '-'); it prefixes "
                           "every RuntimeClass and label: use e.g. wasmtime")
        runtime = DEFAULT_RUNTIME
    releases = _check_shims(c, runtime, raw.get("shims"), base_dir)
    pools = _check_pools(c, raw.get("nodePools"), releases)
    need_ssh = any(p.transport == "ssh" and p.nodes for p in pools)
    ssh = _check_ssh(c, raw.get("ssh"), need_ssh)
    kubernetes = _check_kubernetes(c, raw.get("kubernetes"))
    deprecation = _check_deprecation(c, raw.get("deprecation"))
    for pool in pools:
        for key in (*pool.releases, *pool.retiring):
            if pool.transport == "ssh" and releases[key].url.startswith("file:"):
                c.warn(pool.path, f"pool {pool.name!r} pins {key}, whose url {releases[key].url!r} is a file: URL: "
                                  "over SSH each node reads that path on its own disk; serve the artifact over "
                                  "https for remote nodes")
    used = {k for p in pools for k in (*p.releases, *p.retiring) if p.nodes}
    for key, rel in releases.items():
        if key not in used:
            c.warn(rel.path, f"{key} is in the catalog but installed on no node; pin it in a pool or remove it")
    cfg = FleetConfig(runtime, releases, pools, ssh, kubernetes, deprecation)
    return cfg, c.problems
