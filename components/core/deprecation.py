"""The version deprecation policy: a rule about a *step* from one stack config to the next.

The proposal asks an operator who introduces version N of a shim to keep at least N-1 beside it, so that
workloads can move at their own pace. That is a property of a transition, not of a state: a pool that runs
only 1.2.4 is fine once its workloads have left 1.2.3 (retire, apply, remove), and wrong when it got there
in one step from running only 1.2.3.

The rule, per pool present in both configs and per shim: when the pool gains a release newer than every
release of that shim it had (in `releases` or `retiring`), it must keep, in `releases` or `retiring`, the
`keep - 1` newest releases it had (with the default keep of 2: N-1, the newest before the step). Keeping
an old release in `retiring` counts: its binary and exact handler stay, only its labels go.

Severity comes from the target stack's `deprecation.mode`: off reports nothing, warn a warning, error an
error (which makes `diff` and `promote` refuse).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import semver

from . import naming
from .config import Deprecation, FleetConfig, Pool, Problem


@dataclass(frozen=True)
class StepFinding:
    """One pool and shim whose step breaks the rule."""

    pool: str
    shim: str
    gained: tuple[str, ...]  # release keys newer than every one the pool had
    dropped: tuple[str, ...]  # of the keep-1 newest it had, those it no longer installs
    kept: tuple[str, ...]  # of those it had, those it still installs
    had: int  # how many releases of the shim it had
    keep: int

    def message(self) -> str:
        return (f"pool {self.pool!r} adds {', '.join(self.gained)} and in the same step drops "
                f"{', '.join(self.dropped)} (keeps {', '.join(self.kept) or 'none'} of the {self.had} {self.shim} "
                f"release(s) it had); the deprecation policy (keep {self.keep}: N and the {self.keep - 1} newest "
                f"before it) keeps them while workloads move: leave {', '.join(self.dropped)} in releases (or "
                "retiring), apply, then retire it in a later step")


def _parse_key(key: str) -> tuple[str, semver.Version] | None:
    shim, _, text = key.partition("@")
    try:
        return shim, naming.parse_version(text)
    except (ValueError, TypeError):
        return None


def _by_shim(keys: Iterable[str]) -> dict[str, list[tuple[semver.Version, str]]]:
    out: dict[str, list[tuple[semver.Version, str]]] = {}
    for key in keys:
        parsed = _parse_key(key)
        if parsed is not None:
            out.setdefault(parsed[0], []).append((parsed[1], key))
    for rels in out.values():
        rels.sort(reverse=True)
    return out


def step_findings(before: Mapping[str, Iterable[str]], after: Mapping[str, Iterable[str]],
                  keep: int) -> list[StepFinding]:
    """The rule on release keys (`slight@1.2.3`) installed per pool (in `releases` or `retiring`) before and
    after a step; pools only in `after` have no workloads to move. Used by `deprecation_problems` (two stack
    configs) and the policy pack (the previous state from its config, the current from the resources)."""
    out = []
    for pool, now_keys in after.items():
        if pool not in before:
            continue  # a new pool has no workloads to move
        now = set(now_keys)
        had_by_shim = _by_shim(before[pool])
        after_by_shim = _by_shim(now)
        for shim in sorted(after_by_shim):
            had = had_by_shim.get(shim, [])
            if not had:
                continue  # a shim new to the pool: nothing to keep
            gained = [k for v, k in sorted(after_by_shim[shim]) if v > had[0][0]]
            if not gained:
                continue
            dropped = [k for _, k in had[: max(keep - 1, 0)] if k not in now]
            if not dropped:
                continue
            out.append(StepFinding(pool, shim, tuple(gained), tuple(dropped),
                                   tuple(k for _, k in had if k in now), len(had), keep))
    return out


def _installed(pool: Pool) -> tuple[str, ...]:
    return (*pool.releases, *pool.retiring)


def deprecation_problems(old_cfg: FleetConfig, new_cfg: FleetConfig,
                         policy: Deprecation | None = None) -> list[Problem]:
    """Problems of the step old_cfg -> new_cfg under `policy` (default: new_cfg.deprecation).

    Paths name the pool's releases in the new config, e.g. `nodePools[0].releases`.
    """
    policy = policy or new_cfg.deprecation
    if policy.mode == "off":
        return []
    severity = "error" if policy.mode == "error" else "warning"
    paths = {p.name: p.path for p in new_cfg.pools}
    found = step_findings({p.name: _installed(p) for p in old_cfg.pools},
                          {p.name: _installed(p) for p in new_cfg.pools}, policy.keep)
    return [Problem(severity, f"{paths[f.pool]}.releases", f.message()) for f in found]
