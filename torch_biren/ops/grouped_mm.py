"""MoE grouped GEMM (torch._grouped_mm, used by HF MoE layers) as a Triton kernel for the routed
case (tokens [T, K] sorted by expert, expert weights [G, K, N], offs = cumulative row ends); the
other layouts autograd needs run on ATen kernels. Charged as the GEMM of all tokens."""

import torch

from .. import kernels
from ..sim import costs
from ._common import charge, empty, path, same_device, view


def cost(x, w, out, chip=None):
    """One GEMM over all rows: routed [T, K] x [G, K, N] is T x N x K; every other layout (the
    gradients autograd asks for, e.g. 2-D x 2-D giving [G, K, N]) is out's rows x out's columns x
    x's last dim."""
    m = x.shape[-2] if x.dim() == 2 and w.dim() == 3 else out.shape[-2]
    return costs.gemm(m, out.shape[-1], x.shape[-1], dtype=x.dtype, chip=chip)


def aten_grouped_mm(x, w, offs=None, bias=None, out_dtype=None):
    device = same_device("aten::_grouped_mm", self=x, mat2=w, offs=offs, bias=bias)
    routed = x.dim() == 2 and w.dim() == 3 and offs is not None and bias is None
    took = path(x, w) if routed and (out_dtype is None or out_dtype == x.dtype) else "native"
    if took == "triton":
        out = empty((x.shape[0], w.shape[2]), x)
        kernels.grouped_mm(view(x), view(w), view(offs), view(out))
    else:
        ref = torch._grouped_mm(view(x), view(w), offs=view(offs), bias=view(bias), out_dtype=out_dtype)
        out = empty(ref.shape, x, ref.dtype)
        view(out).copy_(ref)
    charge("aten::_grouped_mm", (x, w, out), device, took, cost)
    return out


def grouped_mm(x, w, offs):
    """torch._grouped_mm, for model code that calls torch_biren.ops.grouped_mm directly."""
    return torch._grouped_mm(x, w, offs=offs)


IMPLS = {"_grouped_mm": aten_grouped_mm}
