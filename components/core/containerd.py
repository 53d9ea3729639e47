"""The TOML that the fleet writes into containerd's config: one managed block of whole runtime tables.

Why a block at the end of the main file (field notes traps 6 and 6b): a drop-in pulled in by `imports`
replaces the main file's whole CRI section on containerd 1.x, and `runc` disappears. A block of whole tables
appended to the main file merges with what is already there, and leaves every other byte of the file alone.
k3s and rke2 render containerd's config from a template, so for them the block goes at the end of
`config.toml.tmpl`, after `{{ template "base" . }}`.

The block is delimited by two marker lines; the line after the opening marker records what the file looked
like before the block was first added, so that removing it restores the original bytes exactly:

    <original bytes>[\\n if they did not end in a newline]
    <empty line>
    # >>> wasm-shim-fleet managed handler table >>>
    # wasm-shim-fleet original: kept | no-final-newline | created
    ...tables...
    # <<< wasm-shim-fleet managed handler table <<<

The node scripts (nodescript.py) parse and rewrite the file in POSIX sh; the functions here are the single
source of the block text and the pure reference for what those scripts do (tests compare both).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from .flavors import FLAVORS, RUNTIMES_TABLE, TEMPLATE_BASE

BEGIN = "# >>> wasm-shim-fleet managed handler table >>>"
END = "# <<< wasm-shim-fleet managed handler table <<<"
#: Second line of the block: how to restore the file's original bytes when the block goes away.
ORIGINAL_PREFIX = "# wasm-shim-fleet original: "
ORIGINAL_KINDS = ("kept", "no-final-newline", "created")

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_RUNTIME_TYPE = re.compile(r"^io\.containerd\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.(v[0-9]+)$")


def toml_key(part: str) -> str:
    """One TOML key part: bare when it can be, else a basic string (the same canonical form the scripts use)."""
    if _BARE_KEY.match(part):
        return part
    return '"' + part.replace("\\", "\\\\").replace('"', '\\"') + '"'


def runtime_table(config_version: int, handler: str) -> str:
    """The dotted name of a handler's table, e.g. plugins."io.containerd.grpc.v1.cri".containerd.runtimes.slight."""
    return f"{RUNTIMES_TABLE[config_version]}.{toml_key(handler)}"


def shim_binary(runtime_type: str) -> str:
    """The binary containerd looks up on PATH for a runtime_type (trap 5: the last two dot-separated parts)."""
    m = _RUNTIME_TYPE.match(runtime_type)
    if not m:
        raise ValueError(f"{runtime_type!r} is not io.containerd.<name>.<version>")
    return f"containerd-shim-{m.group(1)}-{m.group(3)}"


def render_handler_block(handlers: Mapping[str, str], config_version: int) -> str:
    """The tables of the managed block, without the marker lines: one whole table per handler, sorted.

    An alias (a handler whose runtime_type names another handler) says so in a comment, for the operator
    who reads the file on the node.
    """
    if config_version not in RUNTIMES_TABLE:
        raise ValueError(f"config version {config_version} is not one of {sorted(RUNTIMES_TABLE)}")
    lines = [
        "# Written by wasm-shim-fleet; edits here are replaced on the next run and removed by uninstall.",
        "# Each runtime_type io.containerd.<name>.v1 runs the shim binary containerd-shim-<name>-v1 from PATH.",
    ]
    for handler in sorted(handlers):
        rtype = handlers[handler]
        target = _RUNTIME_TYPE.match(rtype)
        lines.append("")
        if target and target.group(1) != handler:
            lines.append(f"# alias on this node: {handler} -> {target.group(1)}")
        lines.append(f"[{runtime_table(config_version, handler)}]")
        lines.append(f'  runtime_type = "{rtype}"')
    return "\n".join(lines) + "\n"


def managed_block(handlers: Mapping[str, str], config_version: int, original: str = "kept") -> str:
    """The whole block as it appears in the file, marker lines included (no leading empty line)."""
    if original not in ORIGINAL_KINDS:
        raise ValueError(f"original must be one of {ORIGINAL_KINDS}")
    return f"{BEGIN}\n{ORIGINAL_PREFIX}{original}\n{render_handler_block(handlers, config_version)}{END}\n"


def append_block(original: str | None, handlers: Mapping[str, str], config_version: int,
                 template: bool = False, create_base: str = TEMPLATE_BASE) -> str:
    """Reference implementation of the install edit: the file after adding the block to `original`
    (None: the file does not exist; only templates may be created)."""
    if original is None:
        if not template:
            raise ValueError("refusing to create containerd's main config: it would drop the built-in runc")
        return create_base + "\n\n" + managed_block(handlers, config_version, "created")
    if original and not original.endswith("\n"):
        return original + "\n\n" + managed_block(handlers, config_version, "no-final-newline")
    return original + "\n" + managed_block(handlers, config_version, "kept")


def detect_config_version(text: str) -> int:
    """The top-level `version` key before the first table header; absent means 1 (containerd's rule)."""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("["):
            break
        m = re.match(r"^version\s*=\s*([0-9]+)", line)
        if m:
            return int(m.group(1))
    return 1


def flavors_for_version(config_version: int) -> list[str]:
    """Flavor names whose tables fit a config of version `config_version` (for error messages)."""
    return [f.name for f in FLAVORS.values() if config_version in f.accepts]
