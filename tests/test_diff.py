"""`diff` says what a stack change does and stops unsafe transitions."""

from __future__ import annotations

import pytest

from components.core.diff import diff_plans
from components.core.plan import plan_from_config
from tests.conftest import agent_pool, agent_stack, plan, planned, pool, stack

VERSIONS = ("1.2.3", "1.2.4", "1.2.5", "2.0.0")


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
    assert "node node-b: + node node-b (slight@1.2.5: 4 labels, 4 handlers, 1 binaries)" in words(d)


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
    assert "node node-b: - node node-b (slight@1.2.3: 4 labels, 4 handlers, 1 binaries)" in words(d)
    assert "NOTE pool b: removed whole: safe in one step, the engine deletes its labels first" in d.words()


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


# ------------------------------------------------------------- everything that changes a node or its reach
def one_pool(**extra):
    return stack([pool("a", ["slight@1.2.3"], ["node-a"], **extra)], versions=VERSIONS)


REACH = [
    ("flavor", lambda r: r["nodePools"][0].update(containerd="k3s"), "~ pool containerd: containerd-1 -> k3s"),
    ("restart", lambda r: r["nodePools"][0].update(restart="systemctl restart containerd-wasm"),
     "~ pool restart: (none) -> systemctl restart containerd-wasm"),
    ("transport", lambda r: r["nodePools"][0].update(transport="local"), "~ pool transport: ssh -> local"),
    ("url", lambda r: r["shims"]["slight"][0].update(url="https://mirror.example.org/s.tgz"),
     "https://mirror.example.org/s.tgz"),
    ("archive member", lambda r: r["shims"]["slight"][0].update(binary="bin/containerd-shim-slight-v1"),
     "member bin/containerd-shim-slight-v1"),
    ("host", lambda r: r["nodePools"][0]["nodes"][0].update(host="10.9.9.9"),
     "~ connection host: 10.0.0.4 -> 10.9.9.9"),
    ("port", lambda r: r["nodePools"][0]["nodes"][0].update(port=2222), "~ connection port: 22 -> 2222"),
    ("hostKey", lambda r: r["nodePools"][0]["nodes"][0].update(hostKey="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB"),
     "~ connection hostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMTAuMC4wLjQ -> "
     "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB"),
    ("ssh user", lambda r: r["ssh"].update(user="deploy"), "~ connection ssh.user: root -> deploy"),
    ("bastion", lambda r: r["ssh"].update(proxy={"host": "jump.example.org",
                                                 "hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB"}),
     "~ connection ssh.proxy: (none) -> root@jump.example.org:22 hostKey ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB"),
    ("ssh port", lambda r: r["ssh"].update(port=2200), "~ connection port: 22 -> 2200"),
    ("label prefix", lambda r: r.update(labelPrefix="wasm.example.org/"),
     "~ setting labelPrefix: (none) -> wasm.example.org/"),
    ("force labels", lambda r: r.update(kubernetes={"forceLabels": True}),
     "~ setting kubernetes.forceLabels: False -> True"),
]


@pytest.mark.parametrize(("case", "mutate", "line"), REACH, ids=[c[0] for c in REACH])
def test_every_change_to_a_node_or_how_it_is_reached_shows(case, mutate, line):
    _, old = plan_from_config(one_pool())
    raw = one_pool()
    mutate(raw)
    _, new = plan_from_config(raw)
    assert new.ok, new.errors
    d = diff_plans(old, new)
    assert not d.empty, case
    assert line in d.words(), d.words()
    assert d.resources["update"] >= 1 or not d.safe


def test_a_flavor_or_transport_change_is_refused_with_the_two_step_fix():
    _, old = plan_from_config(one_pool())
    _, new = plan_from_config(one_pool(containerd="containerd-2"))
    d = diff_plans(old, new)
    assert [(u.pool, u.name) for u in d.unsafe] == [("a", "containerd")]
    assert "Remove the pool's nodes in one step" in d.unsafe[0].reason


def test_moving_a_node_to_another_pool_is_refused_with_the_two_step_fix():
    old = plan([pool("a", ["slight@1.2.3"], ["node-a"]), pool("b", ["slight@1.2.3"], ["node-b"])])
    raw = stack([pool("a", ["slight@1.2.3"], []), pool("b", ["slight@1.2.3"], ["node-b", "node-a"])],
                versions=VERSIONS)
    raw["nodePools"][1]["nodes"][1]["host"] = "10.0.0.4"
    _, new = plan_from_config(raw)
    d = diff_plans(old, new)
    assert [(u.node, u.name) for u in d.unsafe] == [("node-a", "node moves between pools")]
    assert "Remove it from a in one step" in d.unsafe[0].reason


def test_a_changed_archive_member_is_refused_like_a_changed_sha():
    _, old = plan_from_config(one_pool())
    raw = one_pool()
    raw["shims"]["slight"][0]["binary"] = "other"
    _, new = plan_from_config(raw)
    assert "archive member changes" in diff_plans(old, new).unsafe[0].reason


def test_a_new_url_with_the_same_sha_is_safe_and_noted_once_for_all_nodes():
    _, old = plan_from_config(stack([pool("a", ["slight@1.2.3"], ["n-1", "n-2"])], versions=VERSIONS))
    raw = stack([pool("a", ["slight@1.2.3"], ["n-1", "n-2"])], versions=VERSIONS)
    raw["shims"]["slight"][0]["url"] = "https://mirror.example.org/s.tgz"
    _, new = plan_from_config(raw)
    d = diff_plans(old, new)
    assert d.safe
    assert [n.nodes for n in d.notes] == [("n-1", "n-2")]
    assert d.words().count("NOTE") == 1


def test_nodes_are_in_natural_order_and_nodes_with_the_same_changes_are_listed_together():
    names = [f"node-{i}" for i in (10, 2, 1)]
    old = plan([pool("a", ["slight@1.2.3"], names)])
    new = plan([pool("a", ["slight@1.2.3", "slight@1.2.4"], names)])
    text = diff_plans(old, new).words()
    assert "  nodes node-1, node-2, node-10:\n    + label wasmtime-slight-v1-2-4\n" in text
    assert text.count("+ label wasmtime-slight-v1-2-4") == 1


def test_an_unsafe_step_on_many_nodes_is_said_once():
    names = [f"n-{i}" for i in range(1, 21)]
    old = plan([pool("a", ["slight@1.2.3", "slight@1.2.4"], names)])
    new = plan([pool("a", ["slight@1.2.4"], names)])
    text = diff_plans(old, new).words()
    assert text.count("UNSAFE") == 1
    assert "UNSAFE nodes n-1, n-2, n-3, n-4, n-5, n-6, … n-20 (20 nodes) (pool a): handler slight-v1-2-3" in text


def test_resources_are_counted_in_pulumi_terms():
    step1 = plan([pool("a", ["slight@1.2.4"], ["node-a"], retiring=["slight@1.2.3"])])
    step2 = plan([pool("a", ["slight@1.2.4"], ["node-a"])])
    d = diff_plans(step1, step2)
    # binary 1.2.3 deleted, handler table updated, labels and 1.2.4 binary and 4 classes unchanged
    assert d.resources == {"create": 0, "update": 1, "replace": 0, "delete": 1, "same": 6}
    assert "Resources: 1 to update, 1 to delete, 6 unchanged" in d.words()


def test_markdown_has_a_verdict_and_a_pool_by_release_matrix_before_and_after():
    old = plan([pool("a", ["slight@1.2.3", "slight@1.2.4"], ["node-a"]), pool("b", ["slight@1.2.3"], ["node-b"])])
    new = plan([pool("a", ["slight@1.2.4"], ["node-a"], retiring=["slight@1.2.3"]),
                pool("c", ["slight@1.2.5"], ["node-c"])])
    md = diff_plans(old, new).markdown("wasm-shim-fleet: `Pulumi.prod.yaml`")
    assert "**Safe to apply.**" in md
    assert "| pool | `slight@1.2.3` | `slight@1.2.4` | `slight@1.2.5` |" in md
    assert "| a | **labelled → retiring** | labelled | · |" in md
    assert "| b (removed) | **labelled → ·** | · | · |" in md
    assert "| c (new) | · | · | **· → labelled** |" in md
    assert "<details><summary>Every change</summary>" in md
    refused = diff_plans(old, plan([pool("a", ["slight@1.2.4"], ["node-a"])])).markdown("t")
    assert "**Refused: 1 unsafe step(s).**" in refused and ":no_entry: **handler slight-v1-2-3**" in refused


def test_a_node_added_with_two_releases_lists_both_and_its_retiring_ones():
    old = plan([pool("a", ["slight@1.2.3"], ["node-a"])])
    new = plan([pool("a", ["slight@1.2.3"], ["node-a"]),
                pool("b", ["slight@1.2.4", "slight@1.2.5"], ["node-b"], retiring=["slight@1.2.3"])])
    assert "node node-b: + node node-b (slight@1.2.4, slight@1.2.5, retiring slight@1.2.3: " in "\n".join(
        words(diff_plans(old, new)))


def test_a_binary_whose_probe_changes_shows_the_probe():
    old = plan([pool("a", ["slight@1.2.3"], ["node-a"])], versions=("1.2.3",))
    raw = stack([pool("a", ["slight@1.2.3"], ["node-a"])], versions=("1.2.3",))
    raw["shims"]["slight"][0]["probe"] = "none"
    new = planned(raw)
    [line] = [w for w in words(diff_plans(old, new)) if "binary" in w]
    assert line.endswith(", member containerd-shim-slight-v1 -> slight@1.2.3, sha256 aaaaaaaaaaaa…, "
                         "https://example.org/slight-1.2.3.tar.gz, member containerd-shim-slight-v1, probe none"), line


# ------------------------------------------------------------------------------------------- agent pools
def agent_plan(releases: list[str], sha: dict[str, str] | None = None):
    raw = agent_stack([agent_pool("ag", releases, {"g": "wasm"})])
    for entry in raw["shims"]["slight"]:
        entry["sha256"] = (sha or {}).get(entry["version"], entry["sha256"])
    return planned(raw)


def test_an_agent_pool_is_compared_as_a_whole_release_labels_handlers_binaries():
    d = diff_plans(agent_plan(["slight@1.2.3"]), agent_plan(["slight@1.2.3", "slight@1.2.4"]))
    assert d.safe, d.words()
    got = {(c.kind, c.subject, c.name) for c in d.changes if c.pool == "ag"}
    assert ("added", "release", "slight@1.2.4") in got
    assert ("added", "label", "wasmtime-slight-v1-2-4") in got
    assert ("added", "handler", "slight-v1-2-4") in got
    assert ("added", "binary", "containerd-shim-slight-v1-2-4-v1") in got
    assert ("changed", "handler", "slight") in got  # the alias moves to the newest release
    assert "Pool ag (agent pool: every node with g=wasm):" in d.words()
    assert any("rolls node by node" in n.text for n in d.notes)


def test_an_agent_pool_refuses_new_bytes_for_an_installed_version_and_a_handler_dropped_with_its_label():
    before = agent_plan(["slight@1.2.3"])
    bytes_changed = diff_plans(before, agent_plan(["slight@1.2.3"], sha={"1.2.3": "f" * 64}))
    [(name, reason, nodes, pool_name)] = bytes_changed.unsafe_groups()
    assert (name, nodes, pool_name) == ("binary containerd-shim-slight-v1-2-3-v1", [], "ag")
    assert reason.startswith("sha256 changes for slight@1.2.3, an installed version")
    swapped = diff_plans(before, agent_plan(["slight@1.2.4"]))
    assert "handler slight-v1-2-3" in [u.name for u in swapped.unsafe]
