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

MAX_NAME = 63
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def is_dns_label(value: str) -> bool:
    """RFC 1123 label: lower-case alphanumerics and '-', alphanumeric at both ends, at most 63 chars."""
    return len(value) <= MAX_NAME and bool(_DNS_LABEL.match(value))


def parse_version(text: str) -> semver.Version:
    """Parse a semantic version, accepting one leading 'v'. Raises ValueError with the rule broken."""
    raw = text[1:] if text[:1] in ("v", "V") else text
    try:
        return semver.Version.parse(raw)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a semantic version MAJOR.MINOR.PATCH[-PRERELEASE]: {exc}") from None


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


def label_key(runtime: str, handler: str, shim: str) -> str:
    """Node label that a class selects. The "any version" class selects `<runtime>-<shim>-enabled`."""
    if handler == shim:
        return f"{runtime}-{shim}-{ENABLED_SUFFIX}"
    return f"{runtime}-{handler}"
