"""Agent pools (`transport: agent`) in the pure core: their config rules, their plan, the agent's state and the
objects the program puts in the cluster (components/core/agent.py)."""

from __future__ import annotations

import json

import pytest

from components.core import agent, naming, nodescript
from components.core.config import check_config
from components.core.plan import FleetPlan
from tests.conftest import IMAGE, agent_pool, agent_stack, errors, planned, pool, stack, warnings


# ------------------------------------------------------------------------------------------- config
def test_a_pool_with_a_node_selector_is_an_agent_pool_with_safe_rollout_defaults():
    cfg, problems = check_config(agent_stack([agent_pool("spin-3", ["slight@1.2.3"])]))
    assert [p for p in problems if p.severity == "error"] == []
    (p,) = cfg.pools
    assert (p.transport, p.node_selector, p.nodes) == ("agent", {"example.org/wasm-pool": "spin-3"}, ())
    assert (p.rollout.max_unavailable, p.rollout.min_ready_seconds, p.rollout.timeout_seconds) == (1, 0, 600)
    assert p.check_seconds == 60


def test_an_agent_pool_pins_releases_so_they_count_as_used():
    raw = agent_stack([agent_pool("spin-3", ["slight@1.2.3"])])
    assert not any("slight@1.2.3 is in the catalog but installed on no node" in w for w in warnings(raw).values())
    assert not any("has no nodes" in w for w in warnings(raw).values())


@pytest.mark.parametrize(("change", "path", "words"), [
    ({"nodes": [{"name": "n1"}]}, "nodePools[0].nodes", "chooses its nodes by nodeSelector"),
    ({"nodeSelector": {}}, "nodePools[0].nodeSelector", "would select every node"),
    ({"nodeSelector": None, "transport": "agent"}, "nodePools[0].nodeSelector", "missing"),
    ({"nodeSelector": {"Bad Key": "x"}}, "nodePools[0].nodeSelector.Bad Key", "is not a label key"),
    ({"nodeSelector": {"a/b/c": "x"}}, "nodePools[0].nodeSelector.a/b/c", "prefix"),
    ({"nodeSelector": {"pool": "-x"}}, "nodePools[0].nodeSelector.pool", "is not a label value"),
    ({"nodeSelector": {"pool": True}}, "nodePools[0].nodeSelector.pool", "a label value is a string"),
    ({"rollout": {"maxUnavailable": 0}}, "nodePools[0].rollout.maxUnavailable", ">= 1"),
    ({"rollout": {"maxUnavailable": "200%"}}, "nodePools[0].rollout.maxUnavailable", "percentage"),
    ({"rollout": {"minReadySeconds": -1}}, "nodePools[0].rollout.minReadySeconds", "from 0 to 3600"),
    ({"rollout": {"timeoutSeconds": 5}}, "nodePools[0].rollout.timeoutSeconds", "from 30 to"),
    ({"rollout": {"maxUnavailabel": 2}}, "nodePools[0].rollout.maxUnavailabel", "did you mean maxUnavailable"),
    ({"checkSeconds": 1}, "nodePools[0].checkSeconds", "from 10 to 3600"),
    ({"localRoot": "nodes"}, "nodePools[0].localRoot", "only for transport local"),
    ({"nodeSelector": {"wasmtime-slight-v1-2-3": "true"}}, "nodePools[0].nodeSelector.wasmtime-slight-v1-2-3",
     "a label the node agents set themselves"),
    ({"nodeSelector": {naming.CLAIM_LABEL: "x"}}, f"nodePools[0].nodeSelector.{naming.CLAIM_LABEL}",
     "a label the node agents set themselves"),
])
def test_a_bad_agent_pool_setting_is_an_error_naming_its_path(change, path, words):
    p = agent_pool("spin-3", ["slight@1.2.3"])
    p.update({k: v for k, v in change.items() if v is not None})
    for k in (k for k, v in change.items() if v is None):
        del p[k]
    found = errors(agent_stack([p]))
    assert words in found.get(path, ""), found


def test_a_percentage_of_nodes_is_a_valid_max_unavailable():
    cfg, _ = check_config(agent_stack([agent_pool("p", ["slight@1.2.3"], rollout={"maxUnavailable": "25%",
                                                                                  "minReadySeconds": 30})]))
    assert (cfg.pools[0].rollout.max_unavailable, cfg.pools[0].rollout.min_ready_seconds) == ("25%", 30)


def test_settings_of_agent_pools_on_a_pool_that_lists_nodes_are_errors():
    raw = stack([pool("a", ["slight@1.2.3"], ["node-a"], transport="ssh", nodeSelector={"x": "y"},
                      rollout={"minReadySeconds": 30, "timeoutSeconds": 900}, checkSeconds=60)])
    found = errors(raw)
    assert "lists its nodes by name" in found["nodePools[0].nodeSelector"]
    for key in ("minReadySeconds", "timeoutSeconds"):
        said = found[f"nodePools[0].rollout.{key}"]
        assert "applies to pools of transport agent" in said and f"remove {key}" in said, found
    assert "nodePools[0].checkSeconds" in found
    # without a transport, a nodeSelector makes the pool an agent pool: then its node list is the mistake
    implied = stack([pool("a", ["slight@1.2.3"], ["node-a"], nodeSelector={"x": "y"})])
    assert "transport agent" in errors(implied)["nodePools[0].nodes"]


def test_two_agent_pools_with_the_same_selector_are_an_error_and_overlapping_ones_a_warning():
    same = agent_stack([agent_pool("a", ["slight@1.2.3"], {"g": "wasm"}),
                        agent_pool("b", ["slight@1.2.4"], {"g": "wasm"})])
    assert "selects the same nodes as pool 'a'" in errors(same)["nodePools[1].nodeSelector"]
    overlap = agent_stack([agent_pool("a", ["slight@1.2.3"], {"g": "wasm"}),
                           agent_pool("b", ["slight@1.2.4"], {"g": "wasm", "zone": "z1"})])
    assert errors(overlap) == {}
    assert any("both select a node labelled g=wasm, zone=z1" in w for w in warnings(overlap).values())
    exclusive = agent_stack([agent_pool("a", ["slight@1.2.3"], {"g": "wasm-a"}),
                             agent_pool("b", ["slight@1.2.4"], {"g": "wasm-b"})])
    assert not any("select" in w for w in warnings(exclusive).values())


def test_agent_pools_need_a_pinned_agent_image_and_a_cluster():
    raw = agent_stack([agent_pool("p", ["slight@1.2.3"])])
    del raw["kubernetes"]["agentImage"]
    e = errors(raw)["kubernetes.agentImage"]
    assert e.startswith("missing") and "deploy/agent" in e
    raw["kubernetes"]["agentImage"] = "registry.example.org/agent:latest"
    e = errors(raw)["kubernetes.agentImage"]
    assert "not pinned by digest" in e and "'registry.example.org/agent:latest'" in e and "\n" not in e
    raw["kubernetes"] = {"agentImage": IMAGE, "renderDir": "rendered/x"}
    assert "renderDir" in errors(raw)["nodePools[0].transport"]


@pytest.mark.parametrize(("key", "value", "words"), [
    ("agentNamespace", "kube-system", "a namespace Kubernetes itself uses"),
    ("agentNamespace", "default", "a namespace Kubernetes itself uses"),
    ("agentNamespace", "Bad_NS", "is not a DNS label"),
    ("agentApiServer", "10.0.0.1", "is not host:port"),
    ("agentApiServer", "https://10.0.0.1:6443", "is not host:port"),
    ("agentApiServer", "::1:6443", "is not host:port"),
])
def test_bad_agent_settings_of_the_cluster_are_errors(key, value, words):
    raw = agent_stack([agent_pool("p", ["slight@1.2.3"])], **{key: value})
    e = errors(raw)[f"kubernetes.{key}"]
    assert words in e and "\n" not in e


@pytest.mark.parametrize("value", ["10.0.0.1:6443", "[fd00::1]:6443", "api.example.org:443"])
def test_an_api_server_address_for_the_agents_is_host_and_port(value):
    cfg, problems = check_config(agent_stack([agent_pool("p", ["slight@1.2.3"])], agentApiServer=value))
    assert cfg.kubernetes.agent_api_server == value and not [p for p in problems if p.severity == "error"]


# --------------------------------------------------------------------------------------------- plan
def test_an_agent_pool_plans_what_each_of_its_nodes_runs_and_no_node():
    plan = planned(agent_stack([agent_pool("p", ["slight@1.2.3", "slight@1.2.4"])]))
    assert plan.nodes == ()
    (a,) = plan.agent_pools
    assert (a.name, a.node.name, a.node.transport, a.node.flavor) == ("p", "p", "agent", "containerd-2")
    assert a.node.handlers["slight-v1-2"] == "io.containerd.slight-v1-2-4.v1"
    assert sorted(a.node.binaries) == ["containerd-shim-slight-v1-2-3-v1", "containerd-shim-slight-v1-2-4-v1"]
    assert "wasmtime-slight-v1-2-3" in a.labels and "wasmtime-slight-enabled" in a.labels


def test_runtime_classes_follow_the_labels_of_agent_pools_and_node_pools_together():
    raw = agent_stack([agent_pool("p", ["slight@1.2.4"]), pool("n", ["slight@1.2.3"], ["node-n"])])
    raw["ssh"] = {"user": "root", "privateKey": "k"}
    plan = planned(raw)
    names = {rc.name for rc in plan.runtime_classes}
    assert {"wasmtime-slight-v1-2-3", "wasmtime-slight-v1-2-4", "wasmtime-slight-v1-2"} <= names
    assert plan.runtime_class("wasmtime-slight-v1-2").handler == "slight-v1-2"


def test_a_plan_with_agent_pools_round_trips_through_json_and_one_without_records_no_key_for_them():
    plan = planned(agent_stack([agent_pool("p", ["slight@1.2.3"], rollout={"maxUnavailable": "25%"})]))
    doc = plan.to_json()
    back = FleetPlan.from_json(json.loads(json.dumps(doc)))
    assert back.agent_pools == plan.agent_pools
    without = planned(stack([pool("n", ["slight@1.2.3"], ["node-n"])]))
    assert "agentPools" not in without.to_json()


# -------------------------------------------------------------------------------------- the state
def test_the_agent_state_maps_each_label_to_the_handler_its_class_names():
    plan = planned(agent_stack([agent_pool("p", ["slight@1.2.3", "slight@1.2.4"])]))
    state = agent.agent_state(plan, plan.agent_pools[0])
    assert state["labels"]["wasmtime-slight-enabled"] == "slight"
    assert state["labels"]["wasmtime-slight-v1-2-3"] == "slight-v1-2-3"
    assert set(state["labels"]) == set(plan.agent_pools[0].labels)
    for label, handler in state["labels"].items():
        assert handler in state["handlers"], label
    assert (state["claimLabel"], state["fleetLabelPrefix"]) == (naming.CLAIM_LABEL, "wasmtime-")
    assert state["statusAnnotation"] == "p.agent.wasm-shim-fleet.io/status"
    assert state["fieldManager"] == "wasm-shim-fleet-agent-p"


def test_a_label_prefix_reaches_the_agent_state_and_the_admission_policy():
    raw = agent_stack([agent_pool("p", ["slight@1.2.3"])])
    raw["labelPrefix"] = "wasm.example.org/"
    plan = planned(raw)
    state = agent.agent_state(plan, plan.agent_pools[0])
    assert state["fleetLabelPrefix"] == "wasm.example.org/wasmtime-"
    assert all(k.startswith("wasm.example.org/wasmtime-") for k in state["labels"])
    policy = json.dumps(agent.admission_policy("ns", plan.runtime, plan.label_prefix))
    assert "k.startsWith('wasm.example.org/wasmtime-')" in policy


def test_the_agent_scripts_are_the_kit_calls_of_the_other_transports():
    plan = planned(agent_stack([agent_pool("p", ["slight@1.2.3"])]))
    node = plan.agent_pools[0].node
    scripts = nodescript.agent_scripts(node)
    (binary,) = node.binaries.values()
    assert nodescript.install_binary_script(node, binary) in scripts["binaries"]
    assert nodescript.apply_table_script(node) in scripts["table"]
    assert "prune-binaries \\\n    'containerd-shim-slight-v1-2-3-v1'\n" in scripts["table"]
    assert nodescript.remove_table_script(node) in scripts["uninstall"]
    assert "# wasm-shim-fleet: install slight@1.2.3 on each node of pool p" in scripts["binaries"]
    assert scripts["status"].rstrip().endswith("wsf 1 containerd-2 status")


def test_the_desired_hash_changes_with_what_the_agents_run_and_only_then():
    base = agent_stack([agent_pool("p", ["slight@1.2.3"])])
    plan = planned(base)
    state = agent.agent_state(plan, plan.agent_pools[0])
    h = agent.desired_hash(state, image=IMAGE, api_server=None)
    assert h == agent.desired_hash(agent.agent_state(planned(base), planned(base).agent_pools[0]), image=IMAGE,
                                   api_server=None)
    bumped = agent_stack([agent_pool("p", ["slight@1.2.3", "slight@1.2.4"])])
    bp = planned(bumped)
    assert agent.desired_hash(agent.agent_state(bp, bp.agent_pools[0]), image=IMAGE, api_server=None) != h
    assert agent.desired_hash(state, image=IMAGE.replace("ab", "cd"), api_server=None) != h
    assert agent.desired_hash(state, image=IMAGE, api_server="10.0.0.1:6443") != h
    assert agent.desired_hash(state, image=IMAGE, api_server=None, kit=nodescript.kit_text() + "\n") != h


def test_the_daemonset_rolls_node_by_node_on_the_pools_nodes_with_its_releases_in_words():
    raw = agent_stack([agent_pool("p", ["slight@1.2.3", "slight@1.2.4"], {"g": "wasm"},
                                  rollout={"maxUnavailable": 2, "minReadySeconds": 30})])
    plan = planned(raw)
    ds = agent.daemonset(plan.agent_pools[0], namespace="wsf", image=IMAGE, desired="d" * 64)
    spec = ds["spec"]
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2, "maxSurge": 0}}
    assert spec["minReadySeconds"] == 30
    tpl = spec["template"]
    assert tpl["metadata"]["annotations"][agent.RELEASES_ANNOTATION] == "slight@1.2.3 slight@1.2.4"
    assert tpl["metadata"]["annotations"][agent.DESIRED_ANNOTATION] == "d" * 64
    assert tpl["spec"]["nodeSelector"] == {"g": "wasm"}
    assert set(spec["selector"]["matchLabels"].items()) <= set(tpl["metadata"]["labels"].items())
    (c,) = tpl["spec"]["containers"]
    assert c["image"] == IMAGE and c["readinessProbe"]["exec"]["command"] == ["/wsf-agent", "ready"]
    assert {e["name"]: e.get("value") for e in c["env"]}["WSF_AGENT_MODE"] == "install"
    assert "KUBERNETES_SERVICE_HOST" not in {e["name"] for e in c["env"]}
    assert tpl["spec"]["volumes"][0]["configMap"]["name"] == agent.config_map_name("p", "d" * 64)
    assert tpl["spec"]["serviceAccountName"] == "wsf-agent-p"


def test_the_uninstall_daemonset_is_another_daemonset_on_the_same_nodes_with_its_own_pods():
    plan = planned(agent_stack([agent_pool("p", ["slight@1.2.3"])]))
    a = plan.agent_pools[0]
    install = agent.daemonset(a, namespace="wsf", image=IMAGE, desired="d" * 64)
    gone = agent.daemonset(a, namespace="wsf", image=IMAGE, desired="d" * 64, mode="uninstall",
                           api_server="[fd00::1]:6443")
    assert gone["metadata"]["name"] == "wsf-agent-p-uninstall" != install["metadata"]["name"]
    assert gone["spec"]["template"]["spec"]["nodeSelector"] == install["spec"]["template"]["spec"]["nodeSelector"]
    assert gone["spec"]["selector"] != install["spec"]["selector"]
    env = {e["name"]: e.get("value") for e in gone["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (env["WSF_AGENT_MODE"], env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"]) == \
        ("uninstall", "fd00::1", "6443")
    with pytest.raises(ValueError):
        agent.daemonset(a, namespace="wsf", image=IMAGE, desired="d" * 64, mode="sideways")


def test_the_agents_rbac_reads_and_patches_nodes_and_writes_events_in_their_namespace_only():
    cr = agent.cluster_role("wsf")
    assert cr["rules"] == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "patch"]}]
    r = agent.role("wsf")
    assert r["metadata"]["namespace"] == "wsf"
    assert {res for rule in r["rules"] for res in rule["resources"]} == {"events", "daemonsets"}
    # bound to the namespace's ServiceAccounts as a group: a binding that stays while pools come and go (a pool
    # being removed keeps its rights until its uninstall is done)
    for binding in (agent.cluster_role_binding("wsf"), agent.role_binding("wsf")):
        assert binding["subjects"] == [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io",
                                        "name": "system:serviceaccounts:wsf"}]


def test_the_admission_policy_applies_to_the_agents_service_accounts_only():
    vap = agent.admission_policy("wsf", "wasmtime")
    (cond,) = vap["spec"]["matchConditions"]
    assert cond["expression"] == "request.userInfo.username.startsWith('system:serviceaccount:wsf:')"
    assert vap["spec"]["failurePolicy"] == "Fail"
    assert agent.admission_policy_binding("wsf")["spec"]["validationActions"] == ["Deny"]
    with pytest.raises(ValueError):
        agent._cel("it's")


def test_a_status_annotation_is_read_back_and_garbage_is_no_status():
    doc = {"pool": "p", "state": "failed", "reason": "sha256 mismatch", "attempts": 3}
    assert agent.parse_status(json.dumps(doc)) == doc
    assert agent.parse_status("not json") is None and agent.parse_status(None) is None
    assert agent.parse_status("[1]") is None


def test_a_selector_matches_a_node_with_every_label_and_value():
    assert agent.selects({"a": "1", "b": "2"}, {"a": "1", "b": "2", "c": "3"})
    assert not agent.selects({"a": "1", "b": "2"}, {"a": "1"})
    assert not agent.selects({"a": "1"}, {"a": "2"})
