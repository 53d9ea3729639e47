"""examples/own-program under Pulumi mocks: a program of its own makes its machines and installs shims on them
with NodePool, the machines' outputs flowing into each node's connection. The real engine runs the same program
in tests/e2e/test_own_program.py."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pulumi
import pytest
from pulumi.runtime import config as runtime_config

from tests.conftest import COMMAND_LOCAL, COMMAND_REMOTE, COPY_TO_REMOTE, NODE_PATCH, RUNTIME_CLASS, Recorder
from tests.conftest import unwrap_secret as secret

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "own-program"
HOST_KEYS = {"node-a": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG5vZGUtYQ",
             "node-b": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG5vZGUtYg"}


class Machines(Recorder):
    """The mock engine: a machine command answers like machine.sh does (its address, host key, login key)."""

    def new_resource(self, args):
        rid, outputs = super().new_resource(args)
        if args.typ == COMMAND_LOCAL and args.name.startswith("machine-"):
            node = args.name.removeprefix("machine-")
            outputs["stdout"] = json.dumps({"host": "127.0.0.1", "port": 40000 + len(self.resources),
                                            "hostKey": HOST_KEYS[node], "privateKey": f"login key of {node}"})
        return rid, outputs


@pytest.fixture
def engine(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    recorder = Machines()
    pulumi.runtime.set_mocks(recorder, project="own-program", stack="dev", preview=False)
    runtime_config.set_all_config({"own-program:workdir": str(tmp_path / "machines")})
    yield recorder
    runtime_config.set_all_config({})
    pulumi.runtime.settings.reset_options()


def run_example() -> dict:
    exported: dict = {}

    @pulumi.runtime.test
    def program():
        import components  # noqa: F401  (in a checkout, makes the example's `wasm_shim_fleet` this package)

        namespace = runpy.run_path(str(EXAMPLE / "__main__.py"), run_name="__main__")
        pool = namespace["pool"]
        return pulumi.Output.all(namespace["classes"].names, pool.handlers, pool.labels).apply(
            lambda v: exported.update(names=v[0], handlers=v[1], labels=v[2]))

    program()
    return exported


def test_the_example_installs_on_the_machines_it_makes_through_their_outputs(engine):
    out = run_example()
    machines = {n: r for n, r in engine.of_type(COMMAND_LOCAL).items() if n.startswith("machine-")}
    assert sorted(machines) == ["machine-node-a", "machine-node-b"]
    assert "machine.sh start node-a " in machines["machine-node-a"].inputs["create"]
    commands = engine.of_type(COMMAND_REMOTE)
    assert sorted(commands) == sorted(f"shims-{n}-{r}" for n in ("node-a", "node-b") for r in (
        "bin-containerd-shim-slight-v1-2-3-v1", "bin-containerd-shim-slight-v1-2-4-v1", "handlers"))
    for node in ("node-a", "node-b"):
        conn = secret(commands[f"shims-{node}-handlers"].inputs["connection"])
        assert conn["host"] == "127.0.0.1" and conn["hostKey"] == HOST_KEYS[node]
        assert conn["privateKey"] == f"login key of {node}"  # each machine's own login: credentials per node
        kit = engine.of_type(COPY_TO_REMOTE)[f"shims-{node}-kit"]
        assert secret(kit.inputs["connection"])["port"] == conn["port"]
        assert "WSF_RESTART=${WSF_RESTART:-':'}" in commands[f"shims-{node}-handlers"].inputs["create"]
    assert set(engine.of_type(NODE_PATCH)) == {"shims-node-a-labels", "shims-node-b-labels"}
    assert out["names"] == ["wasmtime-slight", "wasmtime-slight-v1", "wasmtime-slight-v1-2",
                            "wasmtime-slight-v1-2-4"]
    assert set(engine.of_type(RUNTIME_CLASS)) == {f"classes-{n}" for n in out["names"]}
    assert out["handlers"]["node-b"]["slight-v1-2-3"] == "io.containerd.slight-v1-2-3.v1"
    assert "wasmtime-slight-v1-2-3" not in out["labels"]["node-a"]
    assert out["labels"]["node-a"]["wasmtime-slight-enabled"] == "true"
