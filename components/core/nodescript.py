"""The node payload: the node kit (shared shell logic, delivered once per node) and the short script of each
node resource that calls it.

Pure rendering (no pulumi import): the components send exactly these strings to the node, and
`python -m components node-script STACK NODE` prints them for an operator to audit.

- The kit is the file `kit/wsf.sh` beside this module (POSIX sh): lock, download + sha256, staging, TOML scan,
  validation with containerd, restart, verify, rollback, removal. Its data block (flavors, markers) is
  generated from flavors.py and containerd.py (`kit_data`); the unit tests keep the file equal to it. On a node
  it lives at `var/lib/wasm-shim-fleet/kit/<sha256>/wsf.sh`, and `kit/selected` names the one in use.
- A resource script sets its defaults (`WSF_NODE_ROOT`, and `WSF_RESTART` for table scripts), checks the
  selected kit against its sha256, sources it and makes one call with its own values. The scripts never name a
  kit: a kit change re-runs only the kit resource, and a delete recorded in state runs on the node's current kit
  (the call interface is versioned, `CALL_VERSION`).

Every script: POSIX sh, `set -eu`; exit 0 with a last line `changed` or `unchanged`, else non-zero with one
line on stderr. Defaults are assignments in the script text (pulumi-command's `environment` uses SSH Setenv,
which sshd drops unless AcceptEnv allows it); a caller may override them by prefixing assignments (`with_env`).
"""

from __future__ import annotations

import functools
import hashlib
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from . import containerd, naming
from .config import DEFAULT_MAX_BYTES
from .flavors import FLAVORS, RUNTIMES_TABLE, Flavor
from .plan import Binary, NodePlan

#: The kit's source file (its data block is generated, see kit_data).
KIT_FILE = Path(__file__).resolve().parent / "kit" / "wsf.sh"
#: Version of the kit's call interface (`wsf <version> <flavor> <verb> ...`).
CALL_VERSION = 1
#: Where the node keeps its kits, relative to the node root.
KIT_DIR = "/var/lib/wasm-shim-fleet/kit"
STATE_DIR = "/var/lib/wasm-shim-fleet"
#: The kit's file name inside kit/<sha256>/.
KIT_NAME = "wsf.sh"
#: The steps a change passes through, in order (`step <id> ...` in the kit), where it may be interrupted.
BINARY_STEPS = ("binary-downloaded", "binary-verified", "binary-staged", "binary-installed")
TABLE_STEPS = ("config-staged", "config-saved", "config-written", "containerd-restarted", "table-verified")
REMOVE_STEPS = TABLE_STEPS
DATA_BEGIN = "# >>> data (generated from components/core/flavors.py and containerd.py; tests keep it equal) >>>"
DATA_END = "# <<< data <<<"


def shq(value: str) -> str:
    """Quote a value for POSIX sh: single quotes, with each embedded ' written as '\"'\"'."""
    return "'" + value.replace("'", "'\"'\"'") + "'"


def restart_command(node: NodePlan) -> str:
    return node.restart if node.restart is not None else node.containerd.restart


def script_env(node: NodePlan) -> dict[str, str]:
    """WSF_NODE_ROOT and WSF_RESTART for the node. The scripts carry these as defaults in their text: pass them
    only to override (e.g. with `with_env`)."""
    return {"WSF_NODE_ROOT": node.node_root, "WSF_RESTART": restart_command(node)}


def with_env(script: str, env: dict[str, str]) -> str:
    """The script with `NAME='value'` assignments in front: how to override its defaults over an SSH session
    that drops `Setenv` (the assignments are shell variables read by the script's own defaults)."""
    if not env:
        return script
    for name in env:
        if not name.isidentifier() or not name.isascii():
            raise ValueError(f"{name!r} is not a shell variable name")
    line = " ".join(f"{k}={shq(v)}" for k, v in env.items())
    return f"{line}\n{script}"


# ------------------------------------------------------------------------------------------ the kit
def kit_data() -> str:
    """The kit's generated data block: containerd flavors, the flavors that fit each config version, the runtimes
    table of each version and the block markers."""
    lines = [DATA_BEGIN,
             "# wsf_flavor NAME: FLAVOR CONFIG_VERSION TABLES TEMPLATE CONFIG_PATH CREATE_BASE LOADED_CONFIG SOCKET",
             *_flavor_function(FLAVORS.values()),
             *_table_function(),
             "# The flavors that fit a config version (for the version mismatch error).",
              "fits() {", "    case $1 in"]
    for version in sorted({v for f in FLAVORS.values() for v in f.accepts}):
        lines.append(f"        {version}) echo {shq(' or '.join(containerd.flavors_for_version(version)))} ;;")
    lines += ["        *) echo 'none: config version '\"$1\"' is unknown' ;;", "    esac", "}",
              f"BEGIN_MARK={shq(containerd.BEGIN)}",
              f"END_MARK={shq(containerd.END)}",
              f"ORIGINAL_PREFIX={shq(containerd.ORIGINAL_PREFIX)}",
              "# The largest download when the catalog entry sets no maxBytes.",
              f"DEFAULT_MAX_BYTES={DEFAULT_MAX_BYTES}",
              DATA_END]
    return "\n".join(lines) + "\n"


def _flavor_function(flavors: Iterable[Flavor]) -> list[str]:
    """The lines of the kit's `wsf_flavor` function for these flavors (the kit's data block has the built-in
    ones; the script of a node with a layout of its own redefines it with that layout, see _call)."""
    lines = ["wsf_flavor() {", "    case $1 in"]
    for f in flavors:
        lines.append(f"        {f.name}) FLAVOR={f.name} CONFIG_VERSION={f.config_version} "
                     f"TABLES={shq(' '.join(map(str, f.tables)))} TEMPLATE={1 if f.template else 0}")
        lines.append(f"            CONFIG_PATH={shq(f.config_path)} CREATE_BASE={shq(f.create_base or '')}")
        lines.append(f"            LOADED_CONFIG={shq(f.loaded_config_path)} SOCKET={shq(f.socket)} ;;")
    lines += ["        *) return 1 ;;", "    esac",
              "    table_of \"$CONFIG_VERSION\"; RUNTIMES_TABLE=$wsf_table", "}"]
    return lines


def _table_function() -> list[str]:
    """The kit's `table_of VERSION`: sets wsf_table to that config version's runtimes table (canonical key)."""
    lines = ["# table_of VERSION: wsf_table, the runtimes table (canonical dotted key) of a config version.",
             "table_of() {", "    case $1 in"]
    for version, table in RUNTIMES_TABLE.items():
        canonical = ".".join(containerd.toml_key(p) for p in split_key(table))
        lines.append(f"        {version}) wsf_table={shq(canonical)} ;;")
    lines += ["        *) return 1 ;;", "    esac", "}"]
    return lines


def with_kit_data(text: str) -> str:
    """`text` (the kit source) with its data block replaced by kit_data()."""
    head, rest = text.split(DATA_BEGIN + "\n", 1)
    _, tail = rest.split(DATA_END + "\n", 1)
    return head + kit_data() + tail


@functools.lru_cache(maxsize=1)
def kit_text() -> str:
    """The kit exactly as nodes get it (the bytes of KIT_FILE)."""
    return KIT_FILE.read_text()


def kit_sha256(text: str | None = None) -> str:
    return hashlib.sha256((kit_text() if text is None else text).encode()).hexdigest()


def split_key(dotted: str) -> list[str]:
    """Split a dotted TOML key of the forms in flavors.RUNTIMES_TABLE (bare parts and "quoted" parts)."""
    parts, cur, quoted = [], "", False
    for ch in dotted:
        if ch == '"':
            quoted = not quoted
        elif ch == "." and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


# ------------------------------------------------------------------------------- resource scripts
def _root(node: NodePlan, root: str | None) -> str:
    return node.node_root if root is None else root


def _on(node: NodePlan) -> str:
    """Where a script runs, as its first line says: `node <name>`, or every node of an agent pool."""
    return f"each node of pool {node.pool}" if node.transport == "agent" else f"node {node.name}"


def _script(node: NodePlan, what: str, call: str, root: str | None, *, restart: bool = False,
            leftovers: tuple[str, ...] = (), before: str = "") -> str:
    """A resource script: its defaults, the check of the node's selected kit, then one call of the kit.
    `leftovers` (removals): the files (shell words, "$d" is the state folder) that show something is left to
    remove; with no valid kit and none of them, a removal has nothing to do (a new or reimaged node, or one
    already cleaned up) and succeeds.
    Kept short: every resource keeps its texts twice in the stack's state (inputs and outputs), so the common
    lines are terse and name the kit's folder once."""
    defaults = f"WSF_NODE_ROOT=${{WSF_NODE_ROOT:-{shq(_root(node, root))}}}"
    if restart:
        defaults += f" WSF_RESTART=${{WSF_RESTART:-{shq(restart_command(node))}}}"
    lines = [f"# wasm-shim-fleet: {what} on {_on(node)}", f"set -eu; {defaults}",
             f'd=${{WSF_NODE_ROOT%/}}{STATE_DIR}; WSF_KIT=$(cat "$d/kit/selected" 2>/dev/null) || WSF_KIT=-']
    check = f'[ "$(sha256sum 2>/dev/null <"$d/kit/$WSF_KIT/{KIT_NAME}")" = "$WSF_KIT  -" ] || {{'
    fail = 'echo "wasm-shim-fleet: error: no valid node kit in $d/kit (pulumi up delivers it)"'
    if leftovers:
        lines += [check,
                  f"    for f in {' '.join(leftovers)}; do",
                  f'        [ ! -e "$f" ] || {{ {fail} >&2; exit 1; }}; done',
                  '    echo "wasm-shim-fleet: nothing to remove (no node kit)"; echo unchanged; exit 0; }']
    else:
        lines.append(f"{check} {fail} >&2; exit 1; }}")
    lines += [before + f'. "$d/kit/$WSF_KIT/{KIT_NAME}"', call]
    return "\n".join(lines) + "\n"


def _call(node: NodePlan, verb: str, *values: str, sep: str = " ") -> str:
    call = sep.join([f"wsf {CALL_VERSION} {node.flavor} {verb}", *(shq(v) for v in values)])
    if node.layout is None:
        return call
    # A layout of the caller's own is not in the kit's data block: the script defines it after sourcing the
    # kit, with the very code that generates the kit's built-in ones (the kit's text stays the same).
    return "\n".join(["# the pool's own containerd layout (not one of the kit's built-in flavors)",
                      *_flavor_function([node.layout]), call])


#: The kit verb that installs (downloads, checks the sha256 of, stages and renames) a shim binary: the stable mark of
#: a binary install command, by which the policy pack finds them (install_binary_call).
INSTALL_BINARY = "install-binary"
_CALL = re.compile(rf"^wsf [0-9]+ [a-z0-9-]+ {INSTALL_BINARY}((?:[^\n]*\\\n)*[^\n]*)$", re.M)
_HEADER = re.compile(r"^# wasm-shim-fleet: install \S+ on node (\S+)$", re.M)


@dataclass(frozen=True)
class InstallCall:
    """What a binary install command asks the kit for (install_binary_script's call, read back)."""

    name: str
    url: str
    sha256: str
    member: str
    probe: str
    node: str | None  # from the script's first comment line


def install_binary_call(script: str) -> InstallCall | None:
    """The kit call of a binary install script, or None when the script makes none (not ours, or not a binary
    install). The sha256 is checked by the kit before the binary is used."""
    m = _CALL.search(script)
    if m is None:
        return None
    try:
        values = shlex.split(m.group(1).replace("\\\n", " "))
    except ValueError:
        return None
    if len(values) not in (4, 5, 6):
        return None
    name, url, sha, member, *probe = values[:5]
    header = _HEADER.search(script)
    node = header.group(1) if header else None
    return InstallCall(name, url, sha, member, probe[0] if probe else "none", node)


def install_binary_calls(script: str) -> list[InstallCall]:
    """Every kit call installing a binary in a script that makes several (an agent pool's `binaries` script)."""
    out = []
    for part in re.split(r"(?m)^(?=# wasm-shim-fleet: install \S+ on )", script):
        call = install_binary_call(part)
        if call is not None:
            out.append(call)
    return out


def install_binary_script(node: NodePlan, binary: Binary, root: str | None = None) -> str:
    """Download, verify and install one shim binary on the node; idempotent (no download when in place)."""
    # The size limit goes into the call only when the catalog sets one (else the kit's default applies, and the
    # scripts of existing binaries stay the same).
    extra = () if binary.max_bytes is None else (str(binary.max_bytes),)
    return _script(node, f"install {binary.release}",
                   _call(node, INSTALL_BINARY, binary.name, binary.url, binary.sha256, binary.member or "",
                         binary.probe, *extra, sep=" \\\n    "), root)


def remove_binary_script(node: NodePlan, binary: Binary, root: str | None = None) -> str:
    """Remove one shim binary; the kit refuses while the node's config still names its runtime_type."""
    handler = binary.name[len("containerd-shim-"):-len("-v1")]
    return _script(node, f"remove {binary.release}",
                   _call(node, "remove-binary", binary.name, naming.runtime_type(handler)), root,
                   leftovers=(f'"${{WSF_NODE_ROOT%/}}"{shq("/usr/local/bin/" + binary.name)}',
                              f'"$d"/binaries/{shq(binary.name + ".sha256")}'))


def apply_table_script(node: NodePlan, root: str | None = None, seed: str | None = None) -> str:
    """Write or replace the node's handler table, validate, restart once, verify, roll back on failure. A node
    with no handler left gets its table removed instead. `seed`: for a local node, a config file copied into the
    node root first when it has none."""
    before = ""
    if seed is not None:
        before = (f'c="${{WSF_NODE_ROOT%/}}"{shq(node.containerd.config_path)}\n'
                  f'[ -e "$c" ] || {{ mkdir -p "${{c%/*}}" && cp {shq(seed)} "$c"; }}\n')
    pairs = [f"{h}={t}" for h, t in node.handlers.items()]
    what = "write the containerd handler table" if pairs else "remove the containerd handler table (no handler left)"
    return _script(node, what, _call(node, "apply-table", *pairs, sep=" \\\n    "), root, restart=True,
                   before=before)


def remove_table_script(node: NodePlan, root: str | None = None) -> str:
    """Remove the managed block, restoring the config's original bytes, and restart containerd once."""
    return _script(node, "remove the containerd handler table", _call(node, "remove-table"), root, restart=True,
                   leftovers=('"$d"/table.sha256', '"$d"/config.orig', '"$d"/config.prev*'))


# ---------------------------------------------------------------------------------- kit delivery
def _kit_install(node: NodePlan, root: str | None, sha: str, source: str) -> str:
    """A script that puts the kit in kit/<sha>/, checks its sha256 and selects it. `source`: shell lines that
    write the kit to "$t"."""
    return f"""# wasm-shim-fleet: deliver the node kit to {_on(node)}: checked, then selected
set -eu; WSF_NODE_ROOT=${{WSF_NODE_ROOT:-{shq(_root(node, root))}}}
k=${{WSF_NODE_ROOT%/}}{KIT_DIR}; s={sha}; mkdir -p "$k/$s"; t=$k/$s/.{KIT_NAME}.wsf-tmp
{source}[ "$(sha256sum <"$t")" = "$s  -" ] || {{
    rm -f "$t"; echo "wasm-shim-fleet: error: the kit's sha256 is not $s; nothing was changed" >&2; exit 1; }}
mv -f "$t" "$k/$s/{KIT_NAME}"
[ "$(cat "$k/selected" 2>/dev/null || true)" != "$s" ] || {{ echo unchanged; exit 0; }}
echo "$s" > "$k/.selected.wsf-tmp" && mv -f "$k/.selected.wsf-tmp" "$k/selected"
echo "wasm-shim-fleet: selected node kit $s"; echo changed
"""


def kit_payload_script(node: NodePlan, root: str | None = None, sha: str | None = None) -> str:
    """The kit resource of an in-cluster node: the kit arrives as the run's payload file (the pod carries it),
    and the script on the node keeps it only if it hashes to the sha256 the program put in this text."""
    sha = sha or kit_sha256()
    source = ('[ -f "${WSF_RUN_PAYLOAD:-}" ] || { rmdir "$k/$s" 2>/dev/null || :; echo "wasm-shim-fleet: error: no kit '
              'came with this command (WSF_RUN_PAYLOAD); nothing was changed" >&2; exit 1; }\n'
              'cp "$WSF_RUN_PAYLOAD" "$t"\n')
    return _kit_install(node, root, sha, source)


def kit_copy_script(node: NodePlan, kit_file: str, root: str | None = None, sha: str | None = None) -> str:
    """Deliver the kit by reference from a file this machine can read (local nodes)."""
    sha = sha or kit_sha256()
    head, _, tail = kit_file.partition(f"/{sha}/")
    tail = tail.replace(sha, "$s")
    if tail and re.fullmatch(r"[A-Za-z0-9._/$-]+", tail):  # the staged copy, whose path names the sha256 ($s)
        source = f'cp {shq(head)}"/$s/{tail}" "$t"\n'
    else:
        source = f"cp {shq(kit_file)} \"$t\"\n"
    return _kit_install(node, root, sha, source)


def kit_inline_script(node: NodePlan, root: str | None = None, text: str | None = None) -> str:
    """Deliver the kit inline (a quoted here-document): the break-glass `install` script starts with it."""
    text = kit_text() if text is None else text
    delimiter = "WASM_SHIM_FLEET_KIT"
    if f"\n{delimiter}\n" in text:
        raise ValueError("the kit holds its own here-document delimiter")
    return _kit_install(node, root, kit_sha256(text), f"cat > \"$t\" <<'{delimiter}'\n{text}{delimiter}\n")


def kit_remove_script(node: NodePlan, root: str | None = None) -> str:
    """Delete of a local node's kit resource: remove the kit once no binary or table of ours is left (a replaced
    kit resource leaves it to the kit that replaced it)."""
    return f"""# wasm-shim-fleet: remove the node kit from {_on(node)} when nothing of ours is left
set -eu; WSF_NODE_ROOT=${{WSF_NODE_ROOT:-{shq(_root(node, root))}}}
d=${{WSF_NODE_ROOT%/}}{STATE_DIR}
for f in "$d"/binaries/*.sha256 "$d"/table.sha256 "$d"/config.prev*; do
    [ ! -e "$f" ] || {{ echo "wasm-shim-fleet: keeping the node kit: $f is still there"; echo unchanged; exit 0; }}
done
[ -e "$d/kit" ] || {{ echo unchanged; exit 0; }}
rm -rf "$d/kit"; echo "wasm-shim-fleet: removed $d/kit"; echo changed
"""


# ------------------------------------------------------------------------------ break-glass scripts
def _run_each(scripts: list[str]) -> str:
    """Run each script in its own sh, in order, stopping at the first failure (their settings are exported);
    the last line says whether any of them changed the node."""
    out = ["wsf_changed=0",
           "wsf_run() {  # the script on stdin; its output passes through, its last line is remembered",
           "    wsf_out=$(sh -s) || {",
           "        wsf_rc=$?; [ -z \"$wsf_out\" ] || printf '%s\\n' \"$wsf_out\"; exit \"$wsf_rc\"; }",
           "    printf '%s\\n' \"$wsf_out\"",
           "    case $wsf_out in *unchanged) ;; *) wsf_changed=1 ;; esac",
           "}", ""]
    for i, script in enumerate(scripts, 1):
        delimiter = f"WASM_SHIM_FLEET_STEP_{i}"
        if f"\n{delimiter}\n" in script:
            raise ValueError(f"a node script holds the here-document delimiter {delimiter}")
        out.append(f"wsf_run <<'{delimiter}'\n{script}{delimiter}\n")
    out.append('if [ "$wsf_changed" = 1 ]; then echo changed; else echo unchanged; fi\n')
    return "\n".join(out[:8]) + "".join(out[8:])


def _break_glass(node: NodePlan, what: str, scripts: list[str], root: str | None) -> str:
    return (f"#!/bin/sh\n# wasm-shim-fleet: {what}\n"
            f"# node {node.name} (pool {node.pool}): the scripts of the node's resources, in the order `pulumi up`"
            " runs them\nset -eu\n"
            f'if [ -z "${{WSF_NODE_ROOT:-}}" ]; then WSF_NODE_ROOT={shq(_root(node, root))}; fi\n'
            f'if [ -z "${{WSF_RESTART:-}}" ]; then WSF_RESTART={shq(restart_command(node))}; fi\n'
            "export WSF_NODE_ROOT WSF_RESTART\n" + _run_each(scripts))


def install_script(node: NodePlan, root: str | None = None, kit: str | None = None) -> str:
    """Break-glass install: the kit (inline), every binary's create script, then the table's."""
    scripts = [kit_inline_script(node, root, kit)]
    scripts += [install_binary_script(node, b, root) for b in node.binaries.values()]
    scripts.append(apply_table_script(node, root))
    return _break_glass(node, "install the node kit, shim binaries and the containerd handler table", scripts, root)


def uninstall_script(node: NodePlan, root: str | None = None) -> str:
    """Break-glass uninstall: the table's delete script, every binary's, then the kit's removal."""
    scripts = [remove_table_script(node, root)]
    scripts += [remove_binary_script(node, b, root) for b in node.binaries.values()]
    scripts.append(kit_remove_script(node, root))
    return _break_glass(node, "remove the containerd handler table, shim binaries and the node kit", scripts, root)


# ----------------------------------------------------------------------------------- agent pools
def prune_binaries_script(node: NodePlan, keep: Iterable[str]) -> str:
    """Remove every shim binary the kit installed on the node that is not in `keep` (agent pools: the node
    itself records what was installed; the kit keeps one the config still names or a running container uses)."""
    return _script(node, "remove the shim binaries the pool no longer runs",
                   _call(node, "prune-binaries", *keep, sep=" \\\n    "), None,
                   leftovers=('"$d"/binaries/*.sha256',))


def status_script(node: NodePlan) -> str:
    """Read-only: the handlers of the node's managed table, each with its binary `ok` or `no-binary`."""
    return _script(node, "list the managed handlers and whether their binaries are in place", _call(node, "status"),
                   None)


def _agent_script(node: NodePlan, what: str, scripts: list[str], keep_in_use: bool = False) -> str:
    # Each part runs in its own sh: the node's settings, however they were given, must reach every part.
    # keep_in_use: a handler or binary that a running container uses is kept for now (and said), not refused: an
    # agent's later pass removes it once the pods are gone (the kit's keep_in_use).
    keep = "WSF_IN_USE=keep; export WSF_IN_USE  # in use means kept, until a later pass\n" if keep_in_use else ""
    return (f"# wasm-shim-fleet: {what}\n"
            f"# run by the node agent of pool {node.pool} on its node, each part in its own sh, in order\n"
            "set -eu\nexport WSF_NODE_ROOT WSF_RESTART\n" + keep + _run_each(scripts))


def agent_scripts(node: NodePlan) -> dict[str, str]:
    """What the node agent of an agent pool runs on its node (`node` describes every node of the pool):

    - `binaries`: deliver the kit (it comes with the run, checked against its sha256), then install each binary;
      changes nothing containerd or a label depends on;
    - `table`: write the handler table (one containerd restart when it changes, verified, rolled back on
      failure), then remove the binaries the pool no longer runs;
    - `status`: read-only, the handlers of the managed table and whether each binary is in place;
    - `uninstall`: remove the table (the original config back), every binary of ours, then the kit."""
    return {
        "binaries": _agent_script(node, "deliver the node kit, then install the pool's shim binaries",
                                  [kit_payload_script(node), *(install_binary_script(node, b)
                                                               for b in node.binaries.values())]),
        "table": _agent_script(node, "write the containerd handler table, then remove binaries the pool no longer "
                                     "runs", [apply_table_script(node), prune_binaries_script(node, node.binaries)],
                               keep_in_use=True),
        "status": status_script(node),
        "uninstall": _agent_script(node, "remove the containerd handler table, the shim binaries and the node kit",
                                   [remove_table_script(node), prune_binaries_script(node, ()),
                                    kit_remove_script(node)]),
    }

