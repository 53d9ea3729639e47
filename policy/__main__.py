"""The wasm-shim-fleet policy pack: `pulumi preview --policy-pack policy` runs it beside the program.

Thin on purpose: the rules are plain functions in rules.py (tested from the project's test suite); this
file only adapts the engine's resources to dicts and declares the policies with their enforcement levels.
Pulumi runs it with `runpy.run_path(<this folder>, run_name="__main__")`, which puts this folder first on
sys.path; the pack (and its gRPC server) is only constructed when run that way, so tests can import the
module and call the policies' validate functions directly.
"""

from __future__ import annotations

from typing import Any

import rules
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)


def _as_dicts(args: StackValidationArgs) -> list[dict[str, Any]]:
    return [{"type": r.resource_type, "name": r.name, "urn": r.urn, "props": r.props} for r in args.resources]


def _report(report: ReportViolation, violations: list[rules.Violation]) -> None:
    for v in violations:
        report(v.message, v.urn)


def _handler_on_selected_nodes(args: StackValidationArgs, report: ReportViolation) -> None:
    _report(report, rules.handler_on_selected_nodes(_as_dicts(args)))


def _handler_unchanged(args: ResourceValidationArgs, report: ReportViolation) -> None:
    config = args.get_config()
    resource = {"type": args.resource_type, "name": args.name, "urn": args.urn, "props": args.props}
    for message in rules.runtime_class_violations(resource, config.get("runtime") or rules.DEFAULT_RUNTIME,
                                                  config.get("previous") or {}):
        report(message, None)


def _binary_command(args: ResourceValidationArgs, report: ReportViolation) -> None:
    resource = {"type": args.resource_type, "name": args.name, "urn": args.urn, "props": args.props}
    for message in rules.binary_command_violations(resource):
        report(message, None)


def _binaries_covered(args: StackValidationArgs, report: ReportViolation) -> None:
    _report(report, rules.binaries_covered(_as_dicts(args)))


def _deprecation(args: StackValidationArgs, report: ReportViolation) -> None:
    config = args.get_config()
    _report(report, rules.deprecation_violations(_as_dicts(args), config.get("previous") or {},
                                                 int(config.get("keep") or 2)))


POLICIES = [
    StackValidationPolicy(
        name="runtimeclass-handler-on-selected-nodes",
        description="Every RuntimeClass handler is configured on every node its nodeSelector matches.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_handler_on_selected_nodes,
    ),
    ResourceValidationPolicy(
        name="runtimeclass-handler-unchanged",
        description="No RuntimeClass handler change. The pack cannot see the old state, so it enforces what "
                    "guarantees it: a RuntimeClass's handler is a pure function of its fixed name (the name minus "
                    "the '<runtime>-' prefix), so a new handler is always a new class. With `previous` in the "
                    "config (written by policy/pack_config.py) a changed handler is also reported directly.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_handler_unchanged,
        config_schema=PolicyConfigSchema(properties={
            "runtime": {"type": "string", "default": rules.DEFAULT_RUNTIME},
            "previous": {"type": "object", "additionalProperties": {"type": "string"}},
        }),
    ),
    ResourceValidationPolicy(
        name="binary-command-sha256",
        description="Every shim binary install command carries the artifact's sha256 and runs sha256sum on it.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_binary_command,
    ),
    StackValidationPolicy(
        name="binary-sha256-coverage",
        description="Every binary a NodePool plans is installed by a command that checks that binary's sha256.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_binaries_covered,
    ),
    StackValidationPolicy(
        name="shim-deprecation",
        description="A pool that gains a newer release of a shim keeps the keep-1 newest it had (N and N-1). "
                    "Advisory by default; policy/pack_config.py sets the level from the stack's deprecation.mode.",
        enforcement_level=EnforcementLevel.ADVISORY,
        validate=_deprecation,
        config_schema=PolicyConfigSchema(properties={
            "keep": {"type": "integer", "minimum": 1, "default": 2},
            "previous": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
        }),
    ),
]

if __name__ == "__main__":
    PolicyPack(name="wasm-shim-fleet", enforcement_level=EnforcementLevel.MANDATORY, policies=POLICIES)
