"""The type checker over components/, as pyproject.toml configures it ([tool.mypy]: its strictness is stated there).
Real: mypy (requirements-dev.txt) on the package's source; its cache stays in .mypy_cache of the checkout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_components_type_check_clean():
    r = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary"], cwd=ROOT, capture_output=True,
                       text=True, timeout=600)
    assert "No module named mypy" not in r.stderr, "mypy is missing: run `scripts/setup.sh venv` (requirements-dev.txt)"
    assert r.returncode == 0, r.stdout + r.stderr
