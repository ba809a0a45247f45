"""float64 temporaries that PyTorch itself makes on biren tensors must not trigger the FP64 warning
(or, under TORCH_BIREN_FP64=error, fail): they are PyTorch's, not the user's. print(tensor) formats
through float64; GradScaler.unscale_ takes the reciprocal of its scale in float64."""

import functools

import torch._tensor_str
import torch.amp

from . import _C


def _exempt(owner, name, on_biren):
    original = getattr(owner, name)
    if getattr(original, "_biren", False):
        return

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        if not on_biren(*args):
            return original(*args, **kwargs)
        _C._set_fp64_exempt(True)
        try:
            return original(*args, **kwargs)
        finally:
            _C._set_fp64_exempt(False)

    wrapper._biren = True
    setattr(owner, name, wrapper)


def install():
    _exempt(torch._tensor_str, "_str", lambda tensor, *a: tensor.device.type == "biren")
    _exempt(torch.amp.GradScaler, "unscale_", lambda scaler, *a: scaler._device == "biren")
