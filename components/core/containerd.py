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

The node kit (kit/wsf.sh) is the one source of the block: it scans, writes and removes it in POSIX sh. This
module holds what the kit's generated data block and check.py share with it: the marker lines, the canonical
form of a TOML key, and which flavors fit a config version. The kit's output is tested against containerd's own
parse of the file (tests/integration) and a TOML parser's (the unit tier).
"""

from __future__ import annotations

import re

from .flavors import FLAVORS

BEGIN = "# >>> wasm-shim-fleet managed handler table >>>"
END = "# <<< wasm-shim-fleet managed handler table <<<"
#: Second line of the block: how to restore the file's original bytes when the block goes away.
ORIGINAL_PREFIX = "# wasm-shim-fleet original: "

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_key(part: str) -> str:
    """One TOML key part: bare when it can be, else a basic string (the same canonical form the scripts use)."""
    if _BARE_KEY.match(part):
        return part
    return '"' + part.replace("\\", "\\\\").replace('"', '\\"') + '"'


def flavors_for_version(config_version: int) -> list[str]:
    """Flavor names whose tables fit a config of version `config_version` (for error messages)."""
    return [f.name for f in FLAVORS.values() if config_version in f.accepts]
