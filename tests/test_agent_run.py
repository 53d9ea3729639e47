"""The agent pools' resources under Pulumi mocks, and the runner of their rollout and cleanup commands
(components/agent_run.py) against a scripted cluster: what `pulumi up` and `pulumi destroy` wait for and say."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pulumi
import pytest

from components import agent_run
from components.core import agent
from components.core.plan import plan_from_config
from components.incluster_run import RunError
from tests.conftest import COMMAND_LOCAL, IMAGE, agent_pool, agent_stack, run_fleet, unwrap_secret

DS = "kubernetes:apps/v1:DaemonSet"
CM = "kubernetes:core/v1:ConfigMap"


def test_an_agent_pool_is_a_fixed_set_of_resources_whatever_its_nodes(mocks):
    run_fleet(agent_stack([agent_pool("spin-3", ["slight@1.2.3"])]), agents={})
    names = sorted(mocks.resources)
    assert names == sorted([
        "fleet", "fleet-classes", *(f"fleet-classes-wasmtime-slight{s}" for s in ("", "-v1", "-v1-2", "-v1-2-3")),
        "fleet-agents", "fleet-agents-namespace", "fleet-agents-clusterrole", "fleet-agents-clusterrolebinding",
        "fleet-agents-role", "fleet-agents-rolebinding", "fleet-agents-policy", "fleet-agents-policy-binding",
        "fleet-spin-3", "fleet-spin-3-serviceaccount", "fleet-spin-3-state", "fleet-spin-3-cleanup",
        "fleet-spin-3-daemonset", "fleet-spin-3-rollout"])


def test_the_daemonset_and_its_state_carry_one_desired_hash_and_the_pools_scripts(mocks):
    fleet, plan = run_fleet(agent_stack([agent_pool("spin-3", ["slight@1.2.3"])]), agents={})
    (ds,) = mocks.of_type(DS).values()
    (cm,) = mocks.of_type(CM).values()
    desired = fleet.agents["spin-3"].desired
    tpl = ds.inputs["spec"]["template"]
    assert tpl["metadata"]["annotations"][agent.DESIRED_ANNOTATION] == desired
    assert tpl["spec"]["volumes"][0]["configMap"]["name"] == cm.inputs["metadata"]["name"]
    state = json.loads(cm.inputs["data"]["state.json"])
    assert state["desired"] == desired
    assert state["scripts"]["binaries"].count("install-binary") == 1
    assert cm.inputs["immutable"] is True
    assert cm.inputs["data"]["run-on-host.sh"] == agent.incluster.HOST_SCRIPT
    assert ds.inputs["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"


def test_the_rollout_and_cleanup_commands_carry_their_jobs_and_the_kubeconfig_as_a_secret(mocks):
    fleet, plan = run_fleet(agent_stack([agent_pool("spin-3", ["slight@1.2.3"])]), agents={"kubeconfig": "/k/config"})
    local = mocks.of_type(COMMAND_LOCAL)
    rollout, cleanup = local["fleet-spin-3-rollout"].inputs, local["fleet-spin-3-cleanup"].inputs
    job = json.loads(rollout["create"])
    assert (job["action"], job["desired"], job["releases"]) == ("rollout", fleet.agents["spin-3"].desired,
                                                                ["slight@1.2.3"])
    assert rollout.get("delete") is None
    gone = json.loads(cleanup["delete"])
    assert gone["action"] == "uninstall" and gone["daemonset"]["metadata"]["name"] == "wsf-agent-spin-3-uninstall"
    assert json.loads(cleanup["create"])["action"] == "none"
    for inputs in (rollout, cleanup):
        assert inputs["interpreter"][1:] == [agent_run.__file__, "--job"]
        assert unwrap_secret(inputs["environment"])["WSF_KUBECONFIG"] == "/k/config"


def test_a_bump_changes_the_pools_state_daemonset_and_jobs_and_nothing_shared(mocks):
    run_fleet(agent_stack([agent_pool("spin-3", ["slight@1.2.3"])]), agents={})
    before = {n: json.dumps(r.inputs, sort_keys=True, default=str) for n, r in mocks.resources.items()}
    mocks.resources.clear()
    run_fleet(agent_stack([agent_pool("spin-3", ["slight@1.2.3", "slight@1.2.4"])]), agents={})
    after = {n: json.dumps(r.inputs, sort_keys=True, default=str) for n, r in mocks.resources.items()}
    changed = sorted(n for n in before if n in after and before[n] != after[n])
    assert changed == ["fleet-spin-3", "fleet-spin-3-cleanup", "fleet-spin-3-daemonset", "fleet-spin-3-rollout",
                       "fleet-spin-3-state"]
    assert sorted(set(after) - set(before)) == ["fleet-classes-wasmtime-slight-v1-2-4"]


# ------------------------------------------------------------------------------------------ the runner
class FakeCluster:
    """A cluster whose DaemonSet, pods and nodes change as the test scripts them, step by step."""

    def __init__(self, steps: list[Mapping[str, Any]], namespace: str = "wsf") -> None:
        self.ns = namespace
        self.steps = steps
        self.i = 0
        self.applied: list[dict] = []
        self.deleted: list[str] = []

    @property
    def now(self) -> Mapping[str, Any]:
        return self.steps[min(self.i, len(self.steps) - 1)]

    def daemonset(self, name: str) -> dict | None:
        return self.now.get("ds", {}).get(name)

    def pods(self, selector: Mapping[str, str]) -> list[dict]:
        return [p for p in self.now.get("pods", []) if all(p["metadata"]["labels"].get(k) == v
                                                              for k, v in selector.items())]

    def node(self, name: str) -> dict | None:
        return self.now.get("nodes", {}).get(name)

    def last_log_line(self, pod: str) -> str:
        return self.now.get("logs", {}).get(pod, "")

    def apply(self, manifest: Mapping[str, Any]) -> None:
        self.applied.append({"at": self.i, **manifest})

    def delete_daemonset(self, name: str) -> None:
        self.deleted.append(name)


class Clock:
    def __init__(self, cluster: FakeCluster) -> None:
        self.t = 0.0
        self.cluster = cluster

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds
        self.cluster.i += 1


def ds(desired: str, want: int, updated: int, available: int, generation: int = 2, observed: int = 2,
       name: str = "wsf-agent-p") -> dict:
    return {name: {"metadata": {"name": name, "generation": generation},
                   "spec": {"template": {"metadata": {"annotations": {agent.DESIRED_ANNOTATION: desired}}}},
                   "status": {"desiredNumberScheduled": want, "updatedNumberScheduled": updated,
                              "numberAvailable": available, "numberReady": available, "observedGeneration": observed,
                              "numberUnavailable": want - available}}}


def pod(node: str, desired: str, ready: bool, mode: str = "install", waiting: str | None = None) -> dict:
    status: dict[str, Any] = {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if waiting:
        status["containerStatuses"] = [{"state": {"waiting": {"reason": waiting, "message": "back-off"}}}]
    return {"metadata": {"name": f"agent-{node}", "labels": agent.selector_labels("p", mode),
                         "annotations": {agent.DESIRED_ANNOTATION: desired}},
            "spec": {"nodeName": node}, "status": status}


def node(name: str, **status: Any) -> dict:
    return {name: {"metadata": {"name": name, "annotations": {
        "p.agent.wasm-shim-fleet.io/status": json.dumps(status)} if status else {}}}}


NEW, OLD = "n" * 64, "o" * 64


def rollout_job(timeout: int = 600) -> dict:
    plan = plan_from_config(agent_stack([agent_pool("p", ["slight@1.2.3"], rollout={"timeoutSeconds": timeout})]))[1]
    job = agent.rollout_job(plan.agent_pools[0], namespace="wsf", desired=NEW)
    return json.loads(agent.job_text(job))


def test_a_rollout_is_done_when_every_selected_node_runs_the_new_state_and_is_ready(capsys):
    cluster = FakeCluster([
        {"ds": ds(NEW, 3, 1, 2), "pods": [pod("a", NEW, True), pod("b", NEW, False), pod("c", OLD, True)]},
        {"ds": ds(NEW, 3, 3, 3), "pods": [pod(n, NEW, True) for n in "abc"]},
    ])
    clock = Clock(cluster)
    assert agent_run.rollout(cluster, rollout_job(), clock, clock.sleep) == 0
    assert "3 node(s) run slight@1.2.3" in capsys.readouterr().err


def test_a_rollout_stops_at_the_node_whose_agent_keeps_failing_and_names_it_and_the_reason():
    failing = node("b", pool="p", desired=NEW, state="failed", attempts=3,
                   reason="sha256 mismatch for https://x/y: expected a, got b; nothing was changed")
    cluster = FakeCluster([
        {"ds": ds(NEW, 3, 1, 2), "pods": [pod("b", NEW, False), pod("a", OLD, True), pod("c", OLD, True)],
         "nodes": node("b", pool="p", desired=NEW, state="failed", attempts=1, reason="sha256 mismatch")},
        {"ds": ds(NEW, 3, 1, 2), "pods": [pod("b", NEW, False), pod("a", OLD, True), pod("c", OLD, True)],
         "nodes": failing},
    ])
    clock = Clock(cluster)
    with pytest.raises(RunError) as exc:
        agent_run.rollout(cluster, rollout_job(), clock, clock.sleep)
    text = str(exc.value)
    assert "the rollout stopped at node b: sha256 mismatch for https://x/y" in text
    assert "(3 attempts)" in text and "0 of 3 node(s) run the new state" in text
    assert "every node not yet reached keeps what it ran" in text
    assert cluster.i == 1  # the first report (1 attempt) did not fail the rollout


def test_a_failure_reported_for_an_older_state_does_not_fail_the_new_rollout():
    cluster = FakeCluster([
        {"ds": ds(NEW, 1, 1, 0), "pods": [pod("a", NEW, False)],
         "nodes": node("a", pool="p", desired=OLD, state="failed", attempts=9, reason="old")},
        {"ds": ds(NEW, 1, 1, 1), "pods": [pod("a", NEW, True)]},
    ])
    clock = Clock(cluster)
    assert agent_run.rollout(cluster, rollout_job(), clock, clock.sleep) == 0


@pytest.mark.parametrize("reason", ["ImagePullBackOff", "CrashLoopBackOff"])
def test_an_agent_pod_that_cannot_start_fails_the_rollout_at_once_with_the_kubelets_reason(reason):
    cluster = FakeCluster([{"ds": ds(NEW, 2, 1, 1), "pods": [pod("a", NEW, False, waiting=reason),
                                                             pod("b", OLD, True)]}])
    clock = Clock(cluster)
    with pytest.raises(RunError, match=f"node a: the agent pod agent-a cannot start: {reason}"):
        agent_run.rollout(cluster, rollout_job(), clock, clock.sleep)


def test_a_refused_node_fails_the_rollout_with_the_agents_reason():
    cluster = FakeCluster([{"ds": ds(NEW, 1, 1, 0), "pods": [pod("a", NEW, False)],
                            "nodes": node("a", desired=NEW, state="refused",
                                          reason="node a is selected by pools p and q")}])
    clock = Clock(cluster)
    with pytest.raises(RunError, match="stopped at node a: node a is selected by pools p and q"):
        agent_run.rollout(cluster, rollout_job(), clock, clock.sleep)


def test_a_rollout_that_does_not_finish_in_time_names_the_nodes_it_waits_for():
    cluster = FakeCluster([{"ds": ds(NEW, 2, 1, 1), "pods": [pod("a", NEW, False), pod("b", OLD, True)],
                            "nodes": node("a", desired=NEW, state="converging")}])
    clock = Clock(cluster)
    with pytest.raises(RunError) as exc:
        agent_run.rollout(cluster, rollout_job(timeout=30), clock, clock.sleep)
    assert "did not finish within 30s: 1 of 2 node(s) updated" in str(exc.value)
    assert "a (converging: -)" in str(exc.value)
    assert 30 < clock.t <= 34


def test_a_rollout_timeout_quotes_the_last_log_line_of_an_agent_that_could_not_report():
    cluster = FakeCluster([{"ds": ds(NEW, 1, 1, 0), "pods": [pod("a", NEW, False)],
                            "logs": {"agent-a": "wsf-agent[p/a]: failed: read node a: HTTP 403: forbidden"}}])
    clock = Clock(cluster)
    with pytest.raises(RunError) as exc:
        agent_run.rollout(cluster, rollout_job(timeout=30), clock, clock.sleep)
    assert "a (no report; its agent last logged: wsf-agent[p/a]: failed: read node a: HTTP 403" in str(exc.value)


def test_a_rollout_of_a_daemonset_changed_outside_pulumi_is_an_error():
    cluster = FakeCluster([{"ds": ds(OLD, 1, 1, 1)}])
    clock = Clock(cluster)
    with pytest.raises(RunError, match="runs state 'oooo"):
        agent_run.rollout(cluster, rollout_job(), clock, clock.sleep)


def uninstall_job() -> dict:
    plan = plan_from_config(agent_stack([agent_pool("p", ["slight@1.2.3"])]))[1]
    return json.loads(agent.job_text(agent.uninstall_job(plan.agent_pools[0], namespace="wsf", image=IMAGE,
                                                         desired=NEW)))


def test_the_uninstall_waits_for_the_pools_agents_to_go_then_runs_until_every_node_is_done_and_cleans_up():
    gone = "wsf-agent-p-uninstall"
    cluster = FakeCluster([
        {"pods": [pod("a", NEW, True)]},  # an agent of the pool still finishing its pass
        {"pods": []},
        {"ds": ds(NEW, 2, 2, 1, name=gone), "pods": [pod("a", NEW, True, "uninstall"),
                                                     pod("b", NEW, False, "uninstall")]},
        {"ds": ds(NEW, 2, 2, 2, name=gone), "pods": [pod("a", NEW, True, "uninstall"),
                                                     pod("b", NEW, True, "uninstall")]},
    ])
    clock = Clock(cluster)
    assert agent_run.uninstall(cluster, uninstall_job(), clock, clock.sleep) == 0
    (applied,) = cluster.applied
    assert applied["metadata"]["name"] == gone
    assert applied["at"] == 1  # applied at the first step without the pool's own agents, not before
    assert cluster.deleted == [gone]


def test_a_node_that_cannot_uninstall_fails_the_destroy_naming_it_and_the_uninstall_daemonset_goes_anyway():
    gone = "wsf-agent-p-uninstall"
    cluster = FakeCluster([{"ds": ds(NEW, 1, 1, 0, name=gone), "pods": [pod("a", NEW, False, "uninstall")],
                            "nodes": node("a", state="failed", attempts=3,
                                          reason="refusing to remove containerd-shim-x: still in use")}])
    clock = Clock(cluster)
    with pytest.raises(RunError, match="node a cannot uninstall: refusing to remove containerd-shim-x"):
        agent_run.uninstall(cluster, uninstall_job(), clock, clock.sleep)
    assert cluster.deleted == [gone]


def test_the_runner_refuses_a_job_that_is_not_json_or_not_known(capsys):
    assert agent_run.main(["--job", "{not json"]) == 2
    assert agent_run.main(["--job", json.dumps({"action": "explode"})]) == 2
    assert agent_run.main(["--job", json.dumps({"action": "none"})]) == 0
    err = capsys.readouterr().err
    assert "is not JSON" in err and "unknown job action 'explode'" in err


def test_a_stack_mixes_ssh_local_in_cluster_and_agent_pools(mocks):
    """Every kind of pool in one stack: each builds its own resources, the RuntimeClasses cover them all."""
    from components.agent import AgentSettings
    from components.fleet import ShimFleet, ShimFleetArgs
    from components.incluster import InCluster
    from components.nodepool import SshConnection
    from tests.conftest import KEY

    raw = agent_stack([agent_pool("ag", ["slight@1.2.4"])], runnerImage=IMAGE)
    raw["ssh"] = {"user": "root", "privateKey": "k"}
    raw["nodePools"] += [
        {"name": "s", "containerd": "containerd-1", "releases": ["slight@1.2.3"],
         "nodes": [{"name": "node-s", "host": "10.0.0.4",
                    "hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMixedStack"}]},
        {"name": "l", "containerd": "containerd-1", "transport": "local", "releases": ["slight@1.2.3"],
         "nodes": [{"name": "node-l"}]},
        {"name": "k", "containerd": "containerd-2", "transport": "kubernetes", "releases": ["slight@1.2.4"],
         "nodes": [{"name": "node-k"}]},
    ]

    @pulumi.runtime.test
    def program():
        cfg, plan = plan_from_config(raw)
        assert plan.ok, plan.errors
        fleet = ShimFleet("fleet", ShimFleetArgs(
            plan=plan, ssh=SshConnection("root", 22, pulumi.Output.secret(KEY)), local_base="/srv/project",
            in_cluster=InCluster(IMAGE), agents=AgentSettings(image=IMAGE)))
        return pulumi.Output.from_input(fleet.urn)

    program()
    assert {"fleet-s-node-s-handlers", "fleet-l-node-l-handlers", "fleet-k-node-k-handlers",
            "fleet-ag-daemonset", "fleet-ag-rollout"} <= set(mocks.resources)
    assert "fleet-classes-wasmtime-slight-v1-2-4" in mocks.resources  # called for by pools k and ag
