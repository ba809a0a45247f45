"""print(tensor) formats through float64 temporaries; on biren those must not trigger the FP64
warning (or, under TORCH_BIREN_FP64=error, fail): they are PyTorch's, not the user's."""

import functools

import torch._tensor_str

from . import _C


def install():
    original = torch._tensor_str._str
    if getattr(original, "_biren", False):
        return

    @functools.wraps(original)
    def _str(self, *args, **kwargs):
        if self.device.type != "biren":
            return original(self, *args, **kwargs)
        _C._set_fp64_exempt(True)
        try:
            return original(self, *args, **kwargs)
        finally:
            _C._set_fp64_exempt(False)

    _str._biren = True
    torch._tensor_str._str = _str
