"""Memory layouts that PyTorch's meta kernels promise, shared by the device kernels and the
projection's trace (which must allocate, and so copy, exactly as the live device does)."""

import torch


def like_query(q, shape):
    """Attention's output in the query's memory layout, as PyTorch's meta kernel for the fused
    attention ops (and CUDA's flash kernels) lay it out: torch.compile plans the views after
    attention on that layout, and HF's transpose-then-contiguous then needs no copy."""
    if tuple(q.shape) == tuple(shape):
        return torch.empty_like(q)
    order = sorted(range(q.dim()), key=lambda i: q.stride(i), reverse=True)
    strides, step = [0] * q.dim(), 1
    for i in reversed(order):
        strides[i], step = step, step * shape[i]
    return torch.empty_strided(shape, strides, dtype=q.dtype, device=q.device)
