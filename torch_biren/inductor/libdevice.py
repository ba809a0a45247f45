"""CUDA's libdevice, as Inductor's generated kernels call it (`libdevice.exp(x)`), for Triton's
interpreter: Triton binds those names to CUDA's bitcode when it compiles, which the interpreter
cannot run, so each is the same function of PyTorch's CPU kernels on the interpreter's arrays.
A kernel's module sees this namespace in place of triton.language.extra.libdevice (launcher.py)."""

import numpy as np
import torch

import triton.language as tl
from triton.runtime.interpreter import TensorHandle, _get_np_dtype

_TL = {torch.bool: tl.int1, torch.int32: tl.int32, torch.int64: tl.int64, torch.float32: tl.float32,
       torch.float64: tl.float64, torch.float16: tl.float16}


def _elementwise(name, fn):
    def call(*args, _semantic=None, **kwargs):
        datas, like = [], None
        for a in args:
            if isinstance(a, tl.core.tensor):
                datas.append(a.handle.data)
                if like is None or a.type.is_block():
                    like = a
            else:
                datas.append(getattr(a, "value", a))
        if like is None:
            raise TypeError(f"libdevice.{name} needs a tensor argument")
        dt = _get_np_dtype(like.dtype)
        tensors = [torch.from_numpy(np.ascontiguousarray(d)) if isinstance(d, np.ndarray)
                   else torch.tensor(d, dtype=torch.from_numpy(np.empty(0, dt)).dtype) for d in datas]
        out = fn(*tensors)
        dtype = _TL[out.dtype]
        data = out.numpy().astype(_get_np_dtype(dtype), copy=False)
        ty = tl.block_type(dtype, list(data.shape)) if like.type.is_block() else dtype
        return tl.core.tensor(TensorHandle(data, dtype), ty)

    call.__name__ = name
    return call


def _ilogb(x):
    return (torch.frexp(x)[1] - 1).to(torch.int32)


def _llrint(x):
    return torch.round(x).to(torch.int64)


_FUNCTIONS = {
    **{n: getattr(torch, n) for n in (
        "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "ceil", "copysign", "cos", "cosh", "erf",
        "erfc", "erfinv", "exp", "exp2", "expm1", "floor", "fmod", "hypot", "isinf", "isnan", "ldexp", "lgamma",
        "log", "log10", "log1p", "log2", "nextafter", "pow", "rsqrt", "signbit", "sin", "sinh", "sqrt", "tan",
        "tanh", "trunc", "abs")},
    "fast_tanhf": torch.tanh,
    "nearbyint": torch.round,  # round half to even, as rint
    "rint": torch.round,
    "llrint": _llrint,
    "ilogb": _ilogb,
    "fmax": torch.fmax,
    "fmin": torch.fmin,
    "div_rn": torch.div,
    "sqrt_rn": torch.sqrt,
}


class _Namespace:
    def __init__(self):
        for name, fn in _FUNCTIONS.items():
            setattr(self, name, _elementwise(name, fn))

    def __getattr__(self, name):
        raise NotImplementedError(f"libdevice.{name} has no form in Triton's interpreter on biren")


libdevice = _Namespace()
