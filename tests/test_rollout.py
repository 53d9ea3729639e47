"""Rollouts of pools that list nodes (components/core/rollout.py): the batches, their config, the dependencies the
components give the engine, and what `plan` and `diff` say about them."""

from __future__ import annotations

import json

import pulumi
import pytest

from components.core import kit_graph
from components.core.config import NODE_LIST_ROLLOUT, Rollout, check_config
from components.core.diff import diff_plans
from components.core.kit_graph import node_orders
from components.core.rollout import fleet_batches, max_unavailable_count, pool_batches
from tests.conftest import agent_pool, agent_stack, errors, planned, pool, run_fleet, stack

NODES = [f"node-{i}" for i in range(1, 17)]


# ------------------------------------------------------------------------------------------------ batches
@pytest.mark.parametrize(("count", "rollout", "expected"), [
    # the default: one canary node, then at most 25 % of the pool's nodes (rounded up) at a time
    (16, None, [1, 4, 4, 4, 3]),
    (6, None, [1, 2, 2, 1]),
    (3, None, [1, 1, 1]),
    (1, None, [1]),
    (16, Rollout(max_unavailable=2, canary=1), [1, 2, 2, 2, 2, 2, 2, 2, 1]),
    (16, Rollout(max_unavailable="50%", canary=2), [2, 8, 6]),
    (5, Rollout(max_unavailable="100%", canary=0), [5]),  # today's behaviour, all at once
    (4, Rollout(max_unavailable=1, canary=0), [1, 1, 1, 1]),
    (2, Rollout(max_unavailable=3, canary=5), [2]),  # a canary larger than the pool is the pool
])
def test_a_pool_rolls_in_a_canary_then_batches_of_at_most_max_unavailable(count, rollout, expected):
    names = NODES[:count]
    b = pool_batches("p", names, rollout)
    assert [len(x) for x in b.batches] == expected
    assert b.nodes == tuple(names)  # every node once, in the order the pool lists them
    assert max(len(x) for x in b.batches[1 if b.canary else 0:] or [()]) <= b.step


def test_a_percentage_is_of_the_pools_nodes_rounded_up():
    assert max_unavailable_count(NODE_LIST_ROLLOUT, 16) == 4
    assert max_unavailable_count(NODE_LIST_ROLLOUT, 6) == 2
    assert max_unavailable_count(NODE_LIST_ROLLOUT, 1) == 1
    assert max_unavailable_count(Rollout(max_unavailable="1%"), 10) == 1
    assert max_unavailable_count(Rollout(max_unavailable=3), 10) == 3


def test_the_first_node_listed_is_the_canary_and_batches_are_labelled_for_people():
    b = pool_batches("p", ["node-c", "node-a", "node-b"], None)
    assert b.batches == (("node-c",), ("node-a",), ("node-b",))
    assert [b.label(i) for i in range(3)] == ["canary", "batch 1", "batch 2"]
    assert b.summary() == "canary 1 node, then at most 1 node at a time, maxUnavailable 25%"
    assert b.only({"node-b", "node-c"}) == (("node-c",), ("node-b",))


# ------------------------------------------------------------------------------------------------- config
def test_a_pool_that_lists_nodes_gets_the_safe_defaults_and_the_agent_pools_names():
    cfg, problems = check_config(stack([pool("p", ["slight@1.2.3", "slight@1.2.4"], NODES[:6])]))
    assert problems == []
    assert cfg.pools[0].rollout == NODE_LIST_ROLLOUT == Rollout(max_unavailable="25%", canary=1)
    cfg, problems = check_config(stack([pool("p", ["slight@1.2.3", "slight@1.2.4"], NODES[:6],
                                             rollout={"maxUnavailable": 2, "canary": 0})]))
    assert problems == []
    assert (cfg.pools[0].rollout.max_unavailable, cfg.pools[0].rollout.canary) == (2, 0)


@pytest.mark.parametrize(("rollout", "path", "words"), [
    ({"maxUnavailable": 0}, "nodePools[0].rollout.maxUnavailable", ["0", ">= 1", "percentage", "default 25%"]),
    ({"maxUnavailable": "101%"}, "nodePools[0].rollout.maxUnavailable", ["'101%'", "\"100%\""]),
    ({"canary": -1}, "nodePools[0].rollout.canary", ["-1", "from 0 to 1000", "0: no canary"]),
    ({"canary": True}, "nodePools[0].rollout.canary", ["True", "whole number"]),
    ({"minReadySeconds": 30}, "nodePools[0].rollout.minReadySeconds",
     ["30", "agent to stay Ready", "lists its nodes", "transport 'ssh'", "remove minReadySeconds"]),
    ({"timeoutSeconds": 900}, "nodePools[0].rollout.timeoutSeconds",
     ["900", "agent DaemonSet", "remove timeoutSeconds"]),
    ({"canry": 1}, "nodePools[0].rollout.canry", ["did you mean canary"]),
    ("fast", "nodePools[0].rollout", ["'fast'", "mapping", "maxUnavailable, canary"]),
])
def test_bad_rollout_settings_of_a_pool_that_lists_nodes_are_errors_that_say_the_fix(rollout, path, words):
    found = errors(stack([pool("p", ["slight@1.2.3"], ["node-a"], rollout=rollout)]))
    assert path in found, found
    for w in words:
        assert w in found[path], (w, found[path])


def test_an_agent_pool_keeps_a_canary_its_daemonset_can_honour_and_refuses_one_it_cannot():

    ok = agent_stack([agent_pool("p", ["slight@1.2.3"], rollout={"maxUnavailable": 1, "canary": 1})])
    cfg, problems = check_config(ok)
    assert [p for p in problems if p.severity == "error"] == []
    assert cfg.pools[0].rollout.canary == 1
    bad = agent_stack([agent_pool("p", ["slight@1.2.3"], rollout={"maxUnavailable": "25%", "canary": 1})])
    found = errors(bad)
    msg = found["nodePools[0].rollout.canary"]
    for w in ("agent pool", "maxUnavailable ('25%')", "set maxUnavailable to 1 or less", "remove canary"):
        assert w in msg, msg


def test_an_agent_pool_without_canary_records_what_it_always_recorded():

    plan = planned(agent_stack([agent_pool("p", ["slight@1.2.3"])]))
    assert plan.agent_pools[0].rollout.to_json() == {"maxUnavailable": 1, "minReadySeconds": 0,
                                                    "timeoutSeconds": 600}


def test_the_recorded_plan_of_a_pool_that_lists_nodes_does_not_carry_its_rollout():
    plan = planned(stack([pool("p", ["slight@1.2.3"], NODES[:6], rollout={"maxUnavailable": 3})]))
    assert "rollouts" not in plan.to_json()
    assert plan.to_json(batches=True)["rollouts"]["p"] == {
        "maxUnavailable": 3, "canary": 1, "step": 3,
        "batches": [["node-1"], ["node-2", "node-3", "node-4"], ["node-5", "node-6"]]}


# ----------------------------------------------------------------------------------- dependencies (pure)
def graph(raw: dict, verify: bool = False) -> dict[str, kit_graph.NodeResource]:
    plan = planned(raw)
    out = {}
    for p, b in fleet_batches(plan).items():
        nodes = [n for n in plan.nodes if n.pool == p]
        orders = node_orders(f"fleet-{p}", nodes, b)
        for n in nodes:
            for r in kit_graph.node_resources(f"fleet-{p}", n, "/srv", verify=verify, order=orders[n.name]):
                out[r.name] = r
    return out


@pytest.mark.parametrize("verify", [False, True])
def test_a_batchs_handler_tables_wait_for_every_label_patch_of_the_batch_before(verify):
    g = graph(stack([pool("p", ["slight@1.2.3"], NODES[:6])]), verify=verify)
    # canary node-1; then node-2, node-3; then node-4, node-5; then node-6
    deps = {n: set(g[f"fleet-p-{n}-handlers"].depends_on) for n in NODES[:6]}
    assert deps["node-1"] == {"fleet-p-node-1-bin-containerd-shim-slight-v1-2-3-v1"}
    for n in ("node-2", "node-3"):
        assert "fleet-p-node-1-labels" in deps[n]
    for n in ("node-4", "node-5"):
        assert {"fleet-p-node-2-labels", "fleet-p-node-3-labels"} <= deps[n]
        assert "fleet-p-node-1-labels" not in deps[n]  # through batch 1: each batch waits for the one before
    assert {"fleet-p-node-4-labels", "fleet-p-node-5-labels"} <= deps["node-6"]
    # the labels still follow the node's own table (through verify when there is one)
    assert g["fleet-p-node-2-labels"].depends_on == (("fleet-p-node-2-verify",) if verify else
                                                     ("fleet-p-node-2-handlers",))


def test_binaries_after_the_canary_wait_for_the_canarys_binary_of_the_same_name():
    g = graph(stack([pool("p", ["slight@1.2.3", "slight@1.2.4"], NODES[:4])]))
    b3, b4 = "containerd-shim-slight-v1-2-3-v1", "containerd-shim-slight-v1-2-4-v1"
    assert g[f"fleet-p-node-1-bin-{b3}"].depends_on == ("fleet-p-node-1-kit",)
    assert g[f"fleet-p-node-2-bin-{b3}"].depends_on == ("fleet-p-node-2-kit", f"fleet-p-node-1-bin-{b3}")
    assert g[f"fleet-p-node-4-bin-{b4}"].depends_on == ("fleet-p-node-4-kit", f"fleet-p-node-1-bin-{b4}")
    # but never on another node's table or labels: downloads run in parallel once the canary has verified them
    assert not any("handlers" in d or "labels" in d for d in g[f"fleet-p-node-4-bin-{b4}"].depends_on)


def test_all_at_once_without_a_canary_is_the_graph_of_a_single_node():
    g = graph(stack([pool("p", ["slight@1.2.3"], NODES[:3], rollout={"maxUnavailable": "100%", "canary": 0})]))
    for n in NODES[:3]:
        assert g[f"fleet-p-{n}-handlers"].depends_on == (f"fleet-p-{n}-bin-containerd-shim-slight-v1-2-3-v1",)


def test_pools_roll_independently():
    g = graph(stack([pool("a", ["slight@1.2.3"], ["a-1", "a-2"]), pool("b", ["slight@1.2.4"], ["b-1", "b-2"])]))
    assert "fleet-a-a-1-labels" in g["fleet-a-a-2-handlers"].depends_on
    assert not any(d.startswith("fleet-a-") for d in g["fleet-b-b-2-handlers"].depends_on)


def test_the_texts_a_node_sends_do_not_depend_on_its_batch():
    """Dependencies are not inputs: a stack deployed before batches existed sees no change from them."""
    raw = stack([pool("p", ["slight@1.2.3"], NODES[:6])])
    batched = graph(raw)
    plan = planned(raw)
    for n in plan.nodes:
        for r in kit_graph.node_resources("fleet-p", n, "/srv"):
            got = batched[r.name]
            assert (got.create, got.update, got.delete, got.kind, got.copy_source) == (
                r.create, r.update, r.delete, r.kind, r.copy_source)


# --------------------------------------------------------------------------------------- the components
def test_the_node_pool_registers_its_batches_as_dependencies(mocks, monkeypatch):
    """Mocks do not see resource options: record the depends_on the components pass to the engine."""
    seen: dict[str, list[str]] = {}
    orig = pulumi.CustomResource.__init__

    def capture(self, t, name, props=None, opts=None, *a, **k):
        deps = opts.depends_on if opts is not None else None
        seen[name] = [d._name for d in (deps if isinstance(deps, list) else [])]  # noqa: SLF001
        orig(self, t, name, props, opts, *a, **k)

    monkeypatch.setattr(pulumi.CustomResource, "__init__", capture)
    fleet, _ = run_fleet(stack([pool("p", ["slight@1.2.3"], NODES[:6])]))
    pool_ = fleet.pools["p"]
    assert pool_.batches.batches == (("node-1",), ("node-2", "node-3"), ("node-4", "node-5"), ("node-6",))
    assert "fleet-p-node-1-labels" in seen["fleet-p-node-2-handlers"]
    assert {"fleet-p-node-2-labels", "fleet-p-node-3-labels"} <= set(seen["fleet-p-node-5-handlers"])
    assert "fleet-p-node-1-bin-containerd-shim-slight-v1-2-3-v1" in seen[
        "fleet-p-node-6-bin-containerd-shim-slight-v1-2-3-v1"]


def test_a_node_pool_of_your_own_program_checks_its_rollout():
    from components.nodepool import NodePool as NP
    from components.nodepool import NodePoolArgs, NodePoolArgsError, PoolNode, ShimRelease, SshCredentials

    with pytest.raises(NodePoolArgsError) as err:
        NP("p", NodePoolArgs(catalog=[ShimRelease("slight", "1.2.3", "https://example.org/s.tgz", "a" * 64)],
                             releases=["slight@1.2.3"],
                             nodes=[PoolNode("node-a", "10.0.0.4", host_key="ssh-ed25519 AAAAC3Nz")],
                             credentials=SshCredentials(private_key="k"),
                             rollout=Rollout(max_unavailable=0, canary=1)))
    assert "rollout.max_unavailable" in str(err.value)


# ---------------------------------------------------------------------------------------- plan and diff
def test_plan_prints_each_pools_batches():
    from components.core.cli import format_plan

    text = format_plan(planned(stack([pool("p", ["slight@1.2.3"], NODES[:6])])))
    assert "\nRollouts (1): a batch's handler tables change (containerd restarts) only once" in text
    assert "  pool p: canary 1 node, then at most 2 nodes at a time, maxUnavailable 25%\n" in text
    assert "    canary: node-1" in text
    assert "    batch 1: node-2, node-3" in text
    assert "    batch 3: node-6" in text


def test_diff_says_which_nodes_go_first_for_the_nodes_whose_table_changes():
    old = stack([pool("p", ["slight@1.2.3"], NODES[:6])])
    new = stack([pool("p", ["slight@1.2.3", "slight@1.2.4"], NODES[:6])])
    d = diff_plans(planned(old), planned(new))
    text = d.words()
    assert ("Rollout of pool p (canary 1 node, then at most 2 nodes at a time, maxUnavailable 25%): "
            "canary node-1; batch 1 node-2, node-3; batch 2 node-4, node-5; batch 3 node-6") in text
    md = d.markdown("t")
    assert "**Rollout** of pool `p`" in md and "canary node-1" in md
    assert d.to_json()["rollouts"]["p"][0] == ["node-1"]


def test_diff_shows_no_batches_when_no_table_changes():
    raw = stack([pool("p", ["slight@1.2.3"], NODES[:6])])
    retired = stack([pool("p", [], NODES[:6], retiring=["slight@1.2.3"])])
    d = diff_plans(planned(raw), planned(retired))  # labels only: no table changes, nothing restarts
    assert "Rollout of pool" not in d.words()
    assert diff_plans(planned(raw), planned(raw)).to_json()["rollouts"] == {}


def test_plan_json_carries_the_batches():
    import contextlib
    import io
    import tempfile

    import yaml

    from components.core.cli import main

    raw = stack([pool("p", ["slight@1.2.3"], NODES[:5])])
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump({"config": {f"wasm-shim-fleet:{k}": v for k, v in raw.items()}}, f)
        f.flush()
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["plan", f.name, "--json"]) == 0
    doc = json.loads(out.getvalue())
    assert doc["rollouts"]["p"]["batches"] == [["node-1"], ["node-2", "node-3"], ["node-4", "node-5"]]


def test_node_script_says_a_nodes_batch_and_what_its_table_waits_for(tmp_path):
    import io

    import yaml

    from components.core.nodescript_cli import node_script_main

    raw = stack([pool("p", ["slight@1.2.3"], NODES[:6])])
    f = tmp_path / "Pulumi.s.yaml"
    f.write_text(yaml.safe_dump({"config": {f"wasm-shim-fleet:{k}": v for k, v in raw.items()}}))
    out, err = io.StringIO(), io.StringIO()
    assert node_script_main(str(f), "node-4", out=out, err=err) == 0, err.getvalue()
    text = out.getvalue()
    assert "this node is in its batch 2" in text
    assert ("##### fleet-p-node-4-handlers (command:remote:Command, after "
            "fleet-p-node-4-bin-containerd-shim-slight-v1-2-3-v1, fleet-p-node-2-labels, "
            "fleet-p-node-3-labels)") in text


def test_the_rollout_of_a_callers_own_program_is_checked_by_the_same_rules_under_its_python_names():
    from components.core.config import rollout_problems

    found = {p.path: p.message for p in rollout_problems("rollout", Rollout(min_ready_seconds=30, timeout_seconds=60,
                                                                            max_unavailable=0), "p")}
    assert set(found) == {"rollout.max_unavailable", "rollout.min_ready_seconds", "rollout.timeout_seconds"}, found
    assert "applies to pools of transport agent" in found["rollout.min_ready_seconds"]
    assert rollout_problems("rollout", Rollout(max_unavailable="50%", canary=2), "p") == []
    (bad,) = rollout_problems("rollout", {"maxUnavailable": 1}, "p")
    assert bad.path == "rollout" and "give a Rollout(" in bad.message
