"""Every name the fleet puts on a node or in the cluster, composed in one place.

For shim `slight` at 1.2.3 with runtime prefix `wasmtime` (the proposal's scheme, dashes everywhere):

=====================  ==========================================
binary                 containerd-shim-slight-v1-2-3-v1
exact handler          slight-v1-2-3
runtime_type           io.containerd.slight-v1-2-3.v1
RuntimeClass / label   wasmtime-slight-v1-2-3
minor series           handler slight-v1-2, class/label wasmtime-slight-v1-2
major series (>= 1)    handler slight-v1,   class/label wasmtime-slight-v1
any version            handler slight,      class wasmtime-slight, label wasmtime-slight-enabled
=====================  ==========================================

Dots never appear: containerd splits `runtime_type` on dots to find the binary (field notes trap 5), and a
label written with dots matches no selector written with dashes (trap 3).
"""

from __future__ import annotations

import re

import semver

#: Every label the fleet sets has this value.
LABEL_VALUE = "true"
#: Suffix of the "any version" label (the class itself has no suffix).
ENABLED_SUFFIX = "enabled"
#: Where our shim binaries go on a node (containerd finds shims on PATH; field notes: BinaryName does not
#: work for shims off PATH).
BIN_DIR = "/usr/local/bin"
#: Field manager / annotation prefix that marks what the fleet owns.
MANAGER = "wasm-shim-fleet"

#: Kubernetes' limit for a DNS label, a label key's name part and a label value.
MAX_NAME = 63
#: Kubernetes' limit for a DNS subdomain (node and RuntimeClass names).
MAX_SUBDOMAIN = 253
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def is_dns_label(value: str) -> bool:
    """RFC 1123 label: lower-case alphanumerics and '-', alphanumeric at both ends, at most 63 chars."""
    return len(value) <= MAX_NAME and bool(_DNS_LABEL.match(value))


def non_ascii(text: str) -> str:
    """Why `text` is not what it looks like, when it holds non-ASCII characters (look-alikes such as the
    Cyrillic 'о' print like ASCII); '' when it is plain ASCII."""
    import unicodedata

    for i, ch in enumerate(text):
        if ord(ch) > 127:
            name = unicodedata.name(ch, "unnamed character")
            return (f"character {i + 1} is U+{ord(ch):04X} {name}, not an ASCII letter; retype the name in ASCII")
    return ""


def dns_label_problem(value: str) -> str | None:
    """Which rule of an RFC 1123 label `value` breaks, in words (None when it is one)."""
    if is_dns_label(value):
        return None
    if len(value) > MAX_NAME:
        return f"is {len(value)} characters, over the {MAX_NAME} a DNS label allows"
    odd = non_ascii(value)
    if odd:
        return f"is not a DNS label: {odd}"
    if value != value.lower():
        return "is not a DNS label: it has upper-case letters (lower-case letters, digits and '-' only)"
    bad = sorted({ch for ch in value if not (ch.isalnum() or ch == "-")})
    if bad:
        return f"is not a DNS label: {''.join(bad)!r} not allowed (lower-case letters, digits and '-' only)"
    return "is not a DNS label: it must start and end with a letter or digit"


def dns_subdomain_problem(value: str) -> str | None:
    """Which rule of an RFC 1123 subdomain (a Kubernetes node name) `value` breaks; None when it is one."""
    if len(value) > MAX_SUBDOMAIN:
        return f"is {len(value)} characters, over the {MAX_SUBDOMAIN} a DNS subdomain allows"
    odd = non_ascii(value)
    if odd:
        return f"is not a DNS subdomain: {odd}"
    for part in value.split("."):
        why = dns_label_problem(part)
        if why:
            return f"part {part!r} {why}"
    return None


def parse_version(text: str) -> semver.Version:
    """Parse a semantic version, accepting one leading 'v'. Raises ValueError with the rule broken."""
    raw = text[1:] if text[:1] in ("v", "V") else text
    try:
        return semver.Version.parse(raw)
    except (ValueError, TypeError):
        # not semver's own message: it quotes the text as it is (a newline in it would split a log line)
        raise ValueError("not a semantic version MAJOR.MINOR.PATCH[-PRERELEASE]") from None


def encode_version(version: semver.Version) -> str:
    """`1.2.3` -> `v1-2-3`; `0.1.0-alpha.1` -> `v0-1-0-alpha-1` (lower case, dots to dashes)."""
    text = f"v{version.major}-{version.minor}-{version.patch}"
    if version.prerelease:
        text += "-" + version.prerelease.replace(".", "-")
    return text.lower()


def release_key(shim: str, version: semver.Version) -> str:
    """How a stack file and the plan refer to one release: `slight@1.2.3`."""
    return f"{shim}@{version}"


def exact_handler(shim: str, version: semver.Version) -> str:
    return f"{shim}-{encode_version(version)}"


def binary_name(shim: str, version: semver.Version) -> str:
    return f"containerd-shim-{exact_handler(shim, version)}-v1"


def runtime_type(handler: str) -> str:
    """containerd maps io.containerd.<name>.v1 to the binary containerd-shim-<name>-v1 on PATH."""
    return f"io.containerd.{handler}.v1"


def binary_of_runtime_type(runtime_type: str) -> str:
    """The binary containerd runs for `io.containerd.<name>.<ver>`: `containerd-shim-<name>-<ver>`."""
    parts = runtime_type.split(".")
    return f"containerd-shim-{'.'.join(parts[2:-1])}-{parts[-1]}"


def minor_series(shim: str, version: semver.Version) -> str:
    """Handler of the minor series: `slight-v1-2`."""
    return f"{shim}-v{version.major}-{version.minor}"


def major_series(shim: str, version: semver.Version) -> str | None:
    """Handler of the major series `slight-v1`; None for 0.x, where the minor series is the unit."""
    return f"{shim}-v{version.major}" if version.major >= 1 else None


def any_handler(shim: str) -> str:
    """Handler of "any version" of a shim: the shim name itself."""
    return shim


def class_name(runtime: str, handler: str) -> str:
    """RuntimeClass name for a handler: `wasmtime-slight-v1-2`, `wasmtime-slight` for any version."""
    return f"{runtime}-{handler}"


def label_key(runtime: str, handler: str, shim: str, prefix: str = "") -> str:
    """Node label that a class selects. The "any version" class selects `<runtime>-<shim>-enabled`.
    `prefix` (the stack's `labelPrefix`, e.g. `wasm.example.org/`) goes in front; the proposal's names
    have none. The 63-character limit applies to the part after the prefix."""
    if handler == shim:
        return f"{prefix}{runtime}-{shim}-{ENABLED_SUFFIX}"
    return f"{prefix}{runtime}-{handler}"


def is_fleet_label(key: str, runtime: str, prefix: str = "") -> bool:
    """Whether a node label key is one the fleet composes (label_key) for this runtime and prefix."""
    return key.startswith(fleet_label_prefix(runtime, prefix))


#: Label prefixes Kubernetes reserves for its own components.
RESERVED_PREFIXES = ("kubernetes.io", "k8s.io")


def label_prefix_problem(prefix: str) -> str | None:
    """Which rule a label prefix (`<DNS subdomain>/`) breaks; None when it is a usable one."""
    if not prefix.endswith("/"):
        return "must end with '/' (a label prefix is a DNS subdomain followed by '/', e.g. wasm.example.org/)"
    domain = prefix[:-1]
    why = "is empty" if not domain else dns_subdomain_problem(domain)
    if why is not None:
        return f"{domain!r} {why}: a label prefix is a DNS subdomain followed by '/'"
    if any(domain == r or domain.endswith("." + r) for r in RESERVED_PREFIXES):
        return f"{domain!r} is reserved for Kubernetes' own labels; use a domain of your organisation"
    return None


_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")


def label_value_problem(value: str) -> str | None:
    """Which rule of a Kubernetes label value `value` breaks (None when it is one; "" is a valid value)."""
    if value == "":
        return None
    if len(value) > MAX_NAME:
        return f"is {len(value)} characters, over the {MAX_NAME} a label value allows"
    odd = non_ascii(value)
    if odd:
        return f"is not a label value: {odd}"
    if not _LABEL_NAME.match(value):
        return ("is not a label value (letters, digits, '-', '_', '.', beginning and ending with a letter or "
                "digit)")
    return None


def label_key_problem(key: str) -> str | None:
    """Which rule of a Kubernetes label key (`[prefix/]name`) `key` breaks; None when it is one."""
    prefix, slash, name = key.rpartition("/")
    if slash:
        why = "is empty" if not prefix else dns_subdomain_problem(prefix)
        if why is not None:
            return f"has prefix {prefix!r}, which {why} (a label key's prefix is a DNS subdomain)"
    if not name:
        return "has no name after the prefix"
    if len(name) > MAX_NAME:
        return f"has a name part of {len(name)} characters, over the {MAX_NAME} a label key allows"
    odd = non_ascii(name)
    if odd:
        return f"is not a label key: {odd}"
    if not _LABEL_NAME.match(name):
        return ("is not a label key (its name: letters, digits, '-', '_', '.', beginning and ending with a "
                "letter or digit)")
    return None


#: Kubernetes' limit for a field manager name.
MAX_FIELD_MANAGER = 128


def field_manager(node: str) -> str:
    """The server-side apply field manager of one node's label patch: one per node, so deleting or shrinking
    the patch relinquishes only the labels that node's patch set. Long node names are cut and hashed to
    stay within Kubernetes' 128 characters."""
    name = f"{MANAGER}-{node}"
    if len(name) <= MAX_FIELD_MANAGER:
        return name
    import hashlib

    digest = hashlib.sha256(node.encode()).hexdigest()[:12]
    return f"{name[:MAX_FIELD_MANAGER - 13]}-{digest}"


# ------------------------------------------------------------------------------------------ agent pools
#: The node label by which an agent pool claims a node (value: the pool). A node belongs to one pool: the agent
#: of a second pool that selects it sees the claim and refuses, changing nothing.
CLAIM_LABEL = "wasm-shim-fleet.io/pool"
#: Annotations of ours on a Node end with this domain (the agents' status: `<pool>.agent.wasm-shim-fleet.io/status`).
ANNOTATION_DOMAIN = "wasm-shim-fleet.io"
AGENT_PREFIX = "wsf-agent-"


def agent_name(pool: str) -> str:
    """The DaemonSet and the ServiceAccount of an agent pool: `wsf-agent-<pool>`."""
    return f"{AGENT_PREFIX}{pool}"


def agent_field_manager(pool: str) -> str:
    """The server-side apply field manager of an agent pool's agents (all nodes of the pool share it: each agent
    applies to its own Node only)."""
    return f"{MANAGER}-agent-{pool}"


def agent_status_annotation(pool: str) -> str:
    """The Node annotation in which the agent of `pool` publishes its node's state (one key per pool, so that the
    agent of a second pool selecting the node can say why it refuses without touching the first one's)."""
    return f"{pool}.agent.{ANNOTATION_DOMAIN}/status"


def fleet_label_prefix(runtime: str, prefix: str = "") -> str:
    """Every label key the fleet composes (label_key) starts with this; is_fleet_label tests it."""
    return f"{prefix}{runtime}-"

