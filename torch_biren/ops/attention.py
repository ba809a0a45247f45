"""scaled_dot_product_attention on biren: PyTorch routes it (F.scaled_dot_product_attention, HF's
"sdpa" attention) to the overrideable fused-attention ops, which run the flash-style Triton kernels:
causal, boolean or additive masks, custom scale, GQA/MQA without repeating K/V, q·k and v head dims
that differ (MLA). Dropout goes to PyTorch's math path."""

import math

import torch

from .. import kernels
from ..sim import registry
from ._common import charge, empty, path, same_device, view
from ._fused import FusedOp

# The backend choice (overrideable unless dropout) is a DispatchStub, registered in csrc/aten/extras.cpp.


def _cost(q, k, v, mask, causal, scale, chip=None):
    return registry.sdpa_forward(q, k, v, mask, 0.0, causal, False, scale=scale, chip=chip)


def _backward_cost(dout, q, k, v, mask, causal, chip=None):
    return registry.sdpa_backward(dout, q, k, v, mask, is_causal=causal, chip=chip)


# F.scaled_dot_product_attention on biren: one fused kernel forward, one backward (the trace's stand-in
# charges the same).
ATTENTION = FusedOp("aten::_scaled_dot_product_fused_attention_overrideable",
                    "aten::_scaled_dot_product_fused_attention_overrideable_backward", _cost, _backward_cost)


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


def _reference_scores(q, k, v, mask, causal, scale):
    """Float32 scores of the reference path (materialised: this is the reference, not the kernel)."""
    group = q.shape[1] // k.shape[1]
    kf = k.float().repeat_interleave(group, dim=1)
    vf = v.float().repeat_interleave(group, dim=1)
    s = torch.matmul(q.float(), kf.transpose(-1, -2)) * scale
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else s + mask.float()
    if causal:
        lq, lk = s.shape[-2:]
        s = s.masked_fill(~torch.ones(lq, lk, dtype=torch.bool).tril(), float("-inf"))
    return s, kf, vf, group


def _expand(k, v, group):
    return (k, v) if group == 1 else (k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1))


def _cpu_flash_ok(q, k, v, mask):
    # PyTorch's CPU flash kernels: same head dim for q·k and v, masks of the query dtype or bool.
    return q.shape[-1] == v.shape[-1] and q.dtype == k.dtype == v.dtype and (
        mask is None or mask.dtype in (torch.bool, q.dtype))


def _reference_fwd(q, k, v, out, lse, mask, causal, scale):
    if _cpu_flash_ok(q, k, v, mask):
        kx, vx = _expand(k, v, q.shape[1] // k.shape[1])
        o, l = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, kx, vx, 0.0, causal, attn_mask=mask,
                                                                          scale=scale)
        out.copy_(o)
        lse.copy_(l)
        return
    s, _, vf, _ = _reference_scores(q, k, v, mask, causal, scale)
    lse.copy_(torch.logsumexp(s, -1))
    p = torch.exp(s - lse.unsqueeze(-1)).nan_to_num(0.0)
    out.copy_(torch.matmul(p, vf))


def _reference_bwd(q, k, v, out, lse, dout, dq, dk, dv, mask, causal, scale, need_ds=False):
    group = q.shape[1] // k.shape[1]
    if _cpu_flash_ok(q, k, v, mask) and not need_ds:
        kx, vx = _expand(k, v, group)
        gq, gk, gv = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward(
            dout, q, kx, vx, out, lse, 0.0, causal, attn_mask=mask, scale=scale)
        b, hkv = k.shape[0], k.shape[1]
        dq.copy_(gq)
        dk.copy_(gk.view(b, hkv, group, *gk.shape[2:]).sum(2))
        dv.copy_(gv.view(b, hkv, group, *gv.shape[2:]).sum(2))
        return None
    s, kf, vf, group = _reference_scores(q, k, v, mask, causal, scale)
    p = torch.exp(s - lse.float().unsqueeze(-1)).nan_to_num(0.0)
    do = dout.float()
    dvf = torch.matmul(p.transpose(-1, -2), do)
    dp = torch.matmul(do, vf.transpose(-1, -2))
    ds = p * (dp - (do * out.float()).sum(-1, keepdim=True))
    dq.copy_(torch.matmul(ds, kf) * scale)
    b, hkv = k.shape[0], k.shape[1]
    dkf = torch.matmul(ds.transpose(-1, -2), q.float()) * scale
    dk.copy_(dkf.view(b, hkv, group, *dkf.shape[2:]).sum(2))
    dv.copy_(dvf.view(b, hkv, group, *dvf.shape[2:]).sum(2))
    return ds


def _scale(q, scale):
    return scale if scale is not None else 1.0 / math.sqrt(q.shape[-1])


def sdpa_forward(q, k, v, attn_bias=None, dropout_p=0.0, is_causal=False, return_debug_mask=False, *, scale=None):
    device = same_device("aten::scaled_dot_product_attention", query=q, key=k, value=v, attn_mask=attn_bias)
    b, h, lq, lk = q.shape[0], q.shape[1], q.shape[2], k.shape[2]
    out = like_query(q, (b, h, lq, v.shape[-1]))
    lse = empty((b, h, lq), q, torch.float32)
    sc = _scale(q, scale)
    took = path(q, k, v)
    if took == "triton":
        kernels.attention_fwd(view(q), view(k), view(v), view(out), view(lse), mask=view(attn_bias), causal=is_causal,
                              scale=sc)
    else:
        _reference_fwd(view(q), view(k), view(v), view(out), view(lse), view(attn_bias), is_causal, sc)
    charge(ATTENTION.name, (q, k, v, attn_bias, is_causal, scale), device, took, ATTENTION.cost)
    none = torch.empty(0, device=q.device)
    philox = torch.empty((), dtype=torch.int64, device=q.device)  # 0-d int64, as the meta kernel (compiled graphs check)
    return out, lse, none, none, lq, lk, philox, philox, none


def sdpa_backward(grad_out, q, k, v, attn_bias, grad_input_mask, out, lse, cum_seq_q, cum_seq_k, max_q, max_k,
                  dropout_p, is_causal, philox_seed, philox_offset, *, scale=None):
    device = same_device("aten::scaled_dot_product_attention_backward", grad_out=grad_out, query=q, key=k, value=v)
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    sc = _scale(q, scale)
    want_bias = bool(grad_input_mask[3]) and attn_bias is not None
    dbias = None
    took = "native" if want_bias else path(q, k, v)  # the bias gradient needs the materialised scores
    if took == "triton":
        kernels.attention_bwd(view(q), view(k), view(v), view(out), view(lse), view(grad_out), view(dq), view(dk),
                              view(dv), mask=view(attn_bias), causal=is_causal, scale=sc)
    else:
        ds = _reference_bwd(view(q), view(k), view(v), view(out), view(lse), view(grad_out), view(dq), view(dk),
                            view(dv), view(attn_bias), is_causal, sc, need_ds=want_bias)
        if want_bias:
            dbias = empty(attn_bias.shape, attn_bias)
            view(dbias).copy_(ds.sum_to_size(attn_bias.shape))
    charge(ATTENTION.backward_name, (grad_out, q, k, v, attn_bias, is_causal), device, took, ATTENTION.backward_cost)
    return dq, dk, dv, dbias


IMPLS = {
    "_scaled_dot_product_fused_attention_overrideable": sdpa_forward,
    "_scaled_dot_product_fused_attention_overrideable_backward": sdpa_backward,
}
