"""One module per `python -m torch_biren` command (see torch_biren/cli.py)."""
