"""Device kernels registered from Python, and the fused ops model code may call directly.

One op family per file, named as its kernels in torch_biren/kernels/: gemm (mm, addmm, bmm, baddbmm),
attention, rms_norm, softmax, rope, swiglu, cross_entropy, grouped_mm. Each runs its Triton kernels
(TORCH_BIREN_KERNELS=triton, default) or ATen CPU kernels (reference, and dtypes or layouts the
kernels do not take), and charges the cost formula it names (torch_biren.sim), so simulated time
does not depend on the path; op_counts() records the path taken."""

import torch

from . import attention, cross_entropy as _cross_entropy, gemm, grouped_mm as _grouped_mm, rms_norm as _rms_norm
from . import rope as _rope, softmax as _softmax, swiglu as _swiglu
from ._common import _set_mode, clear_memo, mode
from .._compile import outside_dynamo
from .cross_entropy import cross_entropy
from .grouped_mm import grouped_mm
from .hf import patch_model
from .rms_norm import rms_norm
from .rope import rope
from .softmax import softmax
from .swiglu import swiglu

__all__ = ["rms_norm", "rope", "swiglu", "softmax", "cross_entropy", "grouped_mm", "set_kernels", "kernels_mode",
           "patch_model", "PYTHON_OPS", "FUSED"]

# Ops with a Python kernel on biren; the C++ runtime leaves them alone.
PYTHON_OPS = [*gemm.IMPLS, *attention.IMPLS, *_softmax.IMPLS, *_grouped_mm.IMPLS]

# The fused ops' descriptions (ops/_fused.py), shared with the projection's trace.
FUSED = {"attention": attention.ATTENTION, "rms_norm": _rms_norm.RMS_NORM, "rope": _rope.ROPE,
         "swiglu": _swiglu.SWIGLU, "cross_entropy": _cross_entropy.CROSS_ENTROPY}

_libs = {}


def _register(key, impls, dispatch_key):
    lib = torch.library.Library("aten", "IMPL")
    for name, fn in impls.items():
        lib.impl(name, outside_dynamo(fn), dispatch_key)
    _libs[key] = lib


def install():
    from .. import _C
    from ..sim import chip, registry

    _C._set_cost_fn(outside_dynamo(registry.cost_tuple))
    _C._set_modelled_ops(registry.modelled_ops())
    chip.on_chip_change(lambda _chip: (clear_memo(), _C._clear_cost_memo()))
    _register("fused", {**attention.IMPLS, **_softmax.IMPLS, **_grouped_mm.IMPLS}, "PrivateUse1")
    _register("autograd", {**_rms_norm.AUTOGRAD_IMPLS, **_cross_entropy.AUTOGRAD_IMPLS}, "AutogradPrivateUse1")
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
