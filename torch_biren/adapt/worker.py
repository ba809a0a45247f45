"""One ladder in its own process: python -m torch_biren.adapt.worker OPTIONS_JSON RESULT_PATH.

Progress goes to stdout as lines '@@ {json event}'; the result JSON is rewritten after every rung,
so if the process dies the suite still knows how far it got. TORCH_BIREN_ADAPT_FAULT=L2 makes the
process abort as that rung starts (how the tests check that a crash is reported as one).
"""

import json
import os
import sys


def _write(path, result):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, default=str)
    os.replace(tmp, path)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    opts_json, path = argv
    import torch

    import transformers

    from . import ladder

    transformers.logging.set_verbosity_error()
    threads = os.environ.get("TORCH_BIREN_ADAPT_THREADS")
    if threads:
        torch.set_num_threads(int(threads))

    fault = os.environ.get("TORCH_BIREN_ADAPT_FAULT")

    def on_event(event, **kw):
        if event == "rung" and kw["rung"] == fault:
            os.abort()
        if event == "result":
            _write(path, kw["result"])
            return
        print("@@", json.dumps({"event": event, **kw}, default=str), flush=True)

    ladder.run(ladder.Options(**json.loads(opts_json)), on_event)
    return 0


if __name__ == "__main__":
    sys.exit(main())
