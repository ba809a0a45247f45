"""MoE grouped GEMM (torch._grouped_mm, used by HF MoE layers) as a Triton kernel for the routed
case (tokens [T, K] sorted by expert, expert weights [G, K, N], offs = cumulative row ends); the
other layouts autograd needs run on ATen kernels. Charged as the GEMM of all tokens."""

import torch

from .. import kernels
from ..sim import costs
from ._common import charge, empty, same_device, use_triton, view


def grouped_mm(x, w, offs=None, bias=None, out_dtype=None):
    device = same_device("aten::_grouped_mm", self=x, mat2=w, offs=offs, bias=bias)
    routed = x.dim() == 2 and w.dim() == 3 and offs is not None and bias is None
    if routed and (out_dtype is None or out_dtype == x.dtype) and use_triton(x, w):
        out = empty((x.shape[0], w.shape[2]), x)
        kernels.grouped_mm(view(x), view(w), view(offs), view(out))
    else:
        ref = torch._grouped_mm(view(x), view(w), offs=view(offs), bias=view(bias), out_dtype=out_dtype)
        out = empty(ref.shape, x, ref.dtype)
        view(out).copy_(ref)
    m = x.shape[-2] if x.dim() == 2 and w.dim() == 3 else out.shape[-2]
    k = x.shape[-1]
    groups = w.shape[0] if w.dim() == 3 else (offs.shape[0] if offs is not None else 1)
    n = out.shape[-1]
    if x.dim() == 2 and w.dim() == 2:  # weight gradient: per group [K_g.. ] summed over tokens
        m, n, k = x.shape[0], w.shape[1], x.shape[1]
        charge("aten::_grouped_mm", (x, w, groups), device, lambda: costs.gemm(m, n, k, dtype=x.dtype))
    else:
        charge("aten::_grouped_mm", (x, w, groups), device, lambda: costs.gemm(m, n, k, dtype=x.dtype))
    return out


IMPLS = {"_grouped_mm": grouped_mm}
