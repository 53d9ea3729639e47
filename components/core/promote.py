"""`promote SRC DST`: carry the release pins of a tested stack to the next environment.

What moves: for every pool that exists in both stack files (matched by name), its `releases` and `retiring`
pins, and the catalog entries (`shims.<shim>[]`) those pins need. What stays: everything that belongs to the
target environment: its nodes, hosts, ssh and kubernetes settings, containerd flavor, transport, restart
command, deprecation policy, runtime prefix, and pools that exist only in the target. A catalog entry the
target already has with the same sha256 and archive member is kept as it is (its url may point at the
environment's own mirror); one with other bytes is replaced, and `diff` then decides whether that is safe.

The step is judged exactly as `diff` judges it (same words, same unsafe rules), plus the target's
deprecation policy: an unsafe step or a deprecation error refuses (exit 2) and leaves the file untouched.
Pools that exist only in the source are reported: they need nodes in the target before pins can follow.

The target file is edited as a document, not regenerated: ruamel.yaml's round trip keeps its comments, key
order, quoting and indentation, and only pin lists and catalog entries change.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import ScalarString

from . import naming
from .config import NAMESPACE, RELEASE_KEYS, FleetConfig, Problem, read_stack_file, strip_namespace
from .deprecation import deprecation_problems
from .diff import PlanDiff, diff_plans
from .plan import FleetPlan, plan_from_config

SHIMS_KEY = f"{NAMESPACE}:shims"
POOLS_KEY = f"{NAMESPACE}:nodePools"


@dataclass
class Promotion:
    """The outcome of promoting one stack file's pins into another's text."""

    text: str  # the target file as it would be written
    edits: list[str] = field(default_factory=list)  # pin and catalog edits, one line each
    notes: list[str] = field(default_factory=list)  # pools only in the source, formatting caveats
    errors: list[str] = field(default_factory=list)  # problems of the edited target: nothing may be written
    warnings: list[str] = field(default_factory=list)  # new warnings of the edited target
    diff: PlanDiff = field(default_factory=PlanDiff)
    deprecation: list[Problem] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        return bool(self.errors or self.diff.unsafe or any(p.severity == "error" for p in self.deprecation))


# ------------------------------------------------------------------------------------- YAML round trip
def _yaml(mapping: int = 2, sequence: int = 4, offset: int = 2) -> YAML:
    y = YAML()  # round-trip mode
    y.preserve_quotes = True
    y.width = 4096  # never re-wrap long URLs or keys
    y.indent(mapping=mapping, sequence=sequence, offset=offset)
    return y


def _dump(y: YAML, doc: Any) -> str:
    out = io.StringIO()
    y.dump(doc, out)
    return out.getvalue()


def _matching_yaml(text: str) -> tuple[YAML, Any, bool]:
    """A YAML instance whose indentation reproduces `text`, the loaded document, and whether an unedited
    round trip is byte-identical. Stack files come indented by hand or by `pulumi config set`: rather than
    guess from a few lines, try the usual layouts and keep the one that changes the fewest lines."""
    best: tuple[int, YAML] | None = None
    lines = text.splitlines()
    for mapping in (2, 4):
        for offset in (0, 2, 4):
            for sequence in sorted({max(mapping, offset + 2), offset + 2, offset + 4}):
                y = _yaml(mapping, sequence, offset)
                try:
                    out = _dump(y, y.load(text)).splitlines()
                except Exception:  # a layout ruamel refuses to write is simply not a candidate
                    continue
                changed = sum(1 for a, b in zip(lines, out, strict=False) if a != b) + abs(len(lines) - len(out))
                if best is None or changed < best[0]:
                    best = (changed, y)
                if changed == 0:
                    return y, y.load(text), True
    y = best[1] if best else _yaml()
    return y, y.load(text), False


# ---------------------------------------------------------------------------------------------- edits
def _key_of(text: Any) -> str:
    """Canonical release key of a pin as written (`slight@v1.2.3` -> `slight@1.2.3`)."""
    if not isinstance(text, str):
        return repr(text)
    shim, _, ver = text.partition("@")
    try:
        return naming.release_key(shim, naming.parse_version(ver))
    except ValueError:
        return text


def _new_seq(values: list[str], like: Any) -> CommentedSeq:
    seq = CommentedSeq(values)
    if isinstance(like, CommentedSeq) and like.fa.flow_style():
        seq.fa.set_flow_style()
    return seq


def _update_pins(pool: CommentedMap, field_name: str, keys: tuple[str, ...]) -> str | None:
    """Make `pool[field_name]` hold exactly `keys` (order-insensitive), keeping the pins that stay, with
    their comments, where they are. Returns a line describing the edit, or None."""
    current = pool.get(field_name)
    items = list(current) if isinstance(current, list) else []
    have = [_key_of(t) for t in items]
    if set(have) == set(keys) and len(have) == len(keys):
        return None
    old_words = ", ".join(have) or "-"
    new_words = ", ".join(keys) or "-"
    line = f"pool {pool.get('name')}: ~ {field_name} {old_words} -> {new_words}"
    if not keys:
        if field_name in pool:
            del pool[field_name]
        return line
    if not isinstance(current, CommentedSeq):
        seq = _new_seq(list(keys), pool.get("releases"))
        if field_name in pool:
            pool[field_name] = seq
        else:
            keys_in_order = list(pool)
            after = keys_in_order.index("releases") + 1 if "releases" in keys_in_order else len(keys_in_order)
            pool.insert(after, field_name, seq)
        return line
    for i in reversed(range(len(current))):
        if have[i] not in keys:
            del current[i]
    for key in keys:
        if key not in have:
            current.append(key)
    return line


def _entry_index(path: str) -> int:
    """`shims.slight[2]` -> 2."""
    return int(path.rsplit("[", 1)[1].rstrip("]"))


def _same_artifact(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return (str(a.get("sha256", "")).lower() == str(b.get("sha256", "")).lower()
            and a.get("binary") == b.get("binary"))


def _update_catalog(config: CommentedMap, src_cfg: FleetConfig, src_raw: Mapping[str, Any],
                    dst_cfg: FleetConfig, keys: set[str]) -> list[str]:
    edits = []
    if SHIMS_KEY not in config:
        config.insert(list(config).index(POOLS_KEY) if POOLS_KEY in config else len(config), SHIMS_KEY,
                      CommentedMap())
    shims = config[SHIMS_KEY]
    # Replace entries in place first: their indexes are those of the file as read, before any insertion.
    ordered = sorted(keys, key=lambda k: (k not in dst_cfg.releases, src_cfg.releases[k].shim,
                                          src_cfg.releases[k].version))
    for key in ordered:
        rel = src_cfg.releases[key]
        src_entry = src_raw["shims"][rel.shim][_entry_index(rel.path)]
        fields = {k: src_entry[k] for k in RELEASE_KEYS if k in src_entry}
        existing = dst_cfg.releases.get(key)
        if existing is not None:
            dst_entry = shims[rel.shim][_entry_index(existing.path)]
            if _same_artifact(dst_entry, fields):
                continue
            for k in RELEASE_KEYS:
                if k == "version":
                    continue
                if k in fields:
                    dst_entry[k] = fields[k]
                elif k in dst_entry:
                    del dst_entry[k]
            edits.append(f"catalog: ~ {key}: sha256 {str(existing.sha256)[:12]}… -> {rel.sha256[:12]}…, "
                         f"{rel.url}")
            continue
        seq = shims.get(rel.shim)
        if not isinstance(seq, CommentedSeq):
            seq = CommentedSeq()
            shims[rel.shim] = seq
        entry = CommentedMap(fields)
        sibling = seq[-1] if len(seq) and isinstance(seq[-1], CommentedMap) else None
        if sibling is not None:
            # Look like the entries around it: flow or block, and the same quoting of the version.
            if sibling.fa.flow_style():
                entry.fa.set_flow_style()
            if isinstance(sibling.get("version"), ScalarString) and isinstance(entry.get("version"), str):
                entry["version"] = type(sibling["version"])(entry["version"])
        # Keep the catalog in version order: after the last entry with a lower version.
        at = len(seq)
        for i, other in enumerate(seq):
            other_key = _entry_version(other)
            if other_key is not None and other_key > rel.version:
                at = i
                break
        seq.insert(at, entry)
        edits.append(f"catalog: + {key} ({rel.url}, sha256 {rel.sha256[:12]}…)")
    return edits


def _entry_version(entry: Any):
    """The version of a catalog entry as written, or None if it is not one."""
    if not isinstance(entry, Mapping):
        return None
    try:
        return naming.parse_version(str(entry.get("version")))
    except ValueError:
        return None


def _config_of(text: str) -> dict[str, Any]:
    doc = yaml.safe_load(text) or {}
    return strip_namespace(doc.get("config") or {}) if isinstance(doc, Mapping) else {}


# ------------------------------------------------------------------------------------------- promote
def promote(src_raw: Mapping[str, Any], dst_text: str) -> Promotion:
    """Promote the pins of the namespace-stripped source config into the target file's text.

    Pure: returns the new text and the judgement of the step; writes nothing. Both configs must be free of
    errors (callers check them first)."""
    src_cfg, _ = plan_from_config(src_raw)
    dst_cfg, dst_plan = plan_from_config(_config_of(dst_text))
    y, doc, exact = _matching_yaml(dst_text)
    p = Promotion(text=dst_text)
    if not exact:
        p.notes.append("the YAML writer cannot reproduce this file's layout exactly; check the edit with "
                       "`git diff` before committing")
    config = doc.get("config") if isinstance(doc, Mapping) else None
    if not isinstance(config, CommentedMap):
        p.errors.append("target has no 'config:' mapping to edit")
        return p

    src_pools = {pl.name: pl for pl in src_cfg.pools}
    dst_names = {pl.name for pl in dst_cfg.pools}
    for name in src_pools:
        if name not in dst_names:
            p.notes.append(f"pool {name} exists only in the source: it needs nodes in the target; add it to the "
                           "target's nodePools with its nodes (and containerd flavor), then promote again")
    pools_doc = config.get(POOLS_KEY) or []
    needed: set[str] = set()
    for pool_doc in pools_doc:
        if not isinstance(pool_doc, CommentedMap) or pool_doc.get("name") not in src_pools:
            continue
        src_pool = src_pools[pool_doc["name"]]
        for field_name in ("releases", "retiring"):
            keys = getattr(src_pool, field_name)
            needed.update(keys)
            edit = _update_pins(pool_doc, field_name, keys)
            if edit:
                p.edits.append(edit)
    catalog_edits = _update_catalog(config, src_cfg, src_raw, dst_cfg, needed)
    if not p.edits and not catalog_edits:
        p.diff = PlanDiff()
        return p
    p.edits.extend(catalog_edits)
    p.text = _dump(y, doc)

    new_cfg, new_plan = plan_from_config(_config_of(p.text))
    p.errors.extend(str(e) for e in new_plan.errors)
    if p.errors:
        return p
    before = {(q.path, q.message) for q in dst_plan.problems}
    p.warnings.extend(str(q) for q in new_plan.problems if (q.path, q.message) not in before)
    p.diff = diff_plans(dst_plan, new_plan)
    p.deprecation = deprecation_problems(dst_cfg, new_cfg)
    return p


def _load(path: str) -> tuple[dict[str, Any], FleetPlan]:
    raw = read_stack_file(path)
    _, plan = plan_from_config(raw)
    return raw, plan


def _write_in_place(path: Path, text: str) -> None:
    """Replace the file atomically, keeping its permissions."""
    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def promote_main(src: str, dst: str, write: bool = False) -> int:
    """The `promote` command. Exit 0 (done, or nothing to do), 2 (refused: nothing written)."""
    src_raw, src_plan = _load(src)
    _, dst_plan = _load(dst)
    for name, plan in ((src, src_plan), (dst, dst_plan)):
        for q in plan.errors:
            print(f"{name}: {q}", file=sys.stderr)
    if not (src_plan.ok and dst_plan.ok):
        print("promote: fix the errors above first; nothing was changed", file=sys.stderr)
        return 2
    result = promote(src_raw, Path(dst).read_text())
    for note in result.notes:
        print(f"promote: note: {note}", file=sys.stderr)
    for line in result.edits:
        print(line)
    if result.errors:
        for e in result.errors:
            print(f"{dst} (after promotion): {e}", file=sys.stderr)
        print("promote: the promoted target would not be valid; nothing was changed", file=sys.stderr)
        return 2
    if not result.edits:
        print(f"No changes: {dst} already has the pins of {src}.")
        return 0
    print(result.diff.words(), end="")
    for w in result.warnings:
        print(f"{dst} (after promotion): {w}", file=sys.stderr)
    for q in result.deprecation:
        print(f"{dst}: {q}", file=sys.stderr)
    if result.refused:
        if result.diff.unsafe:
            print(f"promote: {len(result.diff.unsafe)} unsafe transition(s); see the UNSAFE lines. Promote the "
                  "intermediate steps (e.g. retire before removing) one at a time", file=sys.stderr)
        if any(q.severity == "error" for q in result.deprecation):
            print("promote: refused by the target's deprecation policy (deprecation.mode: error)", file=sys.stderr)
        print(f"promote: {dst} was not changed", file=sys.stderr)
        return 2
    if not write:
        print(f"promote: dry run; run again with --write to edit {dst}", file=sys.stderr)
        return 0
    _write_in_place(Path(dst), result.text)
    print(f"promote: wrote {dst}", file=sys.stderr)
    return 0
