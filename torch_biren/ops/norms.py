"""RMSNorm (reaching F.rms_norm) and softmax as Triton kernels."""

import torch

from .. import kernels
from ._common import charge, empty, same_device, traced, use_triton, view


class _RMSNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, eps):
        device = same_device("aten::rms_norm", input=x, weight=weight)
        out = torch.empty_like(x, memory_format=torch.contiguous_format)
        rstd = empty(x.shape[:-1], x, torch.float32)
        c = x.shape[-1]
        if use_triton(x, weight):
            kernels.rms_norm_fwd(view(x), view(weight), view(out), eps=eps, rstd=view(rstd))
        else:
            xv = view(x)
            view(rstd).copy_(torch.rsqrt(xv.float().pow(2).mean(-1) + eps))
            view(out).copy_(torch.rms_norm(xv, [c], view(weight), eps))
        charge("aten::_fused_rms_norm", (x, [c], weight, eps), device)
        ctx.save_for_backward(x, weight, rstd)
        ctx.eps = eps
        return out

    @staticmethod
    def backward(ctx, dy):
        x, weight, rstd = ctx.saved_tensors
        device = same_device("aten::rms_norm_backward", grad_out=dy, input=x)
        dx = torch.empty_like(x, memory_format=torch.contiguous_format)
        dw = None if weight is None else torch.empty_like(weight)
        if use_triton(x, weight, dy):
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
        charge("aten::_fused_rms_norm_backward", (dy, x, [x.shape[-1]], rstd, weight, [True, weight is not None]),
               device)
        return dx, dw, None


def rms_norm(x, normalized_shape, weight=None, eps=None):
    """aten::rms_norm for biren tensors (registered at the autograd key, as the op is composite)."""
    eps = eps if eps is not None else torch.finfo(x.dtype).eps
    k = len(normalized_shape)
    same_dtype = weight is None or weight.dtype == x.dtype
    if (not x.is_floating_point() or not same_dtype or tuple(x.shape[x.dim() - k:]) != tuple(normalized_shape)
            or traced(x, weight)):
        # Mixed dtypes, odd shapes and graph tracing: PyTorch's own decomposition.
        return torch.ops.aten.rms_norm.default.decompose(x, normalized_shape, weight, eps)
    if k > 1:
        flat = x.reshape(*x.shape[: x.dim() - k], -1)
        w = weight.reshape(-1) if weight is not None else None
        return _RMSNorm.apply(flat, w, eps).view(x.shape)
    return _RMSNorm.apply(x, weight, eps)


def _last_dim(x, dim):
    return dim % max(x.dim(), 1) == x.dim() - 1


def softmax(x, dim, half_to_float):
    device = same_device("aten::_softmax", self=x)
    out = empty(x.shape, x, torch.float32 if half_to_float else x.dtype)
    if use_triton(x) and x.dim() > 0 and _last_dim(x, dim):
        kernels.softmax_fwd(view(x), view(out))
    else:
        torch.ops.aten._softmax.out(view(x), dim, half_to_float, out=view(out))
    charge("aten::_softmax", (x, dim, half_to_float), device)
    return out


def softmax_backward(grad_output, output, dim, input_dtype):
    device = same_device("aten::_softmax_backward_data", grad_output=grad_output, output=output)
    dx = empty(output.shape, output, input_dtype)
    if use_triton(grad_output, output) and output.dim() > 0 and _last_dim(output, dim):
        kernels.softmax_bwd(view(grad_output), view(output), view(dx))
    else:
        torch.ops.aten._softmax_backward_data.out(view(grad_output), view(output), dim, input_dtype, grad_input=view(dx))
    charge("aten::_softmax_backward_data", (grad_output, output, dim, input_dtype), device)
    return dx


IMPLS = {"_softmax": softmax, "_softmax_backward_data": softmax_backward}
AUTOGRAD_IMPLS = {"rms_norm": rms_norm}
