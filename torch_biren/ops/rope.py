"""Rotary position embedding (HF's rotate-half apply_rotary_pos_emb) as a Triton kernel, forward
and backward, for model code that calls torch_biren.ops.rope and for the HF models patch_model
points at it."""

import torch

from .. import kernels
from ..biren import graphs
from ..sim import costs
from ._common import charge, on_biren, path, same_device, view
from ._fused import FusedOp

# Model families whose apply_rotary_pos_emb is HF's rotate-half form (DeepSeek's interleaves).
ROTATE_HALF = ("llama", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "mistral", "mixtral")


def _cost(q, k, chip=None):
    return costs.rope(q.numel() + k.numel(), q.dtype, chip)


ROPE = FusedOp("torch_biren::rope", "torch_biren::rope", _cost, _cost, families=ROTATE_HALF)


class _Rope(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, cos, sin):
        device = same_device("torch_biren::rope", q=q, k=k, cos=cos, sin=sin)
        qo, ko = torch.empty_like(q), torch.empty_like(k)
        took = graphs.launch(lambda: _rope(q, k, cos, sin, qo, ko, backward=False), device)
        charge(ROPE.name, (q, k), device, took, ROPE.cost)
        ctx.save_for_backward(cos, sin)
        return qo, ko

    @staticmethod
    def backward(ctx, dq, dk):
        cos, sin = ctx.saved_tensors
        dq, dk = dq.contiguous(), dk.contiguous()
        dqi, dki = torch.empty_like(dq), torch.empty_like(dk)
        took = graphs.launch(lambda: _rope(dq, dk, cos, sin, dqi, dki, backward=True), dq.device)
        charge(ROPE.backward_name, (dq, dk), dq.device, took, ROPE.backward_cost)
        return dqi, dki, None, None


def _rope(q, k, cos, sin, qo, ko, backward):
    """Runs the kernel body; returns the path it took."""
    if path(q, k) == "triton":
        kernels.rope(view(q), view(k), view(cos), view(sin), view(qo), view(ko), backward=backward)
        return "triton"
    c, s = view(cos), view(sin)
    if c.dim() == 3:
        c, s = c.unsqueeze(1), s.unsqueeze(1)
    s = -s if backward else s
    for src, dst in ((view(q), view(qo)), (view(k), view(ko))):
        half = src.shape[-1] // 2
        rot = torch.cat((-src[..., half:], src[..., :half]), -1)
        if backward:  # the transpose of rotate_half
            rot = torch.cat((src[..., half:], -src[..., :half]), -1)
            dst.copy_(src * c + rot * -s)
        else:
            dst.copy_(src * c + rot * s)
    return "native"


def rope(q, k, cos, sin):
    """(q * cos + rotate_half(q) * sin, same for k): HF's apply_rotary_pos_emb with unsqueeze_dim=1.
    q: [B, Hq, L, D], k: [B, Hkv, L, D]; cos, sin: [B, L, D] or [L, D]."""
    if not on_biren(q, k):
        c, s = (cos.unsqueeze(1), sin.unsqueeze(1)) if cos.dim() == 3 else (cos, sin)
        rot = lambda x: torch.cat((-x[..., x.shape[-1] // 2:], x[..., : x.shape[-1] // 2]), -1)  # noqa: E731
        return q * c + rot(q) * s, k * c + rot(k) * s
    return _Rope.apply(q, k, cos, sin)
