"""Entry point of `python -m components`: the core's commands (components/core/cli.py, no engine) and the
engine's up, preview, destroy, refresh and deployed (components/run.py)."""

import sys

from components.core.cli import main
from components.run import add_engine_commands

sys.exit(main(extend=add_engine_commands))
