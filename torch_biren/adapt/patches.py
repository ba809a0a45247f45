"""Model-side adaptations: what a vendor's adaptation layer changes in a model so that its layers
reach the device's kernels (as torch_npu's model patches route RMSNorm to npu_rms_norm).

HF writes RMSNorm as pow/mean/rsqrt/mul, four generic ops the device can only run one by one; the
same layer through torch.nn.functional.rms_norm is one aten op with a fused device kernel. It
computes in the promoted dtype of input and weight, as HF's output is; where HF rounds the
normalised bf16 input to bf16 before scaling by an fp32 weight (q/k norms under autocast), the
fused op keeps it in fp32: one rounding fewer, within bf16 tolerance.
"""

import types

import torch
import torch.nn.functional as F


def _rms_norm_forward(self, hidden_states):
    dtype = torch.promote_types(hidden_states.dtype, self.weight.dtype)
    return F.rms_norm(hidden_states.to(dtype), (hidden_states.shape[-1],), self.weight.to(dtype),
                      self.variance_epsilon)


def fuse_rms_norm(model):
    """Route every HF *RMSNorm module through F.rms_norm; returns how many were patched."""
    n = 0
    for m in model.modules():
        if type(m).__name__.endswith("RMSNorm") and hasattr(m, "variance_epsilon") and isinstance(
                getattr(m, "weight", None), torch.nn.Parameter):
            m.forward = types.MethodType(_rms_norm_forward, m)
            n += 1
    return n


ADAPTATIONS = {
    "fused-rms-norm": (fuse_rms_norm, "HF RMSNorm modules -> torch.nn.functional.rms_norm (one fused kernel)"),
}


def apply(model, names=None):
    """Apply adaptations (all by default) to a model; returns [(name, description, modules changed)]."""
    done = []
    for name in ADAPTATIONS if names is None else names:
        fn, what = ADAPTATIONS[name]
        n = fn(model)
        if n:
            done.append((name, what, n))
    return done
