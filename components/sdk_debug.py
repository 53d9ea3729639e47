"""The Pulumi Python SDK's debug messages: sent only when asked for.

For every resource the SDK (pulumi 3.272, `pulumi/runtime/resource.py` and `rpc_manager.py`) sends about
four debug messages to the engine ("registering resource: ty=..., name=...", "beginning rpc ...",
"resource registration prepared ...", "... successful ..."). Each is a blocking gRPC call (`pulumi.log._log`,
`engine.Log`) made on the program's event loop, so the program registers nothing else while the engine
takes it; the engine then turns it into a debug event that it streams back to the Automation API and
writes to its own log file. A debug message is shown only by `pulumi up --debug` (or read from the event
stream). On a preview of 1 000 nodes (6 114 resources) that is ~25 000 round trips, which kept the
program's event loop busy two thirds of the time (bench/RESULTS.md).

`drop_sdk_debug()` replaces `pulumi.log.debug` with a function that sends nothing, unless the environment
has `WSF_SDK_DEBUG=1`: then the SDK's messages are sent as before (for `--debug` runs). Info, warnings and
errors are untouched. The program's entry point (`__main__.py`) calls it, like `gc.disable()` and
`keep_program_frames()`: a setting of this short-lived process, not of the components.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import pulumi.log as sdk_log

#: The SDK's own function, as imported (to put back).
SDK_DEBUG = sdk_log.debug

#: Set to 1 to get the SDK's debug messages (what `pulumi up --debug` shows of the SDK).
ENV = "WSF_SDK_DEBUG"


def _not_sent(msg: str, resource: object = None, stream_id: int | None = None,
              ephemeral: bool | None = None) -> None:
    """`pulumi.log.debug` with the SDK's signature, sending nothing."""


def drop_sdk_debug(environ: Mapping[str, str] | None = None) -> bool:
    """Make `pulumi.log.debug` send nothing from now on, unless WSF_SDK_DEBUG=1. Returns True when the
    messages are dropped."""
    env = os.environ if environ is None else environ
    if env.get(ENV, "").strip().lower() in ("1", "true", "yes"):
        sdk_log.debug = SDK_DEBUG
        return False
    sdk_log.debug = _not_sent
    return True


def send_sdk_debug() -> None:
    """Undo drop_sdk_debug: the SDK's own debug messages again."""
    sdk_log.debug = SDK_DEBUG
