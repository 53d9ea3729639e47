"""The published JSON Schema of stack files: generated from the checks' own constants, and every stack file
of the project fits it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from components.core.schema import stack_schema

ROOT = Path(__file__).resolve().parents[1]
STACK_FILES = sorted(ROOT.glob("Pulumi.*.yaml"))


def test_the_published_schema_is_the_generated_one():
    assert json.loads((ROOT / "stack-config.schema.json").read_text()) == stack_schema(), \
        "regenerate: venv/bin/python -m components.core.schema > stack-config.schema.json"


def test_the_schema_is_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(stack_schema())


@pytest.mark.parametrize("path", [p for p in STACK_FILES if p.name != "Pulumi.yaml"], ids=lambda p: p.name)
def test_every_stack_file_fits_the_schema(path):
    jsonschema.validate(yaml.safe_load(path.read_text()), stack_schema())


@pytest.mark.parametrize(("mutate", "where"), [
    (lambda c: c.update({"wasm-shim-fleet:nodepools": []}), "wasm-shim-fleet:nodepools"),
    (lambda c: c["wasm-shim-fleet:nodePools"][0].update(containerd="containerd-3"), "containerd-3"),
    (lambda c: c["wasm-shim-fleet:nodePools"][0].update(retireing=[]), "retireing"),
    (lambda c: c["wasm-shim-fleet:shims"]["slight"][0].update(sha256="abc"), "abc"),
])
def test_shape_mistakes_are_flagged_by_the_schema(mutate, where):
    doc = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    mutate(doc["config"])
    errors = list(jsonschema.Draft202012Validator(stack_schema()).iter_errors(doc))
    assert errors
    assert any(where in e.message or where in e.json_path for e in errors), [(e.json_path, e.message) for e in errors]
