"""Puts the fused kernels into Hugging Face models, as Liger-Kernel does for CUDA: RMSNorm modules,
SwiGLU MLPs and rotate-half RoPE have no aten op for a device to register, so the model's modules
are pointed at torch_biren.ops. Applied per model instance; CPU tensors keep HF's own code."""

import sys
import types

import torch.nn as nn
import torch.nn.functional as F

from . import fused

# Model families whose apply_rotary_pos_emb is HF's rotate-half form (DeepSeek's interleaves).
_ROTATE_HALF = ("llama", "qwen2", "qwen3", "qwen3_moe", "mistral")


def _rms_norm_forward(self, hidden_states):
    if hidden_states.device.type != "biren":
        return self._hf_forward(hidden_states)
    return F.rms_norm(hidden_states, (hidden_states.shape[-1],), self.weight, self.variance_epsilon)


def _mlp_forward(self, x):
    if x.device.type != "biren":
        return self._hf_forward(x)
    return self.down_proj(fused.swiglu(self.gate_proj(x), self.up_proj(x)))


def _is_silu(act):
    return isinstance(act, nn.SiLU) or type(act).__name__ in ("SiLUActivation", "SiLU")


def _patch_rope(modeling):
    original = getattr(modeling, "apply_rotary_pos_emb", None)
    if original is None or getattr(original, "_biren", False):
        return

    def apply_rotary_pos_emb(q, k, cos, sin, *args, **kwargs):
        # HF's signature varies by version ((..., position_ids, unsqueeze_dim) or (..., unsqueeze_dim)).
        unsqueeze_dim = kwargs.get("unsqueeze_dim", args[-1] if args else 1)
        if q.device.type != "biren" or unsqueeze_dim != 1:
            return original(q, k, cos, sin, *args, **kwargs)
        return fused.rope(q, k, cos, sin)

    apply_rotary_pos_emb._biren = True
    apply_rotary_pos_emb._original = original
    modeling.apply_rotary_pos_emb = apply_rotary_pos_emb


def patch_model(model):
    """Routes the model's RMSNorm, SwiGLU MLP and RoPE to the biren kernels; returns what it patched."""
    done = {"rms_norm": 0, "swiglu": 0, "rope": 0}
    for module in model.modules():
        if hasattr(module, "_hf_forward"):
            continue
        name = type(module).__name__
        if name.endswith("RMSNorm") and hasattr(module, "weight") and hasattr(module, "variance_epsilon"):
            module._hf_forward = module.forward
            module.forward = types.MethodType(_rms_norm_forward, module)
            done["rms_norm"] += 1
        elif all(hasattr(module, p) for p in ("gate_proj", "up_proj", "down_proj")) and _is_silu(
                getattr(module, "act_fn", None)):
            module._hf_forward = module.forward
            module.forward = types.MethodType(_mlp_forward, module)
            done["swiglu"] += 1
    family = getattr(getattr(model, "config", None), "model_type", "")
    if family in _ROTATE_HALF:
        for cls in {type(m) for m in model.modules()}:
            modeling = sys.modules.get(cls.__module__)
            if modeling is not None and hasattr(modeling, "apply_rotary_pos_emb"):
                _patch_rope(modeling)
                done["rope"] = 1
    return done
