"""SiLU-and-multiply (the SwiGLU MLP's silu(gate) * up) as a Triton kernel, forward and backward, for
model code that calls torch_biren.ops.swiglu and for the HF MLPs patch_model points at it."""

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import kernels
from ..biren import graphs
from ..sim import costs
from ._common import charge, on_biren, path, same_device, view
from ._fused import FusedOp


def _cost(gate, up, chip=None):
    return costs.swiglu(gate.numel(), gate.dtype, chip)


def _backward_cost(dy, gate, up, chip=None):
    return costs.swiglu(dy.numel(), gate.dtype, chip, backward=True)


def is_silu(act):
    return isinstance(act, nn.SiLU) or type(act).__name__ in ("SiLUActivation", "SiLU")


def _replaces(module):
    """HF's gated MLPs: down_proj(act_fn(gate_proj(x)) * up_proj(x)) with a SiLU activation."""
    return all(hasattr(module, p) for p in ("gate_proj", "up_proj", "down_proj")) and is_silu(
        getattr(module, "act_fn", None))


SWIGLU = FusedOp("torch_biren::swiglu", "torch_biren::swiglu_backward", _cost, _backward_cost, _replaces)


class _SwiGLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gate, up):
        device = same_device("torch_biren::swiglu", gate=gate, up=up)
        out = torch.empty_like(gate)
        took = path(gate, up)

        def run():
            if took == "triton":
                kernels.swiglu_fwd(view(gate), view(up), view(out))
            else:
                view(out).copy_(F.silu(view(gate)) * view(up))

        graphs.launch(run, device)
        charge(SWIGLU.name, (gate, up), device, took, SWIGLU.cost)
        ctx.save_for_backward(gate, up)
        return out

    @staticmethod
    def backward(ctx, dy):
        gate, up = ctx.saved_tensors
        dy = dy.contiguous()
        dgate, dup = torch.empty_like(gate), torch.empty_like(up)
        took = path(gate, up, dy)

        def run():
            if took == "triton":
                kernels.swiglu_bwd(view(dy), view(gate), view(up), view(dgate), view(dup))
            else:
                g, u, d = view(gate).float(), view(up).float(), view(dy).float()
                sig = torch.sigmoid(g)
                view(dup).copy_(d * g * sig)
                view(dgate).copy_(d * u * sig * (1 + g * (1 - sig)))

        graphs.launch(run, dy.device)
        charge(SWIGLU.backward_name, (dy, gate, up), dy.device, took, SWIGLU.backward_cost)
        return dgate, dup


def swiglu(gate, up):
    """silu(gate) * up."""
    return _SwiGLU.apply(gate, up) if on_biren(gate, up) else F.silu(gate) * up
