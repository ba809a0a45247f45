"""MoE grouped GEMM (torch._grouped_mm, used by HF MoE layers) as a Triton kernel for the routed
case (tokens [T, K] sorted by expert, expert weights [G, K, N], offs = cumulative row ends); the
other layouts autograd needs run on ATen kernels. Charged as one grouped launch over the groups'
GEMMs (offs gives their sizes), with the kernel selection every GEMM uses."""

import torch

from .. import kernels
from ..sim import costs
from ._common import charge, empty, path, same_device, view


def problems(x, w, out, sizes):
    """The GEMM of each group, (m, n, k), for torch._grouped_mm's layouts; `sizes` are the groups'
    extents along the dim offs splits (None: 3-D x 3-D, a batch of equal groups)."""
    if x.dim() == 3 and w.dim() == 3:
        return [(x.shape[1], w.shape[2], x.shape[2])] * x.shape[0]
    if x.dim() == 2 and w.dim() == 3:  # routed tokens: offs splits x's rows
        return [(g, w.shape[2], x.shape[1]) for g in sizes]
    if x.dim() == 3 and w.dim() == 2:  # offs splits w's columns
        return [(x.shape[1], g, x.shape[2]) for g in sizes]
    return [(x.shape[0], w.shape[1], g) for g in sizes]  # 2-D x 2-D: offs splits k, out [G, m, n]


def cost(x, w, out, sizes, chip=None):
    """One grouped launch over the groups' GEMMs, the same kernel selection as a GEMM
    (sim/costs.py::grouped_gemm)."""
    return costs.grouped_gemm(problems(x, w, out, sizes), dtype=x.dtype, chip=chip)


def group_sizes(offs):
    """Group extents from offs (cumulative ends), read from device memory: the cost depends on them."""
    if offs is None:
        return None
    ends = view(offs).tolist()
    return tuple(b - a for a, b in zip([0, *ends[:-1]], ends))


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
    charge("aten::_grouped_mm", (x, w, out, group_sizes(offs)), device, took, cost)
    return out


def grouped_mm(x, w, offs):
    """torch._grouped_mm, for model code that calls torch_biren.ops.grouped_mm directly."""
    return torch._grouped_mm(x, w, offs=offs)


IMPLS = {"_grouped_mm": aten_grouped_mm}
