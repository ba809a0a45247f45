"""NaN/Inf tracker: stops at the first biren op that produces a non-finite value from finite inputs,
naming the op and the module it ran in."""

import contextlib

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ._walk import ModulePath, describe, host_copy, is_biren, tensors


def _finite(t):
    if not (t.is_floating_point() or t.is_complex()) or t.numel() == 0:
        return True
    return bool(torch.isfinite(host_copy(t) if is_biren(t) else t).all())


class NonFiniteError(FloatingPointError):
    def __init__(self, op, module, inputs, output_index, nan, inf):
        kinds = " and ".join(k for k, n in (("NaN", nan), ("Inf", inf)) if n)
        super().__init__(f"{op} in {module} produced {kinds} (output {output_index}: {nan} NaN, {inf} Inf) from "
                         f"finite inputs {inputs}")  # fmt: skip
        self.op, self.module, self.output_index = op, module, output_index


class _NonFiniteMode(TorchDispatchMode):
    def __init__(self, modules):
        super().__init__()
        self.modules = modules

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        outs = [t for t in tensors(out) if is_biren(t)]
        if not outs or "empty" in func.name():
            return out
        for i, t in enumerate(outs):
            if _finite(t):
                continue
            # Non-finite inputs mean an earlier op (or the user's data) is the origin, not this one.
            ins = tensors(list(args)) + tensors(list(kwargs.values()))
            if all(_finite(x) for x in ins):
                v = host_copy(t)
                raise NonFiniteError(str(func), self.modules.current(), describe(list(args)), i,
                                     int(v.isnan().sum()), int(v.isinf().sum()))  # fmt: skip
        return out


@contextlib.contextmanager
def detect_nonfinite(model=None):
    """Raise NonFiniteError at the first biren op in the block that turns finite inputs into NaN/Inf:

        with torch_biren.debug.detect_nonfinite(model):
            loss = model(x).sum(); loss.backward()
    """
    with ModulePath(model) as modules, _NonFiniteMode(modules):
        yield
