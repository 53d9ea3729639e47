"""Short resource stack traces: the frame that built the resource instead of the whole Python stack.

With every resource registration the Pulumi Python SDK (pulumi 3.272, `pulumi/runtime/resource.py`,
`_get_stack_trace`) sends the whole call stack below the resource's constructor: the program's frames, then
the language host's, runpy's and asyncio's, ~15-25 frames. The engine keeps that list in the checkpoint
(`stackTrace` of every resource, beside `sourcePosition`, which is its first frame). Neither the SDK nor the
engine has a setting that turns it off, and capturing it (`traceback.extract_stack`, which reads every
frame's source line) is one of the SDK's larger per-resource costs.

`keep_program_frames()` replaces that function with one that finds the same first frame the same way (below
the resource's own constructor, where the SDK starts) and sends that frame alone, when it is the program's
own (not in the Pulumi SDK or the Python standard library): the line that built the resource. The SDK
derives `sourcePosition` from that first frame, so it stays what the SDK would send; what is dropped are the
callers below it (the program's, then the language host's, runpy's and asyncio's). On a fleet's node
resources this turns ~2.4 KB of state per resource into ~0.1 KB (a URI and a line).

The program's entry point (`__main__.py`) calls it, like `gc.disable()`: a setting of this short-lived
process, not of the components, which a program of your own may use without it.
"""

from __future__ import annotations

import functools
import os
import pathlib
import sys
import sysconfig
from types import FrameType

import pulumi
from pulumi.runtime import resource as sdk_resource
from pulumi.runtime.proto import source_pb2

#: The SDK's own function, as imported (to compare with, and to put back).
SDK_STACK_TRACE = getattr(sdk_resource, "_get_stack_trace", None)

_SDK_DIR = os.path.dirname(os.path.abspath(pulumi.__file__)) + os.sep
_STDLIB_DIR = os.path.abspath(sysconfig.get_paths()["stdlib"]) + os.sep


@functools.lru_cache(maxsize=512)
def _position_uri(filename: str) -> str | None:
    """The SDK's URI for a frame's file (`Path.as_uri`), or None where it has none (as the SDK does)."""
    if not filename:
        return None
    try:
        return pathlib.Path(filename).as_uri()
    except ValueError:
        return None


@functools.lru_cache(maxsize=512)
def _outside_program(filename: str) -> bool:
    path = os.path.abspath(filename)
    return path.startswith(_SDK_DIR) or path.startswith(_STDLIB_DIR)


def program_stack_trace() -> source_pb2.StackTrace:
    """The first frame the SDK's `_get_stack_trace` would send, alone: the one below the third `__init__` frame
    from the top (Resource, Custom/ComponentResource, the resource's own class), if it is the program's."""
    frame: FrameType | None = sys._getframe(1)  # noqa: SLF001 (walking frames is what the SDK's traceback.extract_stack does)
    inits = 0
    while frame is not None:
        if frame.f_code.co_name == "__init__":
            inits += 1
            if inits == 3:
                break
        frame = frame.f_back
    if frame is None or frame.f_back is None:
        return source_pb2.StackTrace()
    frame = frame.f_back
    if _outside_program(frame.f_code.co_filename):
        return source_pb2.StackTrace()
    uri = _position_uri(frame.f_code.co_filename)
    pc = source_pb2.SourcePosition(uri=uri, line=frame.f_lineno) if uri is not None else None
    return source_pb2.StackTrace(frames=[source_pb2.StackFrame(pc=pc)])


def keep_program_frames() -> bool:
    """Make the SDK send `program_stack_trace()` with every registration from now on. Returns False (and
    changes nothing) when the installed SDK has no `_get_stack_trace` to replace."""
    if not callable(SDK_STACK_TRACE):
        return False
    sdk_resource._get_stack_trace = program_stack_trace  # noqa: SLF001 - the SDK has no public hook for it
    return True


def keep_whole_stacks() -> None:
    """Undo keep_program_frames: the SDK's own stack traces again."""
    if SDK_STACK_TRACE is not None:
        sdk_resource._get_stack_trace = SDK_STACK_TRACE  # noqa: SLF001 - puts the SDK's own function back
