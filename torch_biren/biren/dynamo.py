"""biren's DeviceInterface for torch._dynamo and Inductor, which look a device's runtime up by name
(`get_interface_for_device("biren")`) as they do for CUDA, XPU and MTIA.

torch._dynamo takes about 1.5 s to import, so the interface is registered when a script first
imports torch._dynamo.device_interface (torch.compile does), not when torch_biren loads."""

import importlib.abc
import importlib.util
import sys

import torch

from .. import biren as _biren  # the torch.biren namespace (its `device` names the context manager)

_MODULE = "torch._dynamo.device_interface"


def _exchange_device(device):
    """Makes `device` current and returns the previous one (a negative index changes nothing)."""
    previous = _biren.current_device()
    if device >= 0 and device != previous:
        _biren.set_device(device)
    return previous


def _set_stream_by_id(stream_id, device_index, device_type):
    torch.accelerator.set_stream(torch.Stream(stream_id=stream_id, device_index=device_index,
                                              device_type=device_type))


def _raw_stream(device_idx):
    # Simulated streams have no driver handle; their id names them to the runtime.
    return _biren.current_stream(device_idx).stream_id


def _interface_class():
    from torch._dynamo.device_interface import DeviceInterface, caching_worker_current_devices, \
        caching_worker_device_properties

    class BirenInterface(DeviceInterface):
        device = _biren.device
        Event = _biren.Event  # as CUDA's is torch.cuda.Event; elapsed_time in simulated ms
        Stream = _biren.Stream

        class Worker:
            """Device properties recorded in the main process, for compile workers that must not
            initialise the device themselves (what CUDA's Worker does)."""

            @staticmethod
            def set_device(device):
                caching_worker_current_devices["biren"] = device

            @staticmethod
            def current_device():
                return caching_worker_current_devices.get("biren", _biren.current_device())

            @staticmethod
            def get_device_properties(device=None):
                if device is None:
                    device = BirenInterface.Worker.current_device()
                idx = _biren._get_device_index(device, optional=True)
                if "biren" not in caching_worker_device_properties:
                    caching_worker_device_properties["biren"] = [
                        _biren.get_device_properties(i) for i in range(_biren.device_count())]
                return caching_worker_device_properties["biren"][idx]

        current_device = staticmethod(_biren.current_device)
        set_device = staticmethod(_biren.set_device)
        device_count = staticmethod(_biren.device_count)
        is_available = staticmethod(_biren.is_available)
        stream = staticmethod(_biren.stream)
        current_stream = staticmethod(_biren.current_stream)
        set_stream = staticmethod(_biren.set_stream)
        _set_stream_by_id = staticmethod(_set_stream_by_id)
        get_raw_stream = staticmethod(_raw_stream)
        exchange_device = staticmethod(_exchange_device)
        maybe_exchange_device = staticmethod(_exchange_device)
        synchronize = staticmethod(_biren.synchronize)
        get_device_properties = staticmethod(_biren.get_device_properties)
        memory_allocated = staticmethod(_biren.memory_allocated)
        is_bf16_supported = staticmethod(_biren.is_bf16_supported)

        @staticmethod
        def get_compute_capability(device=None):
            major, minor = _biren.get_device_capability(device)
            return major * 10 + minor  # CUDA's convention

        @classmethod
        def is_dtype_supported(cls, dtype, including_emulation=False):
            return dtype not in (torch.float64, torch.complex128)  # BR1xx hardware has no FP64

        @staticmethod
        def is_triton_capable(device=None):
            return True  # Inductor's generated Triton kernels run on biren (torch_biren/inductor)

        @staticmethod
        def raise_if_triton_unavailable(device=None):
            import importlib.util

            if importlib.util.find_spec("triton") is None:
                raise RuntimeError("Inductor needs Triton to generate kernels for biren: pip install triton")

    return BirenInterface


def _register(module):
    interface = _interface_class()
    module.register_interface_for_device("biren", interface)
    for i in range(_biren.device_count()):
        module.register_interface_for_device(f"biren:{i}", interface)


def _skip_wrappers(trace_rules):
    """Dynamo must not trace the frames of torch_biren/_compile.py: its outside_dynamo wrapper
    turns Dynamo's frame hook off around the device kernels the dispatcher calls (Dynamo's own
    disable wrapper is skipped the same way, as a file of torch)."""
    trace_rules.add("torch_biren._compile")


def _compile_time(callback):
    """Device work issued while Dynamo compiles is the compiler's, not the program's (_compile.py)."""
    from .. import _compile

    _compile.compile_time_scopes(callback.callback_handler)


_ON_IMPORT = {_MODULE: _register, "torch._dynamo.trace_rules": _skip_wrappers, "torch._dynamo.callback": _compile_time}


class _RegisterOnImport(importlib.abc.MetaPathFinder):
    """Finds a module of _ON_IMPORT as usual and calls its function once the module has run."""

    def __init__(self, name):
        self.name = name

    def find_spec(self, name, path, target=None):
        if name != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        real = spec.loader

        class Loader(importlib.abc.Loader):
            def create_module(self, spec):
                return real.create_module(spec)

            def exec_module(self, module):
                real.exec_module(module)
                _ON_IMPORT[name](module)

        spec.loader = Loader()
        return spec


def install():
    for name, on_import in _ON_IMPORT.items():
        if name in sys.modules:
            on_import(sys.modules[name])
        elif not any(isinstance(f, _RegisterOnImport) and f.name == name for f in sys.meta_path):
            sys.meta_path.insert(0, _RegisterOnImport(name))
