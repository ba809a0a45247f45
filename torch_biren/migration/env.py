"""CUDA environment variables that have a biren meaning.

Only `os` here: torch_biren/__init__ calls `map_env` before the device runtime starts, because the
runtime reads BIREN_VISIBLE_DEVICES once, when it loads."""

import os

# Variables that a CUDA script or launcher sets, and what happens to them under the migration.
NOTES = {
    "CUDA_VISIBLE_DEVICES": "copied to BIREN_VISIBLE_DEVICES when that is unset (only effective when the "
                            "migration starts with TORCH_BIREN_MIGRATE_CUDA=1, before the device loads)",
    "PYTORCH_CUDA_ALLOC_CONF": "accepted and ignored: the biren caching allocator has no tunables",
    "CUDA_LAUNCH_BLOCKING": "ignored: the simulated device already runs each op before returning",
    "CUDA_DEVICE_ORDER": "ignored: biren devices are numbered by card",
    "NCCL_*": "ignored: collectives go to the 'bccl' backend",
}

# What map_env set, so that unmap_env can take it back.
_set_by_us = {}


def _visible_list(value):
    """CUDA's rule: the list of indices up to the first entry that is not one. UUIDs (GPU-..., MIG-...)
    have no biren meaning, so a list starting with one is not mapped (None)."""
    kept = []
    for item in value.split(","):
        item = item.strip()
        if item.isdigit():
            kept.append(item)
            continue
        if not kept and item[:4].upper() in ("GPU-", "MIG-"):
            return None
        break
    return ",".join(kept)


def map_env(environ=None):
    """Map the CUDA variables that have a biren equivalent; returns one note per variable seen."""
    environ = os.environ if environ is None else environ
    notes = []
    cuda = environ.get("CUDA_VISIBLE_DEVICES")
    if cuda is not None:
        if "BIREN_VISIBLE_DEVICES" in environ:
            notes.append("CUDA_VISIBLE_DEVICES ignored: BIREN_VISIBLE_DEVICES is set")
        else:
            mapped = _visible_list(cuda)
            if mapped is None:
                notes.append(f"CUDA_VISIBLE_DEVICES={cuda!r} names GPUs by UUID: not mapped")
            else:
                environ["BIREN_VISIBLE_DEVICES"] = mapped
                _set_by_us["BIREN_VISIBLE_DEVICES"] = mapped
                notes.append(f"CUDA_VISIBLE_DEVICES={cuda!r} -> BIREN_VISIBLE_DEVICES={mapped!r}")
    if "PYTORCH_CUDA_ALLOC_CONF" in environ:
        notes.append("PYTORCH_CUDA_ALLOC_CONF accepted and ignored (the biren allocator has no tunables)")
    return notes


def unmap_env(environ=None):
    environ = os.environ if environ is None else environ
    for name, value in list(_set_by_us.items()):
        if environ.get(name) == value:
            del environ[name]
        del _set_by_us[name]


def flag(name, environ=None):
    value = (os.environ if environ is None else environ).get(name, "")
    return value.strip().lower() not in ("", "0", "false", "no", "off")
