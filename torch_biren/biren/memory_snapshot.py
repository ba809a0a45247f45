"""Memory snapshots in torch.cuda.memory's format, so PyTorch's own tools read them:

    torch.biren.memory._record_memory_history()      # start recording allocations with their stacks
    ...
    torch.biren.memory._dump_snapshot("snap.pickle")  # drag into pytorch.org/memory_viz, or
    # python -m torch.cuda._memory_viz trace_plot snap.pickle -o snap.html

TORCH_BIREN_OOM_SNAPSHOT=path dumps a snapshot to `path` whenever an out-of-memory error is raised
(with history recording on, the snapshot holds the stacks of every live allocation).
"""

import os
import pickle
import sys

from .. import _C


def _record_memory_history(enabled="all", context="all", stacks="all", max_entries=sys.maxsize, device=None,
                           **_legacy):  # fmt: skip
    """Record allocator actions with the Python (stacks="all": and C++) stack of each.

    enabled: None (stop), "state" (stacks of live blocks only) or "all" (also a trace of the last
    max_entries actions); True/False as in the older torch.cuda API. context and device are accepted for
    torch.cuda compatibility: every action is recorded with its stack, on every device."""
    if enabled is True:
        enabled = "all"
    if enabled not in (None, False, "state", "all"):
        raise ValueError(f"_record_memory_history: enabled must be None, 'state' or 'all', got {enabled!r}")
    if stacks not in ("python", "all"):
        raise ValueError(f"_record_memory_history: stacks must be 'python' or 'all', got {stacks!r}")
    max_entries = _legacy.get("trace_alloc_max_entries", max_entries)
    on = enabled in ("state", "all")
    _C._memory_record_history(on, stacks == "all", max_entries if enabled == "all" else 0)


def _snapshot(device=None):
    """{"segments": [...], "device_traces": [[...] per device], ...} as torch.cuda.memory._snapshot."""
    return _C._memory_snapshot()


def _dump_snapshot(filename="dump_snapshot.pickle"):
    with open(filename, "wb") as f:
        pickle.dump(_snapshot(), f)


def _attach_out_of_memory_observer(observer):
    """observer(device, requested_bytes, device_total_bytes, device_free_bytes) is called before an
    out-of-memory error is raised. It runs inside the allocator: it may take or dump a snapshot, and
    must not allocate on the device."""
    _C._memory_attach_oom_observer(observer)


def _dump_on_oom_from_env():
    path = os.environ.get("TORCH_BIREN_OOM_SNAPSHOT")
    if not path:
        return

    def dump(device, requested, total, free):
        _dump_snapshot(path)
        print(f"torch_biren: out of memory on biren:{device}; snapshot written to {path} (TORCH_BIREN_OOM_SNAPSHOT)",
              file=sys.stderr)  # fmt: skip

    _attach_out_of_memory_observer(dump)


_dump_on_oom_from_env()
