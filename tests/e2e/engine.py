"""One way to get a stack for the e2e tier: the built Pulumi CLI, a local file backend, offline."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


def offline_stack(toolchain_bin: Path, work: Path, project: str, stack_name: str, program: Callable[[], None],
                  *, project_settings: bool = True) -> Any:
    """An Automation API stack of an inline program in `work`, state in `work/state`, PULUMI_HOME in
    `work/pulumi-home`; no update check, no plugin download. With project_settings=False the project's own
    Pulumi.yaml in `work` is used and the backend comes from PULUMI_BACKEND_URL."""
    import pulumi.automation as auto

    state, home = work / "state", work / "pulumi-home"
    state.mkdir(exist_ok=True)
    env = {
        "PULUMI_CONFIG_PASSPHRASE": "wsf-e2e",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_HOME": str(home),
        "PULUMI_BACKEND_URL": f"file://{state}",
    }
    settings = None
    if project_settings:
        settings = auto.ProjectSettings(name=project, runtime="python",
                                        backend=auto.ProjectBackend(url=f"file://{state}"))
    opts = auto.LocalWorkspaceOptions(work_dir=str(work), pulumi_home=str(home), env_vars=env,
                                      pulumi_command=auto.PulumiCommand(root=str(toolchain_bin.parent)),
                                      project_settings=settings)
    return auto.create_stack(stack_name, project_name=project, program=program, opts=opts)
