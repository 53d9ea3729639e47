"""Rollouts of a pool that lists nodes, under the real Pulumi engine: six kwok nodes, each an sshd host with its own
containerd, in one SSH pool (default rollout: the first node is the canary, then at most ceil(25 % of 6) = 2 nodes'
containerd at a time).

In order, on one stack:
1. a stack deployed by the program as it was before rollouts (its commit, run from a `git archive` of it) sees no
   change from the new ordering: the new program's `up` updates only each node's kit (the kit itself changed) and
   restarts nothing;
2. a bump whose new release has a wrong sha256 fails on the canary alone: the other five nodes download nothing,
   their containerd never restarts and their configs keep their bytes;
3. the fixed bump restarts each node's containerd exactly once, the canary's before any other, never more than
   maxUnavailable at the same moment (restart start and end times recorded by the restart stand-in), whatever
   `--parallel` is;
4. `destroy` takes the tables back in the same batches (never more than maxUnavailable at once).

Run: flock /var/tmp/wsf-heavy.lock venv/bin/python -m pytest -m e2e tests/e2e/test_rollout.py
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.core.plan import plan_from_config
from components.core.rollout import fleet_batches

from .conftest import REPO, Fleet, open_fleet, run_program

pytestmark = pytest.mark.e2e

#: The program as it was before rollouts existed (the commit this change was made from).
BEFORE_ROLLOUTS = "bf1be22abd49ccfe9a6ce6c1c7bc731856e34092"
NODES = tuple(f"node-{i}" for i in range(1, 7))
X, X1 = "slight@1.2.3", "slight@1.2.4"


def pool(f: Fleet, releases: list[str]) -> dict:
    """The pool of the six nodes; each restart keeps containerd stopped for 1 s, as long as a real node's, so that
    restarts that are allowed to overlap (a batch's) do, and those that are not would be seen to."""
    return dict(f.pool("p", releases, list(NODES)), restart=f"RESTART_HOLD=1 {f.restart}")


@pytest.fixture(scope="module")
def six(toolchain_bin: Path) -> Iterator[Fleet]:
    with open_fleet(toolchain_bin, NODES, stack_name="rollout", prefix="wsf-ro-") as world:
        yield world


@pytest.fixture(scope="module")
def old_program(tmp_path_factory) -> Path:
    """__main__.py and components/ of BEFORE_ROLLOUTS, from this repository's history."""
    out = tmp_path_factory.mktemp("before-rollouts")
    proc = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", BEFORE_ROLLOUTS, "__main__.py",
                           "components", "Pulumi.yaml"], capture_output=True)
    if proc.returncode != 0:
        pytest.fail(f"cannot read the program before rollouts (commit {BEFORE_ROLLOUTS}) from git: "
                    f"{proc.stderr.decode().strip()}; run the e2e tier in a clone with the project's history",
                    pytrace=False)
    with tempfile.TemporaryFile() as f:
        f.write(proc.stdout)
        f.seek(0)
        with tarfile.open(fileobj=f) as tar:
            tar.extractall(out, filter="data")
    return out


def _ours(name: str) -> bool:
    return name.split(".", 1)[0] in ("components", "wasm_shim_fleet")  # the package and its import alias


def program_at(folder: Path):
    """An inline program that runs `folder`'s __main__.py with `folder`'s own components package (this process's
    is put back afterwards, with the import hooks as they were)."""

    def program() -> None:
        saved = {k: v for k, v in sys.modules.items() if _ours(k)}
        hooks = list(sys.meta_path)
        for k in saved:
            del sys.modules[k]
        sys.path.insert(0, str(folder))
        try:
            run_program(folder / "__main__.py")
        finally:
            sys.path.remove(str(folder))
            for k in [k for k in sys.modules if _ours(k)]:
                del sys.modules[k]
            sys.modules.update(saved)
            sys.meta_path[:] = hooks

    return program


def new_program() -> None:
    run_program(REPO / "__main__.py")


def steps(events: list) -> dict[str, str]:
    """resource name -> op of every step that is not `same`, from the engine's events."""
    out = {}
    for e in events:
        pre = getattr(e, "resource_pre_event", None)
        if pre is None:
            continue
        op = str(pre.metadata.op.value if hasattr(pre.metadata.op, "value") else pre.metadata.op)
        if op != "same":
            out[pre.metadata.urn.rsplit("::", 1)[-1]] = op
    return out


def overlap(intervals: dict[str, list[tuple[float, float]]]) -> int:
    """The largest number of nodes whose containerd was away at the same moment."""
    points = sorted([(a, 1) for spans in intervals.values() for a, _ in spans]
                    + [(b, -1) for spans in intervals.values() for _, b in spans], key=lambda p: (p[0], p[1]))
    most = cur = 0
    for _, d in points:
        cur += d
        most = max(most, cur)
    return most


def restart_spans(f: Fleet, since: dict[str, int]) -> dict[str, list[tuple[float, float]]]:
    return {n: node.restart_times()[since[n]:] for n, node in f.nodes.items()}


def test_a_stack_deployed_before_rollouts_sees_no_change_from_the_new_order(six: Fleet, old_program: Path):
    raw = six.config([pool(six, [X])])
    six.set_config(raw)
    result = six.stack.up(color="never", program=program_at(old_program))
    assert result.summary.result == "succeeded"
    restarts = six.restarts()
    assert set(restarts.values()) == {2}  # seeded once, then the table

    events: list = []
    preview = six.stack.preview(color="never", program=new_program, on_event=events.append)
    changed = steps(events)
    # the kit itself changed (it asks containerd what is in use now): one update per node, nothing else
    assert changed == {f"fleet-p-{n}-kit": "update" for n in NODES}, changed
    assert preview.change_summary.get("update") == len(NODES)
    events = []
    six.stack.up(color="never", program=new_program, on_event=events.append)
    assert steps(events) == {f"fleet-p-{n}-kit": "update" for n in NODES}
    assert six.restarts() == restarts
    # and a second up of the new program: nothing at all
    events = []
    six.stack.up(color="never", program=new_program, on_event=events.append)
    assert steps(events) == {}
    assert six.restarts() == restarts


def test_a_bump_with_a_wrong_sha256_fails_on_the_canary_alone(six: Fleet):
    import pulumi.automation as auto

    labels = {n: six.node_labels(n) for n in NODES}
    configs = {n: six.nodes[n].config.read_bytes() for n in NODES}
    restarts = six.restarts()
    six.set_config(six.config([pool(six, [X, X1])], sha_override={X1: "0" * 64}))
    # even with --continue-on-error: every other node waits for the canary
    with pytest.raises(auto.CommandError) as err:
        six.stack.up(color="never", program=new_program, continue_on_error=True, parallel=32)
    text = str(err.value)
    assert text.count("sha256 mismatch") >= 1
    failed = {line.split("fleet-p-", 1)[1].split("-bin-", 1)[0] for line in text.splitlines()
              if "command:remote:Command (fleet-p-" in line and "-bin-" in line}
    assert failed == {"node-1"}, text
    for n in NODES[1:]:
        assert six.restarts()[n] == restarts[n], f"{n}: containerd restarted"
        assert six.nodes[n].config.read_bytes() == configs[n], f"{n}: config changed"
        assert six.node_labels(n) == labels[n]
        assert not (six.nodes[n].root / "usr/local/bin/containerd-shim-slight-v1-2-4-v1").exists()
    assert six.restarts()["node-1"] == restarts["node-1"]
    assert six.nodes["node-1"].config.read_bytes() == configs["node-1"]


def test_the_fixed_bump_restarts_each_node_once_never_more_than_max_unavailable_at_once(six: Fleet):
    raw = six.config([pool(six, [X, X1])])
    _, plan = plan_from_config(raw)
    batches = fleet_batches(plan)["p"]
    assert batches.step == 2 and batches.batches[0] == ("node-1",)
    before = {n: len(six.nodes[n].restart_times()) for n in NODES}
    restarts = six.restarts()
    six.set_config(raw)
    result = six.stack.up(color="never", program=new_program, parallel=32)
    assert result.summary.result == "succeeded"
    assert {n: six.restarts()[n] - restarts[n] for n in NODES} == dict.fromkeys(NODES, 1)
    spans = restart_spans(six, before)
    assert all(len(s) == 1 for s in spans.values()), spans
    assert overlap(spans) <= batches.step, spans
    # batch by batch: every restart of a batch ends before any of the next batch starts
    for earlier, later in zip(batches.batches, batches.batches[1:], strict=False):
        assert max(spans[n][0][1] for n in earlier) < min(spans[n][0][0] for n in later), spans
    for n in NODES:
        assert six.node_labels(n) == plan.node(n).labels


def test_destroy_takes_the_tables_back_in_the_same_batches(six: Fleet):
    before = {n: len(six.nodes[n].restart_times()) for n in NODES}
    six.stack.destroy(color="never", program=new_program, parallel=32)
    spans = restart_spans(six, before)
    assert all(len(s) == 1 for s in spans.values()), spans
    assert overlap(spans) <= 2, spans
    for n in NODES:
        assert six.nodes[n].config.read_bytes() == six.originals[n]
        assert six.node_labels(n) == {}
