"""Entry point of `python -m components` (see components/core/cli.py)."""

import sys

from components.core.cli import main

sys.exit(main())
