"""Agent pools under the real Pulumi engine against a real API server, with kwok playing the nodes' kubelets (their
agent pods are made Running and Ready by kwok; no agent process runs: the real-nodes tier runs real agents).

What this tier proves for real: the objects the program creates are accepted by kube-apiserver 1.35 (the
DaemonSet, the RBAC, and the ValidatingAdmissionPolicy's CEL, compiled and enforced by the API server); the
DaemonSet runs on exactly the nodes the selector matches, now and later, with no `pulumi up` for a node that
joins; a bump previews with the releases in words and rolls; the agent's bound token may patch only its own Node
and only the fleet's keys (refused by the API server otherwise); `destroy` runs the uninstall DaemonSet and leaves
nothing of ours. Tests run in order on one stack. Run: venv/bin/python -m pytest -m e2e tests/e2e/test_agent_pools.py
"""

from __future__ import annotations

import json
import re
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.core import agent, naming
from tests.harness.artifacts import ARTIFACTS as ARTIFACT_TABLE
from tests.harness.artifacts import DIR as ARTIFACTS
from tests.harness.artifacts import sums as artifact_sums

from .cluster import ApiError, api_path
from .conftest import Fleet, open_fleet

pytestmark = pytest.mark.e2e

IMAGE = "registry.invalid/wasm-shim-fleet/node@sha256:" + "5e" * 32
NS = "wasm-shim-fleet"  # the default agentNamespace, whose objects deploy/rbac.yaml names
SELECT = ("example.org/wasm", "spin")
NODES = ("kw-1", "kw-2", "kw-3")
X, X1 = "slight@1.2.3", "slight@1.2.4"


@pytest.fixture(scope="module")
def world(toolchain_bin: Path) -> Iterator[Fleet]:
    with open_fleet(toolchain_bin, NODES, ssh_hosts=False, stack_name="agents", prefix="wsf-e2e-ag-") as w:
        for name in NODES[:2]:
            label(w, name, {SELECT[0]: SELECT[1]})
        w.limited = w.cluster.limited_kubeconfig(w.workdir)  # type: ignore[attr-defined]
        yield w


def label(w: Fleet, node: str, labels: dict[str, str | None]) -> None:
    w.cluster.request("PATCH", api_path("v1", "nodes", name=node), {"metadata": {"labels": labels}},
                      content_type="application/merge-patch+json")


def config(w: Fleet, releases: list[str], **pool) -> dict:
    sums = artifact_sums()
    shims: dict[str, list] = {}
    for fname, member, shim, version in ARTIFACT_TABLE:
        entry = {"version": version, "url": f"file://{ARTIFACTS / fname}", "sha256": sums[fname]}
        if member:
            entry["binary"] = member
        shims.setdefault(shim, []).append(entry)
    return {"runtime": "wasmtime", "shims": shims,
            "nodePools": [{"name": "spin", "containerd": "containerd-2", "releases": releases,
                           "nodeSelector": {SELECT[0]: SELECT[1]}, "rollout": {"timeoutSeconds": 120}, **pool}],
            # the stack's identity has exactly the rights of deploy/rbac.yaml
            "kubernetes": {"kubeconfig": str(w.limited), "agentImage": IMAGE,  # type: ignore[attr-defined]
                           "agentNamespace": NS}}


def command_stdout(world: Fleet, name: str) -> str:
    """The stdout a command resource recorded in the stack's state."""
    deployment = world.stack.export_stack().deployment
    (res,) = [r for r in deployment["resources"] if r["urn"].endswith(f"::{name}")]
    return res["outputs"]["stdout"]


def agent_pods(w: Fleet, mode: str = "install") -> list[dict]:
    sel = ",".join(f"{k}={v}" for k, v in agent.selector_labels("spin", mode).items())
    return w.cluster.pods(NS, sel)


def test_up_runs_the_pools_agent_on_exactly_the_selected_nodes(world: Fleet):
    world.set_config(config(world, [X]))
    result = world.stack.up(color="never")
    assert result.summary.result == "succeeded"
    assert command_stdout(world, "fleet-spin-rollout").startswith("pool spin: 2 node(s) converged")
    ds = world.cluster.get(api_path("apps/v1", "daemonsets", NS, "wsf-agent-spin"))
    tpl = ds["spec"]["template"]
    assert tpl["spec"]["nodeSelector"] == {SELECT[0]: SELECT[1]}
    assert tpl["metadata"]["annotations"][agent.RELEASES_ANNOTATION] == X
    assert {p["spec"].get("nodeName") for p in agent_pods(world)} == {"kw-1", "kw-2"}
    outputs = world.stack.outputs()
    assert outputs["agentPools"].value["spin"]["releases"] == [X]
    classes = world.runtime_classes()
    assert classes["wasmtime-slight-v1-2-3"] == {"handler": "slight-v1-2-3",
                                                "nodeSelector": {"wasmtime-slight-v1-2-3": "true"}}
    # the API server accepted (compiled) the admission policy, and its binding
    vap = world.cluster.get(api_path("admissionregistration.k8s.io/v1", "validatingadmissionpolicies",
                                     name=agent.cluster_name(NS)))
    assert not (vap.get("status") or {}).get("typeChecking", {}).get("expressionWarnings")


def test_a_node_that_joins_with_the_pools_labels_gets_an_agent_without_an_up(world: Fleet):
    label(world, "kw-3", {SELECT[0]: SELECT[1]})
    world.cluster.wait_for(lambda: {p["spec"].get("nodeName") for p in agent_pods(world)} == set(NODES),
                           "an agent pod on kw-3", timeout=60)
    preview = world.stack.preview(color="never", expect_no_changes=True)
    assert {k: v for k, v in preview.change_summary.items() if k != "same" and v} == {}


def test_a_bump_previews_the_releases_in_words_and_rolls_every_node(world: Fleet):
    world.set_config(config(world, [X, X1]))
    preview = world.stack.preview(color="never", diff=True)
    text = preview.stdout
    lines = [ln for ln in text.splitlines() if agent.RELEASES_ANNOTATION in ln]
    # the pool's component says it in words too: `releases` gains slight@1.2.4
    assert re.search(r'~ releases +: \[\n +\[0\]: "slight@1\.2\.3"\n +\+ \[1\]: "slight@1\.2\.4"', text), text[:3000]
    assert any(f'"{X}" => "{X} {X1}"' in ln for ln in lines), text[-3000:]
    result = world.stack.up(color="never")
    assert result.summary.result == "succeeded"
    desired = world.stack.outputs()["agentPools"].value["spin"]["desired"]
    pods = agent_pods(world)
    assert {p["spec"]["nodeName"] for p in pods} == set(NODES)
    assert all(p["metadata"]["annotations"][agent.DESIRED_ANNOTATION] == desired for p in pods)


# ---------------------------------------------------------------------------------- the admission policy
def _token_for(world: Fleet, pod: dict) -> str:
    req = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
           "spec": {"audiences": [], "expirationSeconds": 600,
                    "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": pod["metadata"]["name"],
                                       "uid": pod["metadata"]["uid"]}}}
    got = world.cluster.create(api_path("v1", "serviceaccounts", NS, "wsf-agent-spin") + "/token", req)
    return got["status"]["token"]


def _apply_as(world: Fleet, token: str, node: str, labels: dict, annotations: dict | None = None,
              spec: dict | None = None, manager: str = "wasm-shim-fleet-agent-spin") -> tuple[int, str]:
    body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node, "labels": labels,
                                                             "annotations": annotations or {}}}
    if spec is not None:
        body["spec"] = spec
    url = f"{world.cluster.server}/api/v1/nodes/{node}?fieldManager={manager}&force=true"
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="PATCH")
    req.add_header("Content-Type", "application/apply-patch+yaml")
    req.add_header("Authorization", f"Bearer {token}")
    ctx = ssl.create_default_context(cafile=str(world.cluster.pki / "ca.crt"))
    try:
        with urllib.request.urlopen(req, timeout=30, context=ctx) as resp:
            return resp.status, ""
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


def test_the_agents_token_may_label_only_its_own_node_and_only_with_the_fleets_keys(world: Fleet):
    pod = next(p for p in agent_pods(world) if p["spec"]["nodeName"] == "kw-1")
    token = _token_for(world, pod)
    ours = {naming.CLAIM_LABEL: "spin", "wasmtime-slight-v1-2-3": "true"}
    status_key = naming.agent_status_annotation("spin")
    # allowed: its own node, the fleet's labels, its pool's claim and status
    assert _apply_as(world, token, "kw-1", ours, {status_key: "{}"})[0] == 200
    # refused by the API server (the admission policy), whatever RBAC allows
    refusals = {
        "another node": _apply_as(world, token, "kw-2", ours),
        "a label outside the fleet's keys": _apply_as(world, token, "kw-1", {**ours, "team": "evil"}),
        "a fleet label with another value": _apply_as(world, token, "kw-1", {**ours, "wasmtime-x": "false"}),
        "another pool's claim": _apply_as(world, token, "kw-1", {**ours, naming.CLAIM_LABEL: "other"}),
        "another pool's status": _apply_as(world, token, "kw-1", ours, {"other.agent.wasm-shim-fleet.io/status": "x"}),
        "an annotation of its own choosing": _apply_as(world, token, "kw-1", ours, {"example.org/x": "y"}),
        "the node's spec": _apply_as(world, token, "kw-1", ours, spec={"unschedulable": True}),
    }
    assert {k: v[0] for k, v in refusals.items()} == dict.fromkeys(refusals, 403), refusals
    assert "a wasm-shim-fleet agent may change only the Node its pod runs on, not kw-2" in refusals["another node"][1]
    assert "may set or remove only the fleet's labels" in refusals["a label outside the fleet's keys"][1]
    # and RBAC: the token reads no Secret and creates no pod
    assert _call_as(world, token, "GET", "/api/v1/namespaces/kube-system/secrets") == 403
    assert _call_as(world, token, "POST", f"/api/v1/namespaces/{NS}/pods", {"metadata": {"name": "x"}}) == 403
    # leave kw-1 as the agents would find it: nothing of this manager
    assert _apply_as(world, token, "kw-1", {})[0] == 200
    node = world.cluster.get(api_path("v1", "nodes", name="kw-1"))
    assert naming.CLAIM_LABEL not in node["metadata"].get("labels", {})


def _call_as(world: Fleet, token: str, method: str, path: str, body: dict | None = None) -> int:
    req = urllib.request.Request(world.cluster.server + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Content-Type", "application/json")
    ctx = ssl.create_default_context(cafile=str(world.cluster.pki / "ca.crt"))
    try:
        with urllib.request.urlopen(req, timeout=30, context=ctx) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def _as_stack(world: Fleet, method: str, path: str, body: dict | None = None,
              content_type: str = "application/json") -> tuple[int, str]:
    """A request as the stack's identity (the user deploy/rbac.yaml binds, by impersonation)."""
    req = urllib.request.Request(world.cluster.server + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Content-Type", content_type)
    req.add_header("Impersonate-User", "wasm-shim-fleet")
    ctx = ssl.create_default_context(cafile=str(world.cluster.pki / "ca.crt"))
    ctx.load_cert_chain(str(world.cluster.pki / "admin.crt"), str(world.cluster.pki / "admin.key"))
    try:
        with urllib.request.urlopen(req, timeout=30, context=ctx) as resp:
            return resp.status, ""
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


def _pod(namespace: str, **spec) -> dict:
    container = {"name": "run", "image": IMAGE, "command": ["/wsf-enter", "--", "/bin/sh"]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe", "namespace": namespace},
            "spec": {"containers": [container], "automountServiceAccountToken": False, **spec}}


def test_the_stacks_identity_is_refused_what_it_does_not_need(world: Fleet):
    """deploy/rbac.yaml (RBAC and the stack's admission policy), enforced by the API server."""
    runner_ns = "wasm-shim-fleet-runner"
    refused = {
        "a Secret": _as_stack(world, "GET", "/api/v1/namespaces/kube-system/secrets"),
        "a pod in another namespace": _as_stack(world, "POST", "/api/v1/namespaces/default/pods", _pod("default")),
        "a runner pod mounting a Secret": _as_stack(
            world, "POST", f"/api/v1/namespaces/{runner_ns}/pods",
            _pod(runner_ns, volumes=[{"name": "s", "secret": {"secretName": "x"}}])),
        "a runner pod of an unpinned image": _as_stack(
            world, "POST", f"/api/v1/namespaces/{runner_ns}/pods",
            {**_pod(runner_ns), "spec": {**_pod(runner_ns)["spec"], "containers": [
                {"name": "run", "image": "busybox:latest", "command": ["/wsf-enter"]}]}}),
        "a label outside the fleet's keys": _as_stack(
            world, "PATCH", "/api/v1/nodes/kw-3", {"metadata": {"labels": {"team": "x"}}},
            "application/merge-patch+json"),
        "a namespace of its own choosing": _as_stack(
            world, "POST", "/api/v1/namespaces", {"metadata": {"name": "wsf-elsewhere"}}),
        "deleting a namespace": _as_stack(world, "DELETE", f"/api/v1/namespaces/{runner_ns}"),
    }
    assert {k: v[0] for k, v in refused.items()} == dict.fromkeys(refused, 403), refused
    assert "only runner pods" in refused["a runner pod mounting a Secret"][1]
    assert "only the fleet's labels" in refused["a label outside the fleet's keys"][1]
    # and what it needs: a runner pod as the runner makes it is admitted (then deleted)
    assert _as_stack(world, "POST", f"/api/v1/namespaces/{runner_ns}/pods", _pod(runner_ns))[0] == 201
    assert _as_stack(world, "DELETE", f"/api/v1/namespaces/{runner_ns}/pods/probe")[0] == 200


def test_destroy_uninstalls_through_the_cluster_and_leaves_nothing_of_ours(world: Fleet):
    result = world.stack.destroy(color="never")
    assert result.summary.result == "succeeded"
    for path in (api_path("admissionregistration.k8s.io/v1", "validatingadmissionpolicies",
                          name=agent.cluster_name(NS)),
                 api_path("rbac.authorization.k8s.io/v1", "clusterroles", name=agent.cluster_name(NS)),
                 api_path("rbac.authorization.k8s.io/v1", "clusterrolebindings", name=agent.cluster_name(NS))):
        gone = world.cluster.wait_for(lambda path=path: _gone(world, path), f"{path} gone", timeout=120)
        assert gone
    assert world.runtime_classes() == {}
    for name in NODES:
        labels = world.cluster.get(api_path("v1", "nodes", name=name))["metadata"].get("labels", {})
        assert not [k for k in labels if k.startswith("wasmtime-") or k == naming.CLAIM_LABEL]
    # the uninstall DaemonSet ran and went; the namespace is the cluster administrator's (deploy/rbac.yaml):
    # it stays, with nothing of the pools in it
    assert agent_pods(world, "uninstall") == [] and agent_pods(world) == []
    for plural, group in (("daemonsets", "apps/v1"), ("configmaps", "v1"), ("serviceaccounts", "v1")):
        left = [o["metadata"]["name"] for o in world.cluster.get(api_path(group, plural, NS))["items"]
                if o["metadata"]["name"].startswith("wsf-agent-")]
        assert left == [], (plural, left)


def _gone(world: Fleet, path: str) -> bool:
    try:
        world.cluster.get(path)
    except ApiError as err:
        return err.status == 404
    return False
