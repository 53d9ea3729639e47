"""Mock tests of the components: which resources a plan becomes, with which inputs.

Mocks see neither resource options nor update-versus-replace; the order on a node is tested purely on
components.core.kit_graph (the same data the components are built from) and proven by the real-engine tier.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pulumi
import pytest

from components.core import nodescript
from components.core.kit_graph import kit_stage_dir, node_resources
from components.core.plan import plan_from_config
from tests.conftest import (
    COMMAND_LOCAL,
    COMMAND_REMOTE,
    COPY_TO_REMOTE,
    KEY,
    NODE_PATCH,
    RUNTIME_CLASS,
    pool,
    stack,
    unwrap_secret,
)
from tests.conftest import run_fleet as run

pytestmark = pytest.mark.usefixtures("kit_cache")


def test_each_node_gets_a_command_per_binary_a_handler_table_and_a_label_patch(mocks, test_plan_stack):
    run(test_plan_stack)
    commands = mocks.of_type(COMMAND_REMOTE)
    assert sorted(commands) == [
        "fleet-a-node-a-bin-containerd-shim-slight-v1-2-3-v1",
        "fleet-a-node-a-handlers",
        "fleet-b-node-b-bin-containerd-shim-slight-v1-2-4-v1",
        "fleet-b-node-b-handlers",
        "fleet-c-node-c-bin-containerd-shim-slight-v1-2-3-v1",
        "fleet-c-node-c-bin-containerd-shim-slight-v1-2-4-v1",
        "fleet-c-node-c-handlers",
    ]
    binary = commands["fleet-a-node-a-bin-containerd-shim-slight-v1-2-3-v1"].inputs
    assert "a" * 64 in binary["create"]  # the checksum travels with the install
    connection = unwrap_secret(binary["connection"])
    assert connection["host"] == "10.0.0.4"
    assert connection["user"] == "root"
    table = commands["fleet-c-node-c-handlers"].inputs
    for handler in ("slight-v1-2-3", "slight-v1-2-4", "slight-v1-2", "slight-v1", "slight"):
        assert handler in table["create"]
    assert table.get("update") is None  # updated in place by running create again: one restart, never a replace
    assert table["delete"]
    # the kit: delivered by reference, a copy of the staged folder kit/<sha256>/wsf.sh + kit/selected
    kits = mocks.of_type(COPY_TO_REMOTE)
    assert sorted(kits) == ["fleet-a-node-a-kit", "fleet-b-node-b-kit", "fleet-c-node-c-kit"]
    kit = kits["fleet-a-node-a-kit"].inputs
    assert kit["remotePath"] == "/var/lib/wasm-shim-fleet"
    sha = nodescript.kit_sha256()
    assert kit["source"] == ("FileArchive", f"{kit_stage_dir(sha)}/kit")
    assert (Path(kit_stage_dir(sha)) / "kit" / sha / "wsf.sh").read_text() == nodescript.kit_text()
    assert (Path(kit_stage_dir(sha)) / "kit" / "selected").read_text() == sha + "\n"
    assert unwrap_secret(kit["connection"])["host"] == "10.0.0.4"


def test_label_patches_carry_the_planned_labels_with_a_field_manager_per_node(mocks, test_plan_stack):
    _, plan = run(test_plan_stack)
    patches = mocks.of_type(NODE_PATCH)
    assert sorted(patches) == ["fleet-a-node-a-labels", "fleet-b-node-b-labels", "fleet-c-node-c-labels"]
    meta = patches["fleet-c-node-c-labels"].inputs["metadata"]
    assert meta["name"] == "node-c"
    assert meta["labels"] == plan.node("node-c").labels
    assert meta["annotations"]["pulumi.com/patchFieldManager"] == "wasm-shim-fleet-node-c"


def test_runtime_classes_have_fixed_names_handlers_and_selectors(mocks, test_plan_stack):
    _, plan = run(test_plan_stack)
    classes = {r.inputs["metadata"]["name"]: r.inputs for r in mocks.of_type(RUNTIME_CLASS).values()}
    assert set(classes) == {rc.name for rc in plan.runtime_classes}
    assert classes["wasmtime-slight-v1-2"]["handler"] == "slight-v1-2"
    assert classes["wasmtime-slight-v1-2"]["scheduling"]["nodeSelector"] == {"wasmtime-slight-v1-2": "true"}
    assert classes["wasmtime-slight"]["scheduling"]["nodeSelector"] == {"wasmtime-slight-enabled": "true"}


def test_the_private_key_never_appears_in_a_script_and_the_connection_is_secret(mocks, test_plan_stack):
    run(test_plan_stack)
    for res in mocks.of_type(COMMAND_REMOTE).values():
        for key in ("create", "update", "delete"):
            assert "secret-key-material" not in (res.inputs.get(key) or "")
        assert "secret-key-material" in unwrap_secret(res.inputs["connection"])["privateKey"]


def test_local_transport_uses_local_commands_under_the_project(mocks):
    raw = stack([pool("dev", ["slight@1.2.3"], ["dev-node"], transport="local")], versions=("1.2.3",))
    run(raw)
    assert mocks.of_type(COMMAND_REMOTE) == {}
    commands = mocks.of_type(COMMAND_LOCAL)
    table = commands["fleet-dev-dev-node-handlers"].inputs
    assert ("set -eu; WSF_NODE_ROOT=${WSF_NODE_ROOT:-'/srv/project/nodes/dev-node'} WSF_RESTART=${WSF_RESTART:-':'}\n"
            in table["create"])
    assert "environment" not in table
    assert table["interpreter"] == ["/bin/sh", "-c"]
    kit = commands["fleet-dev-dev-node-kit"].inputs["create"]
    sha = nodescript.kit_sha256()
    assert f"s={sha};" in kit and f"cp '{os.path.dirname(kit_stage_dir(sha))}'\"/$s/kit/$s/wsf.sh\" \"$t\"" in kit
    assert (Path(kit_stage_dir(sha)) / "kit" / sha / "wsf.sh").read_text() == nodescript.kit_text()
    assert "cp " not in table["create"]  # no seedConfig: nothing is copied


def test_a_local_pool_can_name_its_own_restart_command(mocks):
    raw = stack([pool("lab", ["slight@1.2.3"], ["lab-node"], transport="local", restart="touch restarted")],
                versions=("1.2.3",))
    run(raw)
    create = mocks.of_type(COMMAND_LOCAL)["fleet-lab-lab-node-handlers"].inputs["create"]
    assert "WSF_RESTART=${WSF_RESTART:-'touch restarted'}" in create


def test_local_node_with_a_seed_config_copies_it_only_when_the_node_has_none(mocks):
    raw = stack([pool("dev", ["slight@1.2.3"], ["dev-node"], transport="local", seedConfig="seed/config.toml")],
                versions=("1.2.3",))
    run(raw)
    create = mocks.of_type(COMMAND_LOCAL)["fleet-dev-dev-node-handlers"].inputs["create"]
    assert "c=\"${WSF_NODE_ROOT%/}\"'/etc/containerd/config.toml'" in create
    assert "[ -e \"$c\" ] || { mkdir -p \"${c%/*}\" && cp '/srv/project/seed/config.toml' \"$c\"; }" in create


def test_adding_a_pool_is_purely_additive(mocks):
    before = stack([pool("a", ["slight@1.2.3"], ["node-a"])], versions=("1.2.3", "1.2.4"))
    after = stack([pool("a", ["slight@1.2.3"], ["node-a"]), pool("b", ["slight@1.2.4"], ["node-b"])],
                  versions=("1.2.3", "1.2.4"))
    run(before)
    old = {n: (r.typ, r.inputs) for n, r in mocks.resources.items()}
    mocks.resources.clear()
    run(after)
    new = {n: (r.typ, r.inputs) for n, r in mocks.resources.items()}
    assert set(old) < set(new)
    changed = [n for n in old if old[n] != new[n]]
    assert changed == []


def test_adding_a_release_to_a_pool_changes_only_that_pools_table_and_labels(mocks):
    before = stack([pool("a", ["slight@1.2.3"], ["node-a"]), pool("b", ["slight@1.2.3"], ["node-b"])])
    after = stack([pool("a", ["slight@1.2.3", "slight@1.2.4"], ["node-a"]), pool("b", ["slight@1.2.3"], ["node-b"])])
    run(before)
    old = {n: r.inputs for n, r in mocks.resources.items()}
    mocks.resources.clear()
    run(after)
    new = {n: r.inputs for n, r in mocks.resources.items()}
    changed = sorted(n for n in old if old[n] != new.get(n))
    assert changed == ["fleet-a", "fleet-a-node-a-handlers", "fleet-a-node-a-labels"]  # fleet-a: the pool's plan
    assert sorted(set(new) - set(old)) == ["fleet-a-node-a-bin-containerd-shim-slight-v1-2-4-v1",
                                           "fleet-classes-wasmtime-slight-v1-2-4"]


def test_node_graph_orders_kit_then_binaries_then_handler_table_then_labels(test_plan_stack):
    _, plan = plan_from_config(test_plan_stack)
    graph = {g.name: g for g in node_resources("fleet-c", plan.node("node-c"))}
    assert list(graph)[0] == "fleet-c-node-c-kit" and graph["fleet-c-node-c-kit"].depends_on == ()
    table = graph["fleet-c-node-c-handlers"]
    # after every binary, and so after the kit (each binary follows it); a URN fewer in every node's state
    assert sorted(table.depends_on) == ["fleet-c-node-c-bin-containerd-shim-slight-v1-2-3-v1",
                                        "fleet-c-node-c-bin-containerd-shim-slight-v1-2-4-v1"]
    for name, g in graph.items():
        if g.role == "binary":
            assert g.depends_on == ("fleet-c-node-c-kit",), name
    assert graph["fleet-c-node-c-labels"].depends_on == ("fleet-c-node-c-handlers",)
    # Nothing depends on the labels: on removal the engine deletes them first (and the kit last).
    assert not any("fleet-c-node-c-labels" in g.depends_on for g in graph.values())


def test_a_kit_change_changes_only_the_kit_resource_of_each_node(mocks, monkeypatch):
    raw = stack([pool("dev", ["slight@1.2.3"], ["dev-node"], transport="local"), pool("a", ["slight@1.2.3"],
                 ["node-a"])], versions=("1.2.3",))
    run(raw)
    old = {n: r.inputs for n, r in mocks.resources.items()}
    mocks.resources.clear()
    other = nodescript.kit_text() + "# another kit\n"
    monkeypatch.setattr(nodescript, "kit_text", lambda: other)
    run(raw)
    new = {n: r.inputs for n, r in mocks.resources.items()}
    assert set(old) == set(new)
    assert sorted(n for n in old if old[n] != new[n]) == ["fleet-a-node-a-kit", "fleet-dev-dev-node-kit"]


def test_a_plan_with_errors_creates_nothing(mocks):
    from components.fleet import PlanError, ShimFleet, ShimFleetArgs

    raw = stack([pool("a", ["slight@9.9.9"], ["node-a"])])
    _, plan = plan_from_config(raw)
    with pytest.raises(PlanError, match=r"nodePools\[0\]\.releases\[0\]"):
        ShimFleet("fleet", ShimFleetArgs(plan=plan))
    assert mocks.resources == {}


def test_an_in_cluster_pool_runs_the_ssh_scripts_through_the_runner_after_its_namespace(mocks):
    from components.fleet import ShimFleet, ShimFleetArgs
    from components.incluster import RUNNER, InCluster, runner_namespace
    from components.nodepool import SshConnection

    image = "registry.example.org/runner@sha256:" + "ab" * 32
    raw = stack([pool("k", ["slight@1.2.3"], ["node-k"], transport="kubernetes"),
                 pool("s", ["slight@1.2.3"], ["node-s"])], versions=("1.2.3",))
    del raw["nodePools"][0]["nodes"][0]["host"]
    raw["kubernetes"] = {"runnerImage": image}

    @pulumi.runtime.test
    def program():
        cfg, plan = plan_from_config(raw)
        assert plan.ok, plan.errors
        ns = runner_namespace("runner-namespace", cfg.kubernetes.runner_namespace)
        fleet = ShimFleet("fleet", ShimFleetArgs(
            plan=plan, ssh=SshConnection("root", 22, pulumi.Output.secret(KEY)),
            in_cluster=InCluster(image, cfg.kubernetes.runner_namespace, "/kube/config", None, ns)))
        return pulumi.Output.from_input(fleet.urn)

    program()
    _, plan = plan_from_config(raw)
    (namespace,) = mocks.of_type("kubernetes:core/v1:Namespace").values()
    assert namespace.inputs["metadata"]["name"] == "wasm-shim-fleet-runner"
    assert namespace.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    local = mocks.of_type(COMMAND_LOCAL)
    assert sorted(local) == ["fleet-k-node-k-bin-containerd-shim-slight-v1-2-3-v1", "fleet-k-node-k-handlers",
                             "fleet-k-node-k-kit"]
    node = plan.node("node-k")
    for r in node_resources("fleet-k", node):
        if r.kind != "command":
            continue
        inputs = local[r.name].inputs
        assert (inputs["create"], inputs.get("delete")) == (r.create, r.delete)
        argv = inputs["interpreter"]
        assert argv[1] == RUNNER and argv[-1] == "--script"
        assert argv[argv.index("--node") + 1] == "node-k" and argv[argv.index("--image") + 1] == image
        assert argv[argv.index("--resource") + 1] == r.name
        assert unwrap_secret(inputs["environment"])["WSF_KUBECONFIG"] == "/kube/config"
    # the ssh pool beside it is unchanged
    assert "fleet-s-node-s-handlers" in mocks.of_type(COMMAND_REMOTE)
    assert sorted(mocks.of_type(COPY_TO_REMOTE)) == ["fleet-s-node-s-kit"]


def test_a_node_without_binaries_orders_its_handler_table_after_the_kit(test_plan_stack):
    _, plan = plan_from_config(test_plan_stack)
    bare = dataclasses.replace(plan.node("node-c"), binaries={}, handlers={})
    graph = {g.name: g for g in node_resources("fleet-c", bare)}
    assert graph["fleet-c-node-c-handlers"].depends_on == ("fleet-c-node-c-kit",)
