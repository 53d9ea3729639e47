"""The SDK's debug messages (components/sdk_debug.py): what the engine's Log RPC receives during a fleet's
registrations, with and without them (the mock engine receives the same LogRequests the engine does)."""

from __future__ import annotations

import pulumi
import pulumi.log as sdk_log
import pytest
from pulumi.runtime import mocks as sdk_mocks
from pulumi.runtime.proto import engine_pb2

from components import sdk_debug
from tests.conftest import Recorder, build


@pytest.fixture
def logs(monkeypatch, tmp_path):
    """Every LogRequest of a mock run, as (severity, message)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(sdk_debug.ENV, raising=False)
    seen: list[tuple[int, str]] = []

    def log(self, request):
        seen.append((request.severity, request.message))

    monkeypatch.setattr(sdk_mocks.MockEngine, "Log", log)
    # the SDK's own function during the test (whatever ran before in this process), restored afterwards
    monkeypatch.setattr(sdk_log, "debug", sdk_debug.SDK_DEBUG)
    pulumi.runtime.set_mocks(Recorder(), preview=True)
    yield seen
    pulumi.runtime.settings.reset_options()


def _fleet_with_a_warning(raw):
    @pulumi.runtime.test
    def program():
        pulumi.log.warn("a warning of the program")
        fleet, _ = build(raw)
        return pulumi.Output.from_input(fleet.urn)

    program()


def _count(seen, severity):
    return sum(1 for s, _ in seen if s == severity)


def test_the_pinned_sdk_sends_debug_messages_through_pulumi_log_debug():
    # An SDK upgrade that moves them elsewhere makes drop_sdk_debug a no-op: this test says so.
    assert sdk_debug.SDK_DEBUG.__module__ == "pulumi.log"
    assert sdk_debug.SDK_DEBUG.__name__ == "debug"


def test_dropped_debug_messages_leave_warnings_and_registrations_as_they_are(logs, test_plan_stack):
    _fleet_with_a_warning(test_plan_stack)
    sent = list(logs)
    registering = [m for s, m in sent if s == engine_pb2.DEBUG and m.startswith("registering resource:")]
    assert len(registering) > 10  # the SDK's own: one per resource, and more of other kinds
    assert _count(sent, engine_pb2.DEBUG) >= 3 * len(registering)
    logs.clear()

    assert sdk_debug.drop_sdk_debug({})
    _fleet_with_a_warning(test_plan_stack)
    assert _count(logs, engine_pb2.DEBUG) == 0
    assert [m for s, m in logs if s == engine_pb2.WARNING] == [m for s, m in sent if s == engine_pb2.WARNING]
    assert any(m == "a warning of the program" for s, m in logs if s == engine_pb2.WARNING)


def test_wsf_sdk_debug_1_keeps_them(logs, test_plan_stack):
    assert not sdk_debug.drop_sdk_debug({sdk_debug.ENV: "1"})
    _fleet_with_a_warning(test_plan_stack)
    assert _count(logs, engine_pb2.DEBUG) > 10


def test_send_sdk_debug_undoes_it(logs):
    assert sdk_debug.drop_sdk_debug({})
    assert sdk_log.debug is not sdk_debug.SDK_DEBUG
    sdk_debug.send_sdk_debug()
    assert sdk_log.debug is sdk_debug.SDK_DEBUG
