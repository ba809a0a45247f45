"""Devices: enumeration, selection, properties."""


from dataclasses import dataclass

import torch

from .. import _C


def _index(dev, optional=True):
    if dev is None:
        return _C._get_device() if optional else 0
    if isinstance(dev, int):
        return dev
    if isinstance(dev, str):
        dev = torch.device(dev)
    if isinstance(dev, torch.device):
        if dev.type != "biren":
            raise ValueError(f"Expected a biren device, but got: {dev}")
        return _C._get_device() if dev.index is None else dev.index
    raise TypeError(f"expected a device index, string or torch.device, got {type(dev).__name__}")


def is_available():
    return _C._device_count() > 0


def device_count():
    return _C._device_count()


def is_initialized():
    return _C._is_initialized()


def _is_in_bad_fork():
    return _C._in_bad_fork()


def _lazy_init():
    _C._lazy_init()


def init():
    _lazy_init()


def current_device():
    return _C._get_device()


def set_device(device):
    idx = _index(device)
    if idx >= 0:
        _C._set_device(idx)




class device:
    """Context manager that changes the current biren device."""

    def __init__(self, device):
        self.idx = _index(device)
        self.prev = -1

    def __enter__(self):
        self.prev = _C._get_device()
        if self.idx >= 0 and self.idx != self.prev:
            _C._set_device(self.idx)

    def __exit__(self, *exc):
        if self.idx >= 0 and self.idx != self.prev:
            _C._set_device(self.prev)
        return False


class device_of(device):
    """Context manager that makes the tensor's device current (no-op for CPU tensors)."""

    def __init__(self, obj):
        super().__init__(obj.get_device() if obj.device.type == "biren" else -1)


def synchronize(device=None):
    """Joins the host to the device's simulated timeline (all streams)."""
    _C._sim_synchronize(_index(device))


@dataclass(frozen=True)
class _DeviceProperties:
    name: str
    total_memory: int
    multi_processor_count: int
    L2_cache_size: int
    major: int
    minor: int
    warp_size: int
    memory_mode: str
    svi_instances: int

    def __repr__(self):
        return (
            f"_BirenDeviceProperties(name='{self.name}', major={self.major}, minor={self.minor}, "
            f"total_memory={self.total_memory // (1 << 20)}MB, multi_processor_count={self.multi_processor_count}, "
            f"L2_cache_size={self.L2_cache_size // (1 << 20)}MB, mode={self.memory_mode}, svi={self.svi_instances})"
        )


def get_device_properties(device=None):
    from ._chip_binding import device_properties

    idx = _index(device)
    _C._lazy_init()
    if not 0 <= idx < device_count():
        raise AssertionError(f"Invalid device id: biren:{idx} ({device_count()} biren devices are visible)")
    return device_properties(_DeviceProperties)


def get_device_name(device=None):
    return get_device_properties(device).name


def get_device_capability(device=None):
    p = get_device_properties(device)
    return (p.major, p.minor)


def is_bf16_supported(including_emulation=True):
    return True
