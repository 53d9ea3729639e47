"""Proves the e2e toolchain and the control-plane harness for real.

(a) the control plane schedules through a RuntimeClass's nodeSelector onto kwok
    nodes, kwok makes the pods Running, and admission rejects a missing class;
(b) the built Pulumi CLI and providers run an Automation API inline program
    against that API server: up, preview without changes, destroy;
(c) the pulumi-resource-command stand-in updates, replaces and deletes as the
    upstream provider documents.

Run: .venv/bin/python -m pytest -m e2e tests/e2e/test_toolchain.py
The toolchain is built (or found built) by toolchain/build.sh first.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .cluster import ApiError, Cluster, api_path
from .engine import offline_stack

pytestmark = pytest.mark.e2e

WASM_LABEL = "wsf.test/wasm-ready"


@pytest.fixture(scope="module")
def cluster(toolchain_bin: Path):
    with Cluster(toolchain_bin) as c:
        yield c


def _stack(toolchain_bin: Path, tmp_path: Path, project: str, program):
    """A stack of an inline program on a local file backend, run by the built CLI, offline."""
    return offline_stack(toolchain_bin, tmp_path, project, "e2e", program)


def test_runtimeclass_scheduling_on_kwok_nodes(cluster: Cluster) -> None:
    cluster.create_node("wasm-node", labels={WASM_LABEL: "true"})
    cluster.create_node("plain-node")

    cluster.create(api_path("node.k8s.io/v1", "runtimeclasses"), {
        "apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
        "metadata": {"name": "wsf-e2e-wasm"},
        "handler": "wsf-e2e-wasm",
        "scheduling": {"nodeSelector": {WASM_LABEL: "true"}},
    })
    labels = {"app": "wsf-e2e-wasm"}
    cluster.create(api_path("apps/v1", "deployments", "default"), {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "wsf-e2e-wasm"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"runtimeClassName": "wsf-e2e-wasm",
                         "containers": [{"name": "app", "image": "registry.invalid/wsf/app:1"}]},
            },
        },
    })

    def running_pods():
        pods = cluster.pods("default", "app=wsf-e2e-wasm")
        running = [p for p in pods if p.get("status", {}).get("phase") == "Running"]
        return pods if len(pods) == 2 and len(running) == 2 else None

    pods = cluster.wait_for(running_pods, "2 Running pods of the deployment", timeout=90)
    assert {p["spec"]["nodeName"] for p in pods} == {"wasm-node"}
    for p in pods:
        # RuntimeClass admission merged the class's nodeSelector into the pod
        assert p["spec"]["nodeSelector"] == {WASM_LABEL: "true"}
        assert p["spec"]["runtimeClassName"] == "wsf-e2e-wasm"

    with pytest.raises(ApiError) as rejected:
        cluster.create(api_path("v1", "pods", "default"), {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "wsf-e2e-missing-class"},
            "spec": {"runtimeClassName": "wsf-e2e-missing",
                     "containers": [{"name": "app", "image": "registry.invalid/wsf/app:1"}]},
        })
    assert rejected.value.status == 403
    assert 'RuntimeClass "wsf-e2e-missing" not found' in str(rejected.value)


def test_pulumi_engine_up_preview_destroy(toolchain_bin: Path, cluster: Cluster, tmp_path: Path) -> None:
    import pulumi
    import pulumi_command as command
    import pulumi_kubernetes as k8s

    kubeconfig = cluster.kubeconfig.read_text()
    cm_path = api_path("v1", "configmaps", "default", "wsf-toolchain-probe")

    def program() -> None:
        provider = k8s.Provider("harness", kubeconfig=kubeconfig)
        cmd = command.local.Command("probe-cmd", create="printf wsf-toolchain-ok")
        k8s.core.v1.ConfigMap(
            "probe",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="wsf-toolchain-probe", namespace="default"),
            data={"stdout": cmd.stdout},
            opts=pulumi.ResourceOptions(provider=provider),
        )
        pulumi.export("stdout", cmd.stdout)

    stack = _stack(toolchain_bin, tmp_path, "wsf-toolchain-probe", program)
    log: list[str] = []
    try:
        up = stack.up(on_output=log.append)
        assert up.summary.result == "succeeded", "\n".join(log)
        assert up.outputs["stdout"].value == "wsf-toolchain-ok"
        cm = cluster.get(cm_path)
        assert cm["data"] == {"stdout": "wsf-toolchain-ok"}

        preview = stack.preview(on_output=log.append)
        changes = {op: n for op, n in preview.change_summary.items() if op != "same" and n}
        assert changes == {}, "\n".join(log)
    finally:
        destroyed = stack.destroy(on_output=log.append)
        stack.workspace.remove_stack("e2e")
    assert destroyed.summary.result == "succeeded", "\n".join(log)
    assert cluster.get_or_none(cm_path) is None


def test_command_provider_update_replace_delete(toolchain_bin: Path, tmp_path: Path) -> None:
    """The pulumi-resource-command stand-in behaves as pulumi-command documents it."""
    import pulumi
    import pulumi_command as command

    deleted = tmp_path / "deleted.txt"
    spec = {"create": "printf one", "triggers": ["a"]}

    def program() -> None:
        cmd = command.local.Command(
            "cmd", create=spec["create"], triggers=spec["triggers"],
            delete=f'printf "%s;" "$PULUMI_COMMAND_STDOUT" >> {deleted}')
        pulumi.export("stdout", cmd.stdout)

    stack = _stack(toolchain_bin, tmp_path, "wsf-command-probe", program)
    log: list[str] = []
    try:
        assert stack.up(on_output=log.append).outputs["stdout"].value == "one"

        spec["create"] = "printf two"  # an input change updates in place, running create again
        assert stack.preview(on_output=log.append).change_summary.get("update") == 1, "\n".join(log)
        assert stack.up(on_output=log.append).outputs["stdout"].value == "two"
        assert not deleted.exists()

        spec["triggers"] = ["b"]  # a triggers change replaces: create the new one, delete the old
        assert stack.preview(on_output=log.append).change_summary.get("replace") == 1, "\n".join(log)
        assert stack.up(on_output=log.append).outputs["stdout"].value == "two"
        assert deleted.read_text() == "two;"
    finally:
        stack.destroy(on_output=log.append)
        stack.workspace.remove_stack("e2e")
    assert deleted.read_text() == "two;two;"
