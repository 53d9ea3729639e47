"""`diff` says what a stack change does and stops unsafe transitions."""

from __future__ import annotations

from components.core.diff import diff_plans
from components.core.plan import plan_from_config
from tests.conftest import pool, stack

VERSIONS = ("1.2.3", "1.2.4", "1.2.5", "2.0.0")


def plan(pools, **kw):
    _, p = plan_from_config(stack(pools, versions=VERSIONS, **kw))
    assert p.ok, p.errors
    return p


def words(d):
    return [c.words() for c in d.changes]


def test_same_plan_has_no_changes():
    p = plan([pool("a", ["slight@1.2.3"], ["node-a"])])
    d = diff_plans(p, p)
    assert d.empty and d.safe
    assert d.words() == "No changes: the plan is the same.\n"


def test_adding_a_pool_with_a_new_release_is_additive_and_safe():
    old = plan([pool("a", ["slight@1.2.3"], ["node-a"])])
    new = plan([pool("a", ["slight@1.2.3"], ["node-a"]), pool("b", ["slight@1.2.5"], ["node-b"])])
    d = diff_plans(old, new)
    assert d.safe
    assert {c.kind for c in d.changes} == {"added"}
    assert "+ runtimeClass wasmtime-slight-v1-2-5 (handler slight-v1-2-5, selects wasmtime-slight-v1-2-5=true)" \
        in words(d)
    assert "node node-b: + label wasmtime-slight-v1-2-5" in words(d)


def test_adding_a_release_to_a_node_retargets_its_aliases_in_place():
    old = plan([pool("a", ["slight@1.2.3"], ["node-a"])])
    new = plan([pool("a", ["slight@1.2.3", "slight@1.2.4"], ["node-a"])])
    d = diff_plans(old, new)
    assert d.safe
    assert ("node node-a: ~ handler slight-v1-2: io.containerd.slight-v1-2-3.v1 -> io.containerd.slight-v1-2-4.v1"
            in words(d))
    assert not any(c.subject == "runtimeClass" and c.kind == "changed" for c in d.changes)


def test_removing_a_labelled_release_in_one_step_is_unsafe():
    old = plan([pool("a", ["slight@1.2.3", "slight@1.2.4"], ["node-a"])])
    new = plan([pool("a", ["slight@1.2.4"], ["node-a"])])
    d = diff_plans(old, new)
    assert not d.safe
    assert [u.name for u in d.unsafe] == ["handler slight-v1-2-3"]
    assert "retiring" in d.unsafe[0].reason


def test_retire_then_remove_is_two_safe_steps():
    step0 = plan([pool("a", ["slight@1.2.3", "slight@1.2.4"], ["node-a"])])
    step1 = plan([pool("a", ["slight@1.2.4"], ["node-a"], retiring=["slight@1.2.3"])])
    step2 = plan([pool("a", ["slight@1.2.4"], ["node-a"])])
    d1 = diff_plans(step0, step1)
    assert d1.safe
    assert "node node-a: - label wasmtime-slight-v1-2-3" in words(d1)
    assert not any(c.subject == "handler" and c.kind == "removed" for c in d1.changes)
    d2 = diff_plans(step1, step2)
    assert d2.safe
    assert "node node-a: - handler slight-v1-2-3 (io.containerd.slight-v1-2-3.v1)" in words(d2)
    assert not any(c.subject == "label" for c in d2.changes)


def test_retiring_the_last_release_of_a_series_keeps_its_alias_until_removal():
    step0 = plan([pool("a", ["slight@1.2.3", "slight@2.0.0"], ["node-a"])])
    step1 = plan([pool("a", ["slight@2.0.0"], ["node-a"], retiring=["slight@1.2.3"])])
    step2 = plan([pool("a", ["slight@2.0.0"], ["node-a"])])
    assert diff_plans(step0, step1).safe
    assert diff_plans(step1, step2).safe
    # Skipping the retire step removes slight-v1-2 and slight-v1 while their labels are still on the node.
    skipped = diff_plans(step0, step2)
    assert {u.name for u in skipped.unsafe} == {"handler slight-v1-2-3", "handler slight-v1-2", "handler slight-v1"}


def test_removing_a_whole_node_is_safe():
    old = plan([pool("a", ["slight@1.2.3"], ["node-a"]), pool("b", ["slight@1.2.3"], ["node-b"])])
    new = plan([pool("a", ["slight@1.2.3"], ["node-a"])])
    d = diff_plans(old, new)
    assert d.safe
    assert "- node node-b (pool b)" in words(d)


def test_changing_the_bytes_of_an_installed_version_is_unsafe():
    old = plan([pool("a", ["slight@1.2.3"], ["node-a"])])
    raw = stack([pool("a", ["slight@1.2.3"], ["node-a"])], versions=VERSIONS)
    raw["shims"]["slight"][0]["sha256"] = "9" * 64
    _, new = plan_from_config(raw)
    d = diff_plans(old, new)
    assert [u.name for u in d.unsafe] == ["binary containerd-shim-slight-v1-2-3-v1"]
    assert "publish and pin a new version" in d.unsafe[0].reason


def test_a_class_handler_change_is_unsafe():
    old = plan([pool("a", ["slight@1.2.3"], ["node-a"])])
    from dataclasses import replace

    rc = old.runtime_class("wasmtime-slight-v1-2")
    new = replace(old, runtime_classes=tuple(replace(r, handler="slight-v1-2-3") if r is rc else r
                                             for r in old.runtime_classes))
    d = diff_plans(old, new)
    assert [u.name for u in d.unsafe] == ["runtimeClass wasmtime-slight-v1-2"]
    assert "immutable" in d.unsafe[0].reason
