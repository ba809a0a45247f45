"""Triton kernels for the biren device: interpreted on CPU tensors, compiled on CUDA tensors.

Every entry point writes into caller-provided outputs, accepts strided views without copying
them, and computes in float32 whatever the storage dtype (float32, float16, bfloat16).

The kernel modules load together on first use of an entry point (`kernels.mm(...)`), not with
the package: they import Triton (0.15 to 0.3 s), which `import torch` (autoloading torch_biren)
should not pay in a process that never runs a kernel.
"""

import importlib
import sys
import types

_MODULES = {
    "attention": ("attention_fwd", "attention_bwd"),
    "cross_entropy": ("cross_entropy_fwd", "cross_entropy_bwd"),
    "gemm": ("linear", "mm"),
    "grouped_mm": ("grouped_mm",),
    "rms_norm": ("rms_norm_bwd", "rms_norm_fwd"),
    "rope": ("rope", "rope_bwd", "rope_fwd"),
    "softmax": ("softmax_bwd", "softmax_fwd"),
    "swiglu": ("swiglu_bwd", "swiglu_fwd"),
}
_HOME = {name: module for module, names in _MODULES.items() for name in names}

__all__ = [
    "mm", "linear", "grouped_mm",
    "attention_fwd", "attention_bwd",
    "rms_norm_fwd", "rms_norm_bwd",
    "rope", "rope_fwd", "rope_bwd",
    "swiglu_fwd", "swiglu_bwd",
    "softmax_fwd", "softmax_bwd",
    "cross_entropy_fwd", "cross_entropy_bwd",
]


def _load():
    for module in _MODULES:
        importlib.import_module(f".{module}", __name__)  # binds each entry point (_Package.__setattr__)


def __getattr__(name):
    if name in _HOME or name in _MODULES:
        _load()
        return globals()[name]
    if name == "runtime":
        return importlib.import_module(".runtime", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *__all__, *_MODULES, "runtime"})


class _Package(types.ModuleType):
    def __setattr__(self, name, value):
        # The import system binds a submodule on its package when it first loads it: bind its entry
        # points too, and where one is named as its module (rope, grouped_mm) the entry point wins,
        # as when this file imported them eagerly.
        if isinstance(value, types.ModuleType) and value.__name__.rpartition(".")[2] in _MODULES:
            for entry in _MODULES[value.__name__.rpartition(".")[2]]:
                super().__setattr__(entry, getattr(value, entry))
            if name in _HOME:
                return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
