"""mm, addmm, bmm and baddbmm as Triton kernels (linear and matmul reach them through ATen). Inputs
of any strides go to the kernel as they are; fp16/bf16 accumulate in fp32.

In reference mode these ops are not registered at all: the C++ fallback runs the ATen CPU kernel
and charges the same formula (through the runtime's cost hook), without a Python call per op."""

import torch

from .. import kernels
from ..sim import dtypes, registry
from ._common import charge, empty, path, same_device, view

# The cost formula of each op (sim/registry.py, over sim/costs.py::gemm).
COSTS = {"mm": registry.mm, "addmm": registry.addmm, "bmm": registry.bmm, "baddbmm": registry.baddbmm}


def _check(op, a, b, batched):
    dtypes.check_matmul(op, a.dtype)
    dim = 3 if batched else 2
    if a.dim() != dim or b.dim() != dim:
        raise RuntimeError(f"{op}: expected {dim}-D tensors, got {a.dim()}-D and {b.dim()}-D")
    if a.dtype != b.dtype:
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: {a.dtype} != {b.dtype}")
    if a.shape[-1] != b.shape[-2]:
        raise RuntimeError(
            f"mat1 and mat2 shapes cannot be multiplied ({'x'.join(map(str, a.shape))} and "
            f"{'x'.join(map(str, b.shape))})"
        )
    if batched and a.shape[0] != b.shape[0]:
        raise RuntimeError(f"batch1 and batch2 must have same number of batches, got {a.shape[0]} and {b.shape[0]}")


def _product(op, a, b, c=None, beta=1, alpha=1, out=None):
    """alpha * (a @ b) + beta * c for mm (2-D) and bmm (3-D) shapes; c None for mm/bmm. With `out`
    (the op's out= form, which Inductor's compiled graphs call) the result is written into it,
    resized as ATen resizes outputs."""
    batched = op in ("bmm", "baddbmm")
    names = ("batch1", "batch2") if op == "baddbmm" else ("mat1", "mat2") if op == "addmm" else ("self", "mat2")
    device = same_device(f"aten::{op}", **{names[0]: a, names[1]: b}, **({"self": c} if c is not None else {}))
    _check(op, a, b, batched)
    shape = (*a.shape[:-1], b.shape[-1])
    target = out
    if target is not None:
        same_device(f"aten::{op}.out", **{names[0]: a}, out=target)
        if target.dtype != a.dtype:
            raise RuntimeError(f"Expected out tensor to have dtype {a.dtype}, but got {target.dtype} instead")
        if tuple(target.shape) != shape:
            target.resize_(shape)
    # The kernel writes a dense row-major result; an out= tensor of other strides gets a copy of it.
    out = target if target is not None and target.is_contiguous() else empty(shape, a)
    took = path(a, c)
    if took == "triton":
        kernels.mm(view(a), view(b), view(out), c=view(c), alpha=float(alpha), beta=float(beta) if c is not None else 0.0)
    elif c is None:
        getattr(torch, op)(view(a), view(b), out=view(out))
    else:
        getattr(torch, op)(view(c), view(a), view(b), beta=beta, alpha=alpha, out=view(out))
    charge(f"aten::{op}", (a, b) if c is None else (c, a, b, beta, alpha), device, took, COSTS[op])
    if target is not None and target is not out:
        target.copy_(out)
        return target
    return out


def mm(a, b):
    return _product("mm", a, b)


def addmm(c, a, b, *, beta=1, alpha=1):
    return _product("addmm", a, b, c, beta, alpha)


def bmm(a, b):
    return _product("bmm", a, b)


def baddbmm(c, a, b, *, beta=1, alpha=1):
    return _product("baddbmm", a, b, c, beta, alpha)


def mm_out(a, b, *, out):
    return _product("mm", a, b, out=out)


def addmm_out(c, a, b, *, beta=1, alpha=1, out):
    return _product("addmm", a, b, c, beta, alpha, out)


def bmm_out(a, b, *, out):
    return _product("bmm", a, b, out=out)


def baddbmm_out(c, a, b, *, beta=1, alpha=1, out):
    return _product("baddbmm", a, b, c, beta, alpha, out)


IMPLS = {"mm": mm, "addmm": addmm, "bmm": bmm, "baddbmm": baddbmm,
         "mm.out": mm_out, "addmm.out": addmm_out, "bmm.out": bmm_out, "baddbmm.out": baddbmm_out}
