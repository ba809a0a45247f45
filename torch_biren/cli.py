"""The command line: python -m torch_biren COMMAND [options].

Each command is one module of torch_biren.commands with HELP, add_arguments(parser) and
run(args) -> exit status; add a module and its name to COMMANDS to add a command. Exit status: 0
success, 1 a check failed (e.g. a ladder rung), 2 bad input (unknown name, impossible config, a run
that does not fit), reported as one line without a traceback.
"""

import argparse
import importlib
import sys

COMMANDS = ["adapt", "bench", "demo", "info", "project", "sensitivity"]


class UsageError(Exception):
    """Bad input: printed as 'error: <message>' and exit status 2."""


def parser():
    p = argparse.ArgumentParser(prog="python -m torch_biren",
                                description="torch_biren: a simulated Biren BR166 GPU as the PyTorch device 'biren'.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        mod = importlib.import_module(f"torch_biren.commands.{name}")
        cp = sub.add_parser(name, help=mod.HELP, description=mod.__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(cp)
        cp.set_defaults(_run=mod.run)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
