"""The live device's simulated clock: how much BR166 time a device has spent, and a reset.

A device's elapsed time is the end of its latest work on any stream, or the host's issue point when
that is later (host-bound stretches count, as on a real card's wall clock)."""


def _runtime():
    from .. import _C  # the runtime is needed only here; the rest of sim is pure Python

    return _C


def _index(device):
    if device is None:
        return _runtime()._get_device()
    if isinstance(device, int):
        return device
    import torch

    device = torch.device(device)
    if device.type != "biren":
        raise ValueError(f"expected a biren device, got {device}")
    return device.index if device.index is not None else _runtime()._get_device()


def elapsed_ns(device=None):
    """Simulated nanoseconds on `device` (default: the current biren device) since the last reset
    (the integer picosecond clock, converted)."""
    return _runtime()._sim_elapsed_ns(_index(device))


def elapsed_ps(device=None):
    """Simulated picoseconds on `device`, the clock's exact integer: subtract two readings for an
    elapsed time that does not depend on where on the clock it was measured."""
    return _runtime()._sim_elapsed_ps(_index(device))


def elapsed_ms(device=None):
    """Simulated milliseconds on `device`, as Event.elapsed_time reports them."""
    return elapsed_ns(device) / 1e6


def reset(device=None):
    """Restart the simulated clocks of `device` (every device when None) at zero."""
    _runtime()._sim_reset(-1 if device is None else _index(device))
