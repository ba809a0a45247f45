"""Fused LLM ops for model code that wants them directly (torch_biren.ops.*): rotary embedding,
SiLU-and-multiply and cross-entropy fused with log-softmax, as autograd functions over the Triton
kernels; rms_norm, softmax and grouped_mm go through their aten ops (registered in this package)."""

import torch
import torch.nn.functional as F

from .. import kernels
from ..sim import costs
from ._common import charge, same_device, traced, use_triton, view


def _on_biren(*ts):
    """Run the fused kernels: biren tensors, and not while torch.compile traces (it traces the
    composite form instead; the kernels touch memory that fake tensors do not have)."""
    return not torch.compiler.is_compiling() and all(t.device.type == "biren" for t in ts)


class _Rope(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, cos, sin):
        device = same_device("torch_biren::rope", q=q, k=k, cos=cos, sin=sin)
        qo, ko = torch.empty_like(q), torch.empty_like(k)
        _rope(q, k, cos, sin, qo, ko, backward=False)
        _charge_rope(q, k, device)
        ctx.save_for_backward(cos, sin)
        return qo, ko

    @staticmethod
    def backward(ctx, dq, dk):
        cos, sin = ctx.saved_tensors
        dq, dk = dq.contiguous(), dk.contiguous()
        dqi, dki = torch.empty_like(dq), torch.empty_like(dk)
        _rope(dq, dk, cos, sin, dqi, dki, backward=True)
        _charge_rope(dq, dk, dq.device)
        return dqi, dki, None, None


def _rope(q, k, cos, sin, qo, ko, backward):
    if use_triton(q, k):
        kernels.rope(view(q), view(k), view(cos), view(sin), view(qo), view(ko), backward=backward)
        return
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


def _charge_rope(q, k, device):
    n = q.numel() + k.numel()
    charge("torch_biren::rope", (q, k), device,
           lambda: costs.rope(n, q.dtype))


def rope(q, k, cos, sin):
    """(q * cos + rotate_half(q) * sin, same for k): HF's apply_rotary_pos_emb with unsqueeze_dim=1.
    q: [B, Hq, L, D], k: [B, Hkv, L, D]; cos, sin: [B, L, D] or [L, D]."""
    if not _on_biren(q, k):
        c, s = (cos.unsqueeze(1), sin.unsqueeze(1)) if cos.dim() == 3 else (cos, sin)
        rot = lambda x: torch.cat((-x[..., x.shape[-1] // 2:], x[..., : x.shape[-1] // 2]), -1)  # noqa: E731
        return q * c + rot(q) * s, k * c + rot(k) * s
    return _Rope.apply(q, k, cos, sin)


class _SwiGLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gate, up):
        device = same_device("torch_biren::swiglu", gate=gate, up=up)
        out = torch.empty_like(gate)
        if use_triton(gate, up):
            kernels.swiglu_fwd(view(gate), view(up), view(out))
        else:
            view(out).copy_(F.silu(view(gate)) * view(up))
        charge("torch_biren::swiglu", (gate, up), device,
               lambda: costs.swiglu(out.numel(), gate.dtype))
        ctx.save_for_backward(gate, up)
        return out

    @staticmethod
    def backward(ctx, dy):
        gate, up = ctx.saved_tensors
        dy = dy.contiguous()
        dgate, dup = torch.empty_like(gate), torch.empty_like(up)
        if use_triton(gate, up, dy):
            kernels.swiglu_bwd(view(dy), view(gate), view(up), view(dgate), view(dup))
        else:
            g, u, d = view(gate).float(), view(up).float(), view(dy).float()
            sig = torch.sigmoid(g)
            view(dup).copy_(d * g * sig)
            view(dgate).copy_(d * u * sig * (1 + g * (1 - sig)))
        charge("torch_biren::swiglu_backward", (dy, gate, up), dy.device,
               lambda: costs.swiglu(dy.numel(), gate.dtype, backward=True))
        return dgate, dup


def swiglu(gate, up):
    """silu(gate) * up."""
    return _SwiGLU.apply(gate, up) if _on_biren(gate, up) else F.silu(gate) * up


class _CrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, target, reduction, ignore_index):
        device = same_device("torch_biren::cross_entropy", input=logits, target=target)
        lse = torch.empty(logits.shape[:-1], dtype=torch.float32, device=logits.device)
        shape = logits.shape[:-1] if reduction == "none" else ()
        loss = torch.empty(shape, dtype=logits.dtype, device=logits.device)
        if use_triton(logits):
            kernels.cross_entropy_fwd(view(logits), view(target), view(loss), view(lse), reduction=reduction,
                                      ignore_index=ignore_index)
        else:
            lv = view(logits).float()
            view(lse).copy_(torch.logsumexp(lv, -1))
            view(loss).copy_(F.cross_entropy(lv.reshape(-1, lv.shape[-1]), view(target).reshape(-1),
                                             reduction=reduction, ignore_index=ignore_index).reshape(shape))
        charge("torch_biren::cross_entropy", (logits, target, reduction), device,
               lambda: costs.cross_entropy(logits.numel(), lse.numel(), logits.dtype))
        ctx.save_for_backward(logits, target, lse)
        ctx.reduction, ctx.ignore_index = reduction, ignore_index
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        logits, target, lse = ctx.saved_tensors
        dlogits = torch.empty_like(logits)
        if use_triton(logits):
            kernels.cross_entropy_bwd(view(logits), view(target), view(lse), view(grad_loss.contiguous()),
                                      view(dlogits), reduction=ctx.reduction, ignore_index=ctx.ignore_index)
        else:
            with torch.enable_grad():
                lv = view(logits).detach().float().requires_grad_()
                loss = F.cross_entropy(lv.reshape(-1, lv.shape[-1]), view(target).reshape(-1),
                                       reduction=ctx.reduction, ignore_index=ctx.ignore_index)
                (g,) = torch.autograd.grad(loss, lv, view(grad_loss).reshape(loss.shape).to(loss.dtype))
            view(dlogits).copy_(g)
        charge("torch_biren::cross_entropy_backward", (logits, target, ctx.reduction), logits.device,
               lambda: costs.cross_entropy(logits.numel(), 0, logits.dtype, backward=True))
        return dlogits, None, None, None


def cross_entropy(logits, target, reduction="mean", ignore_index=-100):
    """Cross-entropy over the last dim of logits, fused with its log-softmax (no [N, V] log-probs kept)."""
    if not _on_biren(logits, target):
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction=reduction,
                               ignore_index=ignore_index).reshape(logits.shape[:-1] if reduction == "none" else ())
    return _CrossEntropy.apply(logits, target, reduction, ignore_index)


_REDUCTIONS = ("none", "mean", "sum")  # aten's Reduction enum


def cross_entropy_loss(input, target, weight=None, reduction=1, ignore_index=-100, label_smoothing=0.0):
    """aten::cross_entropy_loss for biren tensors (registered at the autograd key, as the op is
    composite): [N, C] logits with class targets run fused; other forms use PyTorch's decomposition."""
    if torch.is_autocast_enabled("biren"):
        # Composite on CUDA, this op meets autocast in log_softmax/nll_loss, which run in fp32;
        # registered whole here, it must apply that policy itself.
        input = input.float() if input.is_floating_point() else input
        weight = weight.float() if weight is not None and weight.is_floating_point() else weight
    fusable = (weight is None and label_smoothing == 0.0 and input.dim() == 2 and target.dim() == 1
               and target.dtype == torch.long and input.is_floating_point() and not traced(input, target))
    if not fusable:
        return torch.ops.aten.cross_entropy_loss.default.decompose(input, target, weight, reduction, ignore_index,
                                                                   label_smoothing)
    return _CrossEntropy.apply(input, target, _REDUCTIONS[reduction], ignore_index)


AUTOGRAD_IMPLS = {"cross_entropy_loss": cross_entropy_loss}


def rms_norm(x, weight=None, eps=None):
    return F.rms_norm(x, (x.shape[-1],), weight, eps)


def softmax(x, dim=-1):
    return torch.softmax(x, dim)


def grouped_mm(x, w, offs):
    return torch._grouped_mm(x, w, offs=offs)
