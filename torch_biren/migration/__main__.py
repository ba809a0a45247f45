"""python -m torch_biren.migration [--to biren|cpu] script.py [args...]

Runs an unmodified CUDA script with the CUDA migration on: on the biren device (default), or on the
CPU with the same autocast dtypes as a reference run to compare against."""

import argparse
import runpy
import sys


def _warn_misplaced(parser, opts):
    """Our options after the script name belong to the script (it may have its own --to); say so,
    since `script.py --to cpu` otherwise runs on biren without a word."""
    ours = {s for a in parser._actions for s in a.option_strings if s not in ("-h", "--help")}
    misplaced = [a for a in opts.args if a.split("=", 1)[0] in ours]
    if misplaced:
        print(f"torch_biren.migration: warning: {' '.join(misplaced)} comes after the script name, so it is passed to "
              f"{opts.script}, not to the migration (which runs on {opts.to}); put it before the script to choose "
              "where 'cuda' runs", file=sys.stderr, flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m torch_biren.migration", description=__doc__.split("\n\n")[1])
    parser.add_argument("--to", choices=("biren", "cpu"), default="biren", help="where 'cuda' runs (default biren)")
    parser.add_argument("script", help="the CUDA script to run")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")
    opts = parser.parse_args(argv)
    _warn_misplaced(parser, opts)

    from . import enable

    enable(opts.to)
    sys.argv = [opts.script, *opts.args]
    sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(opts.script)))
    runpy.run_path(opts.script, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
