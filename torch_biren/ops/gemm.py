"""mm, addmm, bmm and baddbmm as Triton kernels (linear and matmul reach them through ATen). Inputs
of any strides go to the kernel as they are; fp16/bf16 accumulate in fp32.

In reference mode these ops are not registered at all: the C++ fallback runs the ATen CPU kernel
and charges the same formula (through the runtime's cost hook), without a Python call per op."""

import torch

from .. import kernels
from ._common import charge, empty, same_device, use_triton, view


def _check(op, a, b, batched):
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


def mm(a, b):
    device = same_device("aten::mm", self=a, mat2=b)
    _check("mm", a, b, False)
    out = empty((a.shape[0], b.shape[1]), a)
    if use_triton(a):
        kernels.mm(view(a), view(b), view(out), beta=0.0)
    else:
        torch.mm(view(a), view(b), out=view(out))
    charge("aten::mm", (a, b), device)
    return out


def addmm(c, a, b, *, beta=1, alpha=1):
    device = same_device("aten::addmm", self=c, mat1=a, mat2=b)
    _check("addmm", a, b, False)
    out = empty((a.shape[0], b.shape[1]), a)
    if use_triton(a, c):
        kernels.mm(view(a), view(b), view(out), c=view(c), alpha=float(alpha), beta=float(beta))
    else:
        torch.addmm(view(c), view(a), view(b), beta=beta, alpha=alpha, out=view(out))
    charge("aten::addmm", (c, a, b, beta, alpha), device)
    return out


def bmm(a, b):
    device = same_device("aten::bmm", self=a, mat2=b)
    _check("bmm", a, b, True)
    out = empty((a.shape[0], a.shape[1], b.shape[2]), a)
    if use_triton(a):
        kernels.mm(view(a), view(b), view(out), beta=0.0)
    else:
        torch.bmm(view(a), view(b), out=view(out))
    charge("aten::bmm", (a, b), device)
    return out


def baddbmm(c, a, b, *, beta=1, alpha=1):
    device = same_device("aten::baddbmm", self=c, batch1=a, batch2=b)
    _check("baddbmm", a, b, True)
    out = empty((a.shape[0], a.shape[1], b.shape[2]), a)
    if use_triton(a, c):
        kernels.mm(view(a), view(b), view(out), c=view(c), alpha=float(alpha), beta=float(beta))
    else:
        torch.baddbmm(view(c), view(a), view(b), beta=beta, alpha=alpha, out=view(out))
    charge("aten::baddbmm", (c, a, b, beta, alpha), device)
    return out


IMPLS = {"mm": mm, "addmm": addmm, "bmm": bmm, "baddbmm": baddbmm}
