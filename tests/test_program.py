"""The project's program (`__main__.py`) under Pulumi mocks: the safe order against the deployed state as the program
runs it. It reads the stack's last outputs through the engine's `pulumi:pulumi:readStackOutputs`, warns when it
cannot, refuses before registering any resource, and exports `plan` and `deployedLabels` for the next run.

Real: `__main__.py` itself (its config reading, core checks, components and exports), run with runpy. Stand-ins: the
engine is Pulumi's mock monitor (the Recorder of tests/conftest.py), whose answer to readStackOutputs is the
outputs an earlier update recorded (tests/conftest.py: outputs_after), or an error; the stack config is set with
the SDK's set_all_config as the engine would pass it; pulumi.log and pulumi.export are recorded; the process-wide
tuning the program does first (cyclic GC off, shorter stack traces, no SDK debug messages) is left out, so that it
does not outlive the test.
"""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

import grpc
import pulumi
import pytest
from pulumi.runtime import config as runtime_config

from components.core.deployed import LABELS_OUTPUT, PLAN_OUTPUT
from components.deployed_state import READ_STACK
from tests.conftest import KEY, NODE_PATCH, RUNTIME_CLASS, Recorder, outputs_after, plan, pool, stack

ROOT = Path(__file__).resolve().parents[1]


class EngineRefusal(grpc.RpcError):
    """How the engine answers an invoke it cannot serve (a gRPC error with a status and details)."""

    def __init__(self, details: str) -> None:
        super().__init__(details)
        self._details = details

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNKNOWN

    def details(self) -> str:
        return self._details


class Engine(Recorder):
    """The mock engine, answering the program's read of its stack's last outputs."""

    def __init__(self, deployed: dict | grpc.RpcError | None) -> None:
        super().__init__()
        self.deployed = deployed
        self.reads: list[dict] = []

    def call(self, args: pulumi.runtime.MockCallArgs):
        if args.token != READ_STACK:
            return {}
        self.reads.append(dict(args.args))
        if isinstance(self.deployed, grpc.RpcError):
            raise self.deployed
        return {"name": args.args["name"], "outputs": self.deployed or {}}


class Program:
    """__main__.py run on a stack config against a deployed state; what the last run did stays readable after it
    raised: the engine's resources and reads, what the program logged and exported."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.engine = Engine(None)
        self.logs: list[tuple[str, str]] = []
        self.exports: dict[str, Any] = {}
        for level in ("info", "warn", "error"):
            monkeypatch.setattr(pulumi.log, level, lambda msg, *a, _level=level, **k: self.logs.append((_level, msg)))

    def said(self, level: str, words: str) -> list[str]:
        return [m for lv, m in self.logs if lv == level and words in m]

    def __call__(self, raw: dict, deployed: dict | grpc.RpcError | None) -> Program:
        self.engine, self.logs[:], self.exports = Engine(deployed), [], {}
        pulumi.runtime.set_mocks(self.engine, project="wasm-shim-fleet", stack="t", preview=False,
                                 organization="organization")
        runtime_config.set_all_config({f"wasm-shim-fleet:{k}": json.dumps(v) for k, v in raw.items()})
        pending: dict[str, Any] = {}
        self.monkeypatch.setattr(pulumi, "export", lambda name, value: pending.__setitem__(name, value))
        exported = self.exports

        @pulumi.runtime.test
        def main():
            runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
            names = sorted(pending)
            return pulumi.Output.all(*(pending[n] for n in names)).apply(
                lambda values: exported.update(zip(names, values, strict=True)))

        try:
            main()
        finally:
            runtime_config.set_all_config({})
            pulumi.runtime.settings.reset_options()
        return self


@pytest.fixture
def program(monkeypatch, tmp_path) -> Program:
    import components.sdk_debug
    import components.stack_traces

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # the project folder of the program (rendered manifests go there)
    monkeypatch.setattr("gc.disable", lambda: None)
    monkeypatch.setattr(components.stack_traces, "keep_program_frames", lambda: None)
    monkeypatch.setattr(components.sdk_debug, "drop_sdk_debug", lambda: None)
    return Program(monkeypatch)


def raw_stack(pools: list[dict]) -> dict:
    """SSH pools (the key as the engine passes it), manifests rendered: no cluster, no host needed."""
    raw = stack(pools, versions=("1.2.3", "1.2.4"), kubernetes={"renderDir": "rendered/t"})
    raw["ssh"]["privateKey"] = KEY
    return raw


BOTH = [pool("a", ["slight@1.2.3", "slight@1.2.4"], ["node-a"])]
ONLY_NEW = [pool("a", ["slight@1.2.4"], ["node-a"])]


def test_a_stack_never_deployed_applies_the_plan_and_exports_it_with_the_labels_applied(program):
    run = program(raw_stack(BOTH), {})
    assert run.engine.reads == [{"name": "organization/wasm-shim-fleet/t"}]
    assert run.said("warn", "deployed") == [] and run.said("error", "") == []
    applied = run.exports[PLAN_OUTPUT]
    assert [n["name"] for n in applied["nodes"]] == ["node-a"]
    assert "problems" not in applied
    assert set(applied["nodes"][0]["handlers"]) >= {"slight-v1-2-3", "slight-v1-2-4"}
    # deployedLabels: what the label patch answered, the fleet's labels only (the mock answers with the inputs)
    assert run.exports[LABELS_OUTPUT] == {"node-a": {
        "wasmtime-slight-v1-2-3": "true", "wasmtime-slight-v1-2-4": "true", "wasmtime-slight-v1-2": "true",
        "wasmtime-slight-v1": "true", "wasmtime-slight-enabled": "true"}}
    assert {r.typ for r in run.engine.resources.values()} >= {NODE_PATCH, RUNTIME_CLASS}


def test_a_handler_a_deployed_label_promises_stays_one_more_step_with_a_warning(program):
    run = program(raw_stack(ONLY_NEW), outputs_after(plan(BOTH, versions=("1.2.3", "1.2.4"))))
    [warning] = run.said("warn", "stays on node")
    assert warning.startswith("wasm-shim-fleet:warning: deployed.node-a: handler slight-v1-2-3 stays on node node-a")
    node = run.exports[PLAN_OUTPUT]["nodes"][0]
    assert "slight-v1-2-3" in node["handlers"] and "containerd-shim-slight-v1-2-3-v1" in node["binaries"]
    assert "wasmtime-slight-v1-2-3" not in run.exports[LABELS_OUTPUT]["node-a"]  # the label goes in this step
    assert "slight-v1-2-3=io.containerd.slight-v1-2-3.v1" in run.engine.resources["fleet-a-node-a-handlers"].inputs[
        "create"]
    # the next run, with that label gone from what the stack recorded, removes the handler
    run = program(raw_stack(ONLY_NEW), dict(run.exports))
    assert "slight-v1-2-3" not in run.exports[PLAN_OUTPUT]["nodes"][0]["handlers"]
    assert run.said("warn", "stays on node") == []


def test_when_the_deployed_state_cannot_be_read_the_program_warns_and_goes_on(program):
    run = program(raw_stack(ONLY_NEW), EngineRefusal("the backend is unreachable\nsecond line"))
    [warning] = run.said("warn", "deployed state")
    assert "cannot read this stack's deployed state (" in warning and "the backend is unreachable" in warning
    assert "second line" not in warning and "retire before you remove" in warning
    assert PLAN_OUTPUT in run.exports and run.engine.resources  # applied as the stack config says


@pytest.mark.parametrize(("before", "after", "words"), [
    ([pool("a", ["slight@1.2.3"], ["node-a"]), pool("b", ["slight@1.2.3"], ["node-b"])],
     [pool("a", ["slight@1.2.3"], ["node-a", "node-b"])],
     "node moves between pools (pool a, nodes node-b): from b to a"),
    ([pool("a", ["slight@1.2.3"], ["node-a"])], [pool("a", ["slight@1.2.3"], ["node-a"], containerd="containerd-2")],
     "containerd (pool a): changes from containerd-1 to containerd-2"),
    ([pool("a", ["slight@1.2.3"], ["node-a"])], [pool("a", ["slight@1.2.3"], ["node-a"], transport="kubernetes")],
     "transport (pool a): changes from ssh to kubernetes"),
], ids=["node-changes-pool", "flavor", "transport"])
def test_a_step_refused_against_the_deployed_state_registers_no_resource(program, before, after, words):
    raw = raw_stack(after)
    if any(p.get("transport") == "kubernetes" for p in after):
        raw["kubernetes"] = {"runnerImage": "registry.example.org/runner@sha256:" + "ab" * 32}
        for n in raw["nodePools"][0]["nodes"]:
            n.pop("host")
    with pytest.raises(pulumi.RunError, match=r"1 step\(s\) refused against the deployed state; nothing was changed"):
        program(raw, outputs_after(plan(before, versions=("1.2.3", "1.2.4"))))
    [error] = program.said("error", "wasm-shim-fleet:error: deployed.")
    assert words in error, error
    assert program.engine.resources == {}  # refused before any resource was registered


def test_an_error_in_the_stack_config_stops_the_program_before_it_reads_or_registers_anything(program):
    raw = raw_stack(ONLY_NEW)
    raw["nodePools"][0]["containerd"] = "dockerd"
    with pytest.raises(pulumi.RunError, match=r"1 error\(s\) in the stack config; nothing was changed"):
        program(raw, {})
    assert program.said("error", "nodePools[0].containerd")
    assert program.engine.reads == [] and program.engine.resources == {}
