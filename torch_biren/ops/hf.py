"""Puts the fused kernels into Hugging Face models, as Liger-Kernel does for CUDA: RMSNorm modules,
SwiGLU MLPs and rotate-half RoPE have no aten op for a device to register, so the model's modules
are pointed at torch_biren.ops. Applied per model instance; CPU tensors keep HF's own code. Which
modules each op replaces is the op's own description (RMS_NORM.replaces, SWIGLU.replaces,
ROPE.families), which the projection's trace reads too."""

import sys
import types

import torch.nn.functional as F

from .rms_norm import RMS_NORM
from .rope import ROPE, rope
from .swiglu import SWIGLU, swiglu


def _rms_norm_forward(self, hidden_states):
    if hidden_states.device.type != "biren":
        return self._hf_forward(hidden_states)
    return F.rms_norm(hidden_states, (hidden_states.shape[-1],), self.weight, self.variance_epsilon)


def _mlp_forward(self, x):
    if x.device.type != "biren":
        return self._hf_forward(x)
    return self.down_proj(swiglu(self.gate_proj(x), self.up_proj(x)))


def _patch_rope(modeling):
    original = getattr(modeling, "apply_rotary_pos_emb", None)
    if original is None or getattr(original, "_biren", False):
        return

    def apply_rotary_pos_emb(q, k, cos, sin, *args, **kwargs):
        # HF's signature varies by version ((..., position_ids, unsqueeze_dim) or (..., unsqueeze_dim)).
        unsqueeze_dim = kwargs.get("unsqueeze_dim", args[-1] if args else 1)
        if q.device.type != "biren" or unsqueeze_dim != 1:
            return original(q, k, cos, sin, *args, **kwargs)
        return rope(q, k, cos, sin)

    apply_rotary_pos_emb._biren = True
    apply_rotary_pos_emb._original = original
    modeling.apply_rotary_pos_emb = apply_rotary_pos_emb


def rope_modules(model):
    """The modules holding apply_rotary_pos_emb for a model of a rotate-half family (ROPE.families)."""
    if getattr(getattr(model, "config", None), "model_type", "") not in ROPE.families:
        return []
    found = {sys.modules.get(cls.__module__) for cls in {type(m) for m in model.modules()}}
    return [m for m in found if m is not None and hasattr(m, "apply_rotary_pos_emb")]


def patch_model(model):
    """Routes the model's RMSNorm, SwiGLU MLP and RoPE to the biren kernels; returns what it patched."""
    done = {"rms_norm": 0, "swiglu": 0, "rope": 0}
    for module in model.modules():
        if hasattr(module, "_hf_forward"):
            continue
        for key, op, forward in (("rms_norm", RMS_NORM, _rms_norm_forward), ("swiglu", SWIGLU, _mlp_forward)):
            if op.replaces(module):
                module._hf_forward = module.forward
                module.forward = types.MethodType(forward, module)
                done[key] += 1
                break
    for modeling in rope_modules(model):
        _patch_rope(modeling)
        done["rope"] = 1
    return done
