"""Entry point of `python -m components`: the core's commands (components/core/cli.py, no engine, cluster or
network), the read-only drift check (components/check_live.py), and the engine's up, preview, destroy, refresh
and export (components/run.py)."""

import sys

from .check_live import add_parser as add_check_command
from .check_live import read_api_nodes
from .core.cli import main
from .run import add_engine_commands


def extend(sub) -> None:
    """Adds the commands outside the core to the core's parser (components.core.cli.build_parser)."""
    sub.choices["plan"].set_defaults(read_nodes=read_api_nodes)  # plan --cluster: the nodes agent pools select
    add_check_command(sub)  # check: drift between the plan and what the cluster and nodes really have
    add_engine_commands(sub)


if __name__ == "__main__":
    sys.exit(main(extend=extend))
