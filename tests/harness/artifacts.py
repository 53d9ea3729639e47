"""The small fake shim artifacts in examples/artifacts, as the tests and benchmarks use them: one table (the
one make_artifacts.py writes them from) and their published sha256 sums."""

from __future__ import annotations

import importlib.util
from pathlib import Path

DIR = Path(__file__).resolve().parents[2] / "examples" / "artifacts"


def _table() -> tuple[tuple[str, str | None, str, str], ...]:
    spec = importlib.util.spec_from_file_location("make_artifacts", DIR / "make_artifacts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ARTIFACTS


#: (artifact file, archive member or None for a bare binary, shim, version)
ARTIFACTS = _table()


def sums() -> dict[str, str]:
    """artifact file -> sha256, from SHA256SUMS."""
    return {name: digest for digest, name in (line.split() for line in (DIR / "SHA256SUMS").read_text().splitlines())}
