"""Cross-entropy fused with its log-softmax (no [N, V] log-probabilities kept) as Triton kernels,
forward and backward: aten::cross_entropy_loss on biren tensors, and torch_biren.ops.cross_entropy."""

import torch
import torch.nn.functional as F

from .. import kernels
from ..biren import graphs
from ..sim import costs
from ._common import charge, on_biren, path, same_device, traced, view
from ._fused import FusedOp


def _cost(logits, chip=None):
    return costs.cross_entropy(logits.numel(), logits.shape[:-1].numel(), logits.dtype, chip)


def _backward_cost(logits, chip=None):
    return costs.cross_entropy(logits.numel(), 0, logits.dtype, chip, backward=True)


CROSS_ENTROPY = FusedOp("torch_biren::cross_entropy", "torch_biren::cross_entropy_backward", _cost, _backward_cost)


def fusable(input, target, weight=None, label_smoothing=0.0):
    """Whether cross-entropy runs as the fused kernel: [N, C] logits, class targets, no class
    weights or label smoothing (other forms take PyTorch's decomposition)."""
    return (weight is None and not label_smoothing and input.dim() == 2 and target.dim() == 1
            and target.dtype == torch.long and input.is_floating_point())


class _CrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, target, reduction, ignore_index):
        device = same_device("torch_biren::cross_entropy", input=logits, target=target)
        lse = torch.empty(logits.shape[:-1], dtype=torch.float32, device=logits.device)
        shape = logits.shape[:-1] if reduction == "none" else ()
        loss = torch.empty(shape, dtype=logits.dtype, device=logits.device)
        took = path(logits)

        def run():
            if took == "triton":
                kernels.cross_entropy_fwd(view(logits), view(target), view(loss), view(lse), reduction=reduction,
                                          ignore_index=ignore_index)
            else:
                lv = view(logits).float()
                view(lse).copy_(torch.logsumexp(lv, -1))
                view(loss).copy_(F.cross_entropy(lv.reshape(-1, lv.shape[-1]), view(target).reshape(-1),
                                                 reduction=reduction, ignore_index=ignore_index).reshape(shape))

        graphs.launch(run, device)
        charge(CROSS_ENTROPY.name, (logits,), device, took, CROSS_ENTROPY.cost)
        ctx.save_for_backward(logits, target, lse)
        ctx.reduction, ctx.ignore_index = reduction, ignore_index
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        logits, target, lse = ctx.saved_tensors
        dlogits = torch.empty_like(logits)
        took = path(logits)
        grad_loss = grad_loss.contiguous()

        def run():
            if took == "triton":
                kernels.cross_entropy_bwd(view(logits), view(target), view(lse), view(grad_loss), view(dlogits),
                                          reduction=ctx.reduction, ignore_index=ctx.ignore_index)
            else:
                with torch.enable_grad():
                    lv = view(logits).detach().float().requires_grad_()
                    loss = F.cross_entropy(lv.reshape(-1, lv.shape[-1]), view(target).reshape(-1),
                                           reduction=ctx.reduction, ignore_index=ctx.ignore_index)
                    (g,) = torch.autograd.grad(loss, lv, view(grad_loss).reshape(loss.shape).to(loss.dtype))
                view(dlogits).copy_(g)

        graphs.launch(run, logits.device)
        charge(CROSS_ENTROPY.backward_name, (logits,), logits.device, took, CROSS_ENTROPY.backward_cost)
        return dlogits, None, None, None


def cross_entropy(logits, target, reduction="mean", ignore_index=-100):
    """Cross-entropy over the last dim of logits, fused with its log-softmax (no [N, V] log-probs kept)."""
    if not on_biren(logits, target):
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
    if not fusable(input, target, weight, label_smoothing) or traced(input, target):
        return torch.ops.aten.cross_entropy_loss.default.decompose(input, target, weight, reduction, ignore_index,
                                                                   label_smoothing)
    return _CrossEntropy.apply(input, target, _REDUCTIONS[reduction], ignore_index)


AUTOGRAD_IMPLS = {"cross_entropy_loss": cross_entropy_loss}
