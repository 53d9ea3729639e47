"""The short resource stack traces (components/stack_traces.py): the SDK's own first frame alone, when it is the
program's, on the wire of a real registration (the mock monitor receives the same RegisterResourceRequest
the engine does)."""

from __future__ import annotations

import pulumi
import pytest
from pulumi.runtime import mocks as sdk_mocks
from pulumi.runtime import resource as sdk_resource

from components import stack_traces
from tests.conftest import Recorder, build


@pytest.fixture
def requests(monkeypatch, tmp_path):
    """Every RegisterResourceRequest of a mock run, by resource name."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    seen: dict[str, object] = {}
    original = sdk_mocks.MockMonitor.RegisterResource

    def register(self, request):
        seen[request.name] = request
        return original(self, request)

    monkeypatch.setattr(sdk_mocks.MockMonitor, "RegisterResource", register)
    # the SDK's own function during the test (whatever ran before in this process), restored afterwards
    monkeypatch.setattr(sdk_resource, "_get_stack_trace", stack_traces.SDK_STACK_TRACE)  # noqa: SLF001
    pulumi.runtime.set_mocks(Recorder(), preview=False)
    yield seen
    pulumi.runtime.settings.reset_options()


def _fleet(raw):
    @pulumi.runtime.test
    def program():
        fleet, _ = build(raw)
        return pulumi.Output.from_input(fleet.urn)

    program()


def _frames(request) -> list[tuple[str, int]]:
    return [(f.pc.uri, f.pc.line) for f in request.stackTrace.frames]


def test_the_pinned_sdk_has_the_function_that_is_replaced():
    # An SDK upgrade that renames it makes keep_program_frames a no-op: this test says so.
    assert callable(stack_traces.SDK_STACK_TRACE)
    assert stack_traces.SDK_STACK_TRACE.__module__ == "pulumi.runtime.resource"


def test_short_traces_are_the_first_program_frames_of_the_sdks_own_traces(requests, test_plan_stack):
    _fleet(test_plan_stack)
    full = {name: _frames(r) for name, r in requests.items()}
    requests.clear()
    assert stack_traces.keep_program_frames()
    _fleet(test_plan_stack)
    short = {name: _frames(r) for name, r in requests.items()}
    full.pop("project-stack", None)  # the stack resource (registered once per mock run, with no trace)
    assert set(short) == set(full) and len(short) > 10
    for name, frames in short.items():
        assert frames, name
        assert frames == full[name][:1], name  # where it was built
        assert len(frames) < len(full[name]), name
        # the first frame is the resource's caller, so sourcePosition stays what the SDK would send
        assert requests[name].sourcePosition.uri == frames[0][0]
        assert all("/site-packages/pulumi/" not in uri and "/asyncio/" not in uri for uri, _ in frames), name
    assert short["fleet-a-node-a-kit"][0][0].endswith("/components/nodepool.py")
    assert sum(len(f) for f in short.values()) * 5 < sum(len(f) for f in full.values())


def test_a_deep_program_keeps_its_innermost_frame(requests):
    assert stack_traces.keep_program_frames()

    class Deep(pulumi.ComponentResource):
        def __init__(self, name):
            super().__init__("test:index:Deep", name)

    def nest(depth):
        if depth == 0:
            return Deep("deep")
        return nest(depth - 1)

    @pulumi.runtime.test
    def program():
        return pulumi.Output.from_input(nest(30).urn)

    program()
    frames = _frames(requests["deep"])
    assert [uri.rsplit("/", 1)[-1] for uri, _ in frames] == ["test_stack_traces.py"]
    first = nest.__code__.co_firstlineno
    assert first < frames[0][1] <= first + 3  # `return Deep("deep")`

