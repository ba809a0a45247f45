"""The zoo's adaptation suite: every model, fp32 and bf16, report into models/results/.

    python models/run_suite.py                 # all models, 20 steps, both dtypes
    python models/run_suite.py qwen2 --steps 50

The same as `python -m torch_biren adapt all --out models/results`; arguments are passed on
(see `python -m torch_biren adapt --help`). Exit status as the command's.
"""

import os
import sys

from torch_biren.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if not any(not a.startswith("-") for a in args):
        args = ["all", *args]
    if "--out" not in args:
        args += ["--out", os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")]
    sys.exit(main(["adapt", *args]))
