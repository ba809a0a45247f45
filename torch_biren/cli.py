"""The command line: python -m torch_biren COMMAND [options].

Each command is one module of torch_biren.commands with HELP, add_arguments(parser) and
run(args) -> exit status; add a module and its name to COMMANDS to add a command. A command that
sets DEVICE_FREE = True runs nothing on the device and opens nothing to write: run from the shell
(`python -m torch_biren`), its process ends without the interpreter's teardown (exit()). Exit status: 0
success, 1 a check failed (e.g. a ladder rung), 2 bad input (unknown name, impossible config, a run
that does not fit), reported as one line without a traceback.
"""

import argparse
import importlib
import os
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
        cp.set_defaults(_run=mod.run, _device_free=getattr(mod, "DEVICE_FREE", False))
    return p


_device_free = False  # the command main() ran last is DEVICE_FREE


def main(argv=None):
    global _device_free
    args = parser().parse_args(argv)
    _device_free = args._device_free
    try:
        return int(args._run(args) or 0)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's own flush at exit would fail
        return 141  # 128 + SIGPIPE, what a shell reports for such a writer


def exit(status):
    """End `python -m torch_biren` with `status`. After a DEVICE_FREE command, skip the interpreter's
    teardown of torch and transformers (1-2 s on a small machine, longer than a projection) with
    nothing to clean up; other commands exit normally (atexit handlers, device threads)."""
    if _device_free:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)
