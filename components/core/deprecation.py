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

from collections.abc import Iterable

from .config import Deprecation, FleetConfig, Pool, Problem, Release


def _by_shim(cfg: FleetConfig, keys: Iterable[str]) -> dict[str, list[Release]]:
    out: dict[str, list[Release]] = {}
    for key in keys:
        rel = cfg.releases.get(key)
        if rel is not None:
            out.setdefault(rel.shim, []).append(rel)
    for rels in out.values():
        rels.sort(key=lambda r: r.version, reverse=True)
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
    old_pools = {p.name: p for p in old_cfg.pools}
    problems: list[Problem] = []
    for pool in new_cfg.pools:
        old_pool = old_pools.get(pool.name)
        if old_pool is None:
            continue  # a new pool has no workloads to move
        before = _by_shim(old_cfg, _installed(old_pool))
        after = _by_shim(new_cfg, _installed(pool))
        after_keys = {r.key for rels in after.values() for r in rels}
        for shim in sorted(after):
            had = before.get(shim, [])
            if not had:
                continue  # a shim new to the pool: nothing to keep
            newest_before = had[0].version
            gained = [r for r in after[shim] if r.version > newest_before]
            if not gained:
                continue
            must_keep = had[: policy.keep - 1]
            dropped = [r for r in must_keep if r.key not in after_keys]
            if not dropped:
                continue
            kept = [r.key for r in had if r.key in after_keys]
            problems.append(Problem(
                severity, f"{pool.path}.releases",
                f"pool {pool.name!r} adds {', '.join(r.key for r in gained)} and in the same step drops "
                f"{', '.join(r.key for r in dropped)} (keeps {', '.join(kept) or 'none'} of the "
                f"{len(had)} {shim} release(s) it had); the deprecation policy (keep {policy.keep}: N and the "
                f"{policy.keep - 1} newest before it) keeps them while workloads move: leave "
                f"{', '.join(r.key for r in dropped)} in releases (or retiring), apply, then retire it in a "
                "later step"))
    return problems
