"""Device kernels registered from Python, and the fused ops model code may call directly.

GEMM (mm, addmm, bmm, baddbmm), attention, RMSNorm, softmax and grouped GEMM run as Triton kernels
(TORCH_BIREN_KERNELS=triton, default) or as ATen CPU kernels (reference); both charge the same
cost formula of torch_biren.sim, so simulated time does not depend on the choice."""

import torch

from . import attention, fused, gemm, moe, norms
from ._common import clear_memo, mode, _set_mode
from .fused import cross_entropy, grouped_mm, rms_norm, rope, softmax, swiglu
from .hf import patch_model

__all__ = ["rms_norm", "rope", "swiglu", "softmax", "cross_entropy", "grouped_mm", "set_kernels", "kernels_mode",
           "patch_model", "PYTHON_OPS"]

# Ops with a Python kernel on biren; the C++ runtime leaves them alone.
PYTHON_OPS = [*gemm.IMPLS, *attention.IMPLS, *norms.IMPLS, *moe.IMPLS]

_libs = {}


def _register(key, impls, dispatch_key):
    lib = torch.library.Library("aten", "IMPL")
    for name, fn in impls.items():
        lib.impl(name, fn, dispatch_key)
    _libs[key] = lib


def install():
    from .. import _C
    from ..sim import chip, registry

    _C._set_cost_fn(registry.cost_tuple)
    _C._set_modelled_ops(registry.modelled_ops())
    chip.on_chip_change(lambda _chip: (clear_memo(), _C._clear_cost_memo()))
    _register("fused", {**attention.IMPLS, **norms.IMPLS, **moe.IMPLS}, "PrivateUse1")
    _register("autograd", {**norms.AUTOGRAD_IMPLS, **fused.AUTOGRAD_IMPLS}, "AutogradPrivateUse1")
    set_kernels(mode())
    from . import rnn

    rnn.install()  # LSTM/GRU cells and record_stream, which PyTorch has only for CUDA


def set_kernels(kind):
    """'triton' or 'reference'. In reference mode GEMMs run through the C++ fallback (no Python per
    op) with the same cost formula; the other ops switch their bodies."""
    _set_mode(kind)
    if kind == "triton" and "gemm" not in _libs:
        _register("gemm", gemm.IMPLS, "PrivateUse1")
    elif kind == "reference" and "gemm" in _libs:
        _libs.pop("gemm")._destroy()


def kernels_mode():
    return mode()
