"""python -m torch_biren COMMAND ...: see torch_biren/cli.py."""

from .cli import exit, main

exit(main())
