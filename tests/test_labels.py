"""Labels: never force-taken from another field manager unless the stack says so, an optional prefix used
by node labels and RuntimeClass selectors alike, names composed in naming.py only."""

from __future__ import annotations

import pytest

from components.core import naming
from components.core.config import check_config
from components.core.plan import plan_from_config
from tests.conftest import NODE_PATCH, pool, stack
from tests.conftest import run_fleet as run


def one(**extra):
    return stack([pool("a", ["slight@1.2.3"], ["node-a"])], **extra)


def test_label_patches_do_not_force_by_default(mocks):
    run(one())
    [patch] = mocks.of_type(NODE_PATCH).values()
    annotations = patch.inputs["metadata"]["annotations"]
    assert "pulumi.com/patchForce" not in annotations
    assert annotations["pulumi.com/patchFieldManager"] == "wasm-shim-fleet-node-a"


def test_force_labels_is_a_switch_in_the_stack_config(mocks):
    run(one(kubernetes={"forceLabels": True}))
    [patch] = mocks.of_type(NODE_PATCH).values()
    assert patch.inputs["metadata"]["annotations"]["pulumi.com/patchForce"] == "true"


def test_force_labels_must_be_a_boolean():
    _, problems = check_config(one(kubernetes={"forceLabels": "yes"}))
    assert any(p.path == "kubernetes.forceLabels" and "true or false" in p.message for p in problems)


def test_without_a_prefix_labels_keep_the_proposals_names():
    _, plan = plan_from_config(one())
    assert "wasmtime-slight-v1-2-3" in plan.node("node-a").labels
    assert "wasmtime-slight-enabled" in plan.node("node-a").labels


def test_a_label_prefix_is_used_by_node_labels_and_runtime_class_selectors_alike():
    _, plan = plan_from_config(one(labelPrefix="wasm.example.org/"))
    assert plan.ok, plan.errors
    labels = plan.node("node-a").labels
    assert set(labels) == {"wasm.example.org/wasmtime-slight-v1-2-3", "wasm.example.org/wasmtime-slight-v1-2",
                           "wasm.example.org/wasmtime-slight-v1", "wasm.example.org/wasmtime-slight-enabled"}
    for rc in plan.runtime_classes:
        assert not rc.name.startswith("wasm.example.org")  # class names stay DNS names
        assert set(rc.node_selector) <= set(labels)
    assert plan.runtime_class("wasmtime-slight").node_selector == {"wasm.example.org/wasmtime-slight-enabled": "true"}


def test_label_patches_carry_the_prefixed_labels(mocks):
    run(one(labelPrefix="wasm.example.org/"))
    [patch] = mocks.of_type(NODE_PATCH).values()
    assert "wasm.example.org/wasmtime-slight-v1-2-3" in patch.inputs["metadata"]["labels"]


@pytest.mark.parametrize(("prefix", "words"), [
    ("wasm.example.org", "must end with '/'"),
    ("Wasm.Example/", "upper-case"),
    ("node.kubernetes.io/", "reserved"),
    ("a/b/", "not allowed"),
    ("/", "is empty"),
    (5, "not a string"),
])
def test_a_bad_label_prefix_is_an_error(prefix, words):
    _, problems = check_config(one(labelPrefix=prefix))
    errs = {p.path: p.message for p in problems if p.severity == "error"}
    assert words in errs["labelPrefix"]


def test_the_63_character_limit_counts_the_name_after_the_prefix():
    _, plan = plan_from_config(one(labelPrefix="a-rather-long-organisation-domain.example.org/"))
    assert plan.ok, plan.errors


def test_field_managers_stay_within_kubernetes_limit():
    long_node = ".".join(["n" * 60] * 4)
    assert len(naming.field_manager(long_node)) == naming.MAX_FIELD_MANAGER
    assert naming.field_manager(long_node) != naming.field_manager(long_node[:-1] + "m")
    assert naming.field_manager("node-a") == "wasm-shim-fleet-node-a"
