"""NodePool in a program of your own (NodePoolArgs), under Pulumi mocks: typed, Output-aware arguments, every
problem at once by argument name, and outputs a consumer can depend on."""

from __future__ import annotations

import pulumi
import pytest

from components.core import nodescript
from components.core.plan import plan_from_config
from tests.conftest import COMMAND_REMOTE, COPY_TO_REMOTE, KEY, NODE_PATCH, RUNTIME_CLASS, SHA, unwrap_secret

pytestmark = pytest.mark.usefixtures("kit_cache")

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHZ0ZXN0aG9zdGtleXRlc3Rob3N0a2V5dGVzdGhvc3RrZXk"


def catalog():
    from wasm_shim_fleet import ShimRelease

    return [ShimRelease("slight", v, f"https://example.org/slight-{v}.tar.gz", SHA[v],
                        binary="containerd-shim-slight-v1") for v in ("1.2.3", "1.2.4")]


def args(**kw):
    from wasm_shim_fleet import NodePoolArgs, PoolNode, SshCredentials

    base = dict(catalog=catalog(), releases=["slight@1.2.4"], retiring=["slight@1.2.3"],
                credentials=SshCredentials(private_key=KEY),
                nodes=[PoolNode("node-a", host=pulumi.Output.from_input("10.0.0.7"),
                                port=pulumi.Output.from_input(2222), host_key=pulumi.Output.from_input(HOST_KEY))])
    base.update(kw)
    return NodePoolArgs(**base)


def run(make):
    """Run `make()` (which builds components) inside a mock program; returns what it returned, resolved Outputs
    of its `resolve` entry (if any) included."""
    holder = {}

    @pulumi.runtime.test
    def program():
        holder["built"] = make()
        out = holder["built"].get("resolve") if isinstance(holder["built"], dict) else None
        if out is None:
            return pulumi.Output.from_input(1)
        return pulumi.Output.from_input(out).apply(lambda v: holder.__setitem__("resolved", v))

    program()
    return holder


def test_a_pool_of_your_own_takes_host_port_and_host_key_as_outputs_and_keeps_names_plain(mocks):
    from wasm_shim_fleet import NodePool

    run(lambda: NodePool("shims", args()))
    commands = mocks.of_type(COMMAND_REMOTE)
    assert sorted(commands) == ["shims-node-a-bin-containerd-shim-slight-v1-2-3-v1",
                                "shims-node-a-bin-containerd-shim-slight-v1-2-4-v1", "shims-node-a-handlers"]
    conn = unwrap_secret(commands["shims-node-a-handlers"].inputs["connection"])
    assert conn["host"] == "10.0.0.7" and conn["port"] == 2222 and conn["hostKey"] == HOST_KEY
    assert conn["user"] == "root" and "secret-key-material" in conn["privateKey"]
    assert "agentSocketPath" not in conn
    # The scripts are the very ones a stack config plans for the same pool: only the connection differs.
    pool = {"name": "shims", "containerd": "containerd-1", "releases": ["slight@1.2.4"], "retiring": ["slight@1.2.3"],
            "nodes": [{"name": "node-a", "host": "10.0.0.7"}]}
    _, plan = plan_from_config({"shims": {"slight": [
        {"version": v, "url": f"https://example.org/slight-{v}.tar.gz", "sha256": SHA[v],
         "binary": "containerd-shim-slight-v1"} for v in ("1.2.3", "1.2.4")]}, "nodePools": [pool],
        "ssh": {"privateKey": "k"}})
    node = plan.node("node-a")
    assert commands["shims-node-a-handlers"].inputs["create"] == nodescript.apply_table_script(node)
    assert mocks.of_type(NODE_PATCH)["shims-node-a-labels"].inputs["metadata"]["labels"] == node.labels
    assert unwrap_secret(mocks.of_type(COPY_TO_REMOTE)["shims-node-a-kit"].inputs["connection"])["port"] == 2222


def test_credentials_per_node_win_over_the_pools_and_an_agent_socket_replaces_the_key(mocks):
    from wasm_shim_fleet import NodePool, PoolNode, SshCredentials

    nodes = [PoolNode("node-a", host="10.0.0.7", host_key=HOST_KEY),
             PoolNode("node-b", host="10.0.0.8", host_key=HOST_KEY,
                      credentials=SshCredentials(user="ops", agent_socket="/run/agent.sock"))]
    run(lambda: NodePool("shims", args(nodes=nodes)))
    commands = mocks.of_type(COMMAND_REMOTE)
    a = unwrap_secret(commands["shims-node-a-handlers"].inputs["connection"])
    b = unwrap_secret(commands["shims-node-b-handlers"].inputs["connection"])
    assert a["user"] == "root" and "privateKey" in a
    assert b["user"] == "ops" and b["agentSocketPath"] == "/run/agent.sock" and "privateKey" not in b


def test_a_typed_bastion_becomes_the_connections_proxy(mocks):
    from wasm_shim_fleet import Bastion, NodePool, SshCredentials

    bastion = Bastion(host=pulumi.Output.from_input("bastion.example.org"), port=2200, host_key=HOST_KEY,
                      credentials=SshCredentials(user="jump", private_key="jump-key"))
    run(lambda: NodePool("shims", args(proxy=bastion)))
    conn = unwrap_secret(mocks.of_type(COMMAND_REMOTE)["shims-node-a-handlers"].inputs["connection"])
    assert conn["proxy"]["host"] == "bastion.example.org" and conn["proxy"]["port"] == 2200
    assert conn["proxy"]["user"] == "jump" and conn["proxy"]["privateKey"] == "jump-key"
    assert conn["proxy"]["hostKey"] == HOST_KEY


def test_every_problem_in_the_arguments_is_reported_at_once_by_argument_before_anything_is_created(mocks):
    from wasm_shim_fleet import NodePool, NodePoolArgsError, PoolNode, ShimRelease, SshCredentials

    bad = args(catalog=[*catalog(), ShimRelease("slight", "1.3.0", "ftp://example.org/x", "abc")],
               releases=["slight@1.2.4", "slight@9.9.9"],
               credentials=None,
               nodes=[PoolNode(pulumi.Output.from_input("node-a"), host="10.0.0.7"),
                      PoolNode("Node_B", host="10.0.0.8",
                               credentials=SshCredentials(private_key=KEY, agent_socket="/run/a.sock"))])
    with pytest.raises(NodePoolArgsError) as err:
        NodePool("shims", bad)
    paths = {e["property_path"] for e in err.value.errors}
    assert {"catalog[2].url", "catalog[2].sha256", "releases[1]", "nodes[0].name", "nodes[1].name",
            "nodes[1].credentials"} <= paths, paths
    message = str(err.value)
    assert "NodePool shims:" in message and "nothing was created" in message
    assert "'slight@9.9.9' names a release that is not in the catalog" in message  # the stack config's rule
    assert "is a pulumi Output" in message and "'abc' is not a sha256" in message
    assert "secret-key-material" not in message
    assert isinstance(err.value, pulumi.InputPropertiesError) and isinstance(err.value, pulumi.RunError)
    assert mocks.resources == {}


def test_a_node_without_credentials_anywhere_is_an_error_naming_the_fix(mocks):
    from wasm_shim_fleet import NodePool, NodePoolArgsError

    with pytest.raises(NodePoolArgsError, match=r"nodes\[0\]\.credentials: node 'node-a' has no SSH credentials"):
        NodePool("shims", args(credentials=None))


def test_a_bad_host_that_arrives_as_an_output_fails_when_it_resolves_naming_the_argument(mocks):
    from wasm_shim_fleet import NodePool, PoolNode

    nodes = [PoolNode("node-a", host=pulumi.Output.from_input("10.0.0.7:22"), host_key=HOST_KEY)]
    with pytest.raises(Exception, match=r"nodes\[0\]\.host: '10\.0\.0\.7:22' is not a host name or IP address"):
        run(lambda: {"resolve": NodePool("shims", args(nodes=nodes)).handlers})


def test_a_node_or_bastion_without_a_host_key_is_an_error_unless_the_lab_opt_out_is_passed(mocks):
    from wasm_shim_fleet import Bastion, NodePool, NodePoolArgsError, PoolNode

    nodes = [PoolNode("node-a", host="10.0.0.7")]
    proxy = Bastion(host="jump.example.org")
    with pytest.raises(NodePoolArgsError) as err:
        NodePool("shims", args(nodes=nodes, proxy=proxy))
    found = {e["property_path"]: e["reason"] for e in err.value.errors}
    assert set(found) == {"nodes[0].host_key", "proxy.host_key"}
    assert found["nodes[0].host_key"].startswith("missing: node 'node-a' is reached over SSH")
    assert "pass host_key (a line of `ssh-keyscan" in found["nodes[0].host_key"]
    assert "pass insecure_accept_any_host_key=True" in found["proxy.host_key"]
    run(lambda: NodePool("lab", args(nodes=nodes, proxy=proxy, insecure_accept_any_host_key=True)))


def test_a_layout_of_your_own_is_checked_and_defined_in_the_nodes_scripts(mocks):
    from wasm_shim_fleet import ContainerdLayout, NodePool, NodePoolArgsError

    layout = ContainerdLayout(name="lab-containerd", config_version=2, config_path="/opt/lab/containerd.toml",
                              template=False, restart="systemctl restart lab-containerd",
                              loaded_config_path="/opt/lab/containerd.toml", socket="/run/lab/containerd.sock")
    run(lambda: NodePool("shims", args(containerd=layout)))
    table = mocks.of_type(COMMAND_REMOTE)["shims-node-a-handlers"].inputs["create"]
    assert "        lab-containerd) FLAVOR=lab-containerd CONFIG_VERSION=2" in table
    assert "CONFIG_PATH='/opt/lab/containerd.toml'" in table and "wsf 1 lab-containerd apply-table" in table
    assert "WSF_RESTART=${WSF_RESTART:-'systemctl restart lab-containerd'}" in table
    assert table.index(". \"$d/kit/$WSF_KIT/wsf.sh\"") < table.index("wsf_flavor() {")  # defined after the kit

    broken = ContainerdLayout(name="containerd-1", config_version=5, config_path="etc/x", template=False,
                              restart=" ", loaded_config_path="/x/../y", socket="/run/s")
    with pytest.raises(NodePoolArgsError) as err:
        NodePool("other", args(containerd=broken))
    assert {e["property_path"] for e in err.value.errors} == {
        "containerd.name", "containerd.config_version", "containerd.config_path", "containerd.loaded_config_path",
        "containerd.restart"}


def test_runtime_classes_and_per_node_handlers_and_labels_are_outputs_a_consumer_can_depend_on(mocks):
    from wasm_shim_fleet import NodePool, RuntimeClassSet, RuntimeClassSetArgs

    def make():
        pool = NodePool("shims", args())
        classes = RuntimeClassSet("classes", RuntimeClassSetArgs.for_pools([pool]))
        return {"pool": pool, "classes": classes,
                "resolve": {"names": classes.names, "handlers": pool.handlers["node-a"],
                            "labels": pool.labels["node-a"]}}

    holder = run(make)
    resolved = holder["resolved"]
    assert resolved["names"] == ["wasmtime-slight", "wasmtime-slight-v1", "wasmtime-slight-v1-2",
                                 "wasmtime-slight-v1-2-4"]
    assert set(mocks.of_type(RUNTIME_CLASS)) == {f"classes-{n}" for n in resolved["names"]}
    assert resolved["handlers"]["slight-v1-2-3"] == "io.containerd.slight-v1-2-3.v1"  # retiring: still handled
    assert resolved["labels"]["wasmtime-slight-v1-2-4"] == "true" and "wasmtime-slight-v1-2-3" not in resolved["labels"]
    classes = holder["built"]["classes"].classes
    assert sorted(classes) == resolved["names"]


def test_the_two_import_names_are_one_module():
    import wasm_shim_fleet
    import wasm_shim_fleet.nodepool

    import components
    import components.nodepool

    assert wasm_shim_fleet is components and wasm_shim_fleet.nodepool is components.nodepool
    assert wasm_shim_fleet.NodePool is components.nodepool.NodePool
    assert components.nodepool.__spec__.name == "components.nodepool"  # the alias does not rename the module


def test_a_fleet_can_reach_one_pool_with_credentials_of_its_own(mocks, test_plan_stack):
    from wasm_shim_fleet import ShimFleet, ShimFleetArgs, SshConnection

    _, plan = plan_from_config(test_plan_stack)
    fleet_ssh = SshConnection("root", 22, pulumi.Output.secret(KEY))
    pool_b = SshConnection("ops", 2022, agent_socket="/run/agent.sock")
    run(lambda: ShimFleet("fleet", ShimFleetArgs(plan=plan, ssh=fleet_ssh, pool_ssh={"b": pool_b})))
    commands = mocks.of_type(COMMAND_REMOTE)
    a = unwrap_secret(commands["fleet-a-node-a-handlers"].inputs["connection"])
    b = unwrap_secret(commands["fleet-b-node-b-handlers"].inputs["connection"])
    assert a["user"] == "root" and "privateKey" in a
    assert b["user"] == "ops" and b["agentSocketPath"] == "/run/agent.sock" and "privateKey" not in b
