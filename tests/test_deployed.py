"""The safe order against what is deployed: a handler a deployed label still promises is kept one more step."""

from __future__ import annotations

from components.core.deployed import (
    LABELS_OUTPUT,
    Deployed,
    from_outputs,
    from_stack_export,
    keep_promised,
)
from components.core.plan import FleetPlan
from tests.conftest import export, outputs_after, plan, pool, snapshot


def deployed_after(applied: FleetPlan) -> Deployed:
    return from_outputs(outputs_after(applied))


def test_a_one_step_removal_keeps_the_promised_handler_for_one_more_step():
    step0 = plan([pool("a", ["slight@1.2.3", "slight@1.2.4"], ["node-a"])])
    wanted = plan([pool("a", ["slight@1.2.4"], ["node-a"])])
    step1, problems = keep_promised(wanted, deployed_after(step0))
    node = step1.node("node-a")
    assert "slight-v1-2-3" in node.handlers and "containerd-shim-slight-v1-2-3-v1" in node.binaries
    assert "wasmtime-slight-v1-2-3" not in node.labels  # the label goes in this step
    assert [p.severity for p in problems] == ["warning"]
    assert "handler slight-v1-2-3 stays on node node-a" in problems[0].message
    assert "next `up` removes the handler" in problems[0].message
    assert step1.ok
    # the next up, with the label gone from the node, removes the handler
    step2, problems = keep_promised(wanted, deployed_after(step1))
    assert problems == [] and step2 == wanted


def test_retire_then_remove_keeps_nothing():
    step0 = plan([pool("a", ["slight@1.2.3", "slight@1.2.4"], ["node-a"])])
    step1 = plan([pool("a", ["slight@1.2.4"], ["node-a"], retiring=["slight@1.2.3"])])
    assert keep_promised(step1, deployed_after(step0)) == (step1, [])
    step2 = plan([pool("a", ["slight@1.2.4"], ["node-a"])])
    assert keep_promised(step2, deployed_after(step1)) == (step2, [])


def test_two_merged_changes_retire_and_remove_before_one_deploy_are_caught():
    deployed = deployed_after(plan([pool("a", ["slight@1.2.3", "slight@1.2.4"], ["node-a"])]))
    # the stack file went labelled -> retiring -> removed in git, but only the last one is deployed
    _, problems = keep_promised(plan([pool("a", ["slight@1.2.4"], ["node-a"])]), deployed)
    assert len(problems) == 1 and problems[0].severity == "warning"


def test_aliases_a_removed_release_served_are_kept_with_its_binary():
    step0 = plan([pool("a", ["slight@1.2.3", "slight@2.0.0"], ["node-a"])])
    wanted = plan([pool("a", ["slight@2.0.0"], ["node-a"])])
    step1, problems = keep_promised(wanted, deployed_after(step0))
    node = step1.node("node-a")
    assert {h: node.handlers[h] for h in ("slight-v1-2-3", "slight-v1-2", "slight-v1")} == {
        h: "io.containerd.slight-v1-2-3.v1" for h in ("slight-v1-2-3", "slight-v1-2", "slight-v1")}
    assert "containerd-shim-slight-v1-2-3-v1" in node.binaries
    assert len(problems) == 3


def test_a_label_whose_removal_failed_still_counts_as_live_in_a_stack_export():
    step0 = plan([pool("a", ["slight@1.2.3", "slight@1.2.4"], ["node-a"])])
    step1 = plan([pool("a", ["slight@1.2.4"], ["node-a"], retiring=["slight@1.2.3"])])
    # step1's table update succeeded but its label patch failed: the patch still holds the old labels
    # and the engine stopped before deleting the old RuntimeClass
    deployed = from_stack_export(export(snapshot(step1, labels={"node-a": step0.node("node-a").labels},
                                                 classes=step0)))
    step2, problems = keep_promised(plan([pool("a", ["slight@1.2.4"], ["node-a"])]), deployed)
    assert "slight-v1-2-3" in step2.node("node-a").handlers and problems


def test_a_handler_the_deployed_state_cannot_rebuild_is_an_error_with_the_fix():
    step0 = plan([pool("a", ["slight@1.2.3", "slight@1.2.4"], ["node-a"])])
    deployed = deployed_after(step0)
    deployed.binaries["node-a"].clear()
    step1, problems = keep_promised(plan([pool("a", ["slight@1.2.4"], ["node-a"])]), deployed)
    assert not step1.ok
    assert "retiring list for one `pulumi up`" in problems[0].message


def test_a_node_removed_whole_keeps_nothing():
    step0 = plan([pool("a", ["slight@1.2.3"], ["node-a"]), pool("b", ["slight@1.2.3"], ["node-b"])])
    wanted = plan([pool("a", ["slight@1.2.3"], ["node-a"])])
    assert keep_promised(wanted, deployed_after(step0)) == (wanted, [])


def test_a_stack_never_deployed_keeps_nothing():
    wanted = plan([pool("a", ["slight@1.2.4"], ["node-a"])])
    assert keep_promised(wanted, from_outputs({})) == (wanted, [])


def test_labels_recorded_by_an_older_program_come_from_its_plan():
    step0 = plan([pool("a", ["slight@1.2.3", "slight@1.2.4"], ["node-a"])])
    outputs = outputs_after(step0)
    del outputs[LABELS_OUTPUT]
    _, problems = keep_promised(plan([pool("a", ["slight@1.2.4"], ["node-a"])]), from_outputs(outputs))
    assert len(problems) == 1


def test_the_deployed_state_reads_from_a_stack_export():
    step0 = plan([pool("a", ["slight@1.2.3", "slight@1.2.4"], ["node-a"])])
    deployed = from_stack_export(export(snapshot(step0)))
    assert deployed.plan == FleetPlan.from_json(step0.to_json())
    assert deployed.labels["node-a"]["wasmtime-slight-v1-2-3"] == "true"
    assert deployed.promises[("wasmtime-slight-v1-2-3", "true")] == "slight-v1-2-3"


def test_a_plan_survives_its_json():
    p = plan([pool("a", ["slight@1.2.3"], ["node-a"], retiring=["slight@1.2.4"], restart="true")])
    again = FleetPlan.from_json(p.to_json())
    assert again.nodes == p.nodes and again.runtime_classes == p.runtime_classes


def test_every_step_diff_refuses_is_refused_against_the_deployed_state_too():
    from components.core.deployed import against_deployed

    step0 = plan([pool("a", ["slight@1.2.3"], ["node-a"])])
    moved, problems = against_deployed(plan([pool("a", ["slight@1.2.3"], ["node-a"], containerd="k3s")]),
                                       deployed_after(step0))
    assert not moved.ok
    assert [(p.severity, p.path) for p in problems] == [("error", "deployed.a")]
    assert "containerd (pool a): changes from containerd-1 to k3s" in problems[0].message
    assert "Remove the pool's nodes in one step" in problems[0].message


def test_a_one_step_removal_against_the_deployed_state_is_kept_not_refused():
    from components.core.deployed import against_deployed

    step0 = plan([pool("a", ["slight@1.2.3", "slight@1.2.4"], ["node-a"])])
    step1, problems = against_deployed(plan([pool("a", ["slight@1.2.4"], ["node-a"])]), deployed_after(step0))
    assert step1.ok and [p.severity for p in problems] == ["warning"]


def test_nothing_to_refuse_on_a_stack_without_a_recorded_plan():
    from components.core.deployed import against_deployed

    wanted = plan([pool("a", ["slight@1.2.4"], ["node-a"], containerd="k3s")])
    assert against_deployed(wanted, from_outputs({})) == (wanted, [])
