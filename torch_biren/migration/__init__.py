"""CUDA migration: run a script written for CUDA on the biren device without editing it.

    import torch_biren.transfer_to_biren        # or: TORCH_BIREN_MIGRATE_CUDA=1 python train.py
                                                # or: python -m torch_biren.migration train.py ...

After `enable()`, `torch.cuda.*` is `torch.biren.*`; "cuda"/"cuda:N"/torch.device("cuda") in
factories, `.to()`, `.cuda()`, torch.load's map_location, autocast, GradScaler, DataLoader and
DeviceMesh mean biren; `tensor.is_cuda` is True on biren; the "nccl" backend means "bccl".
`disable()` restores every patched attribute. See docs/user-guide.md, "Running CUDA scripts".

This module imports only `os` at import time: torch_biren/__init__ calls `autoload_before_register`
before the device runtime starts (CUDA_VISIBLE_DEVICES must be mapped before it is read).
"""

import os
import sys

from . import env

__all__ = ["enable", "disable", "is_enabled", "target", "requested", "map_device"]

FLAG = "TORCH_BIREN_MIGRATE_CUDA"
QUIET = "TORCH_BIREN_MIGRATE_QUIET"

_notes = []  # what map_env did, for the banner


def requested():
    """True when TORCH_BIREN_MIGRATE_CUDA asks for the migration at import."""
    return env.flag(FLAG)


def autoload_before_register():
    """Called by torch_biren/__init__ before the runtime loads: maps CUDA environment variables."""
    if requested():
        _notes.extend(env.map_env())


def autoload_after_register(load_error):
    """Called by torch_biren/__init__ after loading: enables the migration if requested."""
    if not requested():
        return
    if load_error is not None:
        print(f"torch_biren: {FLAG} is set but the device did not load; CUDA migration not enabled",
              file=sys.stderr)
        return
    try:
        enable()
    except Exception as err:  # noqa: BLE001 - like a load failure, this must not break `import torch`
        print(f"torch_biren: {FLAG} is set but the CUDA migration failed to start "
              f"({type(err).__name__}: {err}); not enabled", file=sys.stderr)


def is_enabled():
    from .patches import state

    return state.target is not None


def target():
    """'biren' (the device), 'cpu' (a reference run) or None (migration off)."""
    from .patches import state

    return state.target


def map_device(d):
    """What the migration turns a device argument into ('cuda:1' -> 'biren:1'); unchanged when off."""
    from .patches import map_device as _map, state

    return _map(d) if state.target else d


def enable(device="biren", quiet=None):
    """Makes CUDA code run on `device` ('biren', or 'cpu' for a reference run of the same script).

    Idempotent: a second call with the same device does nothing; another device switches. Returns
    True if this call changed anything."""
    import torch

    import torch_biren

    from . import patches

    if device not in ("biren", "cpu"):
        raise ValueError(f"CUDA migration target must be 'biren' or 'cpu', got {device!r}")
    if patches.state.target == device:
        return False
    if device == "biren" and torch_biren.load_error() is not None:
        raise RuntimeError(f"the biren device did not load ({torch_biren.load_error()!r}): cannot migrate to it")
    if patches.state.target is not None:
        patches.remove()
    if device == "biren" and not _notes and FLAG not in os.environ:
        _late_env_notes()
    patches.apply(device)
    _banner(device, quiet)
    return True


def disable():
    """Restores everything `enable` patched (and BIREN_VISIBLE_DEVICES if it was set from CUDA's)."""
    from . import patches

    if patches.state.target is None:
        return False
    patches.remove()
    env.unmap_env()
    return True


def _late_env_notes():
    # The runtime has read BIREN_VISIBLE_DEVICES already: CUDA_VISIBLE_DEVICES can only be reported.
    cuda = os.environ.get("CUDA_VISIBLE_DEVICES")
    if cuda is not None and "BIREN_VISIBLE_DEVICES" not in os.environ:
        _notes.append(f"CUDA_VISIBLE_DEVICES={cuda!r} not applied (device already loaded; "
                      f"set {FLAG}=1 or BIREN_VISIBLE_DEVICES before starting Python)")
    if "PYTORCH_CUDA_ALLOC_CONF" in os.environ:
        _notes.append("PYTORCH_CUDA_ALLOC_CONF accepted and ignored")


def _banner(device, quiet):
    if quiet is None:
        quiet = env.flag(QUIET)
    if quiet:
        return
    import torch

    if device == "cpu":
        line = "torch_biren: CUDA migration on: 'cuda' runs on the CPU (reference run)"
    else:
        line = (f"torch_biren: CUDA migration on: torch.cuda, 'cuda' and 'nccl' now mean biren "
                f"({torch.biren.device_count()} devices)")
    extra = "; ".join(_notes)
    print(f"{line}{'; ' + extra if extra else ''} [{QUIET}=1 hides this]", file=sys.stderr)
