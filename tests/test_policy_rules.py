"""The policy pack's rules, called directly on what the components register: the fleet built under Pulumi mocks
(real components, a mock engine that records each resource's type, name and inputs), in the {type, name, urn,
props} shape the pack's __main__.py hands the rules."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pulumi
import pytest

from components.core import nodescript
from components.core.plan import plan_from_config
from policy import rules
from policy.pack_config import pack_config
from tests.conftest import SHA, Recorder, policy_venv, pool, run_fleet, stack, write_stack

ROOT = Path(__file__).resolve().parents[1]
VERSIONS = ("1.2.3", "1.2.4", "2.0.0")


def urn(type_: str, name: str) -> str:
    return f"urn:pulumi:t::wasm-shim-fleet::{type_}::{name}"


def resources(raw: dict, transport: str = "ssh") -> list[dict]:
    """What the components register for a config, as the pack sees it ({type, name, urn, props}): the resources
    the fleet really registers, recorded under Pulumi mocks (tests/conftest.py), their inputs as props; with
    transport local, every pool's nodes are node-root folders."""
    raw = copy.deepcopy(raw)
    if transport == "local":
        for p in raw["nodePools"]:
            p["transport"] = "local"
            for n in p["nodes"]:
                n.pop("host", None)
    recorder = Recorder()
    registered: dict[str, dict] = {}  # component name -> what it passed to register_outputs
    register = pulumi.ComponentResource.register_outputs

    def record(self, outputs):
        registered[self._name] = outputs  # noqa: SLF001 - the mock engine is not told a component's outputs
        return register(self, outputs)

    with tempfile.TemporaryDirectory() as cache:
        saved = os.environ.get("XDG_CACHE_HOME")
        os.environ["XDG_CACHE_HOME"] = cache  # the kit is staged there, not in the user's cache
        pulumi.runtime.set_mocks(recorder, preview=False)
        pulumi.ComponentResource.register_outputs = record
        try:
            run_fleet(raw)
        finally:
            pulumi.ComponentResource.register_outputs = register
            pulumi.runtime.settings.reset_options()
            if saved is None:
                del os.environ["XDG_CACHE_HOME"]
            else:
                os.environ["XDG_CACHE_HOME"] = saved
    out = []
    for name, r in recorder.resources.items():
        res = {"type": r.typ, "name": name, "urn": urn(r.typ, name), "props": copy.deepcopy(dict(r.inputs))}
        if name in registered and r.typ in (rules.NODE_POOL, rules.RUNTIME_CLASS_SET):
            res["outputs"] = copy.deepcopy(registered[name])
        out.append(res)
    return out


def config(pools: list[dict], **extra) -> dict:
    return stack(pools, versions=VERSIONS, **extra)


def by_type(res, type_):
    return [r for r in res if r["type"] == type_]


@pytest.fixture
def fleet(test_plan_stack) -> list[dict]:
    return resources(test_plan_stack)


def test_the_resources_are_those_the_components_register_with_their_names(fleet):
    names = {r["name"] for r in fleet}
    assert {"fleet-a", "fleet-a-node-a-labels", "fleet-a-node-a-handlers", "fleet-classes",
            "fleet-classes-wasmtime-slight-v1-2", "fleet-a-node-a-bin-containerd-shim-slight-v1-2-3-v1"} <= names
    assert {r["type"] for r in fleet} >= {rules.NODE_POOL, rules.NODE_PATCH, rules.RUNTIME_CLASS, *rules.COMMANDS[:1]}


# ------------------------------------------------------------------------------- handler on nodes
def test_a_planned_fleet_has_every_selected_handler(fleet):
    assert rules.handler_on_selected_nodes(fleet) == []


def test_a_class_selecting_a_node_without_its_handler_is_a_violation(fleet):
    # The proposal's trap: a series class whose handler is one exact version, selecting the series label.
    [rc] = [r for r in by_type(fleet, rules.RUNTIME_CLASS) if r["props"]["metadata"]["name"] == "wasmtime-slight-v1-2"]
    rc["props"]["handler"] = "slight-v1-2-3"
    [v] = rules.handler_on_selected_nodes(fleet)
    assert v.urn == urn(rules.RUNTIME_CLASS, "fleet-classes-wasmtime-slight-v1-2")
    assert "selects node node-b (pool b, by wasmtime-slight-v1-2=true)" in v.message
    assert "no containerd handler 'slight-v1-2-3'" in v.message


def test_labels_set_by_a_node_patch_count_even_when_the_pool_does_not_list_them(fleet):
    [patch] = [r for r in by_type(fleet, rules.NODE_PATCH) if r["props"]["metadata"]["name"] == "node-a"]
    patch["props"]["metadata"]["labels"]["wasmtime-slight-v1-2-4"] = "true"
    [v] = rules.handler_on_selected_nodes(fleet)
    assert "selects node node-a" in v.message and "'slight-v1-2-4'" in v.message


def test_the_class_sets_outputs_stand_in_for_classes_not_yet_visible(fleet):
    only_set = [r for r in as_outputs(fleet) if r["type"] != rules.RUNTIME_CLASS]
    assert {rc.name for rc in rules.runtime_classes(only_set)} == {
        rc.name for rc in rules.runtime_classes(fleet)}
    [class_set] = by_type(only_set, rules.RUNTIME_CLASS_SET)
    class_set["props"]["runtime_classes"][0]["handler"] = "nope"
    assert len(rules.handler_on_selected_nodes(only_set)) >= 1


def test_a_class_with_an_empty_selector_must_be_on_every_node(fleet):
    fleet.append({"type": rules.RUNTIME_CLASS, "name": "x", "urn": "urn:x",
                  "props": {"metadata": {"name": "wasmtime-slight-v1-2-4"}, "handler": "slight-v1-2-4"}})
    fleet = [r for r in fleet if not (r["type"] == rules.RUNTIME_CLASS
                                      and r["name"] == "fleet-classes-wasmtime-slight-v1-2-4")]
    assert {v.message.split(" selects node ")[1].split(" ")[0] for v in rules.handler_on_selected_nodes(fleet)} \
        == {"node-a"}


def test_unknown_values_during_preview_are_not_reported(fleet):
    for r in by_type(fleet, rules.RUNTIME_CLASS):
        r["props"].pop("handler")
    for r in by_type(fleet, rules.RUNTIME_CLASS_SET):
        r["props"] = {}
    assert rules.handler_on_selected_nodes(fleet) == []


# ------------------------------------------------------------------------------- handler unchanged
HANDLER_CASES = [
    ("exact class", "wasmtime-slight-v1-2-3", "slight-v1-2-3", "wasmtime", False),
    ("series class", "wasmtime-slight-v1-2", "slight-v1-2", "wasmtime", False),
    ("any-version class", "wasmtime-slight", "slight", "wasmtime", False),
    ("series class pointing at an exact handler", "wasmtime-slight-v1-2", "slight-v1-2-3", "wasmtime", True),
    ("another runtime prefix", "spin-slight-v1", "slight-v1", "spin", False),
    ("the wrong runtime prefix", "wasmtime-slight-v1", "slight-v1", "spin", True),
    ("an auto-named class", None, "slight-v1", "wasmtime", True),
    ("a handler unknown in preview", "wasmtime-slight-v1", None, "wasmtime", False),
]


@pytest.mark.parametrize("name,handler,runtime,bad", [c[1:] for c in HANDLER_CASES], ids=[c[0] for c in HANDLER_CASES])
def test_a_class_handler_is_its_name_without_the_runtime_prefix(name, handler, runtime, bad):
    assert bool(rules.handler_fixed_by_name(name, handler, runtime)) == bad


def test_the_message_says_what_the_name_implies():
    [m] = rules.handler_fixed_by_name("wasmtime-slight-v1-2", "slight-v1-2-3")
    assert "'slight-v1-2'" in m and "immutable" in m


def test_with_previous_handlers_a_change_is_reported_directly(fleet):
    [rc] = [r for r in by_type(fleet, rules.RUNTIME_CLASS) if r["props"]["metadata"]["name"] == "wasmtime-slight"]
    assert rules.runtime_class_violations(rc, previous={"wasmtime-slight": "slight"}) == []
    msgs = rules.runtime_class_violations(rc, previous={"wasmtime-slight": "slight-v1"})
    assert any("would change handler from 'slight-v1' to 'slight'" in m for m in msgs)
    assert rules.runtime_class_violations(by_type(fleet, rules.NODE_POOL)[0]) == []  # other types: not ours


# -------------------------------------------------------------------------------------- checksums
def test_planned_install_commands_carry_their_sha256(fleet):
    assert all(rules.binary_command_violations(r) == [] for r in fleet)
    assert rules.binaries_covered(fleet) == []


@pytest.mark.parametrize(("transport", "type_"), [("ssh", "command:remote:Command"),
                                                   ("local", "command:local:Command")])
def test_a_binary_command_without_digest_or_check_is_a_violation(test_plan_stack, transport, type_):
    cmd = next(r for r in resources(test_plan_stack, transport) if rules.is_binary_command(r))
    assert cmd["type"] == type_
    cmd["props"]["create"] = "curl -fsSL https://example.org/x -o /usr/local/bin/containerd-shim-x-v1"
    msgs = rules.binary_command_violations(cmd)
    assert len(msgs) == 2 and "no sha256" in msgs[0] and "install-binary call" in msgs[1]


def test_a_kit_install_call_with_a_bad_digest_is_a_violation(test_plan_stack):
    # the install of 1.2.3 (the mock engine records resources in the order the SDK registers them, not a fixed one)
    cmd = next(r for r in resources(test_plan_stack)
               if rules.is_binary_command(r) and SHA["1.2.3"] in r["props"]["create"])
    cmd["props"]["create"] = cmd["props"]["create"].replace(SHA["1.2.3"], "abc")
    [msg] = rules.binary_command_violations(cmd)
    assert "'abc' where the artifact's sha256" in msg


def test_binary_commands_are_found_by_what_their_script_does_not_by_their_name():
    cmd = {"type": "command:remote:Command", "name": "fleet-a-node-a-bin-x", "props": {"create": "true"}}
    assert rules.binary_command_violations(cmd) == []  # the name alone says nothing
    cmd["name"] = "anything"
    cmd["props"]["create"] = "cp /tmp/x /usr/local/bin/containerd-shim-x-v1"
    assert rules.binary_command_violations(cmd) != []
    cmd["props"] = {}  # unknown in preview
    assert rules.binary_command_violations(cmd) == []


def test_a_planned_binary_whose_digest_no_command_checks_is_a_violation(fleet):
    cmd = next(r for r in fleet if rules.is_binary_command(r) and SHA["1.2.4"] in r["props"]["create"])
    cmd["props"]["create"] = cmd["props"]["create"].replace(SHA["1.2.4"], "0" * 64)
    others = [r for r in fleet if rules.is_binary_command(r) and SHA["1.2.4"] in r["props"]["create"]]
    for r in others:
        r["props"]["create"] = r["props"]["create"].replace(SHA["1.2.4"], "0" * 64)
    violations = rules.binaries_covered(fleet)
    assert {v.message.split(" on node ")[1].split(" ")[0] for v in violations} == {"node-b", "node-c"}
    assert all(v.urn.startswith(urn(rules.NODE_POOL, "fleet-")) for v in violations)


# ------------------------------------------------------------- NodePool outputs (what the engine shows)
def as_outputs(res: list[dict]) -> list[dict]:
    """What a stack policy sees under the engine (AnalyzeStack): each component's registered outputs as its props."""
    return [{k: v for k, v in {**r, "props": r.get("outputs", r["props"])}.items() if k != "outputs"} for r in res]


def test_the_outputs_shape_is_read_like_the_inputs_shape(fleet):
    outputs = as_outputs(fleet)
    assert rules.handler_on_selected_nodes(outputs) == []
    assert rules.binaries_covered(outputs) == []
    nodes = rules.fleet_nodes(outputs)
    assert nodes["node-c"].pool == "fleet-c"  # outputs carry no pool name: the component's name stands in
    assert nodes["node-c"].binaries["containerd-shim-slight-v1-2-4-v1"]["sha256"] == SHA["1.2.4"]


def test_with_outputs_a_class_selecting_a_node_without_its_handler_is_still_a_violation(fleet):
    outputs = as_outputs(fleet)
    [rc] = [r for r in by_type(outputs, rules.RUNTIME_CLASS)
            if r["props"]["metadata"]["name"] == "wasmtime-slight-v1-2"]
    rc["props"]["handler"] = "slight-v1-2-3"
    [v] = rules.handler_on_selected_nodes(outputs)
    assert "selects node node-b" in v.message


def test_with_outputs_an_unchecked_digest_is_still_a_violation(fleet):
    outputs = as_outputs(fleet)
    for r in outputs:
        if rules.is_binary_command(r) and SHA["1.2.4"] in r["props"]["create"]:
            r["props"]["create"] = r["props"]["create"].replace(SHA["1.2.4"], "0" * 64)
    violations = rules.binaries_covered(outputs)
    assert {v.message.split(" on node ")[1].split(" ")[0] for v in violations} == {"node-b", "node-c"}


# ------------------------------------------------------------------------------------ deprecation
DEPRECATION_CASES = [
    ("adding N beside N-1", ["slight@1.2.3"], ["slight@1.2.3", "slight@1.2.4"], [], 2, False),
    ("adding N and dropping N-1", ["slight@1.2.3"], ["slight@1.2.4"], [], 2, True),
    ("N-1 kept as retiring", ["slight@1.2.3"], ["slight@1.2.4"], ["slight@1.2.3"], 2, False),
    ("keep 1 allows a swap", ["slight@1.2.3"], ["slight@1.2.4"], [], 1, False),
    ("dropping N-2 only", ["slight@1.2.3", "slight@1.2.4"], ["slight@1.2.4", "slight@2.0.0"], [], 2, False),
    ("keep 3 wants N-2 as well", ["slight@1.2.3", "slight@1.2.4"], ["slight@1.2.4", "slight@2.0.0"], [], 3, True),
    ("removal without a bump", ["slight@1.2.3", "slight@1.2.4"], ["slight@1.2.4"], [], 2, False),
]


@pytest.mark.parametrize("before,releases,retiring,keep,bad", [c[1:] for c in DEPRECATION_CASES],
                         ids=[c[0] for c in DEPRECATION_CASES])
def test_deprecation_rule_matches_the_cores(before, releases, retiring, keep, bad):
    violations = rules.deprecation_violations(resources(config([pool("a", releases, ["node-a"], retiring=retiring)])),
                                              {"a": before}, keep)
    assert bool(violations) == bad, violations
    # Same verdict as the core's rule on the same step.
    from components.core.config import check_config
    from components.core.deprecation import deprecation_problems

    old_cfg, _ = check_config(stack([pool("a", before, ["node-a"])], versions=VERSIONS))
    new_cfg, _ = check_config(stack([pool("a", releases, ["node-a"], retiring=retiring)], versions=VERSIONS,
                                    deprecation={"keep": keep}))
    assert bool(deprecation_problems(old_cfg, new_cfg)) == bad


def test_without_a_previous_state_there_is_no_step_to_judge():
    res = resources(config([pool("a", ["slight@2.0.0"], ["node-a"])]))
    assert rules.deprecation_violations(res, {}) == []
    assert rules.deprecation_violations(res, {"other-pool": ["slight@1.2.3"]}) == []


# ------------------------------------------------------------------------------------ pack config
def test_pack_config_carries_the_previous_state_and_the_targets_mode():
    old = stack([pool("a", ["slight@1.2.3"], ["node-a"], retiring=["slight@1.2.4"])], versions=VERSIONS)
    new = stack([pool("a", ["slight@1.2.3", "slight@2.0.0"], ["node-a"])], versions=VERSIONS,
                deprecation={"mode": "error", "keep": 2})
    cfg = pack_config(new, old)
    assert cfg["shim-deprecation"] == {"enforcementLevel": "mandatory", "keep": 2,
                                       "previous": {"a": ["slight@1.2.3", "slight@1.2.4"]}}
    assert cfg["runtimeclass-handler-unchanged"]["previous"]["wasmtime-slight-v1-2"] == "slight-v1-2"
    assert cfg["runtimeclass-handler-unchanged"]["runtime"] == "wasmtime"
    assert pack_config(new, None)["shim-deprecation"]["previous"] == {}


def test_pack_config_command_prints_json(tmp_path):
    f = write_stack(tmp_path / "Pulumi.dev.yaml", stack([pool("a", ["slight@1.2.3"], ["node-a"])]))
    r = subprocess.run([sys.executable, "-m", "policy.pack_config", str(f), "--previous", str(f)], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["shim-deprecation"]["enforcementLevel"] == "advisory"


def test_the_pack_files_are_consistent():
    import yaml

    meta = yaml.safe_load((ROOT / "policy" / "PulumiPolicy.yaml").read_text())
    assert meta["runtime"]["name"] == "python" and meta["runtime"]["options"]["virtualenv"] == "venv"
    reqs = (ROOT / "policy" / "requirements.txt").read_text()
    assert "pulumi-policy==" in reqs and "pulumi==3.272.0" in reqs
    main = (ROOT / "policy" / "__main__.py").read_text()
    assert 'if __name__ == "__main__":\n    PolicyPack(' in main
    # rules.py must stay importable without pulumi or pulumi_policy.
    assert "import pulumi" not in (ROOT / "policy" / "rules.py").read_text()


# ------------------------------------------------------------------------ the real SDK (integration)
SDK_PROBE = r"""
import importlib.util, json, sys
sys.path.insert(0, sys.argv[1])
spec = importlib.util.spec_from_file_location("wsf_policy_pack", sys.argv[1] + "/__main__.py")
pack = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pack)  # __name__ is not "__main__": no PolicyPack, no server
import pulumi_policy as pp
resources = json.load(open(sys.argv[2]))
opts = pp.PolicyResourceOptions(False, [], None, [], pp.PolicyCustomTimeouts(0, 0, 0), [], None)
found = {}
for policy in pack.POLICIES:
    seen = []
    report = lambda msg, urn=None: seen.append(msg)
    if isinstance(policy, pp.StackValidationPolicy):
        rs = [pp.PolicyResource(r["type"], r["props"], r["urn"], r["name"], opts, None, None, [], {})
              for r in resources]
        policy.validate(pp.StackValidationArgs(rs, {"previous": {"a": ["slight@1.2.3"]}, "keep": 2}), report)
    else:
        for r in resources:
            policy.validate(pp.ResourceValidationArgs(r["type"], r["props"], r["urn"], r["name"], opts, None,
                                                      {"runtime": "wasmtime"}), report)
    found[policy.name] = seen
print(json.dumps({"levels": {p.name: p.enforcement_level.value for p in pack.POLICIES}, "found": found}))
"""


@pytest.mark.integration
def test_the_pack_imports_and_validates_with_the_real_sdk(tmp_path):
    python = policy_venv()
    res = resources(config([pool("a", ["slight@1.2.4"], ["node-a"])]))  # 1.2.3 -> 1.2.4 in one step: a finding
    next(r for r in res if rules.is_binary_command(r))["props"]["create"] = (
        "curl -o /usr/local/bin/containerd-shim-x-v1 https://example.org/x")
    f = tmp_path / "resources.json"
    f.write_text(json.dumps(res))
    r = subprocess.run([str(python), "-c", SDK_PROBE, str(ROOT / "policy"), str(f)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["levels"] == {"runtimeclass-handler-on-selected-nodes": "mandatory",
                             "runtimeclass-handler-unchanged": "mandatory", "binary-command-sha256": "mandatory",
                             "binary-sha256-coverage": "mandatory", "shim-deprecation": "advisory"}
    assert out["found"]["runtimeclass-handler-on-selected-nodes"] == []
    assert out["found"]["runtimeclass-handler-unchanged"] == []
    assert len(out["found"]["binary-command-sha256"]) == 2
    assert len(out["found"]["shim-deprecation"]) == 1


def test_the_pack_module_compiles():
    """The cheap half of the check above, for the fast tier: __main__.py is valid Python."""
    subprocess.run([sys.executable, "-m", "py_compile", str(ROOT / "policy" / "__main__.py")], check=True)


def test_binaries_installed_outside_the_kit_leave_the_planned_ones_uncovered(fleet):
    outputs = as_outputs(fleet)
    for r in outputs:
        if rules.is_binary_command(r):
            r["props"]["create"] = "curl -fsSL https://example.org/x -o /usr/local/bin/containerd-shim-slight-v1-2-3-v1"
    found = {v.message.split(" on node ")[1].split(" ")[0] for v in rules.binaries_covered(outputs)}
    assert found == {"node-a", "node-b", "node-c"}


# ------------------------------------------------------------------------------------------ agent pools
def agent_resources(desired: str = "d" * 64, drop: str | None = None) -> list[dict]:
    """An agent pool as the components register it: its component's outputs and its state ConfigMap."""
    from components.core import agent

    raw = stack([], versions=VERSIONS, kubernetes={"agentImage": "r.io/n@sha256:" + "a" * 64})
    raw["nodePools"] = [{"name": "ag", "containerd": "containerd-2", "releases": ["slight@1.2.3", "slight@1.2.4"],
                         "nodeSelector": {"g": "wasm"}}]
    _, p = plan_from_config(raw)
    assert p.ok, p.errors
    a = p.agent_pools[0]
    state = agent.agent_state(p, a)
    if drop is not None:  # a binaries script that installs one binary fewer than the pool plans
        state["scripts"]["binaries"] = "\n".join(part for part in state["scripts"]["binaries"].split("wsf_run <<")
                                                 if drop not in part)
    cm = agent.config_map(a.name, "wsf", state, desired)
    out = [{"type": rules.AGENT_POOL, "name": "fleet-ag", "urn": "urn:agent:ag",
            "props": {"pool": "ag", "releases": list(a.node.releases), "retiring": [], "labels": dict(a.labels),
                      "handlers": dict(a.node.handlers),
                      "binaries": {k: b.to_json() for k, b in a.node.binaries.items()}}},
           {"type": rules.CONFIG_MAP, "name": "fleet-ag-state", "urn": "urn:cm:ag",
            "props": {"metadata": cm["metadata"], "data": cm["data"]}}]
    out += [{"type": rules.RUNTIME_CLASS, "name": f"fleet-classes-{rc.name}", "urn": f"urn:rc:{rc.name}",
             "props": {"metadata": {"name": rc.name}, "handler": rc.handler,
                       "scheduling": {"nodeSelector": dict(rc.node_selector)}}} for rc in p.runtime_classes]
    return out


def test_an_agent_pools_binaries_are_covered_by_the_install_calls_of_its_state():
    assert rules.binaries_covered(agent_resources()) == []
    assert rules.handler_on_selected_nodes(agent_resources()) == []
    (v,) = rules.binaries_covered(agent_resources(drop="containerd-shim-slight-v1-2-4-v1"))
    assert "containerd-shim-slight-v1-2-4-v1" in v.message and "agent pool ag" in v.message
    assert v.urn == "urn:agent:ag"


def test_an_agent_pool_counts_in_the_deprecation_rule():
    found = rules.deprecation_violations(agent_resources(), {"ag": ["slight@1.2.3"]}, keep=2)
    assert found == []  # 1.2.4 added beside 1.2.3: N-1 kept
    res = agent_resources()
    res[0]["props"]["releases"] = ["slight@2.0.0"]
    (v,) = rules.deprecation_violations(res, {"ag": ["slight@1.2.3", "slight@1.2.4"]}, keep=2)
    assert v.urn == "urn:agent:ag"


def test_every_install_call_of_an_agents_binaries_script_is_read_back():

    res = agent_resources()
    state = json.loads(res[1]["props"]["data"]["state.json"])
    calls = nodescript.install_binary_calls(state["scripts"]["binaries"])
    assert [c.name for c in calls] == ["containerd-shim-slight-v1-2-3-v1", "containerd-shim-slight-v1-2-4-v1"]
    assert all(len(c.sha256) == 64 for c in calls)
