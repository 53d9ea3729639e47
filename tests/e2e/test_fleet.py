"""The program under the real Pulumi engine, against a real control plane and real nodes over SSH.

The tests run in order on one stack (module-scoped fixture): up, the proposal's test plan on the real
scheduler, a no-op up, a version bump previewed as a purely additive diff, retire-then-remove, a failing
node install, and destroy. Run: venv/bin/python -m pytest -m e2e tests/e2e/test_fleet.py
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from components.core import nodescript
from tests.conftest import planned
from tests.harness.workloads import spread_deployment

from .cluster import ApiError, api_path
from .conftest import REPO, X1, X2, Fleet, X, base_pools

pytestmark = pytest.mark.e2e

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "preview-bump.txt"


def changes(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k != "same" and v}


def test_up_installs_binaries_handlers_labels_and_classes(fleet: Fleet):
    raw = fleet.config(base_pools(fleet))
    fleet.set_config(raw)
    result = fleet.stack.up(color="never")
    assert result.summary.result == "succeeded"
    plan = planned(raw)
    for node in plan.nodes:
        assert fleet.node_labels(node.name) == node.labels
        root = fleet.nodes[node.name]
        # what containerd reads from the file, and what the running daemon loaded
        for handler, runtime_type in node.handlers.items():
            assert root.dump_runtimes()[handler] == runtime_type
            assert root.loaded_runtimes()[handler] == runtime_type
        assert "runc" in root.dump_runtimes()
        for binary in node.binaries:
            path = root.root / "usr/local/bin" / binary
            assert path.is_file() and os.access(path, os.X_OK)
    assert fleet.runtime_classes() == {rc.name: {"handler": rc.handler, "nodeSelector": rc.node_selector}
                                       for rc in plan.runtime_classes}
    outputs = fleet.stack.outputs()
    assert {rc["name"] for rc in outputs["runtimeClasses"].value} == {rc.name for rc in plan.runtime_classes}
    assert outputs["nodes"].value["node-c"]["labels"] == plan.node("node-c").labels
    assert fleet.node_labels("node-d") == {}  # not in any pool yet


def _deployment(name: str, runtime_class: str, replicas: int) -> dict:
    return spread_deployment(name, runtime_class, replicas, {"image": "registry.invalid/wasm/hello:1"})


@pytest.mark.parametrize(
    ("runtime_class", "eligible"),
    [
        ("wasmtime-slight-v1-2-3", {"node-a", "node-c"}),          # exact X.Y.Z
        ("wasmtime-slight-v1-2-4", {"node-b", "node-c"}),          # exact X.Y.Z+1
        ("wasmtime-slight-v1-2", {"node-a", "node-b", "node-c"}),  # the X.Y series
        ("wasmtime-slight", {"node-a", "node-b", "node-c"}),       # any version
    ],
)
def test_proposal_test_plan_on_the_real_scheduler(fleet: Fleet, runtime_class: str, eligible: set[str]):
    name = f"plan-{runtime_class}"
    fleet.cluster.create(api_path("apps/v1", "deployments", "default"),
                         _deployment(name, runtime_class, len(eligible)))

    def running():
        pods = fleet.cluster.pods("default", f"app={name}")
        ok = [p for p in pods if p.get("status", {}).get("phase") == "Running"]
        return pods if len(pods) == len(eligible) and len(ok) == len(eligible) else None

    pods = fleet.cluster.wait_for(running, f"{len(eligible)} Running pods of {name}", timeout=120)
    assert {p["spec"]["nodeName"] for p in pods} == eligible
    handler = fleet.runtime_classes()[runtime_class]["handler"]
    for p in pods:
        node = fleet.nodes[p["spec"]["nodeName"]]
        # every running pod's node has the class's handler configured and loaded
        assert handler in node.dump_runtimes()
        assert handler in node.loaded_runtimes()
    fleet.cluster.delete(api_path("apps/v1", "deployments", "default", name))


def test_a_pod_targeting_the_next_major_is_rejected_at_admission(fleet: Fleet):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "plan-x-plus-1"},
           "spec": {"runtimeClassName": "wasmtime-slight-v2",
                    "containers": [{"name": "app", "image": "registry.invalid/wasm/hello:2"}]}}
    with pytest.raises(ApiError) as err:
        fleet.cluster.create(api_path("v1", "pods", "default"), pod)
    assert err.value.status == 403
    assert 'RuntimeClass "wasmtime-slight-v2" not found' in str(err.value)


def test_a_second_up_changes_nothing_and_restarts_nothing(fleet: Fleet):
    before = fleet.restarts()
    preview = fleet.stack.preview(color="never", expect_no_changes=True)
    assert changes(preview.change_summary) == {}
    result = fleet.stack.up(color="never", expect_no_changes=True)
    assert changes(result.summary.resource_changes) == {}
    assert fleet.restarts() == before


def _normalise(text: str, fleet: Fleet) -> str:
    """The preview text without what differs between runs (paths, ports, keys, durations)."""
    text = text.replace(str(fleet.workdir), "<work>").replace(str(fleet.cluster.kubeconfig), "<kubeconfig>")
    for name, host in fleet.hosts.items():
        text = text.replace(str(host.port), f"<port-{name}>").replace(host.host_key, f"<hostkey-{name}>")
    text = re.sub(r"Duration: .*", "Duration: <d>", text)
    text = re.sub(r"(\[provider=urn:\S+::)[0-9a-f-]{36}\]", r"\1<id>]", text)
    text = re.sub(r"file:///\S+/examples/artifacts/", "file://<repo>/examples/artifacts/", text)
    text = re.sub(r"/\S+/wasm-shim-fleet/kit-stage/[0-9a-f]{64}/", "<kit-stage>/", text)
    text = text.replace(nodescript.kit_sha256(), "<kit-sha256>")
    text = re.sub(r"archive\(file:[0-9a-f]+\)", "archive(file:<hash>)", text)  # the staged kit's hash
    text = text.replace(str(REPO), "<repo>")  # the restart command names the checkout's own test script
    # The engine cuts a long script line at a fixed width, so how much of it follows <repo> depends on how long
    # the checkout's path is: keep the line up to <repo> only.
    text = re.sub(r"<repo>[^\\\"]*\.\.\.(?=\\n)", "<repo>...", text)
    return "\n".join(line.rstrip() for line in text.splitlines() if line.strip()) + "\n"


_STEP = re.compile(r"^\s*(?:[-+~] )?\S+: \((?:create|update|delete|replace|same)\)")


def _steps(text: str) -> tuple[list[str], str]:
    """The preview as (sorted resource blocks, the rest): the engine prints steps that do not depend on each
    other in whatever order they finish, and nests a child under the last parent printed."""
    head, sep, tail = text.partition("\n    --outputs:--")
    blocks: list[list[str]] = []
    for line in head.splitlines()[1:]:
        if _STEP.match(line) or not blocks:
            blocks.append([])
        blocks[-1].append(line.strip())
    return sorted("\n".join(b) for b in blocks), head.splitlines()[0] + sep + tail


def test_a_version_bump_previews_as_creates_only(fleet: Fleet):
    """Adding a pool with X.Y.Z+2 on a new node: every existing resource stays as it is."""
    bumped = fleet.config([*base_pools(fleet), fleet.pool("d", [X2], ["node-d"])])
    fleet.set_config(bumped)
    try:
        preview = fleet.stack.preview(color="never", diff=True)
    finally:
        fleet.set_config(fleet.config(base_pools(fleet)))
    summary = changes(preview.change_summary)
    assert set(summary) == {"create"}, preview.change_summary
    # kit, binary, handler table, runtimeHandlers check and labels of node-d, the pool component, its exact
    # RuntimeClass
    assert summary["create"] == 7
    text = _normalise(preview.stdout, fleet)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(text)
    assert _steps(text) == _steps(GOLDEN.read_text())


def test_retire_then_remove_a_release(fleet: Fleet):
    # step 1: C retires X: its labels go, its binary and handler stay
    retire = [fleet.pool("a", [X], ["node-a"]), fleet.pool("b", [X1], ["node-b"]),
              fleet.pool("c", [X1], ["node-c"], retiring=[X])]
    fleet.set_config(fleet.config(retire))
    preview = fleet.stack.preview(color="never")
    assert set(changes(preview.change_summary)) == {"update"}, preview.change_summary
    before = fleet.restarts()
    fleet.stack.up(color="never")
    assert "wasmtime-slight-v1-2-3" not in fleet.node_labels("node-c")
    assert "slight-v1-2-3" in fleet.nodes["node-c"].loaded_runtimes()
    assert fleet.restarts()["node-c"] == before["node-c"]  # the table did not change: no restart
    assert "wasmtime-slight-v1-2-3" in fleet.runtime_classes()  # node-a still carries its label

    # step 2: remove it: the binary command is deleted after the table stops naming it
    fleet.set_config(fleet.config([fleet.pool("a", [X], ["node-a"]), fleet.pool("b", [X1], ["node-b"]),
                                   fleet.pool("c", [X1], ["node-c"])]))
    preview = fleet.stack.preview(color="never")
    summary = changes(preview.change_summary)
    assert summary.get("delete") == 1 and set(summary) <= {"update", "delete"}, preview.change_summary
    fleet.stack.up(color="never")
    node_c = fleet.nodes["node-c"]
    assert "slight-v1-2-3" not in node_c.loaded_runtimes()
    assert not (node_c.root / "usr/local/bin/containerd-shim-slight-v1-2-3-v1").exists()
    assert fleet.restarts()["node-c"] == before["node-c"] + 1


def test_a_failing_node_install_fails_only_that_node_and_the_fix_converges(fleet: Fleet):
    import pulumi.automation as auto

    pools = [fleet.pool("a", [X, "spin@0.3.0"], ["node-a"]), fleet.pool("b", [X1, "slight@1.3.0"], ["node-b"]),
             fleet.pool("c", [X1], ["node-c"])]
    labels_b = fleet.node_labels("node-b")
    config_b = fleet.nodes["node-b"].config.read_bytes()
    fleet.set_config(fleet.config(pools, sha_override={"slight@1.3.0": "0" * 64}))
    # --continue-on-error: a fleet rollout goes on with the nodes that do not depend on the failure
    with pytest.raises(auto.CommandError) as err:
        fleet.stack.up(color="never", continue_on_error=True)
    assert "sha256 mismatch" in str(err.value)
    assert fleet.node_labels("node-b") == labels_b  # no label promises what did not install
    assert fleet.nodes["node-b"].config.read_bytes() == config_b
    assert "wasmtime-spin-enabled" in fleet.node_labels("node-a")  # the other node converged

    fixed = fleet.config(pools)
    fleet.set_config(fixed)
    fleet.stack.up(color="never")
    assert fleet.node_labels("node-b") == planned(fixed).node("node-b").labels


def test_nodes_reached_through_a_bastion(fleet: Fleet):
    """ssh.proxy: every command connects through a bastion sshd; re-running through it changes nothing."""
    from tests.harness.sshd import start_hosts, stop_hosts

    work = fleet.workdir / "bastion"
    work.mkdir()
    key = fleet.hosts["node-a"].key_file  # the bastion accepts the same key as the nodes
    shutil.copy2(key, work / "id_ed25519")
    shutil.copy2(key.with_suffix(".pub"), work / "id_ed25519.pub")
    [bastion] = start_hosts(work, 1)
    try:
        raw = dict(fleet.applied)
        raw["ssh"] = {**raw["ssh"], "proxy": {"host": "127.0.0.1", "port": bastion.port, "user": "root",
                                             "hostKey": bastion.host_key}}
        before = fleet.restarts()
        fleet.set_config(raw)
        result = fleet.stack.up(color="never")
        assert result.summary.result == "succeeded"
        assert fleet.restarts() == before  # the connection changed, the node tables did not
        log = (work / "sshd0.log").read_text()
        assert log.count("Accepted publickey for root") >= 3  # the commands came through the bastion
        # the bastion's host key is pinned too: a wrong one stops the run before any command
        raw["ssh"]["proxy"]["hostKey"] = fleet.hosts["node-a"].host_key
        fleet.set_config(raw)
        with pytest.raises(Exception, match="host key mismatch|handshake failed"):
            fleet.stack.up(color="never")
    finally:
        # Back to direct connections while the bastion still runs: a command's delete uses the connection
        # recorded in the state, so the state must stop naming the bastion before it goes away.
        raw["ssh"].pop("proxy")
        fleet.set_config(raw)
        fleet.stack.up(color="never")
        stop_hosts([bastion])


def test_destroy_restores_every_node_and_removes_labels_and_classes(fleet: Fleet):
    fleet.stack.destroy(color="never")
    assert fleet.runtime_classes() == {}
    for name, node in fleet.nodes.items():
        assert fleet.node_labels(name) == {}
        assert node.config.read_bytes() == fleet.originals[name], f"{name}: config not restored"
        leftovers = list((node.root / "usr/local/bin").glob("containerd-shim-*")) \
            if (node.root / "usr/local/bin").exists() else []
        assert leftovers == []
