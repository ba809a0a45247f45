"""python -m torch_biren.migration [--to biren|cpu] script.py [args...]

Runs an unmodified CUDA script with the CUDA migration on: on the biren device (default), or on the
CPU with the same autocast dtypes as a reference run to compare against."""

import argparse
import runpy
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m torch_biren.migration", description=__doc__.split("\n\n")[1])
    parser.add_argument("--to", choices=("biren", "cpu"), default="biren", help="where 'cuda' runs (default biren)")
    parser.add_argument("script", help="the CUDA script to run")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")
    opts = parser.parse_args(argv)

    from . import enable

    enable(opts.to)
    sys.argv = [opts.script, *opts.args]
    sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(opts.script)))
    runpy.run_path(opts.script, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
