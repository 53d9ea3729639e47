"""The plan: per node binaries, handler table (exact + node-local aliases) and labels; the RuntimeClasses."""

from __future__ import annotations

import itertools

import pytest

from components.core import naming
from components.core.config import check_config
from components.core.plan import build_plan, check_handler_contract, select_aliases
from tests.conftest import SHA, pool, stack
from tests.conftest import planned as plan_of


def test_proposal_example_node_with_1_2_3_carries_enabled_v1_v1_2_and_v1_2_3_labels():
    plan = plan_of(stack([pool("p", ["slight@1.2.3"], ["node-a"])], versions=("1.2.3",)))
    node = plan.node("node-a")
    assert node.labels == {
        "wasmtime-slight-enabled": "true",
        "wasmtime-slight-v1": "true",
        "wasmtime-slight-v1-2": "true",
        "wasmtime-slight-v1-2-3": "true",
    }
    assert node.handlers == {
        "slight": "io.containerd.slight-v1-2-3.v1",
        "slight-v1": "io.containerd.slight-v1-2-3.v1",
        "slight-v1-2": "io.containerd.slight-v1-2-3.v1",
        "slight-v1-2-3": "io.containerd.slight-v1-2-3.v1",
    }
    assert list(node.binaries) == ["containerd-shim-slight-v1-2-3-v1"]
    assert {rc.name: (rc.handler, rc.node_selector) for rc in plan.runtime_classes} == {
        "wasmtime-slight": ("slight", {"wasmtime-slight-enabled": "true"}),
        "wasmtime-slight-v1": ("slight-v1", {"wasmtime-slight-v1": "true"}),
        "wasmtime-slight-v1-2": ("slight-v1-2", {"wasmtime-slight-v1-2": "true"}),
        "wasmtime-slight-v1-2-3": ("slight-v1-2-3", {"wasmtime-slight-v1-2-3": "true"}),
    }


def test_proposal_test_plan_three_nodes(test_plan_stack):
    plan = plan_of(test_plan_stack)

    def eligible(class_name):
        rc = plan.runtime_class(class_name)
        return sorted(n.name for n in plan.nodes
                      if all(n.labels.get(k) == v for k, v in rc.node_selector.items()))

    assert eligible("wasmtime-slight-v1-2-3") == ["node-a", "node-c"]
    assert eligible("wasmtime-slight-v1-2-4") == ["node-b", "node-c"]
    assert eligible("wasmtime-slight-v1-2") == ["node-a", "node-b", "node-c"]
    assert eligible("wasmtime-slight") == ["node-a", "node-b", "node-c"]
    with pytest.raises(KeyError):
        plan.runtime_class("wasmtime-slight-v2")  # X+1: no class, so admission rejects such pods
    # The series alias is node-local: C, which has both, points at the highest.
    assert plan.node("node-a").aliases["slight-v1-2"] == "slight-v1-2-3"
    assert plan.node("node-b").aliases["slight-v1-2"] == "slight-v1-2-4"
    assert plan.node("node-c").aliases["slight-v1-2"] == "slight-v1-2-4"
    # ...and the class's handler is the alias, the same name on every node it selects (trap 1).
    assert plan.runtime_class("wasmtime-slight-v1-2").handler == "slight-v1-2"


def test_every_node_a_class_selects_has_its_handler_for_any_mix_of_releases():
    versions = ("1.2.3", "1.2.4", "2.0.0", "0.1.0-alpha.1", "0.2.0", "0.2.1")
    keys = [f"slight@{v}" for v in versions]
    combos = [list(c) for r in range(1, 4) for c in itertools.combinations(keys, r)]
    pools = [pool(f"p{i}", c, [f"n{i}"]) for i, c in enumerate(combos)]
    plan = plan_of(stack(pools, versions=versions))
    assert check_handler_contract(plan.runtime_classes, plan.nodes) == []
    for rc in plan.runtime_classes:
        for node in plan.nodes:
            if all(node.labels.get(k) == v for k, v in rc.node_selector.items()):
                assert rc.handler in node.handlers


def test_the_contract_check_catches_a_class_pointing_at_an_exact_handler():
    # The proposal's literal scheme: series class -> exact handler slight-v1-2-3. Node B has only 1.2.4.
    plan = plan_of(stack([pool("a", ["slight@1.2.3"], ["node-a"]), pool("b", ["slight@1.2.4"], ["node-b"])]))
    from dataclasses import replace

    literal = [replace(plan.runtime_class("wasmtime-slight-v1-2"), handler="slight-v1-2-3")]
    problems = check_handler_contract(literal, plan.nodes)
    assert [p.message for p in problems] == ["selects node node-b which has no handler 'slight-v1-2-3'"]


@pytest.mark.parametrize(
    ("installed", "expected"),
    [
        (["1.2.3"], {"slight-v1-2": "1.2.3", "slight-v1": "1.2.3", "slight": "1.2.3"}),
        (["1.2.3", "1.2.4"], {"slight-v1-2": "1.2.4", "slight-v1": "1.2.4", "slight": "1.2.4"}),
        (["1.2.4", "2.0.0"], {"slight-v1-2": "1.2.4", "slight-v1": "1.2.4", "slight-v2-0": "2.0.0",
                              "slight-v2": "2.0.0", "slight": "2.0.0"}),
        (["0.2.0", "0.2.1"], {"slight-v0-2": "0.2.1", "slight": "0.2.1"}),  # no v0 major series
        (["0.1.0-alpha.1"], {}),  # prereleases stand for no series
        (["1.2.3", "0.1.0-alpha.1"], {"slight-v1-2": "1.2.3", "slight-v1": "1.2.3", "slight": "1.2.3"}),
    ],
)
def test_alias_selection_picks_the_highest_stable_release_per_series(installed, expected):
    versions = tuple(installed)
    cfg, _ = check_config(stack([pool("p", [f"slight@{v}" for v in installed], ["n"])], versions=versions))
    chosen = select_aliases(cfg.releases.values())
    assert {a: str(r.version) for a, r in chosen.items()} == expected


def test_prerelease_gets_only_its_exact_handler_class_and_label():
    plan = plan_of(stack([pool("p", ["slight@0.1.0-alpha.1"], ["n"])], versions=("0.1.0-alpha.1",)))
    node = plan.node("n")
    assert node.labels == {"wasmtime-slight-v0-1-0-alpha-1": "true"}
    assert node.handlers == {"slight-v0-1-0-alpha-1": "io.containerd.slight-v0-1-0-alpha-1.v1"}
    assert [rc.name for rc in plan.runtime_classes] == ["wasmtime-slight-v0-1-0-alpha-1"]


def test_retiring_release_keeps_binary_and_handler_but_loses_labels():
    plan = plan_of(stack([pool("p", ["slight@1.2.4"], ["n"], retiring=["slight@1.2.3"])]))
    node = plan.node("n")
    assert "wasmtime-slight-v1-2-3" not in node.labels
    assert node.handlers["slight-v1-2-3"] == "io.containerd.slight-v1-2-3.v1"
    assert "containerd-shim-slight-v1-2-3-v1" in node.binaries
    assert node.aliases["slight-v1-2"] == "slight-v1-2-4"  # aliases stop pointing at it
    assert "wasmtime-slight-v1-2-3" not in {rc.name for rc in plan.runtime_classes}


def test_alias_only_a_retiring_release_provides_stays_unlabelled_until_removal():
    plan = plan_of(stack([pool("p", ["slight@2.0.0"], ["n"], retiring=["slight@1.2.3"])],
                         versions=("1.2.3", "2.0.0")))
    node = plan.node("n")
    assert node.aliases["slight-v1-2"] == "slight-v1-2-3"
    assert "wasmtime-slight-v1-2" not in node.labels
    assert node.aliases["slight"] == "slight-v2-0-0"


def test_runtime_prefix_is_configurable():
    plan = plan_of(stack([pool("p", ["slight@1.2.3"], ["n"])], versions=("1.2.3",), runtime="wasm"))
    assert "wasm-slight-enabled" in plan.node("n").labels
    assert "wasm-slight-v1-2" in {rc.name for rc in plan.runtime_classes}


def test_a_class_exists_only_when_some_node_carries_its_label():
    plan = plan_of(stack([pool("p", ["slight@1.2.3"], ["n"]), pool("q", ["slight@1.2.4"], [])]))
    assert "wasmtime-slight-v1-2-4" not in {rc.name for rc in plan.runtime_classes}


def test_plan_json_has_the_stable_shape(test_plan_stack):
    doc = plan_of(test_plan_stack).to_json()
    assert set(doc) >= {"runtimeClasses", "nodes", "problems"}
    rc = doc["runtimeClasses"][0]
    assert set(rc) >= {"name", "handler", "nodeSelector"}
    node = doc["nodes"][0]
    assert set(node) >= {"name", "pool", "releases", "handlers", "labels", "binaries"}
    assert node["binaries"]["containerd-shim-slight-v1-2-3-v1"]["sha256"] == "a" * 64


def test_plan_of_a_config_with_errors_still_reports_every_problem():
    raw = stack([pool("p", ["slight@1.2.3", "slight@9.0.0"], ["n"])])
    raw["shims"]["slight"][1]["sha256"] = "nope"
    cfg, problems = check_config(raw)
    plan = build_plan(cfg, problems)
    assert not plan.ok
    assert {p.path for p in plan.errors} == {"shims.slight[1].sha256", "nodePools[0].releases[1]"}


def test_a_node_installs_each_release_as_a_versioned_binary_that_its_runtime_type_resolves_to():
    """Written out (not recomputed with naming.py): the proposal's names for slight 1.2.3 and a prerelease."""
    plan = plan_of(stack([pool("p", ["slight@1.2.3", "slight@0.1.0-alpha.1"], ["n"])],
                         versions=("1.2.3", "0.1.0-alpha.1")))
    node = plan.node("n")
    assert sorted(node.binaries) == ["containerd-shim-slight-v0-1-0-alpha-1-v1", "containerd-shim-slight-v1-2-3-v1"]
    binary = node.binaries["containerd-shim-slight-v1-2-3-v1"]
    assert (binary.release, binary.sha256, binary.url) == ("slight@1.2.3", SHA["1.2.3"],
                                                           "https://example.org/slight-1.2.3.tar.gz")
    assert node.handlers["slight-v1-2-3"] == "io.containerd.slight-v1-2-3.v1"
    assert node.handlers["slight-v0-1-0-alpha-1"] == "io.containerd.slight-v0-1-0-alpha-1.v1"
    # every runtime_type resolves, by containerd's rule, to a binary the node installs
    assert {naming.binary_of_runtime_type(t) for t in node.handlers.values()} <= set(node.binaries)


def test_local_nodes_never_restart_this_machines_containerd_unless_told():
    raw = stack([pool("dev", ["slight@1.2.3"], ["dev-a"], transport="local"),
                 pool("lab", ["slight@1.2.4"], ["lab-a"], transport="local", restart="true")])
    plan = plan_of(raw)
    assert plan.node("dev-a").restart == ":"
    assert plan.node("lab-a").restart == "true"
    assert plan.node("dev-a").node_root == "nodes/dev-a"
