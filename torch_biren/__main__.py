"""python -m torch_biren COMMAND ...: see torch_biren/cli.py."""

import sys

from .cli import main

sys.exit(main())
