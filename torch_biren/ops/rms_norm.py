"""RMSNorm (F.rms_norm, and HF's RMSNorm modules through patch_model) as Triton kernels, one fused
kernel forward and one backward."""

import torch
import torch.nn.functional as F

from .. import kernels
from ..sim import registry
from ._common import charge, empty, path, same_device, traced, view
from ._fused import FusedOp


def _cost(x, weight, chip=None):
    return registry.rms_norm(x, [x.shape[-1]], weight, chip=chip)


def _backward_cost(dy, x, rstd, weight, chip=None):
    return registry.rms_norm_backward(dy, x, [x.shape[-1]], rstd, weight, [True, weight is not None], chip=chip)


def _replaces(module):
    return (type(module).__name__.endswith("RMSNorm") and hasattr(module, "weight")
            and hasattr(module, "variance_epsilon"))


RMS_NORM = FusedOp("aten::_fused_rms_norm", "aten::_fused_rms_norm_backward", _cost, _backward_cost, _replaces)


def fusable(x, normalized_shape, weight):
    """Whether aten::rms_norm runs as the fused kernel (else PyTorch's decomposition runs): a
    floating input normalised over its trailing dims, the weight (if any) of its dtype."""
    k = len(normalized_shape)
    return (x.is_floating_point() and (weight is None or weight.dtype == x.dtype)
            and tuple(x.shape[x.dim() - k:]) == tuple(normalized_shape))


class _RMSNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, eps):
        device = same_device("aten::rms_norm", input=x, weight=weight)
        out = torch.empty_like(x, memory_format=torch.contiguous_format)
        rstd = empty(x.shape[:-1], x, torch.float32)
        took = path(x, weight)
        if took == "triton":
            kernels.rms_norm_fwd(view(x), view(weight), view(out), eps=eps, rstd=view(rstd))
        else:
            xv = view(x)
            view(rstd).copy_(torch.rsqrt(xv.float().pow(2).mean(-1) + eps))
            view(out).copy_(torch.rms_norm(xv, [x.shape[-1]], view(weight), eps))
        charge(RMS_NORM.name, (x, weight), device, took, RMS_NORM.cost)
        ctx.save_for_backward(x, weight, rstd)
        ctx.eps = eps
        return out

    @staticmethod
    def backward(ctx, dy):
        x, weight, rstd = ctx.saved_tensors
        device = same_device("aten::rms_norm_backward", grad_out=dy, input=x)
        dx = torch.empty_like(x, memory_format=torch.contiguous_format)
        dw = None if weight is None else torch.empty_like(weight)
        took = path(x, weight, dy)
        if took == "triton":
            kernels.rms_norm_bwd(view(dy), view(x), view(weight), view(dx), view(dw), rstd=view(rstd), eps=ctx.eps)
        else:
            with torch.enable_grad():
                xv = view(x).detach().requires_grad_()
                wv = None if weight is None else view(weight).detach().requires_grad_()
                y = torch.rms_norm(xv, [x.shape[-1]], wv, ctx.eps)
                grads = torch.autograd.grad(y, [t for t in (xv, wv) if t is not None], view(dy))
            view(dx).copy_(grads[0])
            if dw is not None:
                view(dw).copy_(grads[1])
        charge(RMS_NORM.backward_name, (dy, x, rstd, weight), device, took, RMS_NORM.backward_cost)
        return dx, dw, None


def aten_rms_norm(x, normalized_shape, weight=None, eps=None):
    """aten::rms_norm for biren tensors (registered at the autograd key, as the op is composite)."""
    eps = eps if eps is not None else torch.finfo(x.dtype).eps
    if not fusable(x, normalized_shape, weight) or traced(x, weight):
        # Mixed dtypes, odd shapes and graph tracing: PyTorch's own decomposition.
        return torch.ops.aten.rms_norm.default.decompose(x, normalized_shape, weight, eps)
    if len(normalized_shape) > 1:
        flat = x.reshape(*x.shape[: x.dim() - len(normalized_shape)], -1)
        w = weight.reshape(-1) if weight is not None else None
        return _RMSNorm.apply(flat, w, eps).view(x.shape)
    return _RMSNorm.apply(x, weight, eps)


def rms_norm(x, weight=None, eps=None):
    """RMSNorm over the last dim, for model code that calls torch_biren.ops.rms_norm directly."""
    return F.rms_norm(x, (x.shape[-1],), weight, eps)


AUTOGRAD_IMPLS = {"rms_norm": aten_rms_norm}
