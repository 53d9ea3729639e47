"""Drift check: the pure comparison of observed node state with the plan, and the read script's output parser."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import replace

import pytest

from components.check_live import add_parser, parse_read_output, read_script
from components.core.check import NodeState, check_fleet, check_node, managed_handlers
from components.core.cli import main
from components.core.plan import plan_from_config
from tests.conftest import agent_pool, agent_stack, kit_config, pool, stack


@pytest.fixture
def plan(test_plan_stack):
    _, p = plan_from_config(test_plan_stack)
    assert p.ok, p.errors
    return p


@pytest.fixture
def in_sync(tmp_path):
    """The state of a node that has exactly what the plan says (then `changes` applied): its config as the node
    kit writes the node's handler table into a version 2 config."""

    def state_of(plan, name: str, **changes) -> NodeState:
        node = plan.node(name)
        config = kit_config(node.handlers, tmp_path)
        # the stack's releases are archives: the node recorded (artifact sha256, installed binary sha256)
        state = NodeState(name, labels={"kubernetes.io/hostname": name, **node.labels}, runtime_handlers=None,
                          binaries={b: INSTALLED for b in node.binaries},
                          records={b: (node.binaries[b].sha256, INSTALLED) for b in node.binaries},
                          config_text=config)
        return replace(state, **changes)

    return state_of


INSTALLED = "b" * 64


def kinds(drifts) -> list[str]:
    return sorted(d.kind for d in drifts)


def test_a_node_with_what_the_plan_says_has_no_drift(plan, in_sync):
    report = check_fleet(plan, {n.name: in_sync(plan, n.name) for n in plan.nodes})
    assert report.clean
    assert report.words().splitlines()[-1] == "no drift"


def test_a_reimaged_node_lost_labels_binaries_and_handler_table(plan, in_sync):
    state = in_sync(plan, "node-a", labels={"kubernetes.io/hostname": "node-a"}, binaries={},
                    config_text="version = 2\n")
    assert kinds(check_node(plan, plan.node("node-a"), state)) == [
        "binary-missing", "config-missing", *["label-missing"] * 4]


def test_a_label_whose_handler_is_missing_is_drift(plan, in_sync, tmp_path):
    node = plan.node("node-c")
    handlers = {h: t for h, t in node.handlers.items() if h != "slight-v1-2-4"}
    state = in_sync(plan, "node-c", config_text=kit_config(handlers, tmp_path))
    assert kinds(check_node(plan, node, state)) == ["handler-missing", "label-without-handler"]


def test_a_binary_whose_sha256_changed_since_install_is_drift(plan, in_sync):
    state = in_sync(plan, "node-b", binaries={"containerd-shim-slight-v1-2-4-v1": "0" * 64})
    (d,) = check_node(plan, plan.node("node-b"), state)
    assert d.kind == "binary-sha256" and "0000" in d.detail


def test_a_binary_installed_from_another_artifact_is_drift(plan, in_sync):
    state = in_sync(plan, "node-b", records={"containerd-shim-slight-v1-2-4-v1": ("e" * 64, INSTALLED)})
    (d,) = check_node(plan, plan.node("node-b"), state)
    assert d.kind == "binary-sha256" and "e" * 64 in d.detail


def test_an_archive_binary_without_install_record_cannot_be_traced(plan, in_sync):
    (d,) = check_node(plan, plan.node("node-b"), in_sync(plan, "node-b", records={}))
    assert d.kind == "binary-unrecorded"


def test_a_bare_binary_is_compared_with_the_catalog_sha256(in_sync):
    raw = stack([pool("a", ["slight@1.2.3"], ["node-a"])], versions=("1.2.3",))
    raw["shims"]["slight"][0].pop("binary")
    _, plan = plan_from_config(raw)
    node = plan.node("node-a")
    (name, binary), = node.binaries.items()
    good = in_sync(plan, "node-a", binaries={name: binary.sha256}, records={})
    assert check_node(plan, node, good) == []
    assert kinds(check_node(plan, node, replace(good, binaries={name: "1" * 64}))) == ["binary-sha256"]


@pytest.mark.parametrize(("changes", "expected"), [
    ({"labels": None}, ["node-missing"]),
    ({"error": "ssh: connect to host 10.0.0.4 port 22: Connection refused"}, ["unreachable"]),
    ({"runtime_handlers": ["runc"]}, ["runtime-handler-missing"] * 4 + ["label-without-handler"] * 4),
    ({"runtime_handlers": ["runc", "slight", "slight-v1", "slight-v1-2", "slight-v1-2-3"]}, []),
])
def test_drift_kinds(plan, changes, expected, in_sync):
    assert kinds(check_node(plan, plan.node("node-a"), in_sync(plan, "node-a", **changes))) == sorted(expected)


def test_a_fleet_label_the_plan_does_not_set_is_drift(plan, in_sync):
    state = in_sync(plan, "node-b")
    state = replace(state, labels={**state.labels, "wasmtime-slight-v1-2-3": "true"})
    assert kinds(check_node(plan, plan.node("node-b"), state)) == ["label-unexpected", "label-without-handler"]


@pytest.mark.parametrize("flavor", ["containerd-legacy", "containerd-1", "containerd-2"])
def test_managed_handlers_reads_the_block_the_kit_writes(flavor, tmp_path):
    handlers = {"slight": "io.containerd.slight-v1-2-3.v1", "slight-v1-2-3": "io.containerd.slight-v1-2-3.v1"}
    original = {"containerd-legacy": "x = 1\n", "containerd-1": "version = 2\n", "containerd-2": "version = 3\n"}
    assert managed_handlers(kit_config(handlers, tmp_path, flavor, original[flavor])) == handlers


def test_managed_handlers_reads_quoted_table_names_of_a_hand_edited_block():
    text = ("version = 2\n# >>> wasm-shim-fleet managed handler table >>>\n"
            '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes."odd.name"]\n'
            '  runtime_type = "io.containerd.odd-v1.v1"\n# <<< wasm-shim-fleet managed handler table <<<\n')
    assert managed_handlers(text) == {"odd.name": "io.containerd.odd-v1.v1"}
    assert managed_handlers("version = 2\n") is None
    assert managed_handlers(None) is None


def test_the_read_script_reports_binaries_and_config_of_a_node_root(tmp_path, plan):
    node = plan.node("node-a")
    (tmp_path / "usr/local/bin").mkdir(parents=True)
    (tmp_path / "usr/local/bin/containerd-shim-slight-v1-2-3-v1").write_bytes(b"shim")
    (tmp_path / "var/lib/wasm-shim-fleet/binaries").mkdir(parents=True)
    (tmp_path / "var/lib/wasm-shim-fleet/binaries/containerd-shim-slight-v1-2-3-v1.sha256").write_text(
        f"{'a' * 64} {'c' * 64}\n")
    (tmp_path / "etc/containerd").mkdir(parents=True)
    (tmp_path / "etc/containerd/config.toml").write_text("version = 2\n")
    out = subprocess.run(["sh", "-c", read_script(node)], capture_output=True, text=True, check=True,
                         env={"WSF_NODE_ROOT": str(tmp_path), "PATH": "/usr/bin:/bin"}).stdout
    binaries, records, config = parse_read_output(out)
    assert binaries == {"containerd-shim-slight-v1-2-3-v1": hashlib.sha256(b"shim").hexdigest()}
    assert records == {"containerd-shim-slight-v1-2-3-v1": ("a" * 64, "c" * 64)}
    assert config == "version = 2\n"
    (tmp_path / "etc/containerd/config.toml").unlink()
    assert parse_read_output(subprocess.run(["sh", "-c", read_script(node)], capture_output=True, text=True,
                                            env={"WSF_NODE_ROOT": str(tmp_path), "PATH": "/usr/bin:/bin"}).stdout
                             )[2] is None


def test_check_refuses_a_render_only_stack(tmp_path, capsys):
    import yaml

    raw = stack([pool("a", ["slight@1.2.3"], ["node-a"])], kubernetes={"renderDir": "rendered"})
    f = tmp_path / "Pulumi.x.yaml"
    f.write_text(yaml.safe_dump({"config": {f"wasm-shim-fleet:{k}": v for k, v in raw.items()}}))
    assert main(["check", str(f)], extend=add_parser) == 2
    assert "renderDir" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ agent pools
def _agents_plan():
    _, p = plan_from_config(agent_stack([agent_pool("ag", ["slight@1.2.3"], {"g": "wasm"})]))
    assert p.ok, p.errors
    return p


def _api_node(name: str, labels: dict, status: dict | None = None, handlers: list[str] | None = None) -> dict:
    import json

    annotations = {"ag.agent.wasm-shim-fleet.io/status": json.dumps(status)} if status is not None else {}
    obj = {"metadata": {"name": name, "labels": labels, "annotations": annotations}, "status": {}}
    if handlers is not None:
        obj["status"]["runtimeHandlers"] = [{"name": h} for h in handlers]
    return obj


def test_an_agent_pools_nodes_are_judged_by_what_their_agents_publish():
    from components.core.check import check_agent_pool

    p = _agents_plan()
    a = p.agent_pools[0]
    ok_labels = {"g": "wasm", "wasm-shim-fleet.io/pool": "ag", **a.labels}
    converged = {"pool": "ag", "desired": "D", "state": "converged", "since": "t0"}
    api = {
        "n-ok": _api_node("n-ok", ok_labels, {**converged, "changed": "installed x"}, list(a.node.handlers)),
        "n-new": _api_node("n-new", {"g": "wasm"}),
        "n-old": _api_node("n-old", ok_labels, {**converged, "desired": "OLD"}),
        "n-failed": _api_node("n-failed", ok_labels, {**converged, "state": "failed", "reason": "sha256 mismatch",
                                                      "attempts": 3}),
        "n-refused": _api_node("n-refused", {"g": "wasm"}, {**converged, "state": "refused",
                                                            "reason": "selected by pools ag and other"}),
        "n-label": _api_node("n-label", {**ok_labels, "wasmtime-slight-v9": "true"}, converged),
        "n-handler": _api_node("n-handler", ok_labels, converged, ["runc"]),
        "n-left": _api_node("n-left", {"wasm-shim-fleet.io/pool": "ag"}),
        "n-other": _api_node("n-other", {"g": "other"}),
    }
    drift, checked, info = check_agent_pool(p, a, "D", api)
    found = {(d.node, d.kind) for d in drift}
    assert found == {("n-new", "agent-missing"), ("n-old", "agent-outdated"), ("n-failed", "agent-failed"),
                     ("n-refused", "agent-refused"), ("n-label", "label-unexpected"),
                     ("n-handler", "runtime-handler-missing"), ("n-left", "claim-left")}
    assert "n-other" not in checked and "n-ok" in checked
    assert info == {"n-ok": "last change by its agent, t0: installed x"}
    assert any("sha256 mismatch (3 attempts" in d.detail for d in drift)


def test_plan_with_cluster_lists_the_nodes_each_agent_pool_selects(tmp_path, capsys):
    import argparse

    import yaml

    from components.core.cli import cmd_plan
    raw = agent_stack([agent_pool("ag", ["slight@1.2.3"], {"g": "wasm"})])
    stack_file = tmp_path / "Pulumi.x.yaml"
    stack_file.write_text(yaml.safe_dump({"config": {f"wasm-shim-fleet:{k}": v for k, v in raw.items()}}))
    nodes = {n: _api_node(n, labels) for n, labels in
             {"w1": {"g": "wasm"}, "w2": {"g": "wasm", "x": "y"}, "o": {"g": "other"}}.items()}
    args = argparse.Namespace(stack_file=str(stack_file), json=False, cluster=True,
                              read_nodes=lambda kubeconfig, context: nodes)
    assert cmd_plan(args) == 0
    assert "    selects now: w1, w2\n" in capsys.readouterr().out
    args.read_nodes = lambda kubeconfig, context: (_ for _ in ()).throw(RuntimeError("no route to host"))
    assert cmd_plan(args) == 1
    assert "cannot read the cluster's nodes: no route to host" in capsys.readouterr().err


def test_a_report_groups_its_drift_by_node_every_checked_node_included(plan, in_sync):
    states = {n.name: in_sync(plan, n.name) for n in plan.nodes}
    states["node-a"] = in_sync(plan, "node-a", records={})
    states["node-c"] = in_sync(plan, "node-c", records={})
    report = check_fleet(plan, states)
    assert {n: len(ds) for n, ds in report.by_node().items()} == {"node-a": 1, "node-b": 0, "node-c": 2}
    assert [d.kind for d in report.by_node()["node-c"]] == ["binary-unrecorded", "binary-unrecorded"]
    [d] = report.by_node()["node-a"]
    assert d.detail == ("containerd-shim-slight-v1-2-3-v1 (slight@1.2.3) has no install record: its bytes cannot "
                        "be traced to the catalog's artifact")
