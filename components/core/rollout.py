"""The batches of a pool that lists its nodes: which nodes' handler tables change first, and which wait.

A handler-table change restarts the node's containerd (and, on containerd 2.x, its running runwasi containers),
so a pool's nodes take it in batches: first the `canary` (default 1 node), then at most `maxUnavailable` nodes
at a time (default 25 % of the pool's nodes, rounded up). The order is the pool's `nodes` list as written: the
first node listed is the canary.

The engine enforces it through dependencies, never through inputs (components/core/kit_graph.py):

- a batch's handler tables depend on every label patch of the batch before it, so they change only once the
  previous batch's tables are applied and verified and its labels set; a node that fails stops every later batch
  (no other node's containerd restarts), with or without `--continue-on-error`;
- the binaries of the nodes after the canary depend on the canary's binaries of the same name: a download with a
  wrong sha256, or a binary that does not run there, fails on the canary alone; once the canary has them, every
  other node downloads in parallel (downloads restart nothing);
- removals follow the same batches: a table that drops handlers is an update, batch after batch; a node or pool
  removed whole is deleted in reverse dependency order, so the last batch goes first and the canary last.

Dependencies are not inputs: a stack deployed before batches existed sees no change from them.

Pure data (no pulumi, no I/O), the one place batches are computed: the components, `diff`/`--markdown` and `plan`
use it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .config import NODE_LIST_ROLLOUT, Rollout


def max_unavailable_count(rollout: Rollout, nodes: int) -> int:
    """maxUnavailable as a number of nodes: a percentage of the pool's nodes is rounded up (at least 1)."""
    most = rollout.max_unavailable
    if isinstance(most, str):
        return max(1, math.ceil(nodes * int(most.rstrip("%")) / 100))
    return max(1, int(most))


@dataclass(frozen=True)
class Batches:
    """One pool's batches, in order: `batches[0]` is the canary when `canary` > 0."""

    pool: str
    rollout: Rollout
    batches: tuple[tuple[str, ...], ...]
    #: how many nodes go first, alone (0: no canary); at most the pool's size
    canary: int
    #: maxUnavailable as a number of nodes of this pool
    step: int

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(n for b in self.batches for n in b)

    def batch_of(self, node: str) -> int:
        for i, b in enumerate(self.batches):
            if node in b:
                return i
        raise KeyError(node)

    def only(self, nodes: Sequence[str] | set[str]) -> tuple[tuple[str, ...], ...]:
        """The batches restricted to `nodes` (e.g. those whose table changes), empty batches left out."""
        keep = set(nodes)
        return tuple(b for b in (tuple(n for n in batch if n in keep) for batch in self.batches) if b)

    def label(self, index: int) -> str:
        """`canary` for the canary batch, else `batch N` (counted after it)."""
        if self.canary and index == 0:
            return "canary"
        return f"batch {index if self.canary else index + 1}"

    def to_json(self) -> dict:
        return {"maxUnavailable": self.rollout.max_unavailable, "canary": self.canary, "step": self.step,
                "batches": [list(b) for b in self.batches]}

    def summary(self) -> str:
        """The rule in words, e.g. `canary 1 node, then at most 2 nodes at a time, maxUnavailable 25%`."""
        most = self.rollout.max_unavailable
        rule = f"at most {self.step} node{'s' if self.step != 1 else ''} at a time, maxUnavailable {most}"
        if self.canary:
            return f"canary {self.canary} node{'s' if self.canary != 1 else ''}, then {rule}"
        return rule


def pool_batches(pool: str, nodes: Sequence[str], rollout: Rollout | None = None) -> Batches:
    """The batches of a pool whose nodes are `nodes`, in the order the pool lists them."""
    rollout = rollout if rollout is not None else NODE_LIST_ROLLOUT
    step = max_unavailable_count(rollout, len(nodes))
    canary = min(rollout.canary if rollout.canary is not None else 0, len(nodes))
    out: list[tuple[str, ...]] = []
    if canary:
        out.append(tuple(nodes[:canary]))
    rest = list(nodes[canary:])
    out += [tuple(rest[i:i + step]) for i in range(0, len(rest), step)]
    return Batches(pool, rollout, tuple(out), canary, step)


def fleet_batches(plan) -> dict[str, Batches]:
    """pool -> its batches, for every pool of the plan that lists nodes (components.core.plan.FleetPlan)."""
    by_pool: dict[str, list[str]] = {}
    for n in plan.nodes:
        by_pool.setdefault(n.pool, []).append(n.name)
    rollouts: Mapping[str, Rollout] = getattr(plan, "rollouts", {}) or {}
    return {pool: pool_batches(pool, names, rollouts.get(pool)) for pool, names in by_pool.items()}
