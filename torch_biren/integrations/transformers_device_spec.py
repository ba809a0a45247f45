"""A device spec for transformers' own test suite (TRANSFORMERS_TEST_DEVICE_SPEC): its tests run on biren.

transformers imports the spec by file name, from the directory the tests run in, so put a one-line
copy there first:

    cd transformers
    python -m torch_biren.integrations.transformers_device_spec      # writes ./biren_device_spec.py
    TRANSFORMERS_TEST_DEVICE_SPEC=biren_device_spec.py python -m pytest tests/models/llama

(Upstream, `testing_utils` loading the spec with importlib.util.spec_from_file_location would let the
variable name this file directly.)"""

import torch

import torch_biren  # noqa: F401  (the device, when autoloading is off)

DEVICE_NAME = "biren"
MANUAL_SEED_FN = torch.biren.manual_seed
EMPTY_CACHE_FN = torch.biren.empty_cache
DEVICE_COUNT_FN = torch.biren.device_count

SHIM = "biren_device_spec.py"


def _more_tables():
    # transformers reads only the three names above from a spec; its other per-device tables
    # (memory, synchronize, the device module) are filled here, while testing_utils imports this file.
    import sys

    tu = sys.modules.get("transformers.testing_utils")
    b = torch.biren
    for table, fn in (("BACKEND_SYNCHRONIZE", b.synchronize), ("BACKEND_MEMORY_ALLOCATED", b.memory_allocated),
                      ("BACKEND_MAX_MEMORY_ALLOCATED", b.max_memory_allocated),
                      ("BACKEND_RESET_MAX_MEMORY_ALLOCATED", b.reset_peak_memory_stats),
                      ("BACKEND_RESET_PEAK_MEMORY_STATS", b.reset_peak_memory_stats),
                      ("BACKEND_TORCH_ACCELERATOR_MODULE", b)):
        if isinstance(getattr(tu, table, None), dict):
            getattr(tu, table).setdefault(DEVICE_NAME, fn)


_more_tables()


def write(directory="."):
    """Writes the one-line spec transformers can import into `directory`; returns its path."""
    import os

    path = os.path.join(directory, SHIM)
    with open(path, "w") as f:
        f.write("from torch_biren.integrations.transformers_device_spec import *  # noqa: F401,F403 (torch_biren: transformers test device spec)\n")
    return path


if __name__ == "__main__":
    import sys

    print(write(sys.argv[1] if len(sys.argv) > 1 else "."))
