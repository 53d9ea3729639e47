"""Every rendered node script, for every flavor and every resource, passes ShellCheck as POSIX sh and as bash
(the login shell that runs it over SSH on most nodes), and so do the helper scripts of this tier."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from components.core import nodescript
from components.core.flavors import FLAVORS
from tests.harness.nodes import require

from .helpers import sample_node

pytestmark = pytest.mark.integration


def scripts_of(flavor: str) -> dict[str, str]:
    node = sample_node(flavor, urls="https")
    binary = next(iter(node.binaries.values()))
    return {
        "install": nodescript.install_script(node),
        "uninstall": nodescript.uninstall_script(node),
        "install_binary": nodescript.install_binary_script(node, binary),
        "remove_binary": nodescript.remove_binary_script(node, binary),
        "apply_table": nodescript.apply_table_script(node),
        "remove_table": nodescript.remove_table_script(node),
        "kit_copy": nodescript.kit_copy_script(node, "/srv/project/components/core/kit/wsf.sh"),
        "kit_remove": nodescript.kit_remove_script(node),
        "kit": nodescript.kit_text(),
    }


@pytest.mark.parametrize("dialect", ["sh", "bash"])
def test_every_node_script_passes_shellcheck(dialect: str, tmp_path: Path) -> None:
    """The kit is the same for every node: as sh, check the break-glass scripts of every flavor and the kit and
    per-resource scripts of one; as bash, one flavor (ShellCheck takes about a second per script)."""
    shellcheck = require("shellcheck", "shellcheck")
    files = []
    for flavor in sorted(FLAVORS) if dialect == "sh" else ["containerd-1"]:
        for name, text in scripts_of(flavor).items():
            if flavor != "containerd-1" and name not in ("install", "uninstall"):
                continue
            f = tmp_path / f"{flavor}-{name}.sh"
            f.write_text(text)
            files.append(str(f))
    # SC1090: the resource scripts source the node's selected kit, whose path is not constant; the kit itself is
    # one of the files checked here.
    result = subprocess.run([shellcheck, "-s", dialect, "-e", "SC1090", *files], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_the_helper_scripts_pass_shellcheck() -> None:
    shellcheck = require("shellcheck", "shellcheck")
    here = Path(__file__).resolve().parent
    result = subprocess.run([shellcheck, "-s", "sh", *map(str, sorted(here.glob("*.sh")))], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout
